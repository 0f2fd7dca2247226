// Where a TF.js training step spends its time: tf.profile kernel totals per step
// for the plain loop (original and fast kernels) and the optimised trainTfjs.
// npx tsx bench/profile.ts [--backend wasm|cpu] [--steps 50]

import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../pipeline/tfjs/backend.js';
import { installFastKernels } from '../pipeline/tfjs/fast-kernels.js';
import { defaultDataDir, loadMnist } from '../pipeline/stages/load.js';
import { buildModel, predictProbabilities } from '../pipeline/tfjs/model.js';
import { preprocessDataset } from '../pipeline/stages/preprocess.js';
import { silentProgress } from '../pipeline/progress.js';
import { initialWeights } from '../pipeline/stages/init.js';
import { trainTfjs } from '../pipeline/stages/train.js';
import type { Dataset } from '../pipeline/types.js';
import { subsetDataset } from './subset.js';
import { uninstallFastKernels } from '../test/helpers/original-kernels.js';
import { trainTfjsPlain } from '../test/helpers/plain-loop.js';

const BATCH = 64;

function flag(name: string, fallback: string): string {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 && process.argv[at + 1] !== undefined ? process.argv[at + 1]! : fallback;
}

type Profile = Awaited<ReturnType<typeof tf.profile>>;
type KernelTotals = Map<string, { ms: number; calls: number }>;

/** Kernel milliseconds and calls, by kernel name (matmuls also by input shapes). */
function kernelTotals(info: Profile): KernelTotals {
  const totals: KernelTotals = new Map();
  for (const kernel of info.kernels) {
    const isMatMul = kernel.name === 'BatchMatMul' || kernel.name === '_FusedMatMul';
    const key = isMatMul
      ? `${kernel.name} ${kernel.inputShapes
          .slice(0, 2)
          .map((shape: number[]) => `[${shape}]`)
          .join('·')}`
      : kernel.name;
    const entry = totals.get(key) ?? { ms: 0, calls: 0 };
    entry.ms += kernel.kernelTimeMs as number;
    entry.calls++;
    totals.set(key, entry);
  }
  return totals;
}

/** `totals` minus `other`, kernel by kernel. */
function without(totals: KernelTotals, other: KernelTotals): KernelTotals {
  const out: KernelTotals = new Map();
  for (const [key, v] of totals) {
    const o = other.get(key) ?? { ms: 0, calls: 0 };
    if (v.calls - o.calls > 0) out.set(key, { ms: Math.max(v.ms - o.ms, 0), calls: v.calls - o.calls });
  }
  return out;
}

function printTable(label: string, wallMs: number, totals: KernelTotals, steps: number): void {
  const rows = [...totals.entries()].sort((a, b) => b[1].ms - a[1].ms);
  const ms = rows.reduce((sum, [, v]) => sum + v.ms, 0);
  const calls = rows.reduce((sum, [, v]) => sum + v.calls, 0);
  console.log(
    `\n${label}: ${(wallMs / steps).toFixed(2)} ms/step wall (profiled); kernels ${(ms / steps).toFixed(2)} ms/step in ${(calls / steps).toFixed(0)} calls`,
  );
  for (const [name, v] of rows)
    console.log(`${(v.ms / steps).toFixed(3).padStart(8)} ms ${(v.calls / steps).toFixed(1).padStart(5)}×  ${name}`);
}

async function profileRun(run: () => Promise<unknown>): Promise<{ wallMs: number; totals: KernelTotals }> {
  const start = performance.now();
  const info = await tf.profile(async () => {
    await run();
  });
  return { wallMs: performance.now() - start, totals: kernelTotals(info) };
}

const backend = await selectBackend(flag('backend', 'wasm') as 'wasm' | 'cpu');
const steps = Number(flag('steps', '50'));
const full = preprocessDataset(loadMnist(defaultDataDir()), 50_000, 10_000, 10_000);
const dataset: Dataset = subsetDataset(full, steps * BATCH, BATCH);
const init = initialWeights(42);
const options = { epochs: 1, batchSize: BATCH, lr: 0.01, seed: 42 };

for (const round of [0, 1]) {
  const report = round === 1; // round 0 warms up every path
  const plain = () => Promise.resolve(trainTfjsPlain(dataset, init, options));
  uninstallFastKernels(backend);
  const original = await profileRun(plain);
  if (report) printTable(`${backend} plain loop, original kernels`, original.wallMs, original.totals, steps);
  installFastKernels(backend);
  const fast = await profileRun(plain);
  if (report) printTable(`${backend} plain loop, fast kernels`, fast.wallMs, fast.totals, steps);
  const optimised = await profileRun(() => trainTfjs(dataset, init, options, { progress: silentProgress() }));
  // trainTfjs also scores the validation split after each epoch and the training split at the end: profile those alone and subtract
  const model = buildModel(42);
  const passes = await profileRun(async () => {
    predictProbabilities(model, dataset.validation.images, dataset.validation.count);
    predictProbabilities(model, dataset.train.images, dataset.train.count);
  });
  model.dispose();
  if (report) {
    printTable(
      `${backend} trainTfjs, its validation and accuracy passes subtracted`,
      optimised.wallMs - passes.wallMs,
      without(optimised.totals, passes.totals),
      steps,
    );
  }
}
