// The fast path: the core's network (reference/network.ts) computed for speed, and what
// training runs. It computes the same math in the same order, but layers 1 and 2 read
// their inputs as nonzeros (SparseRows), ReLU 1's backward is fused into layer 2's input
// gradient, and every buffer lives in one Workspace allocated up front, so a training
// step allocates nothing. The phases below are named for how threads split them
// (reference/fast/threads.ts). test/reference-fast.test.ts checks every tensor against
// the core. B = batch (≤ ws.maxBatch), D = 784, H1 = 128, H2 = 64, K = 10, N = images in a split.
//
// The backward pass, as the core's backward writes it, maps onto the phases so:
//   dLogits, dW3, db3, dZ2        backwardToZ2          (layer 3, then ReLU 2)
//   dW2, db2                      layer2WeightGradient  (a1 as nonzeros)
//   dZ1 = (dZ2·w2ᵀ) ⊙ [z1 > 0]    layer2InputGradient   (only the units ReLU 1 let through)
//   dW1, db1                      layer1Backward        (lit pixels only)

import { argmax, softmaxCrossEntropyBackward, softmaxCrossEntropyForward, softmaxForward } from '../network.js';
import { D, H1, H2, K, scalePixels, type FloatArray, type Params, type Pixels } from '../shapes.js';
import {
  arrayLike,
  createSparseRows,
  matmul,
  matmulTransA,
  matmulTransB,
  reluDenseBackwardInput,
  reluGate,
  reluGateBackward,
  sparseMatmul,
  sparseRowsOf,
  sumRows,
  transposeSparse,
  type SparseRows,
} from './kernels.js';

// ---------------------------------------------------------------------------
// The whole network, in one workspace.

/** Every buffer one forward + backward needs, for batches of up to maxBatch images. */
export interface Workspace<T extends FloatArray> {
  maxBatch: number;
  z1: T; // (B, H1) layer-1 pre-activation
  a1: T; // (B, H1) ReLU(z1)
  z2: T; // (B, H2)
  a2: T; // (B, H2)
  logits: T; // (B, K)
  probs: T; // (B, K) softmax(logits)
  dLogits: T; // (B, K) ∂L/∂logits
  dZ2: T; // (B, H2) ∂L/∂a2, then ∂L/∂z2 in place
  dZ1: T; // (B, H1) ∂L/∂a1, then ∂L/∂z1 in place
  grads: Params<T>; // ∂L/∂θ, same shapes as the params
  xRows: SparseRows<T>; // nonzero pixels of x (B, D), by image
  xCols: SparseRows<T>; // the same, by pixel: xᵀ (D, B)
  a1Rows: SparseRows<T>; // nonzeros of a1 (B, H1)
  a1Cols: SparseRows<T>; // a1ᵀ (H1, B)
  dZ2Rows: SparseRows<T>; // nonzeros of dZ2 (B, H2)
}

/**
 * Allocates a workspace whose buffers have the params' float type; with shared, in
 * memory worker threads can see (threads.ts).
 */
export function createWorkspace<T extends FloatArray>(params: Params<T>, maxBatch: number, shared = false): Workspace<T> {
  if (!Number.isInteger(maxBatch) || maxBatch < 1)
    throw new Error(`createWorkspace: maxBatch must be a positive integer, found ${maxBatch}`);
  const like = params.w1;
  const make = (n: number): T => arrayLike(like, n, shared);
  const batch = maxBatch;
  return {
    maxBatch,
    z1: make(batch * H1),
    a1: make(batch * H1),
    z2: make(batch * H2),
    a2: make(batch * H2),
    logits: make(batch * K),
    probs: make(batch * K),
    dLogits: make(batch * K),
    dZ2: make(batch * H2),
    dZ1: make(batch * H1),
    grads: {
      w1: make(D * H1),
      b1: make(H1),
      w2: make(H1 * H2),
      b2: make(H2),
      w3: make(H2 * K),
      b3: make(K),
    },
    xRows: createSparseRows(like, batch, batch * D, shared),
    xCols: createSparseRows(like, D, batch * D, shared),
    a1Rows: createSparseRows(like, batch, batch * H1, shared),
    a1Cols: createSparseRows(like, H1, batch * H1, shared),
    dZ2Rows: createSparseRows(like, batch, batch * H2, shared),
  };
}

