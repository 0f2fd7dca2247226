// The best model's export: batch norm folded into the dense layers gives the
// plain 784-128-64-10 spec network, with the trained network's probabilities
// (to float32 noise) and the test accuracy the experiments record.

import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { K } from '../reference/shapes.js';
import { DEFAULTS } from '../pipeline/config.js';
import { runVariant } from '../pipeline/stages/experiments.js';
import { findVariant } from '../pipeline/experiments/variants.js';
import { defaultDataDir, loadMnist } from '../pipeline/stages/load.js';
import { preprocessDataset } from '../pipeline/stages/preprocess.js';
import { silentProgress } from '../pipeline/progress.js';
import { selectBackend } from '../pipeline/tfjs/backend.js';
import { loadModel, modelFiles } from '../pipeline/tfjs/model-io.js';
import { lossAndAccuracy, modelWithParams, predictProbabilities } from '../pipeline/tfjs/model.js';
import { buildRecipeModel, exportParams, foldBatchNorm } from '../pipeline/tfjs/recipe-model.js';
import { initialWeights } from '../pipeline/stages/init.js';
import { trainTfjs } from '../pipeline/stages/train.js';
import type { Dataset, InitialWeights } from '../pipeline/types.js';

let dataset: Dataset;
let init: InitialWeights;
const tiny = { ...DEFAULTS, epochs: 1 };

beforeAll(async () => {
  await selectBackend('wasm');
  dataset = preprocessDataset(loadMnist(defaultDataDir()), 640, 300, 1000);
  init = initialWeights(DEFAULTS.seed);
});

/** Probabilities agree to float32 noise: each within this of the other. */
const PROBABILITY_TOLERANCE = 1e-5;

function expectSameProbabilities(folded: Float32Array, trained: Float32Array): void {
  let worst = 0;
  let at = 0;
  folded.forEach((value, i) => {
    const difference = Math.abs(value - trained[i]!);
    if (!(difference <= worst)) [worst, at] = [difference, i];
  });
  if (!(worst <= PROBABILITY_TOLERANCE)) {
    throw new Error(
      `image ${Math.floor(at / K)}, digit ${at % K}: folded ${folded[at]} vs trained ${trained[at]}, difference ${worst} > ${PROBABILITY_TOLERANCE}`,
    );
  }
}

describe('folding batch norm', () => {
  it('is the affine map per unit: W·γ/σ and (b − μ)·γ/σ + β', () => {
    const kernel = Float32Array.from([1, 2, 3, 4, 5, 6]); // (In = 3, Out = 2)
    const bias = Float32Array.from([0.5, -1]);
    const norm = {
      gamma: Float32Array.from([2, 0.5]),
      beta: Float32Array.from([0.1, 0.2]),
      movingMean: Float32Array.from([1, -2]),
      movingVariance: Float32Array.from([3, 0.25]),
      epsilon: 1,
    };
    const { kernel: w, bias: b } = foldBatchNorm(kernel, bias, norm);
    const scale = [2 / 2, 0.5 / Math.sqrt(1.25)]; // γ/√(var + ε)
    expect(Array.from(w)).toEqual([1, 2, 3, 4, 5, 6].map((value, i) => Math.fround(value * scale[i % 2]!)));
    expect(Array.from(b)).toEqual([Math.fround((0.5 - 1) * scale[0]! + 0.1), Math.fround((-1 + 2) * scale[1]! + 0.2)]);
  });

  it('gives the probabilities of a batch-norm network with far-from-identity statistics', () => {
    const model = buildRecipeModel(init.params, findVariant('batchnorm').recipe, 1);
    for (const name of ['batchnorm1', 'batchnorm2']) {
      const layer = model.getLayer(name);
      const units = layer.getWeights()[0]!.shape[0]!;
      const values = [
        tf.randomUniform([units], 0.5, 2, 'float32', 1),
        tf.randomNormal([units], 0, 0.5, 'float32', 2),
        tf.randomNormal([units], 0, 1, 'float32', 3),
        tf.randomUniform([units], 0.1, 4, 'float32', 4),
      ];
      layer.setWeights(values); // γ, β, moving mean, moving variance
      tf.dispose(values);
    }
    const folded = modelWithParams(exportParams(model));
    const { images, count } = dataset.test;
    expectSameProbabilities(predictProbabilities(folded, images, count), predictProbabilities(model, images, count));
    expect(folded.layers.map((layer) => layer.name)).toEqual(['dense1', 'dense2', 'dense3']);
    folded.dispose();
    model.dispose();
  });

  it('on a trained batch-norm variant: the same probabilities and test accuracy, saved and read back as the plain spec network', async () => {
    const variant = findVariant('adam+batchnorm+decay+augment');
    let trainedProbabilities: Float32Array | undefined;
    const trained = await trainTfjs(
      dataset,
      init,
      { ...tiny, recipe: variant.recipe, label: variant.name },
      {
        progress: silentProgress(),
        onTrained: (model) => {
          trainedProbabilities = predictProbabilities(model, dataset.test.images, dataset.test.count);
        },
      },
    );
    const folded = modelWithParams(trained.params);
    const foldedProbabilities = predictProbabilities(folded, dataset.test.images, dataset.test.count);
    folded.dispose();
    expectSameProbabilities(foldedProbabilities, trainedProbabilities!);
    const foldedAccuracy = lossAndAccuracy(foldedProbabilities, dataset.test.labels).accuracy;
    expect(foldedAccuracy).toBe(lossAndAccuracy(trainedProbabilities!, dataset.test.labels).accuracy);

    // The experiment records the accuracy of exactly these weights, and the saved folder reads back to it.
    const recorded = await runVariant(variant.name, dataset, init, tiny, { progress: silentProgress() });
    expect(Array.from(recorded.params.w1)).toEqual(Array.from(trained.params.w1));
    expect(recorded.testAccuracy).toBe(foldedAccuracy);
    const dir = mkdtempSync(path.join(os.tmpdir(), 'best-model-'));
    try {
      for (const file of await modelFiles(recorded.params, 'model/best')) {
        mkdirSync(path.dirname(path.join(dir, file.path)), { recursive: true });
        writeFileSync(path.join(dir, file.path), file.data);
      }
      const loaded = await loadModel(path.join(dir, 'model/best'));
      expect(loaded.layers.map((layer) => [layer.getClassName(), layer.name])).toEqual([
        ['Dense', 'dense1'],
        ['Dense', 'dense2'],
        ['Dense', 'dense3'],
      ]);
      const reloaded = lossAndAccuracy(predictProbabilities(loaded, dataset.test.images, dataset.test.count), dataset.test.labels).accuracy;
      loaded.dispose();
      expect(reloaded).toBe(recorded.testAccuracy);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
