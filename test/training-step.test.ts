// The written-out training step (pipeline/tfjs/training-step.ts) against the taped step it
// replaced, kept as the oracle (test/helpers/taped-step.ts): the same gradients and weights bit
// for bit for the dense network under every optimizer and with dropout; for batch norm, which
// runs on the host in float64, the same loss, gradients and moving statistics to float32
// rounding, its backward also checked against central finite differences in float64.

import * as tf from '@tensorflow/tfjs';
import { findVariant } from '../pipeline/experiments/variants.js';
import { initialWeights } from '../pipeline/stages/init.js';
import { defaultDataDir, loadMnist } from '../pipeline/stages/load.js';
import { preprocessDataset } from '../pipeline/stages/preprocess.js';
import { batchBuffers, fillBatch } from '../pipeline/stages/train.js';
import { selectBackend } from '../pipeline/tfjs/backend.js';
import { crossEntropy } from '../pipeline/tfjs/model.js';
import { createOptimizer } from '../pipeline/tfjs/optimizers.js';
import { buildRecipeModel } from '../pipeline/tfjs/recipe-model.js';
import {
  batchNormReluBackward,
  batchNormReluForward,
  createTrainingStep,
  softmaxCrossEntropyBackward,
} from '../pipeline/tfjs/training-step.js';
import type { Dataset } from '../pipeline/types.js';
import { mulberry32 } from '../reference/random.js';
import { K } from '../reference/shapes.js';
import { expectAllClose, maxAbs } from './helpers/numeric.js';
import { tapedStep } from './helpers/taped-step.js';

const BATCH = 64;
const ROWS = [64, 64, 64, 64, 64, 40]; // the last batch short, and not a power of two: −1/B rounds
const LR = 0.05;

let dataset: Dataset;
beforeAll(async () => {
  await selectBackend('wasm');
  dataset = preprocessDataset(loadMnist(defaultDataDir()), 400, 10, 10);
});

/** What one optimizer update was given: each gradient, copied, in the order received. */
interface Update {
  names: string[];
  gradients: Float32Array[];
}

/** Passes each update on to `inner`, recording it. */
class Recording extends tf.Optimizer {
  updates: Update[] = [];

  constructor(private readonly inner: tf.Optimizer) {
    super();
  }

  override applyGradients(variableGradients: Parameters<tf.Optimizer['applyGradients']>[0]): void {
    const entries = Array.isArray(variableGradients)
      ? variableGradients.map(({ name, tensor }) => [name, tensor] as const)
      : Object.entries(variableGradients);
    this.updates.push({
      names: entries.map(([name]) => name),
      gradients: entries.map(([, tensor]) => Float32Array.from(tensor.dataSync() as Float32Array)),
    });
    this.inner.applyGradients(variableGradients);
  }

  override getConfig(): tf.serialization.ConfigDict {
    return this.inner.getConfig();
  }

  override dispose(): void {
    this.inner.dispose();
    super.dispose();
  }
}

/** A variable's name without the suffix TF.js adds to tell two models' variables apart. */
const weightName = (name: string) => name.replace(/_\d+$/, '');

/** Fails at the first value whose bits differ (NaN counts as equal to NaN, −0 differs from 0), naming it. */
function expectSameBits(actual: Float32Array, expected: Float32Array, what: string): void {
  if (actual.length !== expected.length) throw new Error(`${what}: length ${actual.length}, expected ${expected.length}`);
  const index = actual.findIndex((value, i) => !Object.is(value, expected[i]));
  if (index >= 0) throw new Error(`${what}[${index}]: ${actual[index]} vs expected ${expected[index]}`);
}

/** The model's weights (trainable and moving statistics), copied. */
const weightsOf = (model: tf.LayersModel) => model.getWeights().map((w) => Float32Array.from(w.dataSync() as Float32Array));

