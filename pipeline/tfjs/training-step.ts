// The training step of every recipe, forward and backward written out (issue 24).
//
//   x (B, D) → dense1 → h1 (B, H1) ─[batch norm]→ ReLU → a1 ─[dropout]→ dense2 → h2 (B, H2)
//            ─[batch norm]→ ReLU → a2 ─[dropout]→ dense3 → logits (B, K) → softmax → p → cross-entropy with y
//
// optimizer.minimize over model.apply recorded every op on a tape and differentiated the loss
// as TF.js composes it: 90 kernels a step for the spec network, 282 with batch norm, on wasm
// each with a fixed cost. Written out, a step runs the 8 matmuls it needs and ~25 small kernels
// (bench/tfjs-step.ts). Each operation's backward sits beside its forward:
//
//   dense, ReLU, dropout   tf ops on the backend: the same kernels, on the same operands, as
//                          TF.js's own gradients (tfjs-core's BatchMatMul, Add, Relu, Multiply),
//                          so the weights are bit for bit those of optimizer.minimize, which
//                          test/training-step.test.ts keeps as the oracle
//   softmax+cross-entropy  on the host: p is read anyway to count the correct digits, and the
//                          gradient TF.js would take through log, sum and softmax is a few float32
//                          operations a row, done here in the same order (Math.fround after each)
//   batch norm + ReLU      on the host, one pass forward and one back per layer (as the fused Adam
//                          of optimizers.ts): TF.js's layer took ~95 kernels a layer for it
//
// The layers model stays the holder of the variables: the optimizer updates them by name, and
// inference, validation and the export (recipe-model.ts) read them as before.
//
// B = batch (the step's rows), D = 784, H = a hidden layer's units, K = 10.

import * as tf from '@tensorflow/tfjs';
import type { BatchResult } from '../../reference/epochs.js';
import { argmax } from '../../reference/network.js';
import { D, K, type FloatArray } from '../../reference/shapes.js';
import { LAYER_NAMES } from './model.js';
import { batchNormName, dropoutName, type SeededDropout } from './recipe-model.js';

/** A batch's labels, row-major: rows beyond the step's are ignored. */
export interface BatchLabels {
  oneHot: Float32Array; // (B, K)
  labels: Uint8Array; // (B)
}

/** One optimizer step on the first `rows` rows of `images` (B, D) and `batch`; returns the mean loss and the correct count. */
export type TrainingStep = (images: Float32Array, batch: BatchLabels, rows: number) => BatchResult;

// ---------------------------------------------------------------------------
// Dense: h = x·W + b. TF.js's layer, under a gradient tape, runs matMul then add.

function denseForward(x: tf.Tensor2D, kernel: tf.Variable<tf.Rank.R2>, bias: tf.Variable<tf.Rank.R1>): tf.Tensor2D {
  return tf.add(tf.matMul(x, kernel), bias);
}

/** dW = xᵀ·dh, db = Σ_rows dh and, when the layer below needs it, dx = dh·Wᵀ. */
function denseBackward(
  x: tf.Tensor2D,
  kernel: tf.Variable<tf.Rank.R2>,
  dh: tf.Tensor2D,
  inputGradient: boolean,
): { dKernel: tf.Tensor2D; dBias: tf.Tensor1D; dx: tf.Tensor2D | undefined } {
  return {
    dKernel: tf.matMul(x, dh, true, false),
    dBias: tf.sum(dh, 0),
    dx: inputGradient ? tf.matMul<tf.Tensor2D>(dh, kernel, false, true) : undefined,
  };
}

// ---------------------------------------------------------------------------
// ReLU: a = max(h, 0); its gradient passes where h > 0.

function reluForward(h: tf.Tensor2D): tf.Tensor2D {
  return tf.relu(h);
}

function reluBackward(h: tf.Tensor2D, da: tf.Tensor2D): tf.Tensor2D {
  return tf.mul(da, tf.step(h));
}

// ---------------------------------------------------------------------------
// Dropout: a·m, with m the layer's mask scaled by 1/(1 − rate); the gradient is masked alike.

function dropoutForward(a: tf.Tensor2D, multiplier: tf.Tensor2D): tf.Tensor2D {
  return tf.mul(a, multiplier);
}

function dropoutBackward(da: tf.Tensor2D, multiplier: tf.Tensor2D): tf.Tensor2D {
  return tf.mul(da, multiplier);
}

// ---------------------------------------------------------------------------
// Softmax and cross-entropy, backward, on the host.

