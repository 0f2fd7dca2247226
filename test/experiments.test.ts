// The experiments stage: variants really differ, augmentation is seeded and
// keeps the ink, the best combination is chosen by validation accuracy, and a
// tiny run produces the table, chart and metrics block.

import * as tf from '@tensorflow/tfjs';
import { D, H1, H2, IMAGE_SIDE, K, scalePixels } from '../reference/shapes.js';
import { selectBackend } from '../pipeline/tfjs/backend.js';
import { DEFAULTS } from '../pipeline/config.js';
import { evaluateModels } from '../pipeline/stages/evaluate.js';
import { assembleExperiments, runVariant, type VariantResult } from '../pipeline/stages/experiments.js';
import { augmentImages, augmentRandom } from '../pipeline/experiments/augment.js';
import { experimentsFiles, experimentsMetrics, experimentsReport } from '../pipeline/experiments/comparison.js';
import {
  EXPERIMENT_VARIANTS,
  EXTENDED_VARIANTS,
  EXTENDED_TARGET_TEST_ACCURACY,
  TARGET_TEST_ACCURACY,
  VARIANT_NAMES,
  findVariant,
  learningRateAt,
} from '../pipeline/experiments/variants.js';
import { createOptimizer } from '../pipeline/tfjs/optimizers.js';
import { buildRecipeModel } from '../pipeline/tfjs/recipe-model.js';
import { defaultDataDir, loadMnist } from '../pipeline/stages/load.js';
import { preprocessDataset } from '../pipeline/stages/preprocess.js';
import { silentProgress } from '../pipeline/progress.js';
import { initialWeights } from '../pipeline/stages/init.js';
import { trainTfjs } from '../pipeline/stages/train.js';
import type { Dataset, InitialWeights } from '../pipeline/types.js';

let dataset: Dataset;
let init: InitialWeights;
const tiny = { ...DEFAULTS, epochs: 1 };
const hooks = { progress: silentProgress() };

beforeAll(async () => {
  await selectBackend('wasm');
  dataset = preprocessDataset(loadMnist(defaultDataDir()), 640, 300, 300);
  init = initialWeights(DEFAULTS.seed);
});

function mass(images: Float32Array, n: number): number {
  let sum = 0;
  for (let p = n * D; p < (n + 1) * D; p++) sum += images[p]!;
  return sum;
}

describe('the variants', () => {
  it('have unique names and really different options', () => {
    expect(new Set(VARIANT_NAMES).size).toBe(EXPERIMENT_VARIANTS.length);
    expect(new Set(EXPERIMENT_VARIANTS.map((variant) => JSON.stringify(variant.recipe))).size).toBe(EXPERIMENT_VARIANTS.length);
    expect(VARIANT_NAMES.slice(0, 7)).toEqual(['baseline', 'momentum', 'adam', 'step-decay', 'dropout', 'batchnorm', 'augment']);
    expect(EXPERIMENT_VARIANTS.filter((variant) => variant.kind === 'combination').length).toBeGreaterThanOrEqual(2);
    expect(() => findVariant('nesterov')).toThrow('unknown experiment variant "nesterov": expected one of baseline, momentum');
  });

  it('build the optimizer each names', () => {
    const config = (name: string) => createOptimizer(findVariant(name).recipe.optimizer, DEFAULTS.lr);
    const sgd = config('baseline');
    const momentum = config('momentum');
    const adam = config('adam');
    expect(sgd.getClassName()).toBe('SGD');
    expect(sgd.getConfig()).toEqual({ learningRate: 0.01 });
    expect(momentum.getClassName()).toBe('Momentum');
    expect(momentum.getConfig()).toMatchObject({ learningRate: 0.01, momentum: 0.9 });
    expect(adam.getClassName()).toBe('FusedAdam');
    expect(adam.getConfig()).toMatchObject({ learningRate: 0.001 });
    adam.setLearningRate(1e-4); // the step decay lowers Adam's rate mid-run
    expect(adam.getConfig()).toMatchObject({ learningRate: 1e-4 });
    [sgd, momentum, adam].forEach((optimizer) => optimizer.dispose());
  });

  it('decay the learning rate ×0.1 after epoch 10, and only in the decay variants', () => {
    const decay = findVariant('step-decay').recipe;
    expect([9, 10, 14].map((epoch) => learningRateAt(decay, 0.01, epoch))).toEqual([0.01, 0.01 * 0.1, 0.01 * 0.1]);
    const adamDecay = findVariant('adam+decay+augment').recipe;
    expect([9, 10].map((epoch) => learningRateAt(adamDecay, 0.01, epoch))).toEqual([1e-3, 1e-3 * 0.1]);
    expect(learningRateAt(findVariant('adam').recipe, 0.01, 14)).toBe(1e-3);
    expect(learningRateAt(findVariant('baseline').recipe, 0.01, 14)).toBe(0.01);
  });

  it('keep the three dense layers 784-128-64-10 from the shared initial weights, adding batch norm or dropout between', () => {
    for (const name of ['baseline', 'dropout', 'batchnorm']) {
      const model = buildRecipeModel(init.params, findVariant(name).recipe, 1);
      const dense = model.layers.filter((layer) => layer.getClassName() === 'Dense');
      expect(dense.map((layer) => (layer.getConfig() as { units: number }).units)).toEqual([H1, H2, K]);
      expect(Array.from(dense[0]!.getWeights()[0]!.dataSync().subarray(0, 5))).toEqual(Array.from(init.params.w1.subarray(0, 5)));
      expect(Array.from(dense[2]!.getWeights()[1]!.dataSync())).toEqual(Array.from(init.params.b3));
      const kinds = model.layers.map((layer) => layer.getClassName());
      if (name === 'baseline') expect(kinds).toEqual(['Dense', 'Dense', 'Dense']);
      if (name === 'dropout') expect(kinds).toEqual(['Dense', 'SeededDropout', 'Dense', 'SeededDropout', 'Dense']);
      if (name === 'batchnorm') {
        expect(kinds).toEqual(['Dense', 'BatchNormalization', 'Activation', 'Dense', 'BatchNormalization', 'Activation', 'Dense']);
      }
      model.dispose();
    }
  });
});

