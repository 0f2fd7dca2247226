// --experiments extended (issue 25), on small data: the elastic distortion, the weight average,
// label smoothing's and distillation's soft targets, the cosine schedule, and a rerun's weights.

import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { parseArgs } from '../pipeline/cli/args.js';
import { augmentImages, augmentRandom, elasticNoise, gaussianMatrix, smoothFieldsOnHost } from '../pipeline/experiments/augment.js';
import { EXTENDED_VARIANTS, SPEC_RECIPE, findVariant, trainingEpochs, type TrainingRecipe } from '../pipeline/experiments/variants.js';
import { silentProgress } from '../pipeline/progress.js';
import { initialWeights } from '../pipeline/stages/init.js';
import { defaultDataDir, loadMnist } from '../pipeline/stages/load.js';
import { preprocessDataset } from '../pipeline/stages/preprocess.js';
import { scheduledRate, trainTfjs } from '../pipeline/stages/train.js';
import { selectBackend } from '../pipeline/tfjs/backend.js';
import { backendSmoother } from '../pipeline/tfjs/elastic.js';
import { modelWithParams, predictProbabilities, writeParams } from '../pipeline/tfjs/model.js';
import { buildRecipeModel } from '../pipeline/tfjs/recipe-model.js';
import { softCrossEntropyBackward, softmaxCrossEntropyBackward } from '../pipeline/tfjs/training-step.js';
import { WeightAverage, averageDecay } from '../pipeline/tfjs/weight-average.js';
import type { Dataset } from '../pipeline/types.js';
import { argmax } from '../reference/network.js';
import { D, K, PARAM_NAMES, scalePixels, type Params } from '../reference/shapes.js';
import { maxAbs } from './helpers/numeric.js';

let dataset: Dataset;
beforeAll(async () => {
  await selectBackend('wasm');
  dataset = preprocessDataset(loadMnist(defaultDataDir()), 6_000, 500, 500);
});

const settings = { batchSize: 64, lr: 0.1, seed: 42 };
const sha256 = (params: Params) => {
  const hash = createHash('sha256');
  for (const name of PARAM_NAMES) hash.update(new Uint8Array(params[name].buffer, params[name].byteOffset, params[name].byteLength));
  return hash.digest('hex');
};
const accuracy = (params: Params, images: Float32Array, labels: Uint8Array) => {
  const model = modelWithParams(params);
  const p = predictProbabilities(model, images, labels.length);
  model.dispose();
  let right = 0;
  for (let n = 0; n < labels.length; n++) right += +(argmax(p.subarray(n * K, (n + 1) * K)) === labels[n]);
  return right / labels.length;
};