/**
 * The mean loss −(1/B)·Σ log p[true digit], in float64, and into `dLogits` (B, K) its gradient
 * with respect to the logits as TF.js computes it in float32 through crossEntropy (model.ts) and
 * softmax, one rounding per kernel: with s = Σₖ y·p, g = (−1/B)/s, dp = g·y,
 * dLogits = dp·p − (Σₖ dp·p)·p. (With one-hot y one term of each sum is non-zero, so the
 * order TF.js sums in does not matter.) Not simply (p − y)/B, which rounds differently.
 */
export function softmaxCrossEntropyBackward(dLogits: FloatArray, p: FloatArray, y: FloatArray, rows: number): number {
  const f = Math.fround;
  const meanGradient = f(-1 / rows); // the gradients of −mean
  let loss = 0;
  for (let r = 0; r < rows; r++) {
    const row = r * K;
    let s = 0;
    for (let k = 0; k < K; k++) s = f(s + f(y[row + k]! * p[row + k]!));
    loss -= Math.log(s);
    const g = f(meanGradient / s); // through log
    let dot = 0;
    for (let k = 0; k < K; k++) {
      const dpTimesP = f(f(g * y[row + k]!) * p[row + k]!); // through Σₖ y·p, then softmax's dp·p
      dLogits[row + k] = dpTimesP;
      dot = f(dot + dpTimesP);
    }
    for (let k = 0; k < K; k++) dLogits[row + k] = f(dLogits[row + k]! - f(dot * p[row + k]!));
  }
  return loss / rows;
}

/**
 * The mean cross-entropy −(1/B)·Σ_b Σₖ y·log p against soft targets y (label smoothing, distillation;
 * each row sums to 1), in float64, and into `dLogits` (B, K) its gradient (p − y)/B.
 */
export function softCrossEntropyBackward(dLogits: FloatArray, p: FloatArray, y: FloatArray, rows: number): number {
  let loss = 0;
  for (let i = 0; i < rows * K; i++) {
    if (y[i]! !== 0) loss -= y[i]! * Math.log(Math.max(p[i]!, 1e-7)); // the floor of lossAndAccuracy (model.ts)
    dLogits[i] = (p[i]! - y[i]!) / rows;
  }
  return loss / rows;
}

// ---------------------------------------------------------------------------
// Batch norm then ReLU, for training, on the host. Per unit j over the batch's B rows:
//
//   forward   μ = mean h, σ² = mean (h − μ)² (biased, as TF.js), ĥ = (h − μ)/√(σ² + ε), a = max(γ·ĥ + β, 0)
//   backward  dy = da where a > 0, else 0;  dβ = Σ dy;  dγ = Σ dy·ĥ;
//             dh = γ/√(σ² + ε) · (dy − dβ/B − ĥ·dγ/B)
//
// In float64; what is uploaded is rounded to float32 there.

/** Batch statistics of `h` (B, H) into mean and variance (H); ĥ into `normalized` and the ReLU output into `a` (B, H). */
export function batchNormReluForward(
  a: FloatArray, // (B, H)
  normalized: FloatArray, // (B, H), ĥ, kept for the backward
  mean: FloatArray, // (H)
  variance: FloatArray, // (H)
  h: FloatArray, // (B, H)
  gamma: FloatArray, // (H)
  beta: FloatArray, // (H)
  epsilon: number,
  rows: number,
): void {
  const H = gamma.length;
  for (let j = 0; j < H; j++) {
    let sum = 0;
    for (let r = 0; r < rows; r++) sum += h[r * H + j]!;
    const mu = sum / rows;
    let squares = 0;
    for (let r = 0; r < rows; r++) squares += (h[r * H + j]! - mu) ** 2;
    mean[j] = mu;
    variance[j] = squares / rows;
    const inverse = 1 / Math.sqrt(squares / rows + epsilon);
    for (let r = 0; r < rows; r++) {
      const hat = (h[r * H + j]! - mu) * inverse;
      normalized[r * H + j] = hat;
      a[r * H + j] = Math.max(gamma[j]! * hat + beta[j]!, 0);
    }
  }
}