/** Trains two models of `variant` side by side, one taped and one written out, calling `compare` after each step. */
function sideBySide(
  variant: string,
  compare: (step: number, taped: { loss: number; correct: number; update: Update; weights: Float32Array[] }, written: typeof taped) => void,
): void {
  const { recipe } = findVariant(variant);
  const init = initialWeights(3).params;
  const before = tf.memory().numTensors;
  const [tapedModel, writtenModel] = [buildRecipeModel(init, recipe, 5), buildRecipeModel(init, recipe, 5)];
  const [tapedOptimizer, writtenOptimizer] = [0, 1].map(() => new Recording(createOptimizer(recipe.optimizer, LR)));
  const writtenStep = createTrainingStep(writtenModel, writtenOptimizer!, BATCH);
  const batch = batchBuffers(BATCH);
  try {
    let start = 0;
    for (const [step, rows] of ROWS.entries()) {
      fillBatch(
        batch,
        dataset.train,
        Uint32Array.from({ length: rows }, (_, r) => start + r),
      );
      start += rows;
      const taped = tapedStep(tapedModel, tapedOptimizer!, batch.images, batch, rows);
      const written = writtenStep(batch.images, batch, rows);
      compare(
        step,
        { ...taped, update: tapedOptimizer!.updates.at(-1)!, weights: weightsOf(tapedModel) },
        { ...written, update: writtenOptimizer!.updates.at(-1)!, weights: weightsOf(writtenModel) },
      );
    }
  } finally {
    [tapedModel, writtenModel, tapedOptimizer!, writtenOptimizer!].forEach((disposable) => disposable.dispose());
  }
  expect(tf.memory().numTensors).toBe(before); // neither step leaves a tensor behind
}

describe('the written-out step against the taped one', () => {
  it.each(['baseline', 'momentum', 'adam', 'dropout'])(
    '%s: the same gradients, in the same order, and the same weights, bit for bit, step after step',
    (variant) => {
      sideBySide(variant, (step, taped, written) => {
        expect([step, written.correct]).toEqual([step, taped.correct]);
        expect(Math.abs(written.loss - taped.loss)).toBeLessThan(1e-6 * taped.loss); // float64 on the host, float32 in TF.js
        expect(written.update.names.map(weightName)).toEqual(taped.update.names.map(weightName));
        taped.update.gradients.forEach((gradient, i) =>
          expectSameBits(written.update.gradients[i]!, gradient, `step ${step}, gradient of ${taped.update.names[i]}`),
        );
        taped.weights.forEach((weights, i) => expectSameBits(written.weights[i]!, weights, `step ${step}, weight ${i}`));
      });
    },
  );

  it("batch norm: TF.js layer's loss, gradients and moving statistics to float32 rounding, step after step", () => {
    const names = ['dense1/kernel', 'dense1/bias', 'batchnorm1/gamma', 'batchnorm1/beta', 'dense2/kernel', 'dense2/bias'];
    sideBySide('batchnorm', (step, taped, written) => {
      expect([step, written.correct]).toEqual([step, taped.correct]);
      expect(Math.abs(written.loss - taped.loss)).toBeLessThan(1e-5 * taped.loss);
      expect(written.update.names.map(weightName)).toEqual(taped.update.names.map(weightName));
      expect(taped.update.names.slice(0, 6).map(weightName)).toEqual(names);
      taped.update.gradients.forEach((gradient, i) => {
        const what = `step ${step}, gradient of ${taped.update.names[i]}`;
        // A dense bias before batch norm has a zero gradient in exact arithmetic: both sides hold rounding noise.
        const scale = weightName(taped.update.names[i]!).match(/^dense[12]\/bias$/)
          ? maxAbs(taped.update.gradients[i - 1]!)
          : maxAbs(gradient);
        expectAllClose(written.update.gradients[i]!, gradient, GRADIENT_TOLERANCE * scale, what);
      });
      // getWeights: dense1 kernel, bias; batchnorm1 γ, β, moving mean, moving variance; dense2 …
      taped.weights.forEach((weights, i) =>
        expectAllClose(written.weights[i]!, weights, WEIGHT_TOLERANCE * Math.max(1, maxAbs(weights)), `step ${step}, weight ${i}`),
      );
    });
  });
});

/** Relative to the tensor's largest entry: TF.js's float32 kernels against float64 here differ by up to 6e-7 (measured). */
const GRADIENT_TOLERANCE = 5e-6;
/** Relative to the tensor's largest entry, or absolute below 1: a step moves a weight by ~1e-3, float32 rounding by ~1e-7 (measured). */
const WEIGHT_TOLERANCE = 1e-6;