describe('augmentation', () => {
  const images = () => scalePixels(dataset.train.images.subarray(0, 50 * D));
  const spec = findVariant('augment').recipe.augment!;

  it('is seeded: the same seed and epoch give the same images, another epoch others', () => {
    const first = augmentImages(images(), 50, spec, augmentRandom(42, 3));
    const again = augmentImages(images(), 50, spec, augmentRandom(42, 3));
    const otherEpoch = augmentImages(images(), 50, spec, augmentRandom(42, 4));
    expect(Array.from(again)).toEqual(Array.from(first));
    expect(Array.from(otherEpoch)).not.toEqual(Array.from(first));
    expect(Array.from(first)).not.toEqual(Array.from(images()));
  });

  it('keeps the pixel mass: shifts of ±2 px and rotations of ±10° move ink but neither add nor lose much', () => {
    const augmented = augmentImages(images(), 50, spec, augmentRandom(1, 0));
    let totalChange = 0;
    for (let n = 0; n < 50; n++) {
      const before = mass(images(), n);
      const change = Math.abs(mass(augmented, n) - before) / before;
      if (change > 0.1) throw new Error(`image ${n}: mass ${before} became ${mass(augmented, n)} (${(change * 100).toFixed(1)}%)`);
      totalChange += change;
    }
    expect(totalChange / 50).toBeLessThan(0.03);
  });

  it('is the identity with no shift and no rotation, and a whole-pixel move with shift only', () => {
    const still = augmentImages(images(), 50, { maxShift: 0, maxRotationDegrees: 0 }, augmentRandom(1, 0));
    expect(Array.from(still)).toEqual(Array.from(images()));
    const shifted = augmentImages(images(), 1, { maxShift: 2, maxRotationDegrees: 0 }, augmentRandom(5, 0));
    const source = images();
    const S = IMAGE_SIDE;
    const matches: [number, number][] = [];
    for (let dy = -2; dy <= 2; dy++) {
      for (let dx = -2; dx <= 2; dx++) {
        let same = true;
        for (let y = 0; y < S && same; y++) {
          for (let x = 0; x < S && same; x++) {
            const sx = x - dx;
            const sy = y - dy;
            const expected = sx >= 0 && sy >= 0 && sx < S && sy < S ? source[sy * S + sx]! : 0;
            same = Math.abs(shifted[y * S + x]! - expected) < 1e-6;
          }
        }
        if (same) matches.push([dx, dy]);
      }
    }
    expect(matches).toHaveLength(1);
  });
});

