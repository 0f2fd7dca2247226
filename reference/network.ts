// The network as plain math: the readable core, and the oracle that the finite-difference
// check (reference/finite-differences.ts) and the fast path (reference/fast/) are tested against.
//
//   x (B, D) → dense1 → z1 (B, H1) → ReLU → a1 → dense2 → z2 (B, H2) → ReLU → a2
//            → dense3 → logits (B, K) → softmax → probs → cross-entropy with y → loss
//
// B = batch, D = 784, H1 = 128, H2 = 64, K = 10 (reference/shapes.ts). Every matrix is a
// row-major array: entry (r, c) of an (R, C) matrix is m[r * C + c].
//
// Each operation's backward sits beside its forward; the network's forward, backward and
// sgdStep follow, in the order of the math (derived in docs/backprop.md). Forward without
// labels stops at probs, which is how the live panel and the figures run it. Plain loops over
// Float32Array (training) or Float64Array (the gradient check); sums run in JS numbers and
// are rounded once, when stored. Nothing here is fast: reference/fast/ is what training runs,
// and matmulNaive below is the oracle its kernels are tested against.

import { D, H1, H2, K, PARAM_NAMES, type FloatArray, type Params } from './shapes.js';

/** A new zeroed array of n entries, of the same float type as `like`. */
function zerosLike<T extends FloatArray>(like: T, n: number): T {
  return new (like.constructor as new (length: number) => T)(n);
}

// ---------------------------------------------------------------------------
// Matrix product and the dense layer: out = x·w + b.

/** How matmulNaive reads its operands: 'nn' = a·b, 'tn' = aᵀ·b, 'nt' = a·bᵀ. */
export type MatmulLayout = 'nn' | 'tn' | 'nt';

/**
 * out (M, N) = op(a) · op(b) with inner dimension P, the textbook triple loop.
 * a is (M, P) for 'nn'/'nt' and (P, M) for 'tn'; b is (P, N) for 'nn'/'tn' and (N, P) for 'nt'.
 * Kept slow and obvious on purpose: the algorithmic reference every fast kernel
 * (reference/fast/kernels.ts) is tested against.
 */
export function matmulNaive(
  out: FloatArray,
  a: FloatArray,
  b: FloatArray,
  m: number,
  p: number,
  n: number,
  layout: MatmulLayout = 'nn',
): void {
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let sum = 0;
      for (let q = 0; q < p; q++) {
        const aiq = layout === 'tn' ? a[q * m + i]! : a[i * p + q]!;
        const bqj = layout === 'nt' ? b[j * p + q]! : b[q * n + j]!;
        sum += aiq * bqj;
      }
      out[i * n + j] = sum;
    }
  }
}

/** out (B, OUT) = x (B, IN) · w (IN, OUT) + b (OUT). */
export function denseForward(
  out: FloatArray,
  x: FloatArray,
  w: FloatArray,
  b: FloatArray,
  batch: number,
  inDim: number,
  outDim: number,
): void {
  for (let r = 0; r < batch; r++) {
    for (let j = 0; j < outDim; j++) {
      let sum = b[j]!;
      for (let i = 0; i < inDim; i++) sum += x[r * inDim + i]! * w[i * outDim + j]!;
      out[r * outDim + j] = sum;
    }
  }
}

/**
 * Given dOut = ∂L/∂out (B, OUT): dW (IN, OUT) = xᵀ·dOut, db (OUT) = Σ_rows dOut and
 * dX (B, IN) = dOut·wᵀ. dX is null for the first layer: nothing upstream needs ∂L/∂x.
 */
export function denseBackward(
  dX: FloatArray | null,
  dW: FloatArray,
  db: FloatArray,
  dOut: FloatArray,
  x: FloatArray,
  w: FloatArray,
  batch: number,
  inDim: number,
  outDim: number,
): void {
  for (let i = 0; i < inDim; i++) {
    for (let j = 0; j < outDim; j++) {
      let sum = 0;
      for (let r = 0; r < batch; r++) sum += x[r * inDim + i]! * dOut[r * outDim + j]!;
      dW[i * outDim + j] = sum;
    }
  }
  for (let j = 0; j < outDim; j++) {
    let sum = 0;
    for (let r = 0; r < batch; r++) sum += dOut[r * outDim + j]!;
    db[j] = sum;
  }
  if (dX === null) return;
  for (let r = 0; r < batch; r++) {
    for (let i = 0; i < inDim; i++) {
      let sum = 0;
      for (let j = 0; j < outDim; j++) sum += dOut[r * outDim + j]! * w[i * outDim + j]!;
      dX[r * inDim + i] = sum;
    }
  }
}

