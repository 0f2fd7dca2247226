// Stage reference: the pure-TypeScript network trained in lockstep with TF.js,
// from the same initial weights over the same batches.

import { WorkerStartError, defaultThreads } from '../reference/fast/threads.js';
import { ReferenceDivergenceError, trainReferenceAsync } from '../reference/train.js';
import type { Config } from './config.js';
import { epochSummary, type EpochProgress, type ProgressFactory } from './progress.js';
import { InterruptedError } from './dag/interrupted.js';
import { DivergenceError } from './train.js';
import type { Dataset, InitialWeights, TrainedModel } from './types.js';

const REFERENCE_BACKEND = 'typescript';

/** Threads the reference asks for: --reference-threads, or with 0 what the --jobs budget leaves free, at most the default. */
export function referenceThreads(config: Pick<Config, 'referenceThreads'>, free: number): number {
  return config.referenceThreads === 0 ? Math.max(1, Math.min(free, defaultThreads())) : config.referenceThreads;
}

export async function trainReferenceStage(
  dataset: Dataset,
  init: InitialWeights,
  config: Pick<Config, 'epochs' | 'batchSize' | 'lr' | 'seed' | 'referenceThreads'>,
  hooks: { progress: ProgressFactory; signal?: AbortSignal },
  threads = referenceThreads(config, Infinity), // what the runner granted
): Promise<TrainedModel> {
  const { epochs } = config;
  let bar: EpochProgress | null = null;
  const train = (threads: number) => {
    hooks.progress.log(`reference: training on ${threads} thread${threads === 1 ? '' : 's'}`);
    return trainReferenceAsync(
      dataset,
      init.params,
      {
        epochs,
        batchSize: config.batchSize,
        lr: config.lr,
        seed: config.seed,
        threads,
        signal: hooks.signal,
        onBatch: ({ epoch, batch, batches, loss, accuracy }) => {
          if (batch === 1) bar = hooks.progress.epoch(`reference epoch ${epoch}/${epochs}`, batches);
          bar?.batch(batch, loss, accuracy);
        },
      },
      (record) => {
        bar?.end(epochSummary('reference', record, epochs));
        bar = null;
      },
    );
  };
  try {
    const trained = await train(threads).catch((error: unknown) => {
      // One thread computes the same weights, so a machine that cannot start workers only loses speed.
      if (!(error instanceof WorkerStartError)) throw error;
      hooks.progress.log(`reference: ${error.message}; training on 1 thread instead (same weights, slower)`);
      return train(1);
    });
    return { implementation: 'reference', backend: REFERENCE_BACKEND, ...trained };
  } catch (error) {
    // The CLI knows these two by name: a clear message, a non-zero exit, reports untouched.
    if (error instanceof ReferenceDivergenceError) throw new DivergenceError(error.message);
    if (hooks.signal?.aborted) throw new InterruptedError((error as Error).message);
    throw error;
  }
}