describe('a tiny run', () => {
  it('the baseline variant is the train stage: the same weights, bit for bit, and the same accuracies', async () => {
    const baseline = await runVariant('baseline', dataset, init, tiny, hooks);
    const train = await trainTfjs(dataset, init, tiny, hooks);
    for (const name of ['w1', 'b1', 'w2', 'b2', 'w3', 'b3'] as const) {
      const index = baseline.params[name].findIndex((value, i) => !Object.is(value, train.params[name][i]));
      if (index >= 0) throw new Error(`${name}[${index}]: baseline ${baseline.params[name][index]} vs train ${train.params[name][index]}`);
    }
    expect(baseline.history.map((record) => [record.loss, record.valLoss, record.valAccuracy])).toEqual(
      train.history.map((record) => [record.loss, record.valLoss, record.valAccuracy]),
    );
    const evaluation = evaluateModels(dataset, train, null).tfjs;
    expect(baseline.testAccuracy).toBe(evaluation.testAccuracy);
    expect(baseline.testConfusionMatrix).toEqual(evaluation.confusionMatrix);
  });

  it('trains two variants for one epoch and reports them', async () => {
    const before = tf.memory().numTensors;
    const variants = [
      await runVariant('baseline', dataset, init, tiny, hooks),
      await runVariant('adam+decay+augment', dataset, init, tiny, hooks),
    ];
    expect(tf.memory().numTensors).toBe(before);
    const result = assembleExperiments(variants, tiny, dataset);
    expect(result.variants.map((variant) => variant.name)).toEqual(['baseline', 'adam+decay+augment']);
    for (const variant of result.variants) {
      expect(variant.history).toHaveLength(1);
      expect(variant.backend).toBe('wasm');
      expect(variant.valAccuracy).toBe(variant.history.at(-1)!.valAccuracy);
      // Each accuracy is a count of right answers over its split's 300 images.
      for (const value of [variant.valAccuracy, variant.testAccuracy]) expect(value * 300).toBeCloseTo(Math.round(value * 300), 9);
      expect(variant.trainSeconds).toBeGreaterThan(0);
    }
    expect(result.variants[1]!.valAccuracy).toBeGreaterThan(result.variants[0]!.valAccuracy); // Adam learns faster in one epoch
    expect(result.bestCombination?.name).toBe('adam+decay+augment');
    expect(result).toMatchObject({ epochs: 1, batchSize: 64, seed: 42, trainSize: 640, valSize: 300, testSize: 300 });

    const { markdown, chartSpec } = experimentsReport(result);
    expect(markdown).toContain('| Variant | Change from the spec | Validation accuracy | Test accuracy | Training time | Notes |');
    const baselineRow = markdown.split('\n').find((line) => line.startsWith('| baseline |'))!;
    expect(baselineRow).toContain(`${(result.variants[0]!.testAccuracy * 100).toFixed(2)}%`);
    expect(markdown).toContain('**Best combination: adam+decay+augment**');
    expect(markdown).toContain('chosen among the combinations by validation accuracy');
    expect(markdown).toContain('saved in `model/best/`');
    expect(markdown).toContain('![Validation accuracy per epoch and final accuracies](experiments.png)');
    expect(chartSpec).toHaveProperty('hconcat');

    const metrics = experimentsMetrics(result);
    expect(Object.keys(metrics.variants)).toEqual(['baseline', 'adam+decay+augment']);
    expect(metrics.variants.baseline).toMatchObject({
      test_accuracy: result.variants[0]!.testAccuracy,
      kind: 'single',
      train_seconds: result.variants[0]!.trainSeconds,
    });
    expect(metrics.best_combination).toMatchObject({
      name: 'adam+decay+augment',
      chosen_by: 'validation accuracy',
      model: 'model/best',
      test_accuracy: result.variants[1]!.testAccuracy,
      confusion_matrix: result.variants[1]!.testConfusionMatrix,
    });
    expect(JSON.stringify(metrics)).not.toMatch(/"(valAccuracy|testAccuracy|trainSeconds|bestCombination|testConfusionMatrix|params)"/); // snake_case, no weights

    const files = await experimentsFiles(result);
    expect(files.map((file) => file.path)).toEqual([
      'experiments.md',
      'experiments.png',
      'specs/experiments.vl.json',
      'experiments-time.png',
      'specs/experiments-time.vl.json',
    ]);
    expect(Array.from(files[1]!.data.subarray(0, 4))).toEqual([0x89, 0x50, 0x4e, 0x47]);
    expect(Array.from(files[3]!.data.subarray(0, 4))).toEqual([0x89, 0x50, 0x4e, 0x47]);
    expect(markdown).not.toContain('## The extended recipes'); // no ablation without --experiments extended
  });

  it('the extended ablation table: each ingredient alone and removed, the choice by validation, test once', () => {
    // Made-up scores, so that each cell can be told apart: validation 0.98 + i/1000, test 0.97 + i/1000, i·10 s.
    const names = ['adam+batchnorm+decay+augment', ...EXTENDED_VARIANTS.map((variant) => variant.name)];
    const results = names.map((name, i) => scored(name, 0.98 + i / 1000, 0.97 + i / 1000, i * 10));
    const result = assembleExperiments(results, { ...tiny, experiments: 'extended' }, dataset);
    expect(result.bestCombination?.name).toBe('teacher-2'); // the highest validation accuracy, i = 12
    const { markdown } = experimentsReport(result);
    const lines = markdown.split('\n');
    expect(lines).toContain('| elastic | 98.10% | 97.10% | 10 s | 98.70% | 97.70% | 70 s |'); // base+elastic i = 1, all-but-elastic i = 7
    expect(lines).toContain('| distillation | 98.50% | 97.50% | 50 s | 99.10% | 98.10% | 110 s |');
    expect(lines).toContain(
      '**Chosen by validation: teacher-2**, validation 99.20%; its test accuracy, reported once: **98.20%**, short of the 99.0% the extended recipes aim for.',
    );
    expect(markdown).toContain('and removed from `all`, which has every one (validation 98.60%, test 97.60%, 60 s)');
    expect(markdown).toContain(
      "Distillation's teachers: all-but-distillation (validation 99.10%, test 98.10%), teacher-2 (validation 99.20%, test 98.20%).",
    );
    expect(experimentsMetrics(result).variants['all-but-long']!.ablation).toEqual({ role: 'without', ingredient: 'long schedule' });
  });

  it('stops at the next batch when its signal is aborted, leaving no tensors behind', async () => {
    const controller = new AbortController();
    const before = tf.memory().numTensors;
    setTimeout(() => controller.abort(), 100);
    const big = { ...tiny, epochs: 50 }; // far longer than the 100 ms before the abort
    await expect(runVariant('adam', dataset, init, big, { progress: silentProgress(), signal: controller.signal })).rejects.toThrow(
      /^adam training interrupted in epoch \d+, batch \d+$/,
    );
    expect(tf.memory().numTensors).toBe(before);
  });

  it('is reproducible, seeded dropout included', async () => {
    const first = await runVariant('dropout', dataset, init, tiny, hooks);
    const second = await runVariant('dropout', dataset, init, tiny, hooks);
    expect(second.history[0]!.loss).toBe(first.history[0]!.loss);
    expect(second.testAccuracy).toBe(first.testAccuracy);
  });
});

