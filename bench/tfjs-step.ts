// How close trainTfjs's step comes to the least an SGD step can cost on wasm (issue 24).
//
//   `npx tsx bench/tfjs-step.ts [--reps 5] [--steps 200] [--recipe-images 12800] [--before DIR] [--out bench/results]`
//   (npm run bench measures the floors and the step too, without the recipes it already has)
//
// At batch 64 on the spec network 784 → 128 → 64 → 10:
//
//   floor   the 8 matmuls of one SGD step: forward x·W1, a1·W2, a2·W3; backward the weight
//           gradients a2ᵀ·dz3, a1ᵀ·dz2, xᵀ·dz1 and the input gradients dz3·W3ᵀ, dz2·W2ᵀ
//           (the input's own is not needed), on tensors already on the backend, in tf.tidy
//   floor, new operands   the same on copies made new every step, as training's weights and
//           gradients are: XNNPACK then packs each right operand again
//   step    trainTfjs's step with the spec recipe: one epoch of `steps` batches, timed by its
//           progress bar (training batches only, bench/timing.ts), divided by the batches
//
// then the recipes that change the step (momentum, Adam, batch norm) per epoch against plain SGD
// (bench/recipes.ts). Measured like the rest of the bench: a warm-up, then repetitions interleaved
// across the rows so that load from other processes hits them alike; medians with min–max.
//
// `--before DIR` sets another checkout's trainTfjs beside this one's: DIR is a git worktree of an
// older commit, its node_modules linked to this checkout's. Each repetition measures each checkout
// in a fresh process of its own (--measure-checkout), alternating which goes first: in one process
// the two trainings slowed each other (by ~20% for the newer one here), as no pipeline process
// that trains runs both.

import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { defaultDataDir, loadMnist } from '../pipeline/stages/load.js';
import { preprocessDataset } from '../pipeline/stages/preprocess.js';
import { initialWeights } from '../pipeline/stages/init.js';
import { trainTfjs } from '../pipeline/stages/train.js';
import { selectBackend } from '../pipeline/tfjs/backend.js';
import type { Dataset } from '../pipeline/types.js';
import { D, H1, H2, K } from '../reference/shapes.js';
import { measureRecipes, recipeRows, recipesTable, spread, type RecipeRow, type Spread } from './recipes.js';
import { subsetDataset } from './subset.js';
import { addSpans, startSpan, timingProgress, type Span } from './timing.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const BATCH = 64;
const WARMUP_STEPS = 50;

/** The recipes whose step differs from plain SGD's, each a single change to the spec. */
export const STEP_RECIPES = ['baseline', 'momentum', 'adam', 'batchnorm'] as const;

export interface StepRow {
  row: string; // a floor, or the step (and, with --before, whose)
  wall: Spread; // milliseconds per step
  cpu: Spread; // process CPU milliseconds per step
}

const FLOOR = 'floor: the 8 matmuls of one SGD step';
const FLOOR_NEW = 'floor, operands new every step as in training';
const STEP = "trainTfjs's SGD step";

/**
 * The 8 matmuls of one SGD step, `steps` times, on tensors of the step's shapes; their span. With
 * `newOperands` each step multiplies new copies (made outside the span), as training does: its
 * weights and gradients are new tensors every step, and XNNPACK packs a new right operand again
 * where it reuses the packing of one it has seen (tfjs-backend-wasm caches it by tensor).
 */
function timeFloor(steps: number, newOperands: boolean): Span {
  const normal = (shape: number[], seed: number) => tf.randomNormal(shape, 0, 0.1, 'float32', seed);
  const operands = [
    normal([BATCH, D], 1), // x (B, D)
    normal([D, H1], 2), // W1 (D, H1)
    normal([H1, H2], 3), // W2 (H1, H2)
    normal([H2, K], 4), // W3 (H2, K)
    normal([BATCH, H1], 5), // a1 (B, H1)
    normal([BATCH, H2], 6), // a2 (B, H2)
    normal([BATCH, H1], 7), // dz1 (B, H1)
    normal([BATCH, H2], 8), // dz2 (B, H2)
    normal([BATCH, K], 9), // dz3 (B, K)
  ];
  let total: Span = { wallSeconds: 0, cpuSeconds: 0 };
  try {
    for (let s = 0; s < steps; s++) {
      tf.tidy(() => {
        const [x, w1, w2, w3, a1, a2, dz1, dz2, dz3] = (newOperands ? operands.map((t) => tf.mul(t, 1)) : operands) as tf.Tensor2D[];
        const stop = startSpan();
        tf.matMul(x!, w1!); // forward
        tf.matMul(a1!, w2!);
        tf.matMul(a2!, w3!);
        tf.matMul(a2!, dz3!, true, false); // dW3
        tf.matMul(dz3!, w3!, false, true); // da2
        tf.matMul(a1!, dz2!, true, false); // dW2
        tf.matMul(dz2!, w2!, false, true); // da1
        tf.matMul(x!, dz1!, true, false); // dW1; on wasm each kernel has run when it returns
        total = addSpans(total, stop());
      });
    }
    return total;
  } finally {
    tf.dispose(operands);
  }
}

