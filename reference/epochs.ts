// The one epoch loop, shared by every trainer: the TF.js one (pipeline/stages/train.ts)
// and the reference (reference/sgd.ts) supply a step, this file does the rest.
//
//   for each epoch e (numbered from 0):
//     1. order = epochPermutation(N, seed, e); trainer.startEpoch(e)
//     2. for each batch b: a turn for the event loop every ~50 ms, stop if the signal
//        is aborted (InterruptedError), step on order[b·B, min((b+1)·B, N)) (the last
//        slice may be short), stop if its loss is not finite (DivergenceError)
//     3. trainer.validate(); the epoch's EpochRecord joins the history
//
// Pure TypeScript like all of reference/: the pipeline imports these, never the reverse.
// N = training images, B = batchSize.

import { batchCount, epochPermutation } from './random.js';

/** One epoch of training, as the loop records it; render/run-files.ts writes it as a row of training_history.csv, in snake_case. */
export interface EpochRecord {
  epoch: number; // 1-based
  loss: number; // mean training cross-entropy over the epoch's batches (weighted by batch size)
  accuracy: number; // fraction of training images classified right during the epoch
  valLoss: number; // cross-entropy on the validation split after the epoch
  valAccuracy: number; // fraction of the validation split classified right after the epoch
  seconds: number; // wall time of the epoch, validation included
}

export interface BatchProgress {
  epoch: number; // 1-based
  batch: number; // 1-based
  batches: number; // batches per epoch
  loss: number; // mean batch loss so far this epoch, weighted by batch size
  accuracy: number; // fraction right so far this epoch
}

/** What one step reports of its batch, both measured before the update. */
export interface BatchResult {
  loss: number; // mean cross-entropy of the batch
  correct: number; // images of the batch classified right
}

/** What a trainer supplies: its step, and what it does around the epochs. */
export interface EpochTrainer {
  startEpoch?: (epoch: number) => void; // 0-based, before its first batch (TF.js sets the epoch's learning rate and augmentation stream)
  step: (rows: Uint32Array) => BatchResult; // one update on these training images (indices into the split), in this order
  validate: () => { loss: number; accuracy: number }; // the validation scores of the weights as they are now
  learningRate: (epoch: number) => string; // names the 0-based epoch's learning rate as the user set it, for DivergenceError: '--lr 0.01'
}

/** What the loop reports as it goes, e.g. to draw a progress bar per epoch. */
export interface EpochObserver {
  onEpochStart?: (epoch: number, batches: number) => void; // 1-based, before its first batch
  onBatch?: (progress: BatchProgress) => void; // after every batch
  onEpoch?: (record: EpochRecord) => void; // after every epoch, its validation included
}

export interface EpochLoopOptions extends EpochObserver {
  count: number; // N, the training images
  epochs: number;
  batchSize: number;
  seed: number; // the shuffle seed: every trainer given the same one sees the same batches
  subject: string; // opens the errors' messages: 'training', 'adam training', 'reference training'
  signal?: AbortSignal; // when aborted, training stops before the next batch
}

export interface EpochLoopResult {
  history: EpochRecord[];
  trainSeconds: number; // time in the epochs' batches, validation excluded
}

/** A batch loss stopped being finite; names where, 1-based. */
export class DivergenceError extends Error {
  override name = 'DivergenceError';
  constructor(
    subject: string,
    readonly epoch: number,
    readonly batch: number,
    readonly batches: number,
    readonly loss: number,
    learningRate: string,
  ) {
    super(
      `${subject} diverged: the batch loss became ${loss} in epoch ${epoch}, batch ${batch} of ${batches} ` +
        `(${learningRate} is probably too large)`,
    );
  }
}

/**
 * The one error for a run stopped by SIGINT / SIGTERM, wherever it stops: between
 * training batches here, or in the pipeline (between stages, in a stage's process,
 * waiting for a lock), which re-exports it from pipeline/dag/interrupted.ts.
 */
export class InterruptedError extends Error {
  override name = 'InterruptedError';
}

/** How long the loop computes before letting the event loop run (signal handlers, output, worker messages). */
const YIELD_EVERY_MS = 50;

/**
 * Trains with `trainer` for options.epochs epochs over the shared seeded shuffle and
 * returns the per-epoch history and the training time. Throws DivergenceError at the
 * first batch whose loss is not finite, and InterruptedError at the first batch after
 * options.signal is aborted.
 */
export async function trainEpochs(trainer: EpochTrainer, options: EpochLoopOptions): Promise<EpochLoopResult> {
  const { count, epochs, batchSize, seed, subject, signal } = options;
  const batches = batchCount(count, batchSize);
  const history: EpochRecord[] = [];
  let trainSeconds = 0;
  let lastYield = performance.now();

  for (let epoch = 0; epoch < epochs; epoch++) {
    const epochStart = performance.now();
    const order = epochPermutation(count, seed, epoch);
    trainer.startEpoch?.(epoch);
    options.onEpochStart?.(epoch + 1, batches);
    let lossSum = 0; // Σ over batches of batch loss × batch size
    let correct = 0;
    let seen = 0;
    for (let b = 0; b < batches; b++) {
      // The steps are synchronous: without a turn now and then, a SIGINT would wait for the end.
      if (performance.now() - lastYield >= YIELD_EVERY_MS) {
        await new Promise<void>((resolve) => setImmediate(resolve));
        lastYield = performance.now();
      }
      if (signal?.aborted) throw new InterruptedError(`${subject} interrupted in epoch ${epoch + 1}, batch ${b + 1}`);
      const rows = order.subarray(b * batchSize, Math.min((b + 1) * batchSize, count));
      const step = trainer.step(rows);
      if (!Number.isFinite(step.loss))
        throw new DivergenceError(subject, epoch + 1, b + 1, batches, step.loss, trainer.learningRate(epoch));
      lossSum += step.loss * rows.length;
      correct += step.correct;
      seen += rows.length;
      options.onBatch?.({ epoch: epoch + 1, batch: b + 1, batches, loss: lossSum / seen, accuracy: correct / seen });
    }
    trainSeconds += (performance.now() - epochStart) / 1000;
    const val = trainer.validate();
    const record: EpochRecord = {
      epoch: epoch + 1,
      loss: lossSum / seen,
      accuracy: correct / seen,
      valLoss: val.loss,
      valAccuracy: val.accuracy,
      seconds: (performance.now() - epochStart) / 1000,
    };
    history.push(record);
    options.onEpoch?.(record);
  }
  return { history, trainSeconds };
}
