// Numeric helpers shared by the tests: one comparison of arrays, and test data made
// here, seeded. D = 784, H1 = 128, H2 = 64, K = 10.

import { mulberry32 } from '../../reference/random.js';
import { D, H1, H2, K, PARAM_NAMES, type Params } from '../../reference/shapes.js';

/**
 * Fails unless every |actual[i] − expected[i]| ≤ tolerance; the message names the worst
 * index, both values there and the largest difference. A NaN on either side fails.
 */
export function expectAllClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tolerance: number, what: string): void {
  if (actual.length !== expected.length) throw new Error(`${what}: length ${actual.length}, expected ${expected.length}`);
  let worst = 0;
  let worstDiff = -1;
  for (let i = 0; i < actual.length; i++) {
    const diff = Math.abs(actual[i]! - expected[i]!);
    if (Number.isNaN(diff) || diff > worstDiff) {
      worst = i;
      worstDiff = Number.isNaN(diff) ? Infinity : diff;
      if (worstDiff === Infinity) break;
    }
  }
  if (!(worstDiff <= tolerance)) {
    throw new Error(`${what}: max |Δ| = ${worstDiff} > ${tolerance} at index ${worst}: ${actual[worst]} vs expected ${expected[worst]}`);
  }
}

/** The largest |v| of an array: the scale a gradient's tolerance is taken relative to. */
export function maxAbs(values: ArrayLike<number>): number {
  let max = 0;
  for (let i = 0; i < values.length; i++) max = Math.max(max, Math.abs(values[i]!));
  return max;
}

/**
 * Glorot-uniform weights, as the pipeline's init stage draws them (without TF.js here),
 * and small nonzero biases, so that a bias bug cannot hide behind zeros.
 */
export function glorotParams(seed: number): Params {
  const random = mulberry32(seed);
  const uniform = (fanIn: number, fanOut: number, scale = 1): Float32Array => {
    const limit = Math.sqrt(6 / (fanIn + fanOut));
    return Float32Array.from({ length: fanIn * fanOut }, () => (random() * 2 - 1) * limit * scale);
  };
  return {
    w1: uniform(D, H1),
    b1: uniform(1, H1, 0.1),
    w2: uniform(H1, H2),
    b2: uniform(1, H2, 0.1),
    w3: uniform(H2, K),
    b3: uniform(1, K, 0.1),
  };
}

/** MNIST-like images (N, D): about 80% exact zeros, the rest in (0, 1]. */
export function syntheticImages(count: number, seed: number, density = 0.2): Float32Array {
  const random = mulberry32(seed);
  return Float32Array.from({ length: count * D }, () => (random() < density ? 1 - random() : 0));
}

/** Pixels (N, D) as the dataset keeps them, bytes: about `density` of them ink (1–255), the rest 0. */
export function syntheticPixels(count: number, seed: number, density = 0.2): Uint8Array {
  const random = mulberry32(seed);
  return Uint8Array.from({ length: count * D }, () => (random() < density ? 1 + Math.floor((1 - random()) * 255) : 0)); // ≈ syntheticImages × 255
}

/** One-hot labels (N, K) of uniformly drawn digits. */
export function syntheticOneHot(count: number, seed: number): Float32Array {
  const random = mulberry32(seed);
  const oneHot = new Float32Array(count * K);
  for (let n = 0; n < count; n++) oneHot[n * K + Math.floor(random() * K)] = 1;
  return oneHot;
}

/** Glorot weights, images (B, D) and one-hot labels (B, K) for a test, drawn from seeds `seed`, `seed` + 1 and `seed` + 2. */
export function syntheticBatch(batch: number, seed: number): { params: Params; x: Float32Array; y: Float32Array } {
  return { params: glorotParams(seed), x: syntheticImages(batch, seed + 1), y: syntheticOneHot(batch, seed + 2) };
}

/** Fails unless every float32 weight of `after` is exactly fround(before − lr·grad): one SGD step, bit for bit. */
export function expectSgdStep(after: Params, before: Params, grads: Params, lr: number): void {
  for (const name of PARAM_NAMES) {
    expect({ name, values: Array.from(after[name]) }).toEqual({
      name,
      values: Array.from(before[name], (v, i) => Math.fround(v - lr * grads[name][i]!)),
    });
  }
}
