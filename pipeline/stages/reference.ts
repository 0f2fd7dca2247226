// Stage reference: the pure-TypeScript network trained in lockstep with TF.js,
// from the same initial weights over the same batches.

import { WorkerStartError, defaultThreads } from '../../reference/fast/threads.js';
import type { ThreadRequest } from '../dag/budget.js';
import { counted } from '../render/format.js';
import { trainReferenceAsync } from '../../reference/sgd.js';
import type { Config } from '../config.js';
import type { ProgressFactory } from '../progress.js';
import { epochBars } from '../progress.js';
import type { Dataset, InitialWeights, TrainedModel } from '../types.js';

const REFERENCE_BACKEND = 'typescript';

/** Rough cost of one reference image on one thread, a TF.js SGD image = 1 (wasm, docs/performance.md); for ordering under --jobs. */
export const REFERENCE_COST = 1.4;

/**
 * Threads the reference asks for: --reference-threads, or with 0 from 1 up to the default, taking what
 * the --jobs budget leaves free while it trains (a thread that another stage needs goes back to it).
 */
export function referenceThreads(config: Pick<Config, 'referenceThreads'>): ThreadRequest {
  return config.referenceThreads === 0 ? { min: 1, max: defaultThreads() } : { min: config.referenceThreads, max: config.referenceThreads };
}

export async function trainReferenceStage(
  dataset: Dataset,
  init: InitialWeights,
  config: Pick<Config, 'epochs' | 'batchSize' | 'lr' | 'seed' | 'referenceThreads'>,
  hooks: { progress: ProgressFactory; signal?: AbortSignal },
  threads = referenceThreads(config).max, // the team's size: the most threads it may get
  onThreads: (listener: (threads: number) => void) => void = (listener) => listener(threads), // the runner's share, as it changes
): Promise<TrainedModel> {
  let granted = threads;
  onThreads((count) => {
    granted = count;
  });
  const train = (threads: number) => {
    let active = Math.min(granted, threads);
    hooks.progress.log(`reference: training on ${counted(active, 'thread')}${active < threads ? ` of ${threads}` : ''}`);
    return trainReferenceAsync(dataset, init.params, {
      epochs: config.epochs,
      batchSize: config.batchSize,
      lr: config.lr,
      seed: config.seed,
      threads,
      activeThreads: () => {
        const now = Math.min(granted, threads);
        if (now !== active) hooks.progress.log(`reference: now on ${counted(now, 'thread')} (the --jobs budget changed)`);
        active = now;
        return now;
      },
      signal: hooks.signal, // the loop's DivergenceError and InterruptedError reach the CLI as they are
      ...epochBars(hooks.progress, 'reference', config.epochs),
    });
  };
  const trained = await train(threads).catch((error: unknown) => {
    // One thread computes the same weights, so a machine that cannot start workers only loses speed.
    if (!(error instanceof WorkerStartError)) throw error;
    hooks.progress.log(`reference: ${error.message}; training on 1 thread instead (same weights, slower)`);
    return train(1);
  });
  return { implementation: 'reference', backend: REFERENCE_BACKEND, ...trained };
}