describe('the elastic distortion', () => {
  const ELASTIC_ONLY = { maxShift: 0, maxRotationDegrees: 0, elastic: { alpha: 34, sigma: 4 } };

  it('the backend smooths as the host oracle does, to float32 rounding', () => {
    const g = gaussianMatrix(4);
    expect(g[14 * 28 + 14]).toBeCloseTo(
      1 / Array.from({ length: 25 }, (_, i) => Math.exp(-((i - 12) ** 2) / 32)).reduce((a, b) => a + b),
      7,
    );
    expect(g[0 * 28 + 13]).toBe(0); // 13 px apart: past 3σ = 12
    const noise = elasticNoise(8, augmentRandom(3, 0));
    const host = smoothFieldsOnHost(Float32Array.from(noise), g);
    const smoother = backendSmoother();
    const backend = smoother.smooth(Float32Array.from(noise), g);
    smoother.dispose();
    expect(maxAbs(host.map((v, i) => v - backend[i]!))).toBeLessThan(1e-6);
    expect(maxAbs(host)).toBeGreaterThan(0.02); // a real field, not zeros: σ 4 leaves ~1/14 of the noise's spread
  });

  it("keeps each digit's mass and label: the distorted test digits stay recognisable to a quick spec model", async () => {
    const trained = await trainTfjs(dataset, initialWeights(42), { ...settings, epochs: 2 }, { progress: silentProgress() });
    const { test } = dataset;
    const clean = scalePixels(test.images);
    const distorted = augmentImages(clean, test.count, ELASTIC_ONLY, augmentRandom(7, 0));
    const ratios = Array.from({ length: test.count }, (_, n) => {
      const sum = (images: Float32Array) => images.subarray(n * D, (n + 1) * D).reduce((a, b) => a + b, 0);
      return sum(distorted) / sum(clean);
    });
    // Resampling along a field that stretches here and squeezes there keeps the ink on average, not in
    // every digit: on these 500, the mean ratio is 0.985, the median 0.975, 90% lie in 0.77–1.25.
    ratios.sort((a, b) => a - b);
    const meanRatio = ratios.reduce((a, b) => a + b, 0) / ratios.length;
    expect(Math.abs(meanRatio - 1)).toBeLessThan(0.05);
    expect(Math.abs(ratios[250]! - 1)).toBeLessThan(0.05);
    expect(ratios.filter((ratio) => Math.abs(ratio - 1) <= 0.3).length).toBeGreaterThanOrEqual(450); // 90% within 30%
    expect(maxAbs(distorted.map((v, i) => v - clean[i]!))).toBeGreaterThan(0.5); // and it does move it
    const cleanAccuracy = accuracy(trained.params, clean, test.labels);
    const distortedAccuracy = accuracy(trained.params, distorted, test.labels);
    console.log(`elastic: quick spec model ${(cleanAccuracy * 100).toFixed(1)}% clean, ${(distortedAccuracy * 100).toFixed(1)}% distorted`);
    expect(distortedAccuracy).toBeGreaterThan(0.5); // more often than not
    expect(cleanAccuracy).toBeGreaterThan(0.8); // the precondition: a model that reads digits (84.6% here)
  }, 60_000);
});

describe('the weight average', () => {
  it('matches a hand computation of d = min(decay, (1 + t)/(10 + t)), w̄ ← d·w̄ + (1 − d)·w', () => {
    const f = Math.fround;
    const start = initialWeights(1).params;
    const model = buildRecipeModel(start, SPEC_RECIPE, 1);
    const average = new WeightAverage(model, 0.2);
    const steps = [initialWeights(2).params, initialWeights(3).params, initialWeights(4).params];
    let hand = start.w1[5]!; // one weight followed by hand
    let handBias = start.b3[0]!;
    for (const [t, params] of steps.entries()) {
      const withBias = { ...params, b3: Float32Array.from(params.b3, (_, k) => (t + 1) * 0.5 + k) };
      writeParams(model, withBias);
      average.update();
      const d = [2 / 11, 0.2, 0.2][t]!; // min(0.2, 2/11), then min(0.2, 3/12) and min(0.2, 4/13)
      expect(averageDecay(0.2, t + 1)).toBe(d);
      hand = f(d * hand + (1 - d) * params.w1[5]!);
      handBias = f(d * handBias + (1 - d) * withBias.b3[0]!);
    }
    const [w1, , , , , b3] = average.values();
    expect(w1![5]).toBe(hand);
    expect(b3![0]).toBe(handBias);
    // with() shows the average and puts the trained weights back; keep() leaves the average in
    const trained = Float32Array.from(model.getLayer('dense1').getWeights()[0]!.dataSync());
    expect(average.with(() => model.getLayer('dense1').getWeights()[0]!.dataSync()[5])).toBe(hand);
    expect(Array.from(model.getLayer('dense1').getWeights()[0]!.dataSync())).toEqual(Array.from(trained));
    average.keep();
    expect(model.getLayer('dense1').getWeights()[0]!.dataSync()[5]).toBe(hand);
    model.dispose();
  });
});

