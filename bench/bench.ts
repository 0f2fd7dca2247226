// `npm run bench [-- --quick] [--skip-full] [--recipes-only] [--backends wasm,cpu] [--out bench/results]`
//
// Throughput of every trainer and of evaluation, measured in one run so the
// numbers compare, then the full default pipeline from a cold cache:
//
//   1. TF.js training, images/s at batch 64, for each backend that loads:
//      model.fit, the plain loop (test/helpers/plain-loop.ts) on the original and on
//      the fast kernels, and trainTfjs (the optimised loop, pipeline/stages/train.ts)
//   2. the pure-TypeScript reference's training (reference/sgd.ts)
//   3. evaluateModels on the 10k test images, for each backend
//   4. on wasm, trainTfjs's SGD step against its floor, the step's 8 matmuls (bench/tfjs-step.ts)
//   5. the training recipes per epoch against plain SGD, and one optimizer update (bench/recipes.ts)
//   6. `npm run pipeline` with a fresh cache and report folder, at the default --jobs and at --jobs 1:
//      wall time, and peak memory of all its processes together
//
// Each measurement is repeated after a warm-up, interleaved across variants so
// that load from other processes hits them alike; reported as median (min–max).
// Writes <out>/bench.json and <out>/bench.md, and prints the markdown.

import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { selectBackend } from '../pipeline/tfjs/backend.js';
import type { BackendName } from '../pipeline/config.js';
import { evaluateModels } from '../pipeline/stages/evaluate.js';
import { installFastKernels } from '../pipeline/tfjs/fast-kernels.js';
import { defaultDataDir, loadMnist } from '../pipeline/stages/load.js';
import { buildModel, writeParams } from '../pipeline/tfjs/model.js';
import { preprocessDataset } from '../pipeline/stages/preprocess.js';
import { initialWeights } from '../pipeline/stages/init.js';
import { trainTfjs, type TrainOptions } from '../pipeline/stages/train.js';
import type { Dataset, InitialWeights, TrainedModel } from '../pipeline/types.js';
import { D, K } from '../reference/shapes.js';
import { defaultThreads } from '../reference/fast/threads.js';
import { trainReferenceAsync } from '../reference/sgd.js';
import { measureFullPipeline, type FullPipeline } from './full-pipeline.js';
import { jobsSection } from './jobs.js';
import { measureRecipes, measureUpdates, recipesMarkdown } from './recipes.js';
import { subsetDataset } from './subset.js';
import { measureStep, stepMarkdown } from './tfjs-step.js';
import { uninstallFastKernels } from '../test/helpers/original-kernels.js';
import { trainTfjsPlain } from '../test/helpers/plain-loop.js';
import { startSpan, timingProgress, type Span } from './timing.js';

const BATCH = 64;
const SEED = 42;
const LR = 0.01;
const TRAIN_SUBSET = 50 * BATCH; // images per epoch of a measured run; small, so the untimed accuracy pass after it stays short
const WARMUP_STEPS = 20;

/** The full pipeline's runs: the default (--jobs of one thread per core), and one stage at a time (issue 24: both within 500 MiB). */
const FULL_PIPELINE_FLAGS = [[], ['--jobs', '1']];

/** Backends in the order tried, by the name selectBackend takes. */
const ALL_BACKENDS: Exclude<BackendName, 'auto'>[] = ['node', 'wasm', 'cpu'];

interface Settings {
  quick: boolean;
  skipFull: boolean;
  recipesOnly: boolean; // only the recipes' rows (bench/recipes.ts)
  backends: Exclude<BackendName, 'auto'>[];
  out: string;
  reps: number; // measured repetitions of each variant
  steps: Record<string, number>; // SGD steps per repetition, by TF.js backend name ('reference' for the reference)
  evaluateReps: Record<string, number>; // by TF.js backend name
}

interface Summary {
  median: number;
  min: number;
  max: number;
  runs: number[];
}

interface TrainingRow extends Summary {
  backend: string; // TF.js backend name, or 'typescript' for the reference
  trainer: string;
  kernels: 'original' | 'fast' | '-';
  steps: number; // SGD steps per repetition
  perCpuSecond: Summary; // images per second of process CPU time: less sensitive to other processes than wall time
}

