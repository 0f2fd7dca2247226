// The cost of the training recipes per epoch, against the spec's plain SGD, and
// the optimizer update alone (TF.js's own SGD, momentum and Adam, and the fused
// host Adam of pipeline/tfjs/optimizers.ts, which trainTfjs uses).
//
// Both measured like the rest of the bench: a warm-up, then repetitions
// interleaved across the rows so that load from other processes hits them
// alike; medians with min–max, and each row's ratio to plain SGD's median.

import * as tf from '@tensorflow/tfjs';
import { findVariant } from '../pipeline/experiments/variants.js';
import { FusedAdam } from '../pipeline/tfjs/optimizers.js';
import { initialWeights } from '../pipeline/stages/init.js';
import { trainTfjs } from '../pipeline/stages/train.js';
import type { Dataset } from '../pipeline/types.js';
import { PARAM_NAMES, PARAM_SHAPES } from '../reference/shapes.js';
import { subsetDataset } from './subset.js';
import { timingProgress } from './timing.js';

/** The variants whose cost the issue names, each a single change to the spec. */
export const RECIPE_ROWS = ['baseline', 'momentum', 'adam', 'batchnorm', 'dropout', 'augment'] as const;

export interface Spread {
  median: number;
  min: number;
  max: number;
}

export interface RecipeRow extends Spread {
  variant: string; // wall seconds per epoch
  ratio: number; // median / plain SGD's median
  cpu: Spread & { ratio: number }; // process CPU seconds per epoch: less disturbed by other processes
}

export interface UpdateRow extends Spread {
  optimizer: string; // process CPU milliseconds per update of the six weight tensors
  ratio: number; // median / TF.js SGD's median
}

export function spread(values: number[]): Spread {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  const median = sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
  return { median, min: sorted[0]!, max: sorted.at(-1)! };
}

/**
 * `train` (this checkout's trainTfjs unless another's) with each of `variants`, the first the
 * baseline of the ratios, for one epoch of `images` training images; seconds per epoch
 * (validation excluded).
 */
export async function measureRecipes(
  full: Dataset,
  images: number,
  reps: number,
  log: (line: string) => void,
  variants: readonly string[] = RECIPE_ROWS,
  train: typeof trainTfjs = trainTfjs,
): Promise<RecipeRow[]> {
  const dataset = subsetDataset(full, images, 64);
  const init = initialWeights(42);
  const run = async (variant: string, data: Dataset) => {
    const options = { epochs: 1, batchSize: 64, lr: 0.01, seed: 42, recipe: findVariant(variant).recipe, label: variant };
    const timing = timingProgress();
    const wall = (await train(data, init, options, { progress: timing.progress })).trainSeconds;
    return { wall, cpu: timing.total().cpuSeconds };
  };
  const warmup = subsetDataset(full, 20 * 64, 64);
  for (const variant of variants) await run(variant, warmup);
  const wall = variants.map(() => [] as number[]);
  const cpu = variants.map(() => [] as number[]);
  for (let rep = 0; rep < reps; rep++) {
    for (const [i, variant] of variants.entries()) {
      const seconds = await run(variant, dataset);
      wall[i]!.push(seconds.wall);
      cpu[i]!.push(seconds.cpu);
      log(
        `  recipe ${variant} ${rep + 1}/${reps}: ${seconds.wall.toFixed(2)} s wall, ${seconds.cpu.toFixed(2)} s CPU per epoch of ${images} images`,
      );
    }
  }
  return recipeRows(variants, wall, cpu);
}

/** Rows from each variant's seconds per epoch, wall and CPU, with the ratios to the first variant's medians. */
export function recipeRows(variants: readonly string[], wall: number[][], cpu: number[][]): RecipeRow[] {
  const wallBaseline = spread(wall[0]!).median;
  const cpuBaseline = spread(cpu[0]!).median;
  return variants.map((variant, i) => {
    const w = spread(wall[i]!);
    const c = spread(cpu[i]!);
    return { variant, ...w, ratio: w.median / wallBaseline, cpu: { ...c, ratio: c.median / cpuBaseline } };
  });
}