function checkBatch(batch: number, ws: Workspace<FloatArray>, caller: string): void {
  if (!Number.isInteger(batch) || batch < 1 || batch > ws.maxBatch) {
    throw new Error(`${caller}: batch must be an integer in 1..${ws.maxBatch} (the workspace's maxBatch), found ${batch}`);
  }
}

/** Where forward leaves its results: views of the workspace, valid for the first `batch` rows until the next call. */
export interface ForwardResult<T extends FloatArray> {
  logits: T; // (maxBatch, K) ws.logits
  probs: T; // (maxBatch, K) ws.probs
  loss: number; // mean cross-entropy over the batch; NaN when no labels were given
}

/**
 * Runs x (B, D) through the network into ws; with oneHot (B, K) also the loss.
 * backward reads what this leaves in ws, so call it on the same batch right after.
 */
export function forward<T extends FloatArray>(
  params: Params<T>,
  x: FloatArray,
  batch: number,
  ws: Workspace<T>,
  oneHot?: FloatArray,
): ForwardResult<T> {
  checkBatch(batch, ws, 'forward');
  sparseRowsOf(ws.xRows, x, batch, D);
  return forwardRows(params, batch, ws, oneHot);
}

/** forward for a batch whose pixels are already in ws.xRows (see gatherSparseRows). */
export function forwardRows<T extends FloatArray>(
  params: Params<T>,
  batch: number,
  ws: Workspace<T>,
  oneHot?: FloatArray,
): ForwardResult<T> {
  checkBatch(batch, ws, 'forward');
  if (ws.xRows.rows !== batch) throw new Error(`forwardRows: ws.xRows holds ${ws.xRows.rows} images, expected the batch of ${batch}`);
  layer1Forward(params, ws);
  layer1Activation(batch, ws);
  layer2Forward(params, ws);
  return forwardAfterLayer2(params, batch, ws, oneHot);
}

/**
 * z1 = x·w1 + b1, x being ws.xRows, for images first..end−1 (all by default).
 * Threads that share the step each take a run of images (threads.ts).
 */
export function layer1Forward<T extends FloatArray>(params: Params<T>, ws: Workspace<T>, first = 0, end = ws.xRows.rows): void {
  sparseMatmul(ws.z1, ws.xRows, params.w1, H1, params.b1, first, end);
}

/** a1 = ReLU(z1), also kept as its nonzeros in ws.a1Rows for layer 2. */
export function layer1Activation<T extends FloatArray>(batch: number, ws: Workspace<T>): void {
  reluGate(ws.a1, ws.z1, batch * H1);
  sparseRowsOf(ws.a1Rows, ws.a1, batch, H1);
}

/** z2 = a1·w2 + b2, a1 being ws.a1Rows, for images first..end−1 (all by default); threads split it so. */
export function layer2Forward<T extends FloatArray>(params: Params<T>, ws: Workspace<T>, first = 0, end = ws.a1Rows.rows): void {
  sparseMatmul(ws.z2, ws.a1Rows, params.w2, H2, params.b2, first, end);
}

/** The rest of forward once ws.z2 holds layer 2's output: ReLU 2, layer 3, softmax and the loss. */
export function forwardAfterLayer2<T extends FloatArray>(
  params: Params<T>,
  batch: number,
  ws: Workspace<T>,
  oneHot?: FloatArray,
): ForwardResult<T> {
  reluGate(ws.a2, ws.z2, batch * H2);
  matmul(ws.logits, ws.a2, params.w3, batch, H2, K, params.b3);
  let loss = NaN;
  if (oneHot !== undefined) loss = softmaxCrossEntropyForward(ws.probs, ws.logits, oneHot, batch, K);
  else softmaxForward(ws.probs, ws.logits, batch, K);
  return { logits: ws.logits, probs: ws.probs, loss };
}

/**
 * ∂L/∂θ for the batch forward just ran on, into ws.grads (returned).
 * The chain rule from the loss back to x, one layer pair at a time.
 */
export function backward<T extends FloatArray>(params: Params<T>, oneHot: FloatArray, batch: number, ws: Workspace<T>): Params<T> {
  checkBatch(batch, ws, 'backward');
  backwardToLayer1(params, oneHot, batch, ws);
  transposeSparse(ws.xCols, ws.xRows, D);
  layer1Backward(ws, batch);
  return ws.grads;
}

