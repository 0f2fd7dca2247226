// The reference trained by several threads (reference/threads.ts) must give exactly
// the single-threaded result: the same weights bit for bit, the same history. And a
// worker that fails must surface as an error, not a hang. N = 700 images, B = 64, so
// each epoch ends on a short batch of 60; the images are real MNIST digits.

import { defaultDataDir, loadMnist } from '../pipeline/load.js';
import { preprocessDataset } from '../pipeline/preprocess.js';
import { createSparseRows, createWorkspace, sparseRowsOf } from '../reference/network.js';
import { mulberry32 } from '../reference/random.js';
import { D, PARAM_NAMES, PARAM_SHAPES, paramSize, type Params } from '../reference/shapes.js';
import { Layer1Team, WorkerStartError, shareParams, splitRows } from '../reference/threads.js';
import { trainReference, trainReferenceAsync, type ReferenceTraining } from '../reference/train.js';

const dataset = preprocessDataset(loadMnist(defaultDataDir()), 700, 200, 10);
const init = glorotParams(3);
const OPTIONS = { epochs: 2, batchSize: 64, lr: 0.05, seed: 5 };

/** Glorot-uniform weights and zero biases, as the pipeline's init stage draws them (without TF.js here). */
function glorotParams(seed: number): Params {
  const random = mulberry32(seed);
  const params = {} as Params;
  for (const name of PARAM_NAMES) {
    const shape = PARAM_SHAPES[name];
    const limit = shape.length === 2 ? Math.sqrt(6 / (shape[0]! + shape[1]!)) : 0;
    params[name] = Float32Array.from({ length: paramSize(name) }, () => (random() * 2 - 1) * limit);
  }
  return params;
}

/** Names the first entry where two sets of weights differ at all, or returns null. */
function firstDifference(a: Params, b: Params): string | null {
  for (const name of PARAM_NAMES) {
    for (let i = 0; i < a[name].length; i++) {
      if (!Object.is(a[name][i], b[name][i])) return `${name}[${i}]: ${a[name][i]} vs ${b[name][i]}`;
    }
  }
  return null;
}

describe('reference training on several threads', () => {
  let single: ReferenceTraining;

  beforeAll(() => {
    single = trainReference(dataset, init, OPTIONS);
  });

  it.each([2, 3])('with %i threads gives the single-threaded weights and history bit for bit', async (threads) => {
    const before = init.w1.slice();
    const started: number[] = [];
    const shared = await trainReferenceAsync(dataset, init, { ...OPTIONS, threads, onStart: () => started.push(performance.now()) });
    expect(started).toHaveLength(1);
    expect(shared.threads).toBe(threads);
    expect(single.threads).toBe(1);
    expect(firstDifference(shared.params, single.params)).toBeNull();
    expect(shared.history.map(({ seconds: _, ...rest }) => rest)).toEqual(single.history.map(({ seconds: _, ...rest }) => rest));
    expect(shared.trainAccuracy).toBe(single.trainAccuracy);
    expect(init.w1).toEqual(before); // the caller's weights are left alone
    expect(Object.prototype.toString.call(shared.params.w1.buffer)).toBe('[object ArrayBuffer]'); // handed back in ordinary memory, not shared
    // and training did something: the weights moved
    expect(firstDifference(shared.params, init)).not.toBeNull();
  });

  it('trainReference, which is synchronous, refuses threads', () => {
    expect(() => trainReference(dataset, init, { ...OPTIONS, threads: 2 })).toThrow('trains on one thread only, found threads 2; use trainReferenceAsync');
  });

  it('refuses a thread count outside 1..8', async () => {
    await expect(trainReferenceAsync(dataset, init, { ...OPTIONS, threads: 0 })).rejects.toThrow('reference threads: expected a whole number from 1 to 8, found 0');
    await expect(trainReferenceAsync(dataset, init, { ...OPTIONS, threads: 9 })).rejects.toThrow('found 9');
  });

  it('stops at the next batch when the signal is aborted, and ends its workers', async () => {
    const controller = new AbortController();
    const run = trainReferenceAsync(dataset, init, {
      ...OPTIONS,
      threads: 2,
      signal: controller.signal,
      onBatch: ({ epoch, batch }) => {
        if (epoch === 1 && batch === 3) controller.abort();
      },
    });
    await expect(run).rejects.toThrow('reference training interrupted in epoch 1, batch 4');
  });
});

describe('Layer1Team', () => {
  it('refuses weights that are not in shared memory', async () => {
    const params = shareParams(init);
    const ws = createWorkspace(params, 64, true);
    await expect(Layer1Team.start({ ...params, w1: init.w1.slice() }, ws, 0.1, 2)).rejects.toThrow('Layer1Team.start: w1 is not in shared memory');
  });

  it('reports workers that cannot start as a WorkerStartError naming the module (the pipeline then trains on one thread)', async () => {
    const params = shareParams(init);
    const ws = createWorkspace(params, 64, true);
    const missing = new URL('./no-such-worker.ts', import.meta.url);
    const start = Layer1Team.start(params, ws, 0.1, 2, missing);
    await expect(start).rejects.toBeInstanceOf(WorkerStartError);
    await expect(start).rejects.toThrow(/reference worker thread 1 \(file:.*no-such-worker\.ts\) (failed to start|exited)/);
  });

  it('reports a worker that throws as an error naming the worker and its message', async () => {
    const params = shareParams(init);
    const ws = createWorkspace(params, 64, true);
    ws.xCols = createSparseRows(params.w1, 10, 640, true); // too small for xᵀ: worker 1's transpose throws
    const team = await Layer1Team.start(params, ws, 0.1, 2);
    try {
      sparseRowsOf(ws.xRows, dataset.train.images.subarray(0, 64 * D), 64, D);
      expect(() => team.step(dataset.train.oneHot.subarray(0, 640), 64)).toThrow(
        /a reference worker thread failed: worker 1: Error: transposeSparse: 784 rows do not fit an index sized for 10/,
      );
    } finally {
      await team.stop();
    }
  });
});

describe('splitRows', () => {
  it('cuts rows into runs of about equal nonzeros, covering every row once', () => {
    // rows of 0, 1, …, 19 nonzeros: 190 in all
    const start = Int32Array.from({ length: 21 }, (_, r) => (r * (r - 1)) / 2);
    const ctrl = new Int32Array(10);
    splitRows(start, 20, 3, ctrl, 2);
    const bounds = [...ctrl.subarray(2, 6)];
    expect(bounds[0]).toBe(0);
    expect(bounds[3]).toBe(20);
    const work = [0, 1, 2].map((t) => start[bounds[t + 1]!]! - start[bounds[t]!]!);
    expect(work.reduce((a, b) => a + b)).toBe(start[20]);
    for (const w of work) expect(Math.abs(w - 190 / 3)).toBeLessThanOrEqual(19); // within one row of even
    expect(bounds).toEqual([...bounds].sort((a, b) => a - b));
  });

  it('leaves empty runs when there are more parts than rows', () => {
    const ctrl = new Int32Array(6);
    splitRows(Int32Array.from([0, 5]), 1, 4, ctrl, 0);
    expect([...ctrl.subarray(0, 5)]).toEqual([0, 1, 1, 1, 1]); // the one row goes to part 0
    splitRows(Int32Array.from([0, 0, 0]), 2, 2, ctrl, 0); // no nonzeros at all
    expect([...ctrl.subarray(0, 3)]).toEqual([0, 0, 2]);
  });
});
