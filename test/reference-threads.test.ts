// The reference trained by several threads (reference/fast/threads.ts) must give exactly
// the single-threaded result: the same weights bit for bit, the same history. And a
// worker that fails must surface as an error, not a hang. N = 700 images, B = 64, so
// each epoch ends on a short batch of 60; the images are real MNIST digits.

import { defaultDataDir, loadMnist } from '../pipeline/stages/load.js';
import { preprocessDataset } from '../pipeline/stages/preprocess.js';
import { sparseRowsOf } from '../reference/fast/kernels.js';
import { createWorkspace } from '../reference/fast/network.js';
import { MAX_THREADS, StepTeam, WorkerStartError, shareParams } from '../reference/fast/threads.js';
import { D, PARAM_NAMES, scalePixels, type Params } from '../reference/shapes.js';
import { trainReferenceAsync, type ReferenceTraining } from '../reference/sgd.js';
import { glorotParams } from './helpers/numeric.js';

const dataset = preprocessDataset(loadMnist(defaultDataDir()), 700, 200, 10);
const init = glorotParams(3);
const OPTIONS = { epochs: 2, batchSize: 64, lr: 0.05, seed: 5 };

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

  beforeAll(async () => {
    single = await trainReferenceAsync(dataset, init, OPTIONS);
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

  // More threads than cores: workers are often descheduled and wake into a phase that is over or long gone,
  // which is when claiming work goes wrong if it can (a lost chunk hangs the step; a stale one changes the weights).
  it('with 6 threads on fewer cores, over many steps, still gives the single-threaded weights', async () => {
    const options = { ...OPTIONS, epochs: 6 };
    const one = await trainReferenceAsync(dataset, init, options);
    const six = await trainReferenceAsync(dataset, init, { ...options, threads: 6 });
    expect(firstDifference(six.params, one.params)).toBeNull();
  }, 60_000);

  // The --jobs budget lends the reference a thread and takes it back while it trains (StepTeam.setActive).
  it('with the working threads changing from step to step, still gives the single-threaded weights', async () => {
    const pattern = [1, 3, 2, 2, 1, 3, 3, 1];
    let steps = 0;
    const changing = await trainReferenceAsync(dataset, init, {
      ...OPTIONS,
      threads: 3,
      activeThreads: () => pattern[Math.floor(steps++ / 2) % pattern.length]!,
    });
    expect(steps).toBe(2 * Math.ceil(700 / 64));
    expect(firstDifference(changing.params, single.params)).toBeNull();
  });

  it('with one working thread of three, the other two sleep', async () => {
    let wall = 0;
    let cpu = process.cpuUsage();
    const onStart = () => {
      wall = performance.now(); // the workers have started, loading their code on every core
      cpu = process.cpuUsage();
    };
    await trainReferenceAsync(dataset, init, { ...OPTIONS, epochs: 8, threads: 3, activeThreads: () => 1, onStart });
    const used = process.cpuUsage(cpu);
    const cores = (used.user + used.system) / 1000 / (performance.now() - wall);
    expect(cores).toBeLessThan(1.3); // three busy threads would use the 2 cores of the CI machine
  }, 60_000);

  it(`refuses a thread count outside 1..${MAX_THREADS}`, async () => {
    await expect(trainReferenceAsync(dataset, init, { ...OPTIONS, threads: 0 })).rejects.toThrow(
      `reference threads: expected a whole number from 1 to ${MAX_THREADS}, found 0`,
    );
    await expect(trainReferenceAsync(dataset, init, { ...OPTIONS, threads: MAX_THREADS + 1 })).rejects.toThrow(`found ${MAX_THREADS + 1}`);
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

describe('StepTeam', () => {
  it('refuses weights that are not in shared memory', async () => {
    const params = shareParams(init);
    const ws = createWorkspace(params, 64, true);
    await expect(StepTeam.start({ ...params, w1: init.w1.slice() }, ws, 0.1, 2)).rejects.toThrow(
      'StepTeam.start: w1 is not in shared memory',
    );
  });

  it('reports workers that cannot start as a WorkerStartError naming the module (the pipeline then trains on one thread)', async () => {
    const params = shareParams(init);
    const ws = createWorkspace(params, 64, true);
    const missing = new URL('./no-such-worker.ts', import.meta.url);
    const start = StepTeam.start(params, ws, 0.1, 2, missing);
    await expect(start).rejects.toBeInstanceOf(WorkerStartError);
    await expect(start).rejects.toThrow(/reference worker thread 1 \(file:.*no-such-worker\.ts\) (failed to start|exited)/);
  });

  it('reports a worker that throws as an error naming the worker and its message', async () => {
    const params = shareParams(init);
    const ws = createWorkspace(params, 64, true);
    const failing = new URL('./helpers/failing-step-worker.ts', import.meta.url);
    const team = await StepTeam.start(params, ws, 0.1, 2, failing);
    try {
      // The worker fails at the first work it claims; the main thread may have done a step alone before that.
      const steps = () => {
        for (let step = 0; step < 200; step++) {
          sparseRowsOf(ws.xRows, scalePixels(dataset.train.images.subarray(0, 64 * D)), 64, D);
          team.step(dataset.train.oneHot.subarray(0, 640), 64);
        }
      };
      expect(steps).toThrow(/a reference worker thread failed: worker 1: Error: planted failure/);
    } finally {
      await team.stop();
    }
  });
});
