// --jobs: independent stages side by side. The runner's scheduling on toy stages (budget,
// failures, abort), then the real CLI: --jobs 1 and --jobs 2 give the same results, and
// Ctrl-C during two concurrent trainings exits 130, writes nothing and leaves no process.

import { execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createThreadBudget } from '../pipeline/dag/budget.js';
import { createJobsExecutor, type ProcessCosts } from '../pipeline/dag/executor.js';
import { consoleProgress } from '../pipeline/progress.js';
import { createCache } from '../pipeline/dag/cache.js';
import { StagesFailedError, createRunner, defineStage, runStageJob, type Stage, type StageJob } from '../pipeline/dag/runner.js';
import { runCli, runFlags, startCli } from './helpers/cli.js';
import { snapshot } from './helpers/files.js';

let work: string;
beforeAll(() => {
  work = mkdtempSync(path.join(os.tmpdir(), 'jobs-'));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('thread budget', () => {
  const turn = () => new Promise((resolve) => setImmediate(resolve)); // the budget decides on the next turn
  const one = { min: 1, max: 1 };

  it('grants a fixed request when it fits, makes later ones wait, and refuses after close', async () => {
    const budget = createThreadBudget(3);
    const first = await budget.acquire(one);
    const second = await budget.acquire({ min: 2, max: 2 });
    expect([first.threads, second.threads]).toEqual([1, 2]);
    let third: number | null = null;
    const waiting = budget.acquire(one).then((lease) => (third = lease.threads));
    await turn();
    expect(third).toBeNull(); // all 3 in use
    first.release();
    await waiting;
    expect(third).toBe(1);
    const refused = budget.acquire(one);
    budget.close();
    await expect(refused).rejects.toThrow('the run stopped before this stage started');
    await expect(budget.acquire(one)).rejects.toThrow('the run stopped before this stage started');
  });

  it('starts a stage that wants more than the whole budget once nothing else runs', async () => {
    const budget = createThreadBudget(2);
    const big = await budget.acquire({ min: 5, max: 5 });
    expect(big.threads).toBe(5);
    let next: number | null = null;
    const waiting = budget.acquire(one).then((lease) => (next = lease.threads));
    await turn();
    expect(next).toBeNull();
    big.release();
    await waiting;
    expect(next).toBe(1);
  });

  it('of the stages that ask together, starts the costliest first, and one that can grow after those that cannot', async () => {
    const budget = createThreadBudget(1);
    const order: string[] = [];
    const ask = (name: string, cost: number, request = one) =>
      budget.acquire(request, cost).then((lease) => {
        order.push(name);
        setImmediate(() => lease.release()); // the stage "runs" for one turn
      });
    await Promise.all([ask('cheap', 1), ask('elastic', 5, { min: 1, max: 2 }), ask('dear', 3), ask('middling', 2)]);
    expect(order).toEqual(['dear', 'middling', 'cheap', 'elastic']);
  });

  it('gives free threads to a stage that can use more, and takes them back for a stage that needs them', async () => {
    const budget = createThreadBudget(2);
    const seen: number[] = [];
    const tfjs = await budget.acquire(one, 1);
    const reference = await budget.acquire({ min: 1, max: 2 }, 2);
    reference.onChange((threads) => seen.push(threads)); // called now, then on each change
    expect([tfjs.threads, reference.threads]).toEqual([1, 1]);
    tfjs.release(); // nobody waits: the reference takes the thread
    await turn();
    expect(reference.threads).toBe(2);
    const variant = await budget.acquire(one, 1); // fits once the reference gives one back
    expect([variant.threads, reference.threads]).toEqual([1, 1]);
    expect(seen).toEqual([1, 2, 1]);
    variant.release();
    await turn();
    expect(reference.threads).toBe(2);
    expect(() => variant.release()).toThrow('released twice');
  });
});

// Toy DAG: root → slow-a, slow-b, slow-c (each a "training" of 1 thread, or fails) → join.
interface Toy {
  root: number;
  'slow-a': number;
  'slow-b': number;
  'slow-c': number;
  join: number;
}
interface ToyConfig {
  fail: string[]; // stages that throw
  milliseconds: number;
  costs?: Partial<Record<keyof Toy, number>>; // each slow stage's estimated cost (Stage.cost); none: Infinity
}

function toyStages(trace: { running: number; most: number; ran: string[] }): Stage<Toy, ToyConfig>[] {
  const stage = defineStage<Toy, ToyConfig>();
  const slow = (name: 'slow-a' | 'slow-b' | 'slow-c', factor: number) =>
    stage({
      name,
      inputs: ['root'],
      reads: ['fail', 'milliseconds'],
      version: 1,
      description: name,
      threads: () => 1,
      cost: (config) => config.costs?.[name] ?? Number.POSITIVE_INFINITY,
      run: async ({ root }, { config }) => {
        trace.running++;
        trace.most = Math.max(trace.most, trace.running);
        await new Promise((resolve) => setTimeout(resolve, config.milliseconds * factor));
        trace.running--;
        if (config.fail.includes(name)) throw new Error(`${name} failed on purpose`);
        trace.ran.push(name);
        return root * factor;
      },
    });
  return [
    stage({ name: 'root', inputs: [], reads: [], version: 1, description: 'root', run: () => 10 }),
    slow('slow-a', 1),
    slow('slow-b', 2),
    slow('slow-c', 3),
    stage({
      name: 'join',
      inputs: ['slow-a', 'slow-b', 'slow-c'],
      reads: [],
      version: 1,
      description: 'join',
      run: (inputs) => {
        trace.ran.push('join');
        return inputs['slow-a'] + inputs['slow-b'] + inputs['slow-c'];
      },
    }),
  ];
}

async function toyRun(config: ToyConfig, jobs: number, signal?: AbortSignal, costs?: ProcessCosts) {
  const cacheDir = mkdtempSync(path.join(work, 'toy-'));
  const cache = createCache(cacheDir);
  const trace = { running: 0, most: 0, ran: [] as string[] };
  const stages = toyStages(trace);
  const jobsRun: StageJob[] = [];
  // The job path a child process takes, run here: inputs from the cache, the entry into it.
  const isolate = async (job: StageJob) => {
    jobsRun.push(job);
    await runStageJob(stages, config, cache, job, { log: () => {} });
  };
  const executor = jobs > 1 ? createJobsExecutor(jobs, isolate, costs) : undefined;
  const runner = createRunner(stages, config, { cache, executor, signal });
  const result = await runner.run().then(
    (value) => ({ ok: true as const, value }),
    (error: Error) => ({ ok: false as const, error }),
  );
  return { result, trace, jobsRun, cacheDir, entries: readdirSync(cacheDir).sort() };
}

describe('runner with a thread budget', () => {
  it('runs independent stages side by side up to the budget, through the job path, with the same result as one at a time', async () => {
    const one = await toyRun({ fail: [], milliseconds: 50 }, 1);
    const two = await toyRun({ fail: [], milliseconds: 50 }, 2);
    expect(one.trace.most).toBe(1);
    expect(one.jobsRun).toEqual([]); // --jobs 1: everything in process, in order
    expect(two.trace.most).toBe(2);
    expect(two.jobsRun.map((job) => [job.stage, job.threads])).toEqual([
      ['slow-a', 1],
      ['slow-b', 1],
      ['slow-c', 1],
    ]);
    expect(one.result.ok && one.result.value.outputs.join).toBe(60);
    expect(two.result.ok && two.result.value.outputs.join).toBe(60);
    expect(two.result.ok && two.result.value.reports.map((r) => r.name)).toEqual(['root', 'slow-a', 'slow-b', 'slow-c', 'join']);
  });

  it('a stage between the process costs runs here when this process is free, else in its own; below, here; above, in its own', async () => {
    // slow-a takes 50 ms, slow-b 100, slow-c 150; of two stages of equal cost, the first to ask goes first.
    const costs = { worth: 10, always: 100 };
    const run = (stageCosts: ToyConfig['costs']) => toyRun({ fail: [], milliseconds: 50, costs: stageCosts }, 2, undefined, costs);
    // a takes this process, b (this process busy) its own; c, too cheap for one, waits until a frees this process.
    const between = await run({ 'slow-a': 50, 'slow-b': 50, 'slow-c': 5 });
    expect(between.jobsRun.map((job) => job.stage)).toEqual(['slow-b']);
    expect(between.trace.most).toBe(2);
    // a is dear enough for its own process even with this one free; b runs here, so c, starting when a ends, goes to its own.
    const dear = await run({ 'slow-a': 200, 'slow-b': 50, 'slow-c': 50 });
    expect(dear.jobsRun.map((job) => job.stage)).toEqual(['slow-a', 'slow-c']);
    for (const result of [between.result, dear.result]) expect(result.ok && result.value.outputs.join).toBe(60);
  });

  it('a failure stops its dependants and starts nothing new, lets the running sibling finish, and reports every failure', async () => {
    // slow-a (50 ms) fails while slow-b (100 ms) runs; slow-c has not started and never does.
    const single = await toyRun({ fail: ['slow-a'], milliseconds: 50 }, 2);
    expect(single.result.ok).toBe(false);
    expect(!single.result.ok && single.result.error.message).toBe('slow-a failed on purpose');
    expect(single.trace.ran).toEqual(['slow-b']);
    expect(single.entries).toEqual(['CACHEDIR.TAG', 'root', 'slow-b']); // the finished sibling is cached, nothing else (beside our tag)

    // Both running stages fail: one error naming both.
    const both = await toyRun({ fail: ['slow-a', 'slow-b'], milliseconds: 50 }, 2);
    expect(!both.result.ok && both.result.error).toBeInstanceOf(StagesFailedError);
    expect(!both.result.ok && both.result.error.message).toBe(
      '2 stages failed:\n  slow-a: slow-a failed on purpose\n  slow-b: slow-b failed on purpose',
    );
    expect(both.trace.ran).toEqual([]);
  });

  it('an abort starts nothing new, waits for the running stages, and ends the run as interrupted', async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 20); // while slow-a and slow-b run
    const aborted = await toyRun({ fail: [], milliseconds: 50 }, 2, controller.signal);
    expect(!aborted.result.ok && [aborted.result.error.name, aborted.result.error.message]).toEqual([
      'InterruptedError',
      'the run was interrupted before slow-c, join ran',
    ]);
    expect(aborted.trace.ran).toEqual(['slow-a', 'slow-b']);
    expect(aborted.trace.running).toBe(0);
  });
});