interface EvaluateRow extends Summary {
  backend: string;
  testImages: number;
  validationImages: number; // the split's size only: evaluateModels no longer scores validation
  perCpuSecond: Summary; // test images per second of process CPU time
}

interface BenchReport {
  date: string;
  machine: {
    cpu: string;
    cores: number;
    node: string;
    tfjs: string;
    platform: string;
    loadAverageStart: number[];
    loadAverageEnd: number[];
  };
  settings: Omit<Settings, 'out'> & { batchSize: number; seed: number; lr: number; trainSubset: number; warmupSteps: number };
  backends: { loaded: string[]; unavailable: Record<string, string> };
  training: TrainingRow[];
  evaluate: EvaluateRow[];
  fullPipeline: FullPipeline[] | { skipped: string }; // the default run (--jobs 2 on 2 cores), then the same at --jobs 1
  referenceThreadStartMs: Summary | null; // starting the reference's worker threads, once per training, untimed in its rows
  step?: string[]; // trainTfjs's step against its floor (bench/tfjs-step.ts), in markdown
  recipes?: string[]; // the recipes' tables (bench/recipes.ts), in markdown
}

function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

function summarise(runs: number[]): Summary {
  const sorted = [...runs].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  const median = sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
  return { median, min: sorted[0]!, max: sorted.at(-1)!, runs };
}

function parseSettings(argv: string[]): Settings {
  const parsed = yargs(argv)
    .scriptName('npm run bench --')
    .option('quick', { type: 'boolean', default: false, describe: 'Fewer repetitions and steps (about a minute without the full run)' })
    .option('skip-full', { type: 'boolean', default: false, describe: 'Skip the full pipeline run, which takes minutes' })
    .option('recipes-only', {
      type: 'boolean',
      default: false,
      describe: 'Only the SGD step against its floor and the training recipes against plain SGD, on wasm',
    })
    .option('backends', {
      type: 'string',
      default: ALL_BACKENDS.join(','),
      describe: `TF.js backends to try, comma-separated (${ALL_BACKENDS.join(', ')})`,
    })
    .option('out', {
      type: 'string',
      default: 'bench/results',
      describe: 'Folder for bench.json and bench.md (not reports/, which each pipeline run replaces whole)',
    })
    .check((args) => {
      const unknown = String(args.backends)
        .split(',')
        .filter((name) => !(ALL_BACKENDS as string[]).includes(name));
      if (unknown.length > 0) throw new Error(`--backends: unknown ${unknown.join(', ')}; expected e.g. --backends wasm,cpu`);
      return true;
    })
    .strict()
    .help()
    .parseSync();
  const quick = parsed.quick;
  return {
    quick,
    skipFull: parsed['skip-full'],
    recipesOnly: parsed['recipes-only'],
    backends: String(parsed.backends).split(',') as Exclude<BackendName, 'auto'>[],
    out: parsed.out,
    reps: quick ? 3 : 5,
    // the cpu backend is ~10× slower than wasm: fewer steps keep its runs in seconds
    steps: quick ? { tensorflow: 100, wasm: 100, cpu: 20, reference: 100 } : { tensorflow: 300, wasm: 300, cpu: 50, reference: 300 },
    evaluateReps: quick ? { tensorflow: 1, wasm: 1, cpu: 1 } : { tensorflow: 3, wasm: 3, cpu: 2 },
  };
}

/** About `steps` batches: whole epochs over TRAIN_SUBSET images, or one shorter epoch. */
function stepsPlan(steps: number): { images: number; epochs: number } {
  const perEpoch = TRAIN_SUBSET / BATCH;
  return steps <= perEpoch ? { images: steps * BATCH, epochs: 1 } : { images: TRAIN_SUBSET, epochs: Math.round(steps / perEpoch) };
}

/** One way of training; returns the time its training steps took. */
interface Trainer {
  trainer: string;
  kernels: TrainingRow['kernels'];
  run: (dataset: Dataset, init: InitialWeights, options: TrainOptions) => Promise<Span>;
}

