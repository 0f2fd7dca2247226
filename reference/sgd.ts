// Trains the reference network with plain mini-batch SGD on the fast path (reference/fast/),
// replaying exactly the batches the TF.js trainer sees: both supply a step to the one
// epoch loop (reference/epochs.ts), which visits epoch e's epochPermutation(N, seed, e)
// in consecutive slices of batchSize, the last one possibly short.
// N = training images, B = batchSize, D = 784, K = 10.
//
// Pure TypeScript: nothing here (or anywhere under reference/) may import
// @tensorflow or anything of pipeline/.

import { trainEpochs, type EpochObserver, type EpochRecord, type EpochTrainer } from './epochs.js';
import { gatherPixelRows } from './fast/kernels.js';
import { createWorkspace, evaluate, trainStepRows, type StepResult, type Workspace } from './fast/network.js';
import { StepTeam, checkThreads, shareParams } from './fast/threads.js';
import { D, K, cloneParams, type Params, type Pixels } from './shapes.js';

/** What training reads of a split (pipeline/types.ts's Split fits). */
export interface TrainingSplit {
  images: Pixels; // (N, D) bytes 0–255, scaled to [0, 1] where used (scalePixels)
  oneHot: Float32Array; // (N, K)
  count: number;
}

/** What training reads of the dataset (pipeline/types.ts's Dataset fits). */
export interface TrainingData {
  train: TrainingSplit;
  validation: TrainingSplit;
}

export interface ReferenceTrainOptions extends EpochObserver {
  epochs: number;
  batchSize: number;
  lr: number;
  seed: number; // the shuffle seed, the same the TF.js trainer is given
  threads?: number; // threads sharing each step (default 1); the result is the same for any count
  activeThreads?: () => number; // of those, how many work on the next step (default all); asked before every step
  signal?: AbortSignal; // when aborted, training stops before the next batch (InterruptedError)
  onStart?: () => void; // once the worker threads run, right before training begins (the bench starts its clock here)
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

function checkSplit(split: TrainingSplit, name: string): void {
  if (!Number.isInteger(split.count) || split.count < 1)
    throw new Error(`trainReferenceAsync: the ${name} split is empty (count ${split.count})`);
  if (split.images.length !== split.count * D) {
    throw new Error(
      `trainReferenceAsync: ${name}.images should hold (${split.count}, ${D}) = ${split.count * D} values, found ${split.images.length}`,
    );
  }
  if (split.oneHot.length !== split.count * K) {
    throw new Error(
      `trainReferenceAsync: ${name}.oneHot should hold (${split.count}, ${K}) = ${split.count * K} values, found ${split.oneHot.length}`,
    );
  }
}

function checkOptions(dataset: TrainingData, opts: ReferenceTrainOptions): void {
  const { epochs, batchSize, lr } = opts;
  checkSplit(dataset.train, 'train');
  checkSplit(dataset.validation, 'validation');
  if (!Number.isInteger(epochs) || epochs < 1) throw new Error(`trainReferenceAsync: epochs must be a positive integer, found ${epochs}`);
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new Error(`trainReferenceAsync: batchSize must be a positive integer, found ${batchSize}`);
  if (!(lr > 0)) throw new Error(`trainReferenceAsync: lr must be positive, found ${lr}`);
  checkThreads(opts.threads ?? 1);
}

/** The weights being trained, their workspace, and how one SGD step on the batch in ws.xRows is taken. */
interface Trainer {
  params: Params;
  ws: Workspace<Float32Array>;
  threads: number;
  step: (oneHot: Float32Array, rows: number) => StepResult;
}

/**
 * Trains a copy of `init` (which is left untouched) with the one epoch loop
 * (reference/epochs.ts) and returns the final weights, the per-epoch history and
 * the timing. The loop hands the event loop a turn every ~50 ms, so a SIGINT handler
 * can abort opts.signal; it throws DivergenceError at the first batch whose loss is
 * not finite. With opts.threads > 1, each step is shared with worker threads
 * (reference/fast/threads.ts), which changes no bit of the result.
 */
export async function trainReferenceAsync(dataset: TrainingData, init: Params, opts: ReferenceTrainOptions): Promise<ReferenceTraining> {
  checkOptions(dataset, opts);
  const threads = opts.threads ?? 1;
  if (threads === 1) {
    const params = cloneParams(init);
    const ws = createWorkspace(params, opts.batchSize);
    return trainWith(dataset, { params, ws, threads, step: (oneHot, rows) => trainStepRows(params, oneHot, rows, opts.lr, ws) }, opts);
  }
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
    const trained = await trainWith(dataset, trainer, opts);
    return { ...trained, params: cloneParams(trained.params) }; // back in ordinary memory
  } finally {
    await team.stop();
  }
}

/** Runs the epoch loop with the reference's step: the batch gathered as nonzeros, its labels copied, then trainer.step. */
async function trainWith(dataset: TrainingData, trainer: Trainer, opts: ReferenceTrainOptions): Promise<ReferenceTraining> {
  const { train, validation } = dataset;
  const { epochs, batchSize, lr, seed } = opts;
  const { params, ws } = trainer;
  const evalWorkspace = createWorkspace(params, 256);
  const y = new Float32Array(batchSize * K); // (B, K) the batch's one-hot labels
  const { oneHot } = train; // a local: the copy loop below reads it every label
  const classes = K;
  opts.onStart?.();
  const epochTrainer: EpochTrainer = {
    step: (rows) => {
      gatherPixelRows(ws.xRows, train.images, rows, 0, rows.length, D); // the batch's nonzero pixels, scaled
      for (let r = 0; r < rows.length; r++) {
        const from = rows[r]! * classes;
        for (let k = 0; k < classes; k++) y[r * classes + k] = oneHot[from + k]!;
      }
      return trainer.step(y, rows.length);
    },
    validate: () => evaluate(params, validation.images, validation.oneHot, validation.count, evalWorkspace),
    learningRate: () => `--lr ${lr}`,
  };
  const { history, trainSeconds } = await trainEpochs(epochTrainer, {
    count: train.count,
    epochs,
    batchSize,
    seed,
    subject: 'reference training',
    signal: opts.signal,
    onEpochStart: opts.onEpochStart,
    onBatch: opts.onBatch,
    onEpoch: opts.onEpoch,
  });
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