/** A variant's result with made-up scores, for the choice and the tables. */
function scored(name: string, val: number, test: number, trainSeconds = 1): VariantResult {
  const variant = findVariant(name);
  return {
    name,
    description: variant.description,
    kind: variant.kind,
    recipe: variant.recipe,
    backend: 'wasm',
    history: [],
    trainSeconds,
    valAccuracy: val,
    valLoss: 0.1,
    testAccuracy: test,
    testLoss: 0.1,
    testConfusionMatrix: [],
    params: init.params,
  };
}

describe('choosing the best combination', () => {
  it('uses validation accuracy only, never test accuracy, and ignores single changes', () => {
    const chosen = assembleExperiments(
      [
        scored('adam', 0.999, 0.999), // a single change: not a candidate
        scored('adam+decay+augment', 0.984, 0.979), // best on validation
        scored('momentum+decay+augment', 0.982, 0.985), // best on test
      ],
      tiny,
      dataset,
    );
    expect(chosen.bestCombination?.name).toBe('adam+decay+augment');
    expect(experimentsMetrics(chosen).best_combination).toMatchObject({
      name: 'adam+decay+augment',
      recipe: findVariant('adam+decay+augment').description,
      chosen_by: 'validation accuracy',
      val_accuracy: 0.984,
      test_accuracy: 0.979,
      reaches_target: false,
    });
    expect(chosen.reachedTarget).toEqual(['adam', 'momentum+decay+augment']);
    expect(chosen.targetTestAccuracy).toBe(TARGET_TEST_ACCURACY);
    expect(experimentsReport(chosen).markdown).toContain('it falls short of the 98.0% test target');
    // --experiments extended aims at 99%: the full run's choice, 9,899 of 10,000 test images, falls short by one.
    const extended = assembleExperiments(
      [scored('all-but-smoothing', 0.9902, 0.9899), scored('base+long', 0.99, 0.9905)],
      { ...tiny, experiments: 'extended' },
      dataset,
    );
    expect(extended.targetTestAccuracy).toBe(EXTENDED_TARGET_TEST_ACCURACY);
    expect(extended.reachedTarget).toEqual(['base+long']);
    expect(experimentsMetrics(extended).best_combination).toMatchObject({
      name: 'all-but-smoothing',
      test_accuracy: 0.9899,
      reaches_target: false,
    });
    expect(experimentsReport(extended).markdown).toContain('it falls short of the 99.0% test target');
    const none = assembleExperiments([scored('baseline', 0.9, 0.9)], tiny, dataset);
    expect(none.bestCombination).toBeNull();
    expect(experimentsMetrics(none).best_combination).toBeNull();
  });
});