/** Keras-style model.fit on tensors of the whole subset (it gathers each shuffled batch itself). */
async function fitSpan(dataset: Dataset, init: InitialWeights, options: TrainOptions): Promise<Span> {
  const { train } = dataset;
  const model = buildModel(options.seed);
  writeParams(model, init.params);
  const optimizer = tf.train.sgd(options.lr);
  model.compile({ optimizer, loss: 'categoricalCrossentropy', metrics: ['accuracy'] });
  const x = tf.tensor2d(train.images, [train.count, D]);
  const y = tf.tensor2d(train.oneHot, [train.count, K]);
  try {
    const stop = startSpan();
    await model.fit(x, y, { batchSize: options.batchSize, epochs: options.epochs, shuffle: true, verbose: 0 });
    return stop();
  } finally {
    tf.dispose([x, y]);
    optimizer.dispose();
    model.dispose();
  }
}

function tfjsTrainers(backend: string): Trainer[] {
  const plain = (dataset: Dataset, init: InitialWeights, options: TrainOptions) => {
    const trained = trainTfjsPlain(dataset, init, options);
    return Promise.resolve({ wallSeconds: trained.trainSeconds, cpuSeconds: trained.trainCpuSeconds });
  };
  const withKernels =
    (fast: boolean, run: Trainer['run']): Trainer['run'] =>
    (dataset, init, options) => {
      if (fast) installFastKernels(backend);
      else uninstallFastKernels(backend);
      return run(dataset, init, options);
    };
  const hasFastKernels = installFastKernels(backend);
  uninstallFastKernels(backend);
  const trainers: Trainer[] = [
    { trainer: 'model.fit', kernels: 'original', run: withKernels(false, fitSpan) },
    { trainer: 'plain loop', kernels: 'original', run: withKernels(false, plain) },
  ];
  if (hasFastKernels) {
    trainers.push({ trainer: 'model.fit', kernels: 'fast', run: withKernels(true, fitSpan) });
    trainers.push({ trainer: 'plain loop', kernels: 'fast', run: withKernels(true, plain) });
  }
  trainers.push({
    trainer: 'trainTfjs (optimised loop)',
    kernels: hasFastKernels ? 'fast' : 'original', // trainTfjs installs them itself
    run: async (dataset, init, options) => {
      const timing = timingProgress();
      await trainTfjs(dataset, init, options, { progress: timing.progress });
      return timing.total();
    },
  });
  return trainers;
}

/** Milliseconds each multi-threaded reference training took to start its workers. */
const threadStartMs: number[] = [];

function referenceTrainer(threads: number): Trainer {
  return {
    trainer: `reference (pure TypeScript), ${threads} thread${threads === 1 ? '' : 's'}`,
    kernels: '-',
    run: async (dataset, init, options) => {
      // From the moment its workers run to its last batch: includes its one-off indexing of the split,
      // which it counts as training too, not the start of the worker threads (measured apart).
      const called = performance.now();
      let stop: (() => Span) | undefined;
      let span: Span | undefined;
      await trainReferenceAsync(dataset, init.params, {
        ...options,
        threads,
        onStart: () => {
          if (threads > 1) threadStartMs.push(performance.now() - called);
          stop = startSpan();
        },
        onBatch: ({ epoch, batch, batches }) => {
          if (epoch === options.epochs && batch === batches) span = stop?.();
        },
      });
      if (span === undefined) throw new Error('trainReferenceAsync: never reported its last batch');
      return span;
    },
  };
}

/** The reference on one thread and on the default count, when that is more. */
function referenceTrainers(): Trainer[] {
  return [...new Set([1, defaultThreads()])].map(referenceTrainer);
}