// A small config with the reference and the experiments; --lr 0.05 so a 1-epoch run moves.
const small = (name: string, jobs: number, extra: string[] = []) =>
  runFlags(path.join(work, name), { train: 2000, val: 500, test: 500, epochs: 1 }, [
    ...['--lr', '0.05', '--gradcheck-batch', '4', '--experiments', '--jobs', String(jobs)],
    ...extra,
  ]);

/** metrics.json without what may differ between runs of the same config: timings, and the flags that name folders and --jobs. */
function results(reports: string) {
  const metrics = JSON.parse(readFileSync(path.join(reports, 'metrics.json'), 'utf8'));
  delete metrics.stage_seconds;
  delete metrics.run.started_at; // the run's metadata: when, and how long
  delete metrics.run.wall_seconds;
  delete metrics.run.peak_memory_mib; // and how much memory its processes held
  delete metrics.run.peak_memory_processes;
  for (const key of ['out', 'cacheDir', 'jobs']) delete metrics.config[key];
  for (const block of [metrics.tfjs, metrics.reference]) {
    delete block.train_seconds;
    delete block.train_samples_per_second;
    delete block.trained_by.started_at; // when the run that trained it started
  }
  for (const variant of Object.values(metrics.experiments.variants) as { train_seconds?: number; trained_by: { started_at?: string } }[]) {
    delete variant.train_seconds;
    delete variant.trained_by.started_at;
  }
  delete metrics.experiments.best_combination.trained_by.started_at;
  return metrics;
}