describe('soft targets', () => {
  it('with one-hot targets the soft cross-entropy is the hard one: the same loss, gradients to rounding', () => {
    const rows = 5;
    const logits = tf.randomNormal([rows, K], 0, 3, 'float32', 9);
    const p = tf.softmax(logits).dataSync() as Float32Array;
    tf.dispose(logits);
    const y = new Float32Array(rows * K);
    for (let r = 0; r < rows; r++) y[r * K + ((r * 3) % K)] = 1;
    const hard = new Float32Array(rows * K);
    const soft = new Float32Array(rows * K);
    const hardLoss = softmaxCrossEntropyBackward(hard, p, y, rows);
    const softLoss = softCrossEntropyBackward(soft, p, y, rows);
    expect(softLoss).toBeCloseTo(hardLoss, 12);
    expect(maxAbs(hard.map((v, i) => v - soft[i]!))).toBeLessThan(1e-7);
    expect(soft[0]).toBeCloseTo((p[0]! - y[0]!) / rows, 7);
  });

  it('distillation from one teacher at temperature 1 and weight 1 is ordinary training on the teacher outputs', async () => {
    const teacher = (await trainTfjs(dataset, initialWeights(5), { ...settings, epochs: 1 }, { progress: silentProgress() })).params;
    const distill: TrainingRecipe = { ...SPEC_RECIPE, distill: { teachers: ['teacher'], weight: 1, temperature: 1 } };
    const distilled = await trainTfjs(
      dataset,
      initialWeights(42),
      { ...settings, epochs: 1, recipe: distill, teachers: [teacher] },
      { progress: silentProgress() },
    );
    // The teacher's outputs as the training targets, made by the framework's own inference.
    const model = modelWithParams(teacher);
    const outputs = predictProbabilities(model, dataset.train.images, dataset.train.count);
    model.dispose();
    const onOutputs = { ...dataset, train: { ...dataset.train, oneHot: outputs } };
    const ordinary = await trainTfjs(
      onOutputs,
      initialWeights(42),
      { ...settings, epochs: 1, recipe: { ...SPEC_RECIPE, labelSmoothing: 0 } },
      { progress: silentProgress() },
    );
    const onLabels = await trainTfjs(dataset, initialWeights(42), { ...settings, epochs: 1 }, { progress: silentProgress() });
    for (const name of PARAM_NAMES) {
      expect(maxAbs(distilled.params[name].map((v, i) => v - ordinary.params[name][i]!))).toBeLessThan(2e-5);
    }
    expect(maxAbs(distilled.params.w3.map((v, i) => v - onLabels.params.w3[i]!))).toBeGreaterThan(1e-2); // the targets matter
    expect(() =>
      trainTfjs(dataset, initialWeights(42), { ...settings, epochs: 1, recipe: distill, teachers: [] }, { progress: silentProgress() }),
    ).rejects.toThrow('distillation: expected the 1 teachers teacher, given 0');
  }, 60_000);
});