/** backward from the loss down to ws.dZ1 = ∂L/∂z1: every gradient but layer 1's. */
function backwardToLayer1<T extends FloatArray>(params: Params<T>, oneHot: FloatArray, batch: number, ws: Workspace<T>): void {
  backwardToZ2(params, oneHot, batch, ws);
  layer2WeightGradient(ws, batch);
  layer2InputGradient(params, batch, ws);
}

/** backward from the loss down to ws.dZ2 = ∂L/∂z2, with layer 3's gradients. */
export function backwardToZ2<T extends FloatArray>(params: Params<T>, oneHot: FloatArray, batch: number, ws: Workspace<T>): void {
  softmaxCrossEntropyBackward(ws.dLogits, ws.probs, oneHot, batch, K);
  matmulTransA(ws.grads.w3, ws.a2, ws.dLogits, H2, batch, K); // dW3 = a2ᵀ·dLogits
  sumRows(ws.grads.b3, ws.dLogits, batch, K); // db3
  matmulTransB(ws.dZ2, ws.dLogits, params.w3, batch, K, H2); // dA2 = dLogits·w3ᵀ
  reluGateBackward(ws.dZ2, ws.dZ2, ws.z2, batch * H2); // dZ2 = dA2 ⊙ [z2 > 0]
}

/** Layer 2's dW2 = a1ᵀ·dZ2 and db2 = Σ dZ2, from ws.a1Rows and ws.dZ2. */
export function layer2WeightGradient<T extends FloatArray>(ws: Workspace<T>, batch: number): void {
  transposeSparse(ws.a1Cols, ws.a1Rows, H1);
  sparseMatmul(ws.grads.w2, ws.a1Cols, ws.dZ2, H2);
  sumRows(ws.grads.b2, ws.dZ2, batch, H2);
}

/** dZ1 = (dZ2·w2ᵀ) ⊙ [z1 > 0]: back through layer 2 and ReLU 1, from ws.dZ2 and ws.a1Rows. */
export function layer2InputGradient<T extends FloatArray>(params: Params<T>, batch: number, ws: Workspace<T>): void {
  sparseRowsOf(ws.dZ2Rows, ws.dZ2, batch, H2);
  reluDenseBackwardInput(ws.dZ1, ws.dZ2Rows, params.w2, ws.a1Rows, H1, H2);
}

/**
 * Layer 1's gradients: dW1 = xᵀ·dZ1 over the lit pixels only, db1 = Σ dZ1; x needs
 * no gradient. Reads ws.xCols, which must hold xᵀ.
 */
export function layer1Backward<T extends FloatArray>(ws: Workspace<T>, batch: number): void {
  sparseMatmul(ws.grads.w1, ws.xCols, ws.dZ1, H1);
  sumRows(ws.grads.b1, ws.dZ1, batch, H1);
}

/**
 * Rows first..end−1 of dW1 = xᵀ·dZ1 (the weights of pixels first..end−1), each exactly as
 * layer1Backward computes it. Threads that share the step each take a run of pixels.
 */
export function layer1WeightGradient<T extends FloatArray>(ws: Workspace<T>, first: number, end: number): void {
  sparseMatmul(ws.grads.w1, ws.xCols, ws.dZ1, H1, null, first, end);
}

/** db1 = Σ over the batch's rows of dZ1, as layer1Backward computes it. */
export function layer1BiasGradient<T extends FloatArray>(ws: Workspace<T>, batch: number): void {
  sumRows(ws.grads.b1, ws.dZ1, batch, H1);
}

/** The result of one SGD step. */
export interface StepResult {
  loss: number; // mean cross-entropy of the batch, before the update
  correct: number; // images of the batch classified right, before the update
}

/**
 * One SGD step on the batch whose pixels are in ws.xRows (see gatherSparseRows), with labels
 * oneHot (B, K): forward, backward, θ −= lr·∂L/∂θ. Allocates no buffers.
 */
export function trainStepRows<T extends FloatArray>(
  params: Params<T>,
  oneHot: FloatArray,
  batch: number,
  lr: number,
  ws: Workspace<T>,
): StepResult {
  const { loss } = forwardRows(params, batch, ws, oneHot);
  const correct = countCorrect(ws.logits, oneHot, batch, K);
  const grads = backward(params, oneHot, batch, ws);
  sgdUpdateW1(params, grads, lr);
  sgdUpdateAllButW1(params, grads, lr);
  return { loss, correct };
}