/** Warms every trainer up, then measures them in interleaved rounds. */
async function measureTrainers(
  backend: string,
  trainers: Trainer[],
  full: Dataset,
  steps: number,
  reps: number,
  plan = stepsPlan(steps), // or whole epochs over the full training split
): Promise<TrainingRow[]> {
  const init = initialWeights(SEED);
  const dataset = subsetDataset(full, plan.images, BATCH);
  const options: TrainOptions = { epochs: plan.epochs, batchSize: BATCH, lr: LR, seed: SEED };
  const warmup = subsetDataset(full, WARMUP_STEPS * BATCH, BATCH);
  for (const t of trainers) await t.run(warmup, init, { ...options, epochs: 1 });
  const images = dataset.train.count * options.epochs;
  const wallRates = trainers.map(() => [] as number[]);
  const cpuRates = trainers.map(() => [] as number[]);
  for (let rep = 0; rep < reps; rep++) {
    for (const [i, t] of trainers.entries()) {
      const span = await t.run(dataset, init, options);
      wallRates[i]!.push(images / span.wallSeconds);
      cpuRates[i]!.push(images / span.cpuSeconds);
      log(
        `  ${backend} ${t.trainer}, ${t.kernels} kernels, ${rep + 1}/${reps}: ` +
          `${Math.round(images / span.wallSeconds)} images/s, ${Math.round(images / span.cpuSeconds)} per CPU-second`,
      );
    }
  }
  return trainers.map((t, i) => ({
    backend,
    trainer: t.trainer,
    kernels: t.kernels,
    steps: options.epochs * Math.ceil(dataset.train.count / BATCH),
    ...summarise(wallRates[i]!),
    perCpuSecond: summarise(cpuRates[i]!),
  }));
}

/** evaluateModels on the full test split; returns test images per second. */
function measureEvaluate(backend: string, full: Dataset, reps: number): EvaluateRow {
  const init = initialWeights(SEED);
  const trained: TrainedModel = {
    implementation: 'tfjs',
    backend,
    params: init.params,
    history: [],
    trainSeconds: 0,
    samplesPerSecond: 0,
    trainAccuracy: 0,
  };
  const wallRates: number[] = [];
  const cpuRates: number[] = [];
  const warmup = { ...full, test: subsetDataset(full, BATCH, BATCH).validation, validation: subsetDataset(full, BATCH, BATCH).validation };
  evaluateModels(warmup, trained, null);
  for (let rep = 0; rep < reps; rep++) {
    const stop = startSpan();
    evaluateModels(full, trained, null);
    const span = stop();
    wallRates.push(full.test.count / span.wallSeconds);
    cpuRates.push(full.test.count / span.cpuSeconds);
    log(
      `  ${backend} evaluateModels ${rep + 1}/${reps}: ${Math.round(wallRates.at(-1)!)} test images/s, ${Math.round(cpuRates.at(-1)!)} per CPU-second`,
    );
  }
  return {
    backend,
    testImages: full.test.count,
    validationImages: full.validation.count,
    ...summarise(wallRates),
    perCpuSecond: summarise(cpuRates),
  };
}

function machine(): BenchReport['machine'] {
  const cpuinfo = existsSync('/proc/cpuinfo') ? readFileSync('/proc/cpuinfo', 'utf8') : '';
  const cpu = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1] ?? os.cpus()[0]?.model ?? 'unknown';
  const require = createRequire(import.meta.url);
  const tfjs = (require('@tensorflow/tfjs/package.json') as { version: string }).version;
  return {
    cpu,
    cores: os.cpus().length,
    node: process.version,
    tfjs,
    platform: `${os.platform()} ${os.arch()}`,
    loadAverageStart: os.loadavg(),
    loadAverageEnd: [],
  };
}

const number = (value: number) => Math.round(value).toLocaleString('en-US');
const range = (s: Summary) => `${number(s.min)}–${number(s.max)}`;

/** A size in MiB, or 'unknown'. */
const mib = (value: number | null) => (value === null ? 'unknown' : `${value.toFixed(0)} MiB`);