describe('softmax and cross-entropy backward on the host', () => {
  it("is TF.js's gradient of crossEntropy(y, softmax(logits)) bit for bit, and its loss", () => {
    const random = mulberry32(11);
    for (const rows of [64, 40, 3]) {
      const logits = Float32Array.from({ length: rows * K }, () => (random() - 0.5) * 12);
      const oneHot = new Float32Array(rows * K);
      for (let r = 0; r < rows; r++) oneHot[r * K + Math.floor(random() * K)] = 1;
      const [expected, loss, p] = tf.tidy(() => {
        const x = tf.tensor2d(logits, [rows, K]);
        const y = tf.tensor2d(oneHot, [rows, K]);
        const gradient = tf.grad((z: tf.Tensor) => crossEntropy(y, tf.softmax(z) as tf.Tensor2D))(x);
        return [
          gradient.dataSync() as Float32Array,
          crossEntropy(y, tf.softmax(x) as tf.Tensor2D).dataSync()[0]!,
          tf.softmax(x).dataSync() as Float32Array,
        ];
      });
      const dLogits = new Float32Array(rows * K);
      const hostLoss = softmaxCrossEntropyBackward(dLogits, p, oneHot, rows);
      expectSameBits(dLogits, expected, `dLogits of ${rows} rows`);
      expect(Math.abs(hostLoss - loss)).toBeLessThan(1e-6 * loss);
    }
  });
});

describe('batch norm + ReLU on the host', () => {
  const [B, H, epsilon] = [6, 4, 1e-3];
  const random = mulberry32(7);
  const values = (n: number, scale: number, offset = 0) => Float64Array.from({ length: n }, () => offset + (random() - 0.5) * scale);
  const h = values(B * H, 4); // (B, H)
  const gamma = values(H, 1, 1); // (H), around 1
  const beta = values(H, 1); // (H)
  const upstream = values(B * H, 2); // (B, H): L = Σ upstream·a, so dL/da = upstream

  /** The loss L and the forward's buffers at (h, γ, β). */
  function forward(hIn: Float64Array, gammaIn: Float64Array, betaIn: Float64Array) {
    const [a, normalized] = [new Float64Array(B * H), new Float64Array(B * H)];
    const [mean, variance] = [new Float64Array(H), new Float64Array(H)];
    batchNormReluForward(a, normalized, mean, variance, hIn, gammaIn, betaIn, epsilon, B);
    return { loss: a.reduce((sum, value, i) => sum + value * upstream[i]!, 0), a, normalized, mean, variance };
  }

  it('normalises each unit over the batch: mean 0 and variance σ²/(σ² + ε) before γ and β', () => {
    const { normalized, mean, variance } = forward(h, gamma, beta);
    for (let j = 0; j < H; j++) {
      const column = Array.from({ length: B }, (_, r) => normalized[r * H + j]!);
      const rawMean = Array.from({ length: B }, (_, r) => h[r * H + j]!).reduce((x, y) => x + y) / B;
      expect(mean[j]).toBeCloseTo(rawMean, 14);
      expect(column.reduce((x, y) => x + y) / B).toBeCloseTo(0, 14);
      expect(column.reduce((x, y) => x + y * y, 0) / B).toBeCloseTo(variance[j]! / (variance[j]! + epsilon), 12);
    }
  });

  it('has the gradients of central finite differences in float64, for h, γ and β', () => {
    const { a, normalized, variance } = forward(h, gamma, beta);
    expect(a.filter((value) => value === 0).length).toBeGreaterThan(0); // some units are cut by the ReLU …
    expect(a.filter((value) => value > 0).length).toBeGreaterThan(0); // … and some pass
    const [dh, dGamma, dBeta] = [new Float64Array(B * H), new Float64Array(H), new Float64Array(H)];
    batchNormReluBackward(dh, dGamma, dBeta, upstream, normalized, a, variance, gamma, epsilon, B);
    const step = 1e-6;
    const numeric = (input: Float64Array, at: (x: Float64Array) => number) =>
      Float64Array.from(input, (_, i) => {
        const [plus, minus] = [Float64Array.from(input), Float64Array.from(input)];
        plus[i]! += step;
        minus[i]! -= step;
        return (at(plus) - at(minus)) / (2 * step);
      });
    expectAllClose(
      dh,
      numeric(h, (x) => forward(x, gamma, beta).loss),
      1e-7 * maxAbs(dh),
      'dL/dh',
    );
    expectAllClose(
      dGamma,
      numeric(gamma, (x) => forward(h, x, beta).loss),
      1e-7 * maxAbs(dGamma),
      'dL/dγ',
    );
    expectAllClose(
      dBeta,
      numeric(beta, (x) => forward(h, gamma, x).loss),
      1e-7 * maxAbs(dBeta),
      'dL/dβ',
    );
  });
});