/** From da (B, H) and the forward's ĥ, a and variance: dh (B, H), dγ and dβ (H). */
export function batchNormReluBackward(
  dh: FloatArray, // (B, H)
  dGamma: FloatArray, // (H)
  dBeta: FloatArray, // (H)
  da: FloatArray, // (B, H)
  normalized: FloatArray, // (B, H)
  a: FloatArray, // (B, H)
  variance: FloatArray, // (H)
  gamma: FloatArray, // (H)
  epsilon: number,
  rows: number,
): void {
  const H = gamma.length;
  for (let j = 0; j < H; j++) {
    let sumDy = 0;
    let sumDyHat = 0;
    for (let r = 0; r < rows; r++) {
      const i = r * H + j;
      const dy = a[i]! > 0 ? da[i]! : 0;
      sumDy += dy;
      sumDyHat += dy * normalized[i]!;
    }
    dBeta[j] = sumDy;
    dGamma[j] = sumDyHat;
    const scale = gamma[j]! / Math.sqrt(variance[j]! + epsilon);
    const meanDy = sumDy / rows;
    const meanDyHat = sumDyHat / rows;
    for (let r = 0; r < rows; r++) {
      const i = r * H + j;
      const dy = a[i]! > 0 ? da[i]! : 0;
      dh[i] = scale * (dy - meanDy - normalized[i]! * meanDyHat);
    }
  }
}

/**
 * A batch-norm layer of the model (tf.layers.batchNormalization, whose weights are γ, β, moving
 * mean, moving variance), trained on the host. The moving statistics follow TF.js's update,
 * m ← m − (m − batch value)·(1 − momentum), and are written back every step, so validation
 * and the export see them as after TF.js's own step.
 */
class HostBatchNorm {
  readonly gamma: tf.Variable;
  readonly beta: tf.Variable;
  private readonly movingMean: tf.Variable;
  private readonly movingVariance: tf.Variable;
  private readonly epsilon: number;
  private readonly momentum: number;
  private readonly a: Float32Array; // (B, H)
  private readonly normalized: Float64Array; // (B, H)
  private readonly dh: Float32Array; // (B, H)
  private readonly mean: Float64Array; // (H)
  private readonly variance: Float64Array; // (H)
  private gammaValues: Float32Array = new Float32Array(0); // (H), γ as the forward used it

  constructor(layer: tf.layers.Layer, batchSize: number) {
    [this.gamma, this.beta, this.movingMean, this.movingVariance] = layer.weights.map((weight) => weight.read() as tf.Variable) as [
      tf.Variable,
      tf.Variable,
      tf.Variable,
      tf.Variable,
    ];
    ({ epsilon: this.epsilon, momentum: this.momentum } = layer.getConfig() as { epsilon: number; momentum: number });
    const H = this.gamma.shape[0]!;
    this.a = new Float32Array(batchSize * H);
    this.normalized = new Float64Array(batchSize * H);
    this.dh = new Float32Array(batchSize * H);
    this.mean = new Float64Array(H);
    this.variance = new Float64Array(H);
  }

  /** a = ReLU(batch norm of h), uploaded; updates the moving statistics. */
  forward(h: tf.Tensor2D): tf.Tensor2D {
    const [rows, H] = h.shape;
    this.gammaValues = this.gamma.dataSync() as Float32Array;
    const { a, normalized, mean, variance } = this;
    const hValues = h.dataSync() as Float32Array;
    batchNormReluForward(
      a,
      normalized,
      mean,
      variance,
      hValues,
      this.gammaValues,
      this.beta.dataSync() as Float32Array,
      this.epsilon,
      rows,
    );
    this.updateMoving(this.movingMean, mean);
    this.updateMoving(this.movingVariance, variance);
    return tf.tensor2d(a.subarray(0, rows * H), [rows, H]);
  }

  /** dh, dγ and dβ from da, uploaded. */
  backward(da: tf.Tensor2D): { dh: tf.Tensor2D; dGamma: tf.Tensor1D; dBeta: tf.Tensor1D } {
    const [rows, H] = da.shape;
    const dGamma = new Float32Array(H);
    const dBeta = new Float32Array(H);
    const { dh, normalized, a, variance, epsilon } = this;
    batchNormReluBackward(dh, dGamma, dBeta, da.dataSync() as Float32Array, normalized, a, variance, this.gammaValues, epsilon, rows);
    return { dh: tf.tensor2d(dh.subarray(0, rows * H), [rows, H]), dGamma: tf.tensor1d(dGamma), dBeta: tf.tensor1d(dBeta) };
  }

  private updateMoving(variable: tf.Variable, batchValues: Float64Array): void {
    const decay = 1 - this.momentum;
    const moving = Float32Array.from(variable.dataSync() as Float32Array); // a copy of its own: the variable may keep it
    for (let j = 0; j < moving.length; j++) moving[j] = moving[j]! - (moving[j]! - batchValues[j]!) * decay;
    const next = tf.tensor1d(moving);
    variable.assign(next);
    next.dispose();
  }
}