/** `train` with the spec recipe for one epoch of `dataset`; the span of its training batches. */
async function timeStep(train: typeof trainTfjs, dataset: Dataset): Promise<Span> {
  const timing = timingProgress();
  const options = { epochs: 1, batchSize: BATCH, lr: 0.01, seed: 42 };
  await train(dataset, initialWeights(42), options, { progress: timing.progress });
  return timing.total();
}

/**
 * The two floors and the step of `train` (this checkout's trainTfjs unless another's), ms per
 * step, over `reps` repetitions of `steps` steps each, interleaved in turns that swap from one
 * repetition to the next.
 */
export async function measureStep(
  full: Dataset,
  steps: number,
  reps: number,
  log: (line: string) => void,
  train: typeof trainTfjs = trainTfjs,
): Promise<StepRow[]> {
  const dataset = subsetDataset(full, steps * BATCH, BATCH);
  const rows: { row: string; time: () => Span | Promise<Span> }[] = [
    { row: FLOOR, time: () => timeFloor(steps, false) },
    { row: FLOOR_NEW, time: () => timeFloor(steps, true) },
    { row: STEP, time: () => timeStep(train, dataset) },
  ];
  timeFloor(WARMUP_STEPS, true);
  await timeStep(train, subsetDataset(full, WARMUP_STEPS * BATCH, BATCH));
  const spans = rows.map(() => [] as Span[]);
  for (let rep = 0; rep < reps; rep++) {
    const turns = [...rows.keys()];
    for (const i of rep % 2 === 0 ? turns : turns.reverse()) {
      const span = await rows[i]!.time();
      spans[i]!.push(span);
      const perStep = (seconds: number) => ((1000 * seconds) / steps).toFixed(3);
      log(`  ${rows[i]!.row} ${rep + 1}/${reps}: ${perStep(span.wallSeconds)} ms per step, ${perStep(span.cpuSeconds)} CPU ms`);
    }
  }
  return rows.map(({ row }, i) => ({
    row,
    wall: spread(spans[i]!.map((span) => (1000 * span.wallSeconds) / steps)),
    cpu: spread(spans[i]!.map((span) => (1000 * span.cpuSeconds) / steps)),
  }));
}

/** One repetition of every row, measured in one process. */
interface Measured {
  steps: StepRow[];
  recipes: RecipeRow[];
}

