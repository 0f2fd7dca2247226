// Trains the reference network with plain mini-batch SGD on the fast path (reference/fast/),
// replaying exactly the batches the TF.js trainer sees: epoch e (numbered from 0) visits
// epochPermutation(N, seed, e) in consecutive slices of batchSize, the last one possibly short.
// N = training images, B = batchSize, D = 784, K = 10.
//
// Pure TypeScript: nothing here (or anywhere under reference/) may import
// @tensorflow; the pipeline types below are imported as types only.

import type { EpochRecord } from '../pipeline/types.js';
import { gatherSparseRows, sparseRowsFrom } from './fast/kernels.js';
import { createWorkspace, evaluate, trainStepRows, type StepResult, type Workspace } from './fast/network.js';
import { StepTeam, checkThreads, shareParams } from './fast/threads.js';
import { batchCount, epochPermutation } from './random.js';
import { D, K, cloneParams, type Params } from './shapes.js';

/** What training reads of a split (pipeline/types.ts's Split fits). */
export interface TrainingSplit {
  images: Float32Array; // (N, D) in [0, 1]
  oneHot: Float32Array; // (N, K)
  count: number;
}

/** What training reads of the dataset (pipeline/types.ts's Dataset fits). */
export interface TrainingData {
  train: TrainingSplit;
  validation: TrainingSplit;
}

export interface ReferenceTrainOptions {
  epochs: number;
  batchSize: number;
  lr: number;
  seed: number; // the shuffle seed, the same the TF.js trainer is given
  threads?: number; // threads sharing each step (trainReferenceAsync only; default 1); the result is the same for any count
  activeThreads?: () => number; // of those, how many work on the next step (default all); asked before every step
  signal?: AbortSignal; // when aborted, training stops before the next batch
  onBatch?: (progress: BatchProgress) => void; // after every batch, e.g. for a progress bar
  onStart?: () => void; // once the worker threads run, right before training begins (the bench starts its clock here)
}

export interface BatchProgress {
  epoch: number; // 1-based
  batch: number; // 1-based
  batches: number; // batches per epoch
  loss: number; // mean batch loss so far this epoch, weighted by batch size
  accuracy: number; // fraction right so far this epoch
}

/** The trained reference: pipeline/types.ts's TrainedModel without its two labels. */
export interface ReferenceTraining {
  params: Params; // final weights
  history: EpochRecord[];
  trainSeconds: number; // training time, validation passes excluded
  samplesPerSecond: number; // training images per second over trainSeconds
  trainAccuracy: number; // accuracy on the whole training split after the last epoch
  threads: number; // the team's threads (with activeThreads, at most this many worked at once)
}

/**
 * One epoch's line of the history, as every trainer writes it: the training loss and
 * accuracy averaged over the `seen` images of the epoch, the validation scores, and the
 * wall time since epochStart (a performance.now() reading), validation included.
 */
export function epochRecord(
  epoch: number, // 1-based
  lossSum: number, // Σ over batches of batch loss × batch size
  correct: number,
  seen: number,
  val: { loss: number; accuracy: number },
  epochStart: number,
): EpochRecord {
  return {
    epoch,
    loss: lossSum / seen,
    accuracy: correct / seen,
    valLoss: val.loss,
    valAccuracy: val.accuracy,
    seconds: (performance.now() - epochStart) / 1000,
  };
}

/** A batch loss stopped being finite; names where, 1-based. */
export class ReferenceDivergenceError extends Error {
  override name = 'ReferenceDivergenceError';
  constructor(
    readonly epoch: number,
    readonly batch: number,
    readonly batches: number,
    readonly loss: number,
    lr: number,
  ) {
    super(
      `reference training diverged: the batch loss became ${loss} in epoch ${epoch}, batch ${batch} of ${batches} ` +
        `(--lr ${lr} is probably too large)`,
    );
  }
}

function checkSplit(split: TrainingSplit, name: string): void {
  if (!Number.isInteger(split.count) || split.count < 1)
    throw new Error(`trainReference: the ${name} split is empty (count ${split.count})`);
  if (split.images.length !== split.count * D) {
    throw new Error(
      `trainReference: ${name}.images should hold (${split.count}, ${D}) = ${split.count * D} values, found ${split.images.length}`,
    );
  }
  if (split.oneHot.length !== split.count * K) {
    throw new Error(
      `trainReference: ${name}.oneHot should hold (${split.count}, ${K}) = ${split.count * K} values, found ${split.oneHot.length}`,
    );
  }
}

function checkOptions(dataset: TrainingData, opts: ReferenceTrainOptions): void {
  const { epochs, batchSize, lr } = opts;
  checkSplit(dataset.train, 'train');
  checkSplit(dataset.validation, 'validation');
  if (!Number.isInteger(epochs) || epochs < 1) throw new Error(`trainReference: epochs must be a positive integer, found ${epochs}`);
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new Error(`trainReference: batchSize must be a positive integer, found ${batchSize}`);
  if (!(lr > 0)) throw new Error(`trainReference: lr must be positive, found ${lr}`);
  checkThreads(opts.threads ?? 1);
}

/** The weights being trained, their workspace, and how one SGD step on the batch in ws.xRows is taken. */
interface Trainer {
  params: Params;
  ws: Workspace<Float32Array>;
  threads: number;
  step: (oneHot: Float32Array, rows: number) => StepResult;
}

/** A copy of init trained by this thread alone. */
function singleThreadTrainer(init: Params, opts: ReferenceTrainOptions): Trainer {
  const params = cloneParams(init);
  const ws = createWorkspace(params, opts.batchSize);
  return { params, ws, threads: 1, step: (oneHot, rows) => trainStepRows(params, oneHot, rows, opts.lr, ws) };
}