function markdown(report: BenchReport): string {
  const { machine: m, settings: s } = report;
  const load = (values: number[]) => values.map((v) => v.toFixed(2)).join(' / ');
  const lines = [
    '# Benchmarks',
    '',
    `${report.date} · ${m.cpu}, ${m.cores} cores · Node ${m.node} · TF.js ${m.tfjs} · ${m.platform}`,
    `Backends loaded: ${report.backends.loaded.join(', ')}` +
      (Object.keys(report.backends.unavailable).length > 0
        ? `; unavailable: ${Object.entries(report.backends.unavailable)
            .map(([name, why]) => `${name} (${why})`)
            .join(', ')}`
        : ''),
    `Load average (1/5/15 min) at start ${load(m.loadAverageStart)}, at end ${load(m.loadAverageEnd)}; other processes on these cores slow every row alike.`,
    '',
    `Batch ${s.batchSize}, lr ${s.lr}, seed ${s.seed}. Each row: a warm-up of ${s.warmupSteps} steps, then ${s.reps} repetitions interleaved with the other rows; median (min–max).${s.quick ? ' (--quick)' : ''}`,
    '',
    '## Training throughput (images/s)',
    '',
    '| backend | trainer | kernels | steps | median images/s | min–max | median per CPU-second | min–max |',
    '|---|---|---|---:|---:|---:|---:|---:|',
    ...report.training.map(
      (r) =>
        `| ${r.backend} | ${r.trainer} | ${r.kernels} | ${r.steps} | **${number(r.median)}** | ${range(r)} | ` +
        `${number(r.perCpuSecond.median)} | ${range(r.perCpuSecond)} |`,
    ),
    '',
    "Images/s is wall time over the training steps only (no validation); per CPU-second divides by the process's CPU time instead, which other processes on the cores disturb less (it also counts V8's helper threads).",
    "Kernels: *original* are the backend's own; *fast* re-registers the wasm matmuls so that transposed operands are transposed first (pipeline/tfjs/fast-kernels.ts).",
    'The plain loop gathers each batch from the training tensor on the backend (test/helpers/plain-loop.ts); trainTfjs uploads each batch from the host and counts the correct digits on the host from the batch probabilities.',
    'The reference with more than one thread shares each SGD step with worker threads (reference/fast/threads.ts); its weights are bit for bit those of one thread. ' +
      'Its per CPU-second figure counts the CPU time of all its threads, spinning included.' +
      (report.referenceThreadStartMs
        ? ` Starting the worker threads, once per training, took a median ${report.referenceThreadStartMs.median.toFixed(0)} ms ` +
          `(${report.referenceThreadStartMs.min.toFixed(0)}–${report.referenceThreadStartMs.max.toFixed(0)}); the rows leave it out, as the TF.js rows leave out building the model.`
        : ''),
    '',
    '## Evaluation throughput (evaluateModels)',
    '',
    '| backend | test images | median test images/s | min–max | median per CPU-second | min–max |',
    '|---|---:|---:|---:|---:|---:|',
    ...report.evaluate.map(
      (r) =>
        `| ${r.backend} | ${r.testImages} | **${number(r.median)}** | ${range(r)} | ${number(r.perCpuSecond.median)} | ${range(r.perCpuSecond)} |`,
    ),
    '',
    `Each call also scores the ${report.evaluate[0]?.validationImages ?? 0} validation images, which the rate does not count.`,
    '',
    '## Full pipeline, cold cache',
    '',
  ];
  const runs = report.fullPipeline;
  if ('skipped' in runs) {
    lines.push(`Skipped (${runs.skipped}).`);
  } else {
    lines.push(
      '| command | exit | wall | peak memory, all processes together | peak RSS, largest process |',
      '|---|---:|---:|---:|---:|',
      ...runs.map(
        (run) =>
          `| \`${run.command}\` | ${run.exitCode} | ${run.wallSeconds.toFixed(1)} s | ${mib(run.peakAllProcessesMiB)}${run.processesAtPeak === null ? '' : ` (${run.processesAtPeak} processes)`} | ${mib(run.peakRssMiB)} |`,
      ),
      '',
      `The sum over every process of the run is sampled every 0.1 s; the largest process is measured with ${runs[0]!.measuredWith}.`,
    );
    const full = runs[0]!;
    if (full.trained) {
      const { epochs, tfjs, reference } = full.trained;
      lines.push(
        '',
        `Training throughput the default run recorded in metrics.json, over its ${epochs} epochs of 50,000 images (validation excluded): ` +
          `TF.js **${number(tfjs.imagesPerSecond)}** images/s on ${tfjs.backend}` +
          (reference
            ? `, the reference **${number(reference.imagesPerSecond)}** images/s on ${reference.threads} thread${reference.threads === 1 ? '' : 's'}.`
            : '.'),
      );
    }
    for (const run of runs.filter((r) => r.outputTail))
      lines.push('', `\`${run.command}\` failed; its last lines:`, '', '```', run.outputTail!, '```');
  }
  if (report.step) lines.push('', ...report.step);
  if (report.recipes) lines.push('', ...report.recipes);
  lines.push('', '## Targets', '', '| target | measured (median) | |', '|---|---:|---|', ...targetRows(report));
  return `${lines.join('\n')}\n`;
}