/** One repetition on the checkout in `dir`, in a fresh process running its own trainTfjs and kernels. */
function measureCheckout(dir: string, steps: number, recipeImages: number): Measured {
  const args = ['--measure-checkout', dir, '--steps', String(steps), '--recipe-images', String(recipeImages)];
  const child = spawnSync(process.execPath, ['--import', 'tsx', import.meta.filename, ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  if (child.status !== 0) throw new Error(`--measure-checkout ${dir}: exited with ${child.status ?? child.signal}`);
  return JSON.parse(child.stdout) as Measured;
}

/** `reps` repetitions of the checkout in `before` and this one, alternating which goes first; rows named by checkout. */
function measureBeforeAfter(before: string, steps: number, recipeImages: number, reps: number, log: (line: string) => void): Measured {
  const checkouts = [
    { name: 'before', dir: path.resolve(before), runs: [] as Measured[] },
    { name: 'after', dir: ROOT, runs: [] as Measured[] },
  ];
  for (let rep = 0; rep < reps; rep++) {
    for (const checkout of rep % 2 === 0 ? checkouts : [...checkouts].reverse()) {
      log(`${checkout.name} (${checkout.dir}), repetition ${rep + 1}/${reps}`);
      checkout.runs.push(measureCheckout(checkout.dir, steps, recipeImages));
    }
  }
  const runs = checkouts.flatMap((checkout) => checkout.runs);
  const stepRow = (row: string, of: Measured[], name = row): StepRow => {
    const measured = of.map((run) => run.steps.find((candidate) => candidate.row === row)!);
    return { row: name, wall: spread(measured.map((m) => m.wall.median)), cpu: spread(measured.map((m) => m.cpu.median)) };
  };
  return {
    steps: [
      stepRow(FLOOR, runs), // the same code in both, so both processes' floors count
      stepRow(FLOOR_NEW, runs),
      ...checkouts.map((checkout) => stepRow(STEP, checkout.runs, `${STEP} (${checkout.name})`)),
    ],
    recipes: checkouts.flatMap((checkout) => {
      const seconds = (kind: 'wall' | 'cpu') =>
        STEP_RECIPES.map((variant) =>
          checkout.runs.map((run) => {
            const row = run.recipes.find((candidate) => candidate.variant === variant)!;
            return kind === 'wall' ? row.median : row.cpu.median;
          }),
        );
      return recipeRows(
        STEP_RECIPES.map((variant) => `${variant} (${checkout.name})`),
        seconds('wall'),
        seconds('cpu'),
      );
    }),
  };
}

/** The floors and the steps, in markdown. */
export function stepMarkdown(rows: StepRow[], steps: number, reps: number): string[] {
  const [floor, floorNew] = [rows.find((r) => r.row === FLOOR)!, rows.find((r) => r.row === FLOOR_NEW)!];
  const ms = (value: number) => value.toFixed(3);
  const times = (s: Spread, by: Spread) => `${(s.median / by.median).toFixed(2)}×`;
  return [
    `## One SGD step at batch ${BATCH} on wasm: trainTfjs against its floor`,
    '',
    '| row | median ms/step (wall) | min–max | ÷ floor | ÷ floor, new operands | median CPU ms/step | min–max | ÷ floor (CPU) |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
    ...rows.map(
      (r) =>
        `| ${r.row} | **${ms(r.wall.median)}** | ${ms(r.wall.min)}–${ms(r.wall.max)} | **${times(r.wall, floor.wall)}** | ${times(r.wall, floorNew.wall)} | ` +
        `${ms(r.cpu.median)} | ${ms(r.cpu.min)}–${ms(r.cpu.max)} | ${times(r.cpu, floor.cpu)} |`,
    ),
    '',
    `${reps} repetitions of ${steps} steps, interleaved after a warm-up. The floor multiplies tensors already on the backend ` +
      '(forward 3, weight gradients 3, input gradients 2), the same ones every step, so XNNPACK reuses its packing of each right ' +
      'operand; in training the weights and gradients are new tensors every step, which the second floor copies (outside its timing). ' +
      'The step is one epoch of trainTfjs with the spec recipe, batches built and uploaded on the host, validation excluded.',
  ];
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(import.meta.filename)) {
  const parsed = yargs(hideBin(process.argv))
    .scriptName('npx tsx bench/tfjs-step.ts')
    .option('reps', { type: 'number', default: 5, describe: 'Interleaved repetitions of each row' })
    .option('steps', { type: 'number', default: 200, describe: 'SGD steps per repetition of the floors and the step' })
    .option('recipe-images', { type: 'number', default: 200 * BATCH, describe: 'Training images per epoch of the recipe rows' })
    .option('before', {
      type: 'string',
      describe:
        "Another checkout (a git worktree, node_modules linked to this one's) to measure beside this one, each in processes of its own",
    })
    .option('measure-checkout', {
      type: 'string',
      hidden: true,
      describe: 'One repetition with this checkout, printed as JSON (for --before)',
    })
    .option('out', { type: 'string', default: 'bench/results', describe: 'Folder for bench-tfjs-step.md' })
    .check((args) => {
      for (const name of ['reps', 'steps', 'recipe-images'] as const) {
        if (!Number.isInteger(args[name]) || args[name] < 1)
          throw new Error(`--${name}: expected a whole number of at least 1, found ${args[name]}`);
      }
      return true;
    })
    .strict()
    .help()
    .parseSync();
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const { steps, recipeImages, reps } = parsed;
  const full = () => preprocessDataset(loadMnist(defaultDataDir()), 50_000, 10_000, 10_000);
  if (parsed.measureCheckout !== undefined) {
    // Its own backend selection (and so its own fast kernels) and its own trainTfjs; the same data.
    const dir = path.resolve(parsed.measureCheckout);
    const backend = (await import(path.join(dir, 'pipeline/tfjs/backend.ts'))) as { selectBackend: typeof selectBackend };
    const train = ((await import(path.join(dir, 'pipeline/stages/train.ts'))) as { trainTfjs: typeof trainTfjs }).trainTfjs;
    await backend.selectBackend('wasm');
    const dataset = full();
    const measured: Measured = {
      steps: await measureStep(dataset, steps, 1, log, train),
      recipes: await measureRecipes(dataset, recipeImages, 1, log, STEP_RECIPES, train),
    };
    process.stdout.write(JSON.stringify(measured));
  } else {
    let measured: Measured;
    if (parsed.before === undefined) {
      await selectBackend('wasm');
      const dataset = full();
      measured = {
        steps: await measureStep(dataset, steps, reps, log),
        recipes: await measureRecipes(dataset, recipeImages, reps, log, STEP_RECIPES),
      };
    } else {
      measured = measureBeforeAfter(parsed.before, steps, recipeImages, reps, log);
    }
    const text = [
      '# TF.js step',
      '',
      ...(parsed.before === undefined
        ? []
        : [
            `before: the checkout in ${path.resolve(parsed.before)}; after: this one. Each repetition measures each in a fresh process.`,
            '',
          ]),
      ...stepMarkdown(measured.steps, steps, reps),
      '',
      ...recipesTable(measured.recipes, recipeImages, reps),
      '',
    ].join('\n');
    mkdirSync(parsed.out, { recursive: true });
    writeFileSync(path.join(parsed.out, 'bench-tfjs-step.md'), text);
    process.stdout.write(text);
  }
}