describe('the extended recipes', () => {
  it('the cosine schedule warms up linearly, then falls to 0', () => {
    const recipe = findVariant('base+long').recipe;
    const rate = (step: number) => scheduledRate(recipe, 0.01, step, 30, 10); // Adam: its own 1e-3
    expect(rate(0)).toBeCloseTo(1e-4, 12);
    expect(rate(9)).toBeCloseTo(1e-3, 12);
    expect(rate(10)).toBeCloseTo(1e-3, 12);
    expect(rate(20)).toBeCloseTo(0.5e-3, 12);
    expect(rate(29)).toBeCloseTo(0.5e-3 * (1 + Math.cos((Math.PI * 19) / 20)), 12);
  });

  it('the ablation: each ingredient alone and removed, every recipe the unchanged network', () => {
    expect(EXTENDED_VARIANTS.map((variant) => variant.name)).toEqual([
      'base+elastic',
      'base+long',
      'base+ema',
      'base+smoothing',
      'base+distillation',
      'all',
      'all-but-elastic',
      'all-but-long',
      'all-but-ema',
      'all-but-smoothing',
      'all-but-distillation',
      'teacher-2',
    ]);
    const all = findVariant('all').recipe;
    expect(all.distill?.teachers).toEqual(['all-but-distillation', 'teacher-2']);
    expect(findVariant('all-but-elastic').recipe).toEqual({ ...all, augment: { maxShift: 2, maxRotationDegrees: 10 } });
    expect(findVariant('teacher-2').recipe).toEqual({ ...findVariant('all-but-distillation').recipe, copy: 2 });
  });

  it('a rerun gives bit-identical weights', async () => {
    const small = preprocessDataset(loadMnist(defaultDataDir()), 320, 100, 100);
    const teachers = [initialWeights(11).params, initialWeights(12).params];
    const train = () =>
      trainTfjs(
        small,
        initialWeights(42),
        { ...settings, epochs: 3, recipe: findVariant('all').recipe, teachers },
        { progress: silentProgress() },
      );
    const [first, second] = [await train(), await train()];
    expect(first.history).toHaveLength(10); // the long schedule: 10/3 × --epochs
    expect(sha256(second.params)).toBe(sha256(first.params));
  }, 60_000);

  it('--long-epochs sets the long schedules, and only them; 0 keeps 10/3 × --epochs', async () => {
    expect(trainingEpochs(findVariant('all').recipe, { epochs: 15, longEpochs: 0 })).toBe(50);
    expect(trainingEpochs(findVariant('all').recipe, { epochs: 15, longEpochs: 100 })).toBe(100);
    expect(trainingEpochs(findVariant('all-but-long').recipe, { epochs: 15, longEpochs: 100 })).toBe(15);
    const small = preprocessDataset(loadMnist(defaultDataDir()), 320, 100, 100);
    const options = { ...settings, epochs: 3, longEpochs: 2, recipe: findVariant('base+long').recipe };
    const trained = await trainTfjs(small, initialWeights(42), options, { progress: silentProgress() });
    expect(trained.history.map((record) => record.epoch)).toEqual([1, 2]);
    const config = async (...argv: string[]) => (await parseArgs(argv, () => {}))!.config;
    expect((await config('--experiments', 'extended', '--long-epochs', '100')).longEpochs).toBe(100);
    expect((await config('--experiments', 'extended')).longEpochs).toBe(0);
    await expect(config('--experiments', '--long-epochs', '100')).rejects.toThrow(
      '--long-epochs 100 sets the long schedules of --experiments extended, and this run has only --experiments. ' +
        'Example: npm run pipeline -- --experiments extended --long-epochs 100',
    );
    await expect(config('--long-epochs', '100')).rejects.toThrow('and this run has no --experiments.');
    await expect(config('--experiments', 'extended', '--long-epochs', '-1')).rejects.toThrow(
      '--long-epochs: expected at least 0, found -1',
    );
    // A rerun that goes back to the standard set keeps the run's --long-epochs, which no stage then reads.
    const run = mkdtempSync(path.join(tmpdir(), 'long-epochs-'));
    writeFileSync(path.join(run, 'config.json'), JSON.stringify({ experiments: 'extended', longEpochs: 100 }));
    expect(await config('--stage', 'report', '--experiments', '--out', run)).toMatchObject({ experiments: true, longEpochs: 100 });
    rmSync(run, { recursive: true });
  }, 60_000);

  it('--experiments extended, --experiments and --no-experiments on the command line', async () => {
    const config = async (...argv: string[]) => (await parseArgs(argv, () => {}))!.config.experiments;
    expect(await config('--experiments', 'extended')).toBe('extended');
    expect(await config('--experiments')).toBe(true);
    expect(await config('--experiments', '--epochs', '2')).toBe(true);
    expect(await config('--no-experiments')).toBe(false);
    await expect(config('--experiments', 'all')).rejects.toThrow('--experiments: expected true, false or "extended", found "all"');
  });
});