describe('--jobs 1 and --jobs 2 give the same results', () => {
  it('same metrics.json apart from timings, and byte-identical model files', () => {
    const one = runCli('pipeline/cli/pipeline.ts', small('one', 1));
    expect(one.stderr).toBe('');
    expect(one.status).toBe(0);
    const two = runCli('pipeline/cli/pipeline.ts', small('two', 2));
    expect(two.stderr).toBe('');
    expect(two.status).toBe(0);
    // The tests' setup: every threaded stage in a child; the spec's TF.js training runs here whatever its cost.
    expect(two.stdout.split('\n')).toContain('▶ train: train the TF.js model (1 thread, in this process)');
    expect(two.stdout.split('\n')).toContainEqual(expect.stringMatching(/^▶ experiment-adam: .* \(1 thread, own process\)$/));
    const reportsOne = path.join(work, 'one', 'reports');
    const reportsTwo = path.join(work, 'two', 'reports');
    expect(results(reportsTwo)).toEqual(results(reportsOne));
    expect(Object.keys(results(reportsOne).experiments.variants)).toHaveLength(10);
    const models = (reports: string) => Object.fromEntries(Object.entries(snapshot(reports)).filter(([file]) => file.startsWith('model/')));
    expect(Object.keys(models(reportsOne)).sort()).toEqual([
      'model/best/model.json',
      'model/best/weights.bin',
      'model/best/weights.npz',
      'model/reference/model.json',
      'model/reference/weights.bin',
      'model/reference/weights.npz',
      'model/tfjs/model.json',
      'model/tfjs/weights.bin',
      'model/tfjs/weights.npz',
    ]);
    expect(models(reportsTwo)).toEqual(models(reportsOne));
  }, 300_000);
});