// ---------------------------------------------------------------------------
// ReLU: a = max(z, 0).

/** a = max(z, 0), elementwise over n entries. */
export function reluForward(a: FloatArray, z: FloatArray, n: number): void {
  for (let i = 0; i < n; i++) a[i] = Math.max(z[i]!, 0);
}

/** dZ = dA where z > 0, else 0: the slope at the kink z = 0 is taken as 0, as TF.js does. */
export function reluBackward(dZ: FloatArray, dA: FloatArray, z: FloatArray, n: number): void {
  for (let i = 0; i < n; i++) dZ[i] = z[i]! > 0 ? dA[i]! : 0;
}

// ---------------------------------------------------------------------------
// Softmax and cross-entropy. The pair is differentiated together, so that the gradient is simply p − y.

/** log Σ_k exp(z_k) over one row of logits, as max + log Σ exp(z − max) so that no exp overflows. */
export function logSumExpRow(logits: FloatArray, row: number, classes: number): number {
  let max = -Infinity;
  for (let k = 0; k < classes; k++) max = Math.max(max, logits[row + k]!);
  let sumExp = 0;
  for (let k = 0; k < classes; k++) sumExp += Math.exp(logits[row + k]! - max);
  return max + Math.log(sumExp);
}

/** probs (B, K) = softmax(logits), each row as exp(z − logsumexp(z)) so that no exp overflows. */
export function softmaxForward(probs: FloatArray, logits: FloatArray, batch: number, classes: number): void {
  for (let r = 0; r < batch; r++) {
    const row = r * classes;
    const logSumExp = logSumExpRow(logits, row, classes);
    for (let k = 0; k < classes; k++) probs[row + k] = Math.exp(logits[row + k]! - logSumExp);
  }
}

/**
 * probs (B, K) = softmax(logits); returns the mean over rows of −Σ_k y log p.
 * log p is taken as z − logsumexp(z), not from probs, so that log never sees a
 * p that underflowed to 0; y may be any distribution, not just one-hot.
 */
export function softmaxCrossEntropyForward(
  probs: FloatArray,
  logits: FloatArray,
  oneHot: FloatArray,
  batch: number,
  classes: number,
): number {
  softmaxForward(probs, logits, batch, classes);
  let total = 0;
  for (let r = 0; r < batch; r++) {
    const row = r * classes;
    const logSumExp = logSumExpRow(logits, row, classes);
    for (let k = 0; k < classes; k++) {
      const y = oneHot[row + k]!;
      if (y !== 0) total -= y * (logits[row + k]! - logSumExp);
    }
  }
  return total / batch;
}

/** dLogits (B, K) = (p − y) / B: the gradient of the mean cross-entropy through the softmax. */
export function softmaxCrossEntropyBackward(
  dLogits: FloatArray,
  probs: FloatArray,
  oneHot: FloatArray,
  batch: number,
  classes: number,
): void {
  const n = batch * classes;
  for (let i = 0; i < n; i++) dLogits[i] = (probs[i]! - oneHot[i]!) / batch;
}

// ---------------------------------------------------------------------------
// Prediction: the most probable class.

/**
 * The index of the largest of `length` entries from `first` on (the first one on ties, as
 * tf.argMax does): the class predicted by a row of logits or probabilities, or a one-hot's label.
 */
export function argmax(values: ArrayLike<number>, first = 0, length = values.length - first): number {
  let best = 0;
  for (let k = 1; k < length; k++) if (values[first + k]! > values[first + best]!) best = k;
  return best;
}

// ---------------------------------------------------------------------------
// The network.