/**
 * Trains a copy of `init` (which is left untouched) and returns the final weights,
 * the per-epoch history and the timing. Throws ReferenceDivergenceError at the
 * first batch whose loss is not finite. Synchronous and single-threaded: nothing
 * else runs until it returns, so opts.signal is only seen if it was aborted before
 * the call — use trainReferenceAsync where a signal handler must be able to stop it,
 * or to train with several threads.
 */
export function trainReference(
  dataset: TrainingData,
  init: Params,
  opts: ReferenceTrainOptions,
  onEpoch?: (record: EpochRecord) => void,
): ReferenceTraining {
  checkOptions(dataset, opts);
  if ((opts.threads ?? 1) !== 1)
    throw new Error(`trainReference: trains on one thread only, found threads ${opts.threads}; use trainReferenceAsync`);
  const run = trainingRun(dataset, singleThreadTrainer(init, opts), opts, onEpoch);
  for (;;) {
    const next = run.next();
    if (next.done) return next.value;
  }
}

/** How long trainReferenceAsync computes before letting the event loop run (signal handlers, output). */
const YIELD_EVERY_MS = 50;

/**
 * trainReference that hands the event loop a turn every ~50 ms between batches, so
 * that a SIGINT handler can abort opts.signal and training stops at the next batch;
 * with opts.threads > 1, each step is shared with worker threads (reference/fast/threads.ts),
 * which changes no bit of the result.
 */
export async function trainReferenceAsync(
  dataset: TrainingData,
  init: Params,
  opts: ReferenceTrainOptions,
  onEpoch?: (record: EpochRecord) => void,
): Promise<ReferenceTraining> {
  checkOptions(dataset, opts);
  const threads = opts.threads ?? 1;
  if (threads === 1) return drive(trainingRun(dataset, singleThreadTrainer(init, opts), opts, onEpoch));
  const params = shareParams(init);
  const ws = createWorkspace(params, opts.batchSize, true);
  const team = await StepTeam.start(params, ws, opts.lr, threads);
  try {
    const active = opts.activeThreads ?? (() => threads);
    const trainer: Trainer = {
      params,
      ws,
      threads,
      step: (oneHot, rows) => {
        team.setActive(active());
        return team.step(oneHot, rows);
      },
    };
    const trained = await drive(trainingRun(dataset, trainer, opts, onEpoch));
    return { ...trained, params: cloneParams(trained.params) }; // back in ordinary memory
  } finally {
    await team.stop();
  }
}

/** Runs a training generator to the end, letting the event loop run every ~50 ms. */
async function drive(run: Generator<void, ReferenceTraining, void>): Promise<ReferenceTraining> {
  let lastYield = performance.now();
  for (;;) {
    const next = run.next();
    if (next.done) return next.value;
    if (performance.now() - lastYield >= YIELD_EVERY_MS) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      lastYield = performance.now();
    }
  }
}

/** The training loop, pausing (yield) after every batch; the two functions above drive it. */
function* trainingRun(
  dataset: TrainingData,
  trainer: Trainer,
  opts: ReferenceTrainOptions,
  onEpoch?: (record: EpochRecord) => void,
): Generator<void, ReferenceTraining, void> {
  const { train, validation } = dataset;
  const { epochs, batchSize, lr, seed } = opts;
  const { params, ws } = trainer;
  const evalWorkspace = createWorkspace(params, 256);
  const y = new Float32Array(batchSize * K); // (B, K) the batch's one-hot labels
  const { oneHot } = train; // a local: the copy loop below reads it every label
  const classes = K;
  const batches = batchCount(train.count, batchSize);
  const history: EpochRecord[] = [];
  // The split's nonzero pixels, indexed once: a batch is then gathered as nonzeros,
  // without copying or rescanning ~80% zeros. The indexing counts as training time.
  opts.onStart?.();
  const indexStart = performance.now();
  const trainRows = sparseRowsFrom(train.images, train.count, D); // (N, D) as nonzeros
  let trainSeconds = (performance.now() - indexStart) / 1000;

  for (let epoch = 0; epoch < epochs; epoch++) {
    const epochStart = performance.now();
    const order = epochPermutation(train.count, seed, epoch);
    let lossSum = 0;
    let correct = 0;
    let seen = 0;
    for (let b = 0; b < batches; b++) {
      if (opts.signal?.aborted) throw new Error(`reference training interrupted in epoch ${epoch + 1}, batch ${b + 1}`);
      const first = b * batchSize;
      const rows = Math.min(batchSize, train.count - first);
      gatherSparseRows(ws.xRows, trainRows, order, first, rows);
      for (let r = 0; r < rows; r++) {
        const from = order[first + r]! * classes;
        for (let k = 0; k < classes; k++) y[r * classes + k] = oneHot[from + k]!;
      }
      const step = trainer.step(y, rows);
      if (!Number.isFinite(step.loss)) throw new ReferenceDivergenceError(epoch + 1, b + 1, batches, step.loss, lr);
      lossSum += step.loss * rows;
      correct += step.correct;
      seen += rows;
      opts.onBatch?.({ epoch: epoch + 1, batch: b + 1, batches, loss: lossSum / seen, accuracy: correct / seen });
      yield;
    }
    trainSeconds += (performance.now() - epochStart) / 1000;
    const val = evaluate(params, validation.images, validation.oneHot, validation.count, evalWorkspace);
    const record = epochRecord(epoch + 1, lossSum, correct, seen, val, epochStart);
    history.push(record);
    onEpoch?.(record);
  }
  const trainAccuracy = evaluate(params, train.images, train.oneHot, train.count, evalWorkspace).accuracy;
  return {
    params,
    history,
    trainSeconds,
    samplesPerSecond: (train.count * epochs) / trainSeconds,
    trainAccuracy,
    threads: trainer.threads,
  };
}