describe('a small run is not worth a process', () => {
  it('by default, --jobs 2 trains a small config in the main process, with the weights of --jobs 1', () => {
    const flags = runFlags(path.join(work, 'here'), { train: 2000, val: 500, test: 500, epochs: 1 }, [
      '--lr',
      '0.05',
      '--gradcheck-batch',
      '4',
      '--jobs',
      '2',
    ]);
    const here = runCli('pipeline/cli/pipeline.ts', flags, { MNIST_PIPELINE_MIN_PROCESS_COST: undefined }); // 'one' above: the same run at --jobs 1
    expect(here.status).toBe(0);
    const lines = here.stdout.split('\n');
    expect(lines).toContain('▶ train: train the TF.js model (1 thread, in this process)');
    expect(lines).toContainEqual(
      expect.stringMatching(/^▶ reference: train the pure-TypeScript reference in lockstep \(\d threads?, in this process\)$/),
    );
    const weights = (name: string) => readFileSync(path.join(work, name, 'reports', 'model', 'reference', 'weights.bin'));
    expect(weights('here')).toEqual(weights('one'));
  }, 120_000);
});

/** The pids of `parent`'s stage processes (pipeline/dag/stage-child.ts), from ps; not tsx's esbuild service. */
function stageChildPids(parent: number): number[] {
  try {
    return execFileSync('ps', ['-o', 'pid=,args=', '--ppid', String(parent)], { encoding: 'utf8' })
      .split('\n')
      .filter((line) => line.includes('stage-child'))
      .map((line) => Number.parseInt(line, 10));
  } catch {
    return []; // ps exits 1 when there are none
  }
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('Ctrl-C during two concurrent trainings', () => {
  it('exits 130, leaves the cache and reports/ byte-identical, and leaves no process behind', async () => {
    const quick = (epochs: number) =>
      runFlags(path.join(work, 'ctrl-c'), { train: 4000, val: 500, test: 500, epochs }, ['--gradcheck-batch', '4', '--jobs', '2']);
    const baseline = runCli('pipeline/cli/pipeline.ts', quick(1));
    expect(baseline.status).toBe(0);
    const before = { reports: snapshot(path.join(work, 'ctrl-c', 'reports')), cache: snapshot(path.join(work, 'ctrl-c', 'cache')) };

    const child: ChildProcess = startCli('pipeline/cli/pipeline.ts', quick(40));
    let stdout = '';
    let stderr = '';
    const stageProcesses: number[] = [];
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.stdout!.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      // Both trainings are past their first epoch, TF.js's here and the reference in its own process: interrupt the pipeline alone.
      if (stageProcesses.length === 0 && /tfjs epoch 1\/40:/.test(stdout) && /reference epoch 1\/40:/.test(stdout)) {
        stageProcesses.push(...stageChildPids(child.pid!));
        child.kill('SIGINT');
      }
    });
    const code = await new Promise<number | null>((resolve) => child.on('close', (exitCode) => resolve(exitCode)));
    expect(stageProcesses).toHaveLength(1);
    expect(code).toBe(130);
    expect(stderr).toContain('SIGINT received: stopping after the current batch');
    expect(stderr).toMatch(/interrupted: .*interrupted in epoch \d+, batch \d+/);
    expect(stdout).not.toMatch(/✔ (train|reference) done/);
    expect(stageProcesses.filter(alive)).toEqual([]);
    expect({ reports: snapshot(path.join(work, 'ctrl-c', 'reports')), cache: snapshot(path.join(work, 'ctrl-c', 'cache')) }).toEqual(
      before,
    );
  }, 300_000);
});