/** w1 −= lr·dW1 for the weights of pixels first..end−1 (rows of w1), all by default. */
export function sgdUpdateW1<T extends FloatArray>(params: Params<T>, grads: Params<T>, lr: number, first = 0, end = D): void {
  sgdUpdateRange(params.w1, grads.w1, lr, first * H1, end * H1);
}

/** θ −= lr·∂L/∂θ for every parameter but w1. */
export function sgdUpdateAllButW1<T extends FloatArray>(params: Params<T>, grads: Params<T>, lr: number): void {
  sgdUpdateRange(params.b1, grads.b1, lr, 0, H1);
  sgdUpdateRange(params.w2, grads.w2, lr, 0, H1 * H2);
  sgdUpdateRange(params.b2, grads.b2, lr, 0, H2);
  sgdUpdateRange(params.w3, grads.w3, lr, 0, H2 * K);
  sgdUpdateRange(params.b3, grads.b3, lr, 0, K);
}

/** param −= lr·grad for entries first..end−1: the core's sgdStep, one range at a time. */
export function sgdUpdateRange(param: FloatArray, grad: FloatArray, lr: number, first: number, end: number): void {
  for (let i = first; i < end; i++) param[i] = param[i]! - lr * grad[i]!;
}

/** How many rows of logits (B, K) have their largest entry where oneHot (B, K) has its. */
export function countCorrect(logits: FloatArray, oneHot: FloatArray, batch: number, classes: number): number {
  let correct = 0;
  for (let r = 0; r < batch; r++) if (argmax(logits, r * classes, classes) === argmax(oneHot, r * classes, classes)) correct++;
  return correct;
}

// ---------------------------------------------------------------------------
// Whole splits, in chunks of the workspace's batch size.

const CHUNK = 256; // rows per forward pass when walking a whole split

/**
 * forward on images (N, D) with labels oneHot (N, K), ws.maxBatch images at a time; a split's
 * bytes are scaled one chunk at a time. `each` reads what it needs out of ws before the next chunk overwrites it.
 */
function forwardInChunks<T extends FloatArray>(
  params: Params<T>,
  images: FloatArray | Pixels,
  oneHot: FloatArray,
  count: number,
  ws: Workspace<T>,
  each: (result: ForwardResult<T>, labels: FloatArray, start: number, batch: number) => void,
): void {
  const scaled = images instanceof Uint8Array ? new Float32Array(Math.min(ws.maxBatch, count) * D) : null; // (chunk, D)
  for (let start = 0; start < count; start += ws.maxBatch) {
    const batch = Math.min(ws.maxBatch, count - start);
    const labels = oneHot.subarray(start * K, (start + batch) * K); // (batch, K)
    const rows = images.subarray(start * D, (start + batch) * D);
    const x = rows instanceof Uint8Array ? scalePixels(rows, scaled!.subarray(0, batch * D)) : rows;
    each(forward(params, x, batch, ws, labels), labels, start, batch);
  }
}

/** Loss, accuracy and predictions of the network on a whole split. */
export interface SplitEvaluation {
  loss: number; // mean cross-entropy over the N images
  accuracy: number; // fraction of the N images classified right
  predictions: Uint8Array; // (N) predicted digit
}

/** Mean cross-entropy, accuracy and predictions on images (N, D) with labels oneHot (N, K). */
export function evaluate<T extends FloatArray>(
  params: Params<T>,
  images: FloatArray | Pixels,
  oneHot: FloatArray,
  count: number,
  ws: Workspace<T> = createWorkspace(params, CHUNK),
): SplitEvaluation {
  if (!Number.isInteger(count) || count < 0 || images.length < count * D)
    throw new Error(`evaluate: expected images (${count}, ${D}) = ${count * D} values, found ${images.length}`);
  if (oneHot.length < count * K)
    throw new Error(`evaluate: expected oneHot (${count}, ${K}) = ${count * K} values, found ${oneHot.length}`);
  if (count === 0) throw new Error('evaluate: the split is empty');
  const predictions = new Uint8Array(count); // (N)
  let lossSum = 0;
  let correct = 0;
  forwardInChunks(params, images, oneHot, count, ws, ({ logits, loss }, labels, start, batch) => {
    lossSum += loss * batch;
    correct += countCorrect(logits, labels, batch, K);
    for (let r = 0; r < batch; r++) predictions[start + r] = argmax(logits, r * K, K);
  });
  return { loss: lossSum / count, accuracy: correct / count, predictions };
}