/** What forward computes, kept because backward needs it. */
export interface Activations<T extends FloatArray> {
  x: FloatArray; // (B, D) the images
  z1: T; // (B, H1) x·w1 + b1
  a1: T; // (B, H1) ReLU(z1)
  z2: T; // (B, H2) a1·w2 + b2
  a2: T; // (B, H2) ReLU(z2)
  logits: T; // (B, K) a2·w3 + b3
  probs: T; // (B, K) softmax(logits)
  loss: number; // mean cross-entropy over the batch; NaN when no labels were given
}

/** Runs x (B, D) through the network and, unless oneHot is null, scores it against the labels oneHot (B, K). */
export function forward<T extends FloatArray>(params: Params<T>, x: FloatArray, oneHot: FloatArray | null, batch: number): Activations<T> {
  if (oneHot === null && x.length < batch * D) throw new Error(`forward: expected x (${batch}, ${D}), found ${x.length} values`);
  if (oneHot !== null && (x.length < batch * D || oneHot.length < batch * K)) {
    throw new Error(`forward: expected x (${batch}, ${D}) and oneHot (${batch}, ${K}), found ${x.length} and ${oneHot.length} values`);
  }
  const like = params.w1;
  const z1 = zerosLike(like, batch * H1);
  const a1 = zerosLike(like, batch * H1);
  const z2 = zerosLike(like, batch * H2);
  const a2 = zerosLike(like, batch * H2);
  const logits = zerosLike(like, batch * K);
  const probs = zerosLike(like, batch * K);
  denseForward(z1, x, params.w1, params.b1, batch, D, H1);
  reluForward(a1, z1, batch * H1);
  denseForward(z2, a1, params.w2, params.b2, batch, H1, H2);
  reluForward(a2, z2, batch * H2);
  denseForward(logits, a2, params.w3, params.b3, batch, H2, K);
  let loss = NaN;
  if (oneHot === null) softmaxForward(probs, logits, batch, K);
  else loss = softmaxCrossEntropyForward(probs, logits, oneHot, batch, K);
  return { x, z1, a1, z2, a2, logits, probs, loss };
}

/** ∂L/∂θ for every parameter: the chain rule from the loss back to layer 1, one step at a time. */
export function backward<T extends FloatArray>(params: Params<T>, act: Activations<T>, oneHot: FloatArray, batch: number): Params<T> {
  const like = params.w1;
  const grads: Params<T> = {
    w1: zerosLike(like, D * H1),
    b1: zerosLike(like, H1),
    w2: zerosLike(like, H1 * H2),
    b2: zerosLike(like, H2),
    w3: zerosLike(like, H2 * K),
    b3: zerosLike(like, K),
  };
  const dLogits = zerosLike(like, batch * K); // (B, K)
  const dA2 = zerosLike(like, batch * H2); // (B, H2)
  const dZ2 = zerosLike(like, batch * H2); // (B, H2)
  const dA1 = zerosLike(like, batch * H1); // (B, H1)
  const dZ1 = zerosLike(like, batch * H1); // (B, H1)
  softmaxCrossEntropyBackward(dLogits, act.probs, oneHot, batch, K);
  denseBackward(dA2, grads.w3, grads.b3, dLogits, act.a2, params.w3, batch, H2, K);
  reluBackward(dZ2, dA2, act.z2, batch * H2);
  denseBackward(dA1, grads.w2, grads.b2, dZ2, act.a1, params.w2, batch, H1, H2);
  reluBackward(dZ1, dA1, act.z1, batch * H1);
  denseBackward(null, grads.w1, grads.b1, dZ1, act.x, params.w1, batch, D, H1);
  return grads;
}

/** Plain SGD, as tf.train.sgd applies it: θ ← θ − lr·∂L/∂θ for every parameter, in place. */
export function sgdStep<T extends FloatArray>(params: Params<T>, grads: Params<T>, lr: number): void {
  for (const name of PARAM_NAMES) {
    const theta = params[name];
    const gradient = grads[name];
    for (let i = 0; i < theta.length; i++) theta[i] = theta[i]! - lr * gradient[i]!;
  }
}