describe('progress of stages side by side', () => {
  /** A stream that records what is written; `tty` says whether it claims to be a terminal. */
  const recorder = (tty: boolean) => {
    const chunks: string[] = [];
    const stream = {
      isTTY: tty,
      columns: 120,
      write: (chunk: string) => {
        chunks.push(String(chunk));
        return true;
      },
    } as unknown as NodeJS.WriteStream;
    return { stream, text: () => chunks.join('') };
  };
  const twoEpochs = async (progress: ReturnType<typeof consoleProgress>) => {
    const tfjs = progress.epoch('tfjs epoch 1/2', 10);
    const reference = progress.epoch('reference epoch 1/2', 10);
    for (let batch = 1; batch <= 10; batch++) {
      tfjs.batch(batch, 1 / batch, batch / 10);
      reference.batch(batch, 2 / batch, batch / 10);
    }
    await new Promise((resolve) => setTimeout(resolve, 300)); // bars redraw on a timer
    reference.end('reference epoch 1/2: done');
    tfjs.end('tfjs epoch 1/2: done');
  };

  it('piped: one line per epoch per stage, and no bar', async () => {
    const bars = recorder(false);
    const lines = recorder(false);
    await twoEpochs(consoleProgress(bars.stream, lines.stream));
    expect(lines.text()).toBe('reference epoch 1/2: done\ntfjs epoch 1/2: done\n');
    expect(bars.text()).toBe('');
  });

  it('on a terminal: a bar per running stage at once, and the summaries written above them', async () => {
    const saved = process.env.CI;
    delete process.env.CI;
    const terminal = recorder(true);
    try {
      await twoEpochs(consoleProgress(terminal.stream, terminal.stream));
    } finally {
      if (saved !== undefined) process.env.CI = saved;
    }
    const text = terminal.text();
    // The last frame before the first epoch ends shows both bars, one per line.
    const frame = text.slice(0, text.indexOf('reference epoch 1/2: done'));
    expect(frame).toMatch(/tfjs epoch 1\/2 \[[^\]]*\] \d+\/10 batches[^\n]*\n[^\n]*reference epoch 1\/2 \[[^\]]*\] \d+\/10 batches/);
    expect(text).toContain('reference epoch 1/2: done\n');
    expect(text).toContain('tfjs epoch 1/2: done\n');
  });
});