// ---------------------------------------------------------------------------
// The step.

/** The hidden and output layers of a recipe model, as the step reads them. */
interface StepLayer {
  kernel: tf.Variable<tf.Rank.R2>;
  bias: tf.Variable<tf.Rank.R1>;
  norm?: HostBatchNorm; // batch norm + ReLU on the host; else ReLU on the backend (hidden layers only)
  dropout?: SeededDropout;
}

function stepLayers(model: tf.LayersModel, batchSize: number): StepLayer[] {
  const find = (name: string) => model.layers.find((layer) => layer.name === name);
  return LAYER_NAMES.map((name, layer) => {
    const [kernel, bias] = model.getLayer(name).weights.map((weight) => weight.read()) as [
      tf.Variable<tf.Rank.R2>,
      tf.Variable<tf.Rank.R1>,
    ];
    const norm = find(batchNormName(layer));
    const dropout = find(dropoutName(layer)) as SeededDropout | undefined;
    return { kernel, bias, ...(norm ? { norm: new HostBatchNorm(norm, batchSize) } : {}), ...(dropout ? { dropout } : {}) };
  });
}

/**
 * The training step of `model` (buildRecipeModel) under `optimizer`, for batches of at most
 * `batchSize` rows. The optimizer gets every trainable weight's gradient, in the model's
 * order, as from optimizer.minimize. With `softTargets`, batch.oneHot holds any targets whose
 * rows sum to 1 (softCrossEntropyBackward); without, one-hot labels, as TF.js differentiates them.
 */
export function createTrainingStep(model: tf.LayersModel, optimizer: tf.Optimizer, batchSize: number, softTargets = false): TrainingStep {
  const layers = stepLayers(model, batchSize);
  const trainable = model.trainableWeights.map((weight) => (weight.read() as tf.Variable).name); // the order minimize passes them in
  const dLogits = new Float32Array(batchSize * K); // (B, K)
  return (images, batch, rows) => {
    let result: BatchResult = { loss: 0, correct: 0 };
    tf.tidy(() => {
      // Forward, keeping what the backward reads: each layer's input, h and dropout mask.
      const inputs: tf.Tensor2D[] = [tf.tensor2d(images.subarray(0, rows * D), [rows, D])];
      const hs: tf.Tensor2D[] = [];
      const masks: (tf.Tensor2D | undefined)[] = [];
      for (const [layer, { kernel, bias, norm, dropout }] of layers.entries()) {
        const h = denseForward(inputs[layer]!, kernel, bias);
        hs.push(h);
        if (layer === layers.length - 1) break;
        const a = norm ? norm.forward(h) : reluForward(h);
        const mask = dropout?.nextMultiplier(a.shape) as tf.Tensor2D | undefined;
        masks.push(mask);
        inputs.push(mask ? dropoutForward(a, mask) : a);
      }
      const probabilities = tf.softmax(hs.at(-1)!).dataSync() as Float32Array; // (B, K)
      const loss = (softTargets ? softCrossEntropyBackward : softmaxCrossEntropyBackward)(dLogits, probabilities, batch.oneHot, rows);
      let correct = 0;
      for (let r = 0; r < rows; r++) if (argmax(probabilities.subarray(r * K, (r + 1) * K)) === batch.labels[r]) correct++;
      result = { loss, correct };

      // Backward, from the logits down.
      const gradients = new Map<string, tf.Tensor>();
      let dh = tf.tensor2d(dLogits.subarray(0, rows * K), [rows, K]);
      for (let layer = layers.length - 1; layer >= 0; layer--) {
        const { kernel, bias } = layers[layer]!;
        const { dKernel, dBias, dx } = denseBackward(inputs[layer]!, kernel, dh, layer > 0);
        gradients.set(kernel.name, dKernel).set(bias.name, dBias);
        if (dx === undefined) break;
        const { norm, dropout } = layers[layer - 1]!;
        const da = dropout ? dropoutBackward(dx, masks[layer - 1]!) : dx;
        if (norm) {
          const back = norm.backward(da);
          gradients.set(norm.gamma.name, back.dGamma).set(norm.beta.name, back.dBeta);
          dh = back.dh;
        } else {
          dh = reluBackward(hs[layer - 1]!, da);
        }
      }
      optimizer.applyGradients(trainable.map((name) => ({ name, tensor: gradients.get(name)! })));
    });
    return result;
  };
}
