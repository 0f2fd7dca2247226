// The network a training recipe trains, and the plain network it exports.
// Still the three dense layers 784-128-64-10 of the spec (same names); batch
// norm and dropout go between them when the recipe asks:
//
//   dense1 ─[batchnorm1 ─ relu1]─[dropout1]─ dense2 ─[batchnorm2 ─ relu2]─[dropout2]─ dense3 (softmax)
//
// The layers hold the weights and run inference; training-step.ts trains them
// (batch norm on the host, its moving statistics written back to the layer).
// At inference dropout is the identity and batch norm an affine map per unit,
// so the trained stack folds into the spec's plain dense network (foldBatchNorm).
//
// In = a layer's inputs, Out = its units.

import * as tf from '@tensorflow/tfjs';
import { deriveSeed } from '../../reference/random.js';
import { D, H1, H2, K, type Params } from '../../reference/shapes.js';
import type { TrainingRecipe } from '../experiments/variants.js';
import { LAYER_NAMES, readParams } from './model.js';

/**
 * tf.layers.dropout with a fixed seed draws the same mask at every step, and
 * without one it is unseeded; this layer derives a new seed for each training call,
 * and for each mask the training step (training-step.ts) draws.
 */
export class SeededDropout extends tf.layers.Layer {
  static readonly className = 'SeededDropout';
  private calls = 0;

  constructor(
    private readonly rate: number,
    private readonly seed: number,
    name: string,
  ) {
    super({ name });
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape | tf.Shape[] {
    return inputShape;
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>): tf.Tensor {
    const x = Array.isArray(inputs) ? inputs[0]! : inputs;
    if (kwargs.training !== true || this.rate === 0) return x;
    return tf.dropout(x, this.rate, undefined, this.nextSeed());
  }

  /** The next training call's mask scaled by 1/(1 − rate), made as tf.dropout makes it: ⌊u + keep⌋/keep, u uniform in [0, 1). */
  nextMultiplier(shape: number[]): tf.Tensor {
    const keep = 1 - this.rate;
    const seed = this.nextSeed();
    return tf.tidy(() => tf.div(tf.floor(tf.add(tf.randomUniform(shape, 0, 1, 'float32', seed), keep)), keep));
  }

  private nextSeed(): number {
    return deriveSeed(this.seed, this.calls++);
  }
}

export const batchNormName = (layer: number) => `batchnorm${layer + 1}`;
export const dropoutName = (layer: number) => `dropout${layer + 1}`;

/** The recipe's layer stack, its three dense layers holding `params`. The spec recipe gives the spec model. */
export function buildRecipeModel(params: Params, recipe: TrainingRecipe, seed: number): tf.Sequential {
  const model = tf.sequential({ name: recipe.batchNorm || recipe.dropout > 0 ? 'mnist_dense_variant' : 'mnist_dense' });
  const units = [H1, H2, K];
  const kernels = [params.w1, params.w2, params.w3];
  const biases = [params.b1, params.b2, params.b3];
  const inputs = [D, H1, H2];
  for (let layer = 0; layer < 3; layer++) {
    const hidden = layer < 2;
    const dense = tf.layers.dense({
      name: LAYER_NAMES[layer],
      units: units[layer]!,
      activation: !hidden ? 'softmax' : recipe.batchNorm ? 'linear' : 'relu',
      ...(layer === 0 ? { inputShape: [D] } : {}),
    });
    model.add(dense);
    const weights = [tf.tensor2d(kernels[layer]!, [inputs[layer]!, units[layer]!]), tf.tensor1d(biases[layer]!)];
    dense.setWeights(weights);
    tf.dispose(weights);
    if (!hidden) continue;
    if (recipe.batchNorm) {
      model.add(tf.layers.batchNormalization({ name: batchNormName(layer) }));
      model.add(tf.layers.activation({ name: `relu${layer + 1}`, activation: 'relu' }));
    }
    if (recipe.dropout > 0) model.add(new SeededDropout(recipe.dropout, deriveSeed(seed, 0xd0 + layer), dropoutName(layer)));
  }
  return model;
}

/** A batch-norm layer's inference parameters, each (Out). */
export interface BatchNormParams {
  gamma: Float32Array;
  beta: Float32Array;
  movingMean: Float32Array;
  movingVariance: Float32Array;
  epsilon: number;
}

/**
 * Folds inference-time batch norm into the dense layer before it:
 * W' = W·γ/σ, b' = (b − μ)·γ/σ + β with σ = √(movingVariance + ε), per unit.
 * `kernel` is (In, Out) row-major, `bias` (Out); computed in float64, stored in float32.
 */
export function foldBatchNorm(
  kernel: Float32Array,
  bias: Float32Array,
  norm: BatchNormParams,
): { kernel: Float32Array; bias: Float32Array } {
  const Out = bias.length;
  const In = kernel.length / Out;
  if (!Number.isInteger(In) || norm.gamma.length !== Out)
    throw new Error(`foldBatchNorm: kernel of ${kernel.length} values does not fit ${Out} units`);
  const scale = Array.from({ length: Out }, (_, j) => norm.gamma[j]! / Math.sqrt(norm.movingVariance[j]! + norm.epsilon)); // γ/σ
  const folded = new Float32Array(kernel.length); // (In, Out)
  for (let i = 0; i < In; i++) for (let j = 0; j < Out; j++) folded[i * Out + j] = kernel[i * Out + j]! * scale[j]!;
  const foldedBias = Float32Array.from(bias, (b, j) => (b - norm.movingMean[j]!) * scale[j]! + norm.beta[j]!); // (Out)
  return { kernel: folded, bias: foldedBias };
}

/** The trained weights as the spec's plain dense network: batch norm folded in, dropout dropped. */
export function exportParams(model: tf.LayersModel): Params {
  const norms = [0, 1].map((layer) => model.layers.find((candidate) => candidate.name === batchNormName(layer)));
  if (norms.every((norm) => norm === undefined)) return readParams(model);
  const dense = LAYER_NAMES.map((name) =>
    model
      .getLayer(name)
      .getWeights()
      .map((w) => Float32Array.from(w.dataSync() as Float32Array)),
  );
  const layers = dense.map(([kernel, bias], layer) => {
    const norm = norms[layer];
    if (norm === undefined) return { kernel: kernel!, bias: bias! };
    const [gamma, beta, movingMean, movingVariance] = norm.getWeights().map((w) => Float32Array.from(w.dataSync() as Float32Array));
    const { epsilon } = norm.getConfig() as { epsilon: number };
    return foldBatchNorm(kernel!, bias!, { gamma: gamma!, beta: beta!, movingMean: movingMean!, movingVariance: movingVariance!, epsilon });
  });
  const [l1, l2, l3] = layers;
  return { w1: l1!.kernel, b1: l1!.bias, w2: l2!.kernel, b2: l2!.bias, w3: l3!.kernel, b3: l3!.bias };
}