/** The performance targets, each against the row of this run that measures it: met, or the gap. */
function targetRows(report: BenchReport): string[] {
  const verdict = (value: number, bound: number, atMost: boolean): string => {
    const met = atMost ? value <= bound : value >= bound;
    const gap = Math.abs(value - bound);
    return met
      ? 'met'
      : `**not met**: ${atMost ? 'over' : 'short'} by ${gap.toLocaleString('en-US', { maximumFractionDigits: 1 })} (${((100 * gap) / bound).toFixed(0)}%)`;
  };
  const rows: string[] = [];
  const wholeEpochs = report.training.filter((r) => r.trainer.endsWith('whole epochs'));
  const tfjs = wholeEpochs.filter((r) => r.backend !== 'typescript' && r.backend !== 'tensorflow').sort((a, b) => b.median - a.median)[0];
  if (tfjs)
    rows.push(
      `| TF.js without tfjs-node ≥ 12,000 images/s | ${number(tfjs.median)} (${tfjs.backend}, ${tfjs.trainer}) | ${verdict(tfjs.median, 12_000, false)} |`,
    );
  const reference = wholeEpochs.filter((r) => r.backend === 'typescript').at(-1); // the default thread count, measured last
  if (reference)
    rows.push(
      `| reference ≥ 20,000 images/s | ${number(reference.median)} (${reference.trainer}) | ${verdict(reference.median, 20_000, false)} |`,
    );
  const runs = 'skipped' in report.fullPipeline ? [] : report.fullPipeline;
  for (const [i, run] of runs.entries()) {
    if (run.exitCode !== 0) continue;
    const which = i === 0 ? 'full pipeline' : `full pipeline ${FULL_PIPELINE_FLAGS[i]!.join(' ')}`;
    if (i === 0) rows.push(`| ${which} ≤ 150 s wall | ${run.wallSeconds.toFixed(1)} s | ${verdict(run.wallSeconds, 150, true)} |`);
    if (run.peakAllProcessesMiB !== null)
      rows.push(
        `| ${which} peak memory, all processes together ≤ 500 MiB | ${run.peakAllProcessesMiB.toFixed(0)} MiB | ${verdict(run.peakAllProcessesMiB, 500, true)} |`,
      );
  }
  return rows;
}

/** trainTfjs's SGD step against its floor on wasm (bench/tfjs-step.ts), in markdown. */
async function stepTable(settings: Settings, full: Dataset): Promise<string[]> {
  await selectBackend('wasm');
  const steps = settings.quick ? 100 : 200;
  return stepMarkdown(await measureStep(full, steps, settings.reps, log), steps, settings.reps);
}

/** The recipes' tables on wasm (bench/recipes.ts), in markdown. */
async function recipeTables(settings: Settings, full: Dataset): Promise<string[]> {
  await selectBackend('wasm');
  const images = settings.quick ? 50 * BATCH : 200 * BATCH;
  const updates = measureUpdates(settings.quick ? 20 : 50, settings.reps);
  return recipesMarkdown(await measureRecipes(full, images, settings.reps, log), updates, images, settings.reps);
}