/** One optimizer update of the spec network's six weight tensors, by each implementation; ms per update. */
export function measureUpdates(steps: number, reps: number): UpdateRow[] {
  const makers: [string, () => tf.Optimizer][] = [
    ['SGD (TF.js)', () => tf.train.sgd(0.01)],
    ['momentum (TF.js)', () => tf.train.momentum(0.01, 0.9)],
    ['Adam (TF.js)', () => tf.train.adam(1e-3, 0.9, 0.999)],
    ['Adam (fused, host)', () => new FusedAdam(1e-3, 0.9, 0.999)],
  ];
  const variables = PARAM_NAMES.map((name) => tf.variable(tf.randomNormal([...PARAM_SHAPES[name]], 0, 0.05, 'float32', 1)));
  const gradients = variables.map((variable, i) => ({
    name: variable.name,
    tensor: tf.randomNormal(variable.shape, 0, 1e-3, 'float32', i + 2),
  }));
  const optimizers = makers.map(([, make]) => make());
  const times = makers.map(() => [] as number[]);
  try {
    for (const optimizer of optimizers) for (let s = 0; s < 10; s++) optimizer.applyGradients(gradients); // warm-up, state allocated
    for (let rep = 0; rep < reps; rep++) {
      for (const [i, optimizer] of optimizers.entries()) {
        const start = process.cpuUsage();
        for (let s = 0; s < steps; s++) optimizer.applyGradients(gradients);
        variables[0]!.dataSync(); // wait for the last update
        const used = process.cpuUsage(start);
        times[i]!.push((used.user + used.system) / 1000 / steps);
      }
    }
  } finally {
    optimizers.forEach((optimizer) => optimizer.dispose());
    tf.dispose([...variables, ...gradients.map((g) => g.tensor)]);
  }
  const baseline = spread(times[0]!).median;
  return makers.map(([optimizer], i) => {
    const s = spread(times[i]!);
    return { optimizer, ...s, ratio: s.median / baseline };
  });
}

/** The two tables, in markdown. */
export function recipesMarkdown(recipes: RecipeRow[], updates: UpdateRow[], images: number, reps: number): string[] {
  return [...recipesTable(recipes, images, reps), '', ...updatesTable(updates)];
}

/** The recipes per epoch against plain SGD, in markdown. */
export function recipesTable(recipes: RecipeRow[], images: number, reps: number): string[] {
  const sec = (value: number) => value.toFixed(2);
  return [
    `## Training recipes per epoch (trainTfjs, ${images.toLocaleString('en-US')} images, batch 64)`,
    '',
    '| variant | median s/epoch (wall) | min–max | × plain SGD | median CPU s/epoch | min–max | × plain SGD |',
    '|---|---:|---:|---:|---:|---:|---:|',
    ...recipes.map(
      (r) =>
        `| ${r.variant} | **${sec(r.median)}** | ${sec(r.min)}–${sec(r.max)} | **${r.ratio.toFixed(2)}×** | ` +
        `${sec(r.cpu.median)} | ${sec(r.cpu.min)}–${sec(r.cpu.max)} | **${r.cpu.ratio.toFixed(2)}×** |`,
    ),
    '',
    `${reps} repetitions interleaved across the rows after a warm-up; training time only (no validation). baseline is the spec's plain SGD, the train stage itself.`,
  ];
}

/** One optimizer update by each implementation, in markdown. */
function updatesTable(updates: UpdateRow[]): string[] {
  const ms = (value: number) => value.toFixed(3);
  return [
    '## One optimizer update of the 784-128-64-10 weights (process CPU ms)',
    '',
    '| optimizer | median CPU ms/update | min–max | × TF.js SGD |',
    '|---|---:|---:|---:|',
    ...updates.map((r) => `| ${r.optimizer} | **${ms(r.median)}** | ${ms(r.min)}–${ms(r.max)} | ${r.ratio.toFixed(2)}× |`),
    '',
    "trainTfjs uses the fused Adam (pipeline/tfjs/optimizers.ts), which gives the weights of TF.js's own to float32 rounding (test/optimizers.test.ts), and TF.js's SGD and momentum.",
  ];
}