async function main(): Promise<void> {
  const settings = parseSettings(hideBin(process.argv));
  const report: BenchReport = {
    date: new Date().toISOString(),
    machine: machine(),
    settings: {
      quick: settings.quick,
      skipFull: settings.skipFull,
      recipesOnly: false,
      backends: settings.backends,
      reps: settings.reps,
      steps: settings.steps,
      evaluateReps: settings.evaluateReps,
      batchSize: BATCH,
      seed: SEED,
      lr: LR,
      trainSubset: TRAIN_SUBSET,
      warmupSteps: WARMUP_STEPS,
    },
    backends: { loaded: [], unavailable: {} },
    training: [],
    evaluate: [],
    fullPipeline: { skipped: '--skip-full' },
    referenceThreadStartMs: null,
  };
  const full = preprocessDataset(loadMnist(defaultDataDir()), 50_000, 10_000, 10_000);
  if (settings.recipesOnly) {
    const m = machine();
    const stamp = `${new Date().toISOString()} · ${m.cpu}, ${m.cores} cores · load ${m.loadAverageStart.map((v) => v.toFixed(2)).join(' / ')} at start`;
    const text = [
      '# Training recipes',
      '',
      stamp,
      '',
      ...(await stepTable(settings, full)),
      '',
      ...(await recipeTables(settings, full)),
      '',
    ].join('\n');
    mkdirSync(settings.out, { recursive: true });
    writeFileSync(path.join(settings.out, 'bench-recipes.md'), text);
    process.stdout.write(text);
    return;
  }

  for (const requested of settings.backends) {
    let backend: string;
    try {
      backend = await selectBackend(requested);
    } catch (error) {
      report.backends.unavailable[requested] = (error as Error).message.replace(/^--backend \w+: /, '');
      log(`${requested}: unavailable, skipped`);
      continue;
    }
    report.backends.loaded.push(backend);
    const steps = settings.steps[backend] ?? settings.steps.wasm!;
    log(`${backend}: training, ${steps} steps × ${settings.reps} repetitions per trainer`);
    report.training.push(...(await measureTrainers(backend, tfjsTrainers(backend), full, steps, settings.reps)));
    log(`${backend}: evaluate`);
    report.evaluate.push(measureEvaluate(backend, full, settings.evaluateReps[backend] ?? 1));
  }

  log('reference: training');
  report.training.push(...(await measureTrainers('typescript', referenceTrainers(), full, settings.steps.reference!, settings.reps)));

  // The pipeline's own shape: one epoch over all 50,000 training images, so per-call setup is amortised as in a real run.
  const wholeEpoch = { images: full.train.count, epochs: 1 };
  const label = (t: Trainer): Trainer => ({ ...t, trainer: `${t.trainer}, whole epochs` });
  if (report.backends.loaded.includes('wasm')) {
    log('wasm: trainTfjs on whole epochs');
    await selectBackend('wasm');
    const optimised = tfjsTrainers('wasm')
      .filter((t) => t.trainer.startsWith('trainTfjs'))
      .map(label);
    report.training.push(...(await measureTrainers('wasm', optimised, full, 0, settings.reps, wholeEpoch)));
  }
  log('reference: whole epochs');
  report.training.push(...(await measureTrainers('typescript', referenceTrainers().map(label), full, 0, settings.reps, wholeEpoch)));
  report.referenceThreadStartMs = threadStartMs.length > 0 ? summarise(threadStartMs) : null;
  if (report.backends.loaded.includes('wasm')) {
    report.step = await stepTable(settings, full);
    report.recipes = await recipeTables(settings, full);
  }

  if (!settings.skipFull) report.fullPipeline = FULL_PIPELINE_FLAGS.map((flags) => measureFullPipeline(log, flags));
  report.machine.loadAverageEnd = os.loadavg();

  mkdirSync(settings.out, { recursive: true });
  writeFileSync(path.join(settings.out, 'bench.json'), `${JSON.stringify(report, null, 2)}\n`);
  const text = markdown(report) + (settings.skipFull ? '' : `\n${jobsSection({ quick: settings.quick, out: settings.out, log })}`); // bench/jobs.ts
  writeFileSync(path.join(settings.out, 'bench.md'), text);
  process.stdout.write(text);
}

await main();
