// The readable core (reference/network.ts): a forward and backward pass worked by hand,
// each layer's backward against the derivative of its forward, float32 against float64,
// and the SGD step. The finite-difference check on the core is in test/gradcheck.test.ts;
// the fast path is compared with the core in test/reference-fast.test.ts.
// B = batch, D = 784, H1 = 128, H2 = 64, K = 10.

import { toFloat64 } from '../reference/finite-differences.js';
import {
  argmax,
  backward,
  denseBackward,
  denseForward,
  forward,
  matmulNaive,
  reluBackward,
  reluForward,
  sgdStep,
  softmaxCrossEntropyBackward,
  softmaxCrossEntropyForward,
  softmaxForward,
} from '../reference/network.js';
import { mulberry32 } from '../reference/random.js';
import { D, H1, H2, K, PARAM_NAMES, cloneParams, zeroParams } from '../reference/shapes.js';
import { expectAllClose, expectSgdStep, maxAbs, syntheticBatch, syntheticOneHot } from './helpers/numeric.js';

describe('the core on a case worked by hand', () => {
  // One image with two lit pixels; weights chosen so that only unit 0 of each hidden layer fires.
  //   z1 = [1·2 + 0.5·0 + 0.5, 0.5·(−4), 0, …] = [2.5, −2, 0, …]   a1 = [2.5, 0, …]
  //   z2 = [2.5·0.4, 2.5·(−1), 0, …] = [1, −2.5, 0, …]              a2 = [1, 0, …]
  //   logits_k = 1·(k/10) + 0 = k/10, label 3
  //   loss = log Σₖ e^{k/10} − 0.3,  with Σₖ e^{k/10} = (e − 1)/(e^{0.1} − 1) (a geometric sum)
  const params = zeroParams();
  params.w1[0 * H1 + 0] = 2; // pixel 0 → unit 0
  params.w1[1 * H1 + 1] = -4; // pixel 1 → unit 1
  params.b1[0] = 0.5;
  params.w2[0 * H2 + 0] = 0.4;
  params.w2[0 * H2 + 1] = -1;
  for (let k = 0; k < K; k++) params.w3[0 * K + k] = k / 10;
  const x = new Float64Array(D);
  x[0] = 1;
  x[1] = 0.5;
  const y = new Float64Array(K);
  y[3] = 1;
  const act = forward(params, x, y, 1);
  const sumExp = (Math.E - 1) / (Math.exp(0.1) - 1);

  it('gives the hidden layers worked out above', () => {
    expectAllClose(act.z1.subarray(0, 3), [2.5, -2, 0], 1e-15, 'z1');
    expectAllClose(act.a1.subarray(0, 3), [2.5, 0, 0], 1e-15, 'a1');
    expectAllClose(act.z2.subarray(0, 3), [1, -2.5, 0], 1e-15, 'z2');
    expectAllClose(act.a2.subarray(0, 3), [1, 0, 0], 1e-15, 'a2');
  });

  it('gives logits k/10, softmax probabilities and the loss', () => {
    expectAllClose(act.logits, [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9], 1e-15, 'logits');
    const probs = Array.from({ length: K }, (_, k) => Math.exp(k / 10) / sumExp);
    expectAllClose(act.probs, probs, 1e-15, 'probs');
    expect(act.loss).toBeCloseTo(Math.log(sumExp) - 0.3, 14);
    expect(act.loss).toBeCloseTo(2.4935, 4); // log(16.3380) − 0.3
  });

  it('gives the gradients (p − y)·… the chain rule predicts', () => {
    const grads = backward(params, act, y, 1);
    const pMinusY = Array.from({ length: K }, (_, k) => Math.exp(k / 10) / sumExp - (k === 3 ? 1 : 0));
    expectAllClose(grads.b3, pMinusY, 1e-15, 'db3 = p − y');
    expectAllClose(grads.w3.subarray(0, K), pMinusY, 1e-15, 'dW3 row 0 = a2[0]·(p − y)');
    expectAllClose(grads.w3.subarray(K, 2 * K), new Float64Array(K), 0, 'dW3 row 1 = 0 (a2[1] = 0)');
    // dz2[0] = Σₖ (p − y)ₖ·w3[0,k] (unit 0 is active); dz2[1] = 0 (inactive)
    const dz2 = pMinusY.reduce((s, g, k) => s + g * (k / 10), 0);
    expect(grads.b2[0]).toBeCloseTo(dz2, 15);
    expect(grads.b2[1]).toBe(0);
    // dz1[0] = dz2[0]·w2[0,0]; dW1[pixel 0, unit 0] = x[0]·dz1[0]; pixel 1 reaches only the dead unit 1
    expect(grads.b1[0]).toBeCloseTo(dz2 * 0.4, 15);
    expect(grads.w1[0 * H1 + 0]).toBeCloseTo(1 * dz2 * 0.4, 15);
    expect(grads.w1[1 * H1 + 0]).toBeCloseTo(0.5 * dz2 * 0.4, 15);
    expect(grads.w1[1 * H1 + 1]).toBe(0);
  });

  it('averages the loss over the batch', () => {
    const x2 = new Float64Array(2 * D);
    x2.set(x, 0);
    x2.set(x, D);
    const y2 = new Float64Array(2 * K);
    y2[3] = 1;
    y2[K + 9] = 1; // second image labelled 9: loss log Σ − 0.9
    expect(forward(params, x2, y2, 2).loss).toBeCloseTo((Math.log(sumExp) - 0.3 + Math.log(sumExp) - 0.9) / 2, 14);
  });

  it('without labels: the same layers and probabilities, and no loss', () => {
    const unlabelled = forward(params, x, null, 1);
    for (const name of ['z1', 'a1', 'z2', 'a2', 'logits', 'probs'] as const) {
      expect({ name, values: Array.from(unlabelled[name]) }).toEqual({ name, values: Array.from(act[name]) });
    }
    expect(unlabelled.loss).toBeNaN();
  });

  it('refuses images or labels shorter than the batch', () => {
    expect(() => forward(params, x, y, 2)).toThrow(`forward: expected x (2, ${D}) and oneHot (2, ${K}), found ${D} and ${K} values`);
    expect(() => forward(params, x, null, 2)).toThrow(`forward: expected x (2, ${D}), found ${D} values`);
  });
});

describe('matmulNaive, the oracle of the fast kernels, on a case worked by hand', () => {
  // a = [[1, 2, 3], [4, 5, 6]] (2, 3), b = [[1, 0], [0, 1], [1, 1]] (3, 2): a·b = [[4, 5], [10, 11]].
  const a = new Float64Array([1, 2, 3, 4, 5, 6]);
  const b = new Float64Array([1, 0, 0, 1, 1, 1]);

  it.each([
    ['nn', a, b],
    ['tn', new Float64Array([1, 4, 2, 5, 3, 6]), b], // aᵀ stored (3, 2)
    ['nt', a, new Float64Array([1, 0, 1, 0, 1, 1])], // bᵀ stored (2, 3)
  ] as const)('%s: the same product [[4, 5], [10, 11]]', (layout, left, right) => {
    const out = new Float64Array(4).fill(NaN);
    matmulNaive(out, left, right, 2, 3, 2, layout);
    expect(Array.from(out)).toEqual([4, 5, 10, 11]);
  });
});

describe('argmax', () => {
  it('gives the first largest entry, of a whole row or of `length` entries from `first` on', () => {
    expect(argmax([0.1, 0.7, 0.2])).toBe(1);
    expect(argmax([3, 5, 5, 1])).toBe(1); // ties: the first, as tf.argMax
    expect(argmax([-2, -1, -3])).toBe(1);
    const rows = new Float32Array([9, 0, 0, /* row 1 */ 0, 1, 2, /* row 2 */ 4, 4, 0]);
    expect([0, 1, 2].map((r) => argmax(rows, r * 3, 3))).toEqual([0, 2, 0]);
  });
});

describe("each operation's backward is the derivative of its forward", () => {
  // Each pair on a small random case in float64: the backward's output, contracted with a random
  // direction, must equal the central difference of the forward along it (exact up to rounding,
  // the dense layer being linear and the softmax smooth).
  const random = (length: number, seed: number): Float64Array => {
    const next = mulberry32(seed);
    return Float64Array.from({ length }, () => next() - 0.5);
  };
  const dot = (a: ArrayLike<number>, b: ArrayLike<number>): number => Array.from(a).reduce((s, v, i) => s + v * b[i]!, 0);

  it('dense: dX, dW and db pull dOut back through out = x·w + b', () => {
    const [batch, inDim, outDim] = [3, 5, 4];
    const [x, w, b, dOut] = [random(batch * inDim, 1), random(inDim * outDim, 2), random(outDim, 3), random(batch * outDim, 4)];
    const dX = new Float64Array(batch * inDim);
    const dW = new Float64Array(inDim * outDim);
    const db = new Float64Array(outDim);
    denseBackward(dX, dW, db, dOut, x, w, batch, inDim, outDim);
    // ⟨dOut, out(v + h·u)⟩ − ⟨dOut, out(v − h·u)⟩ = 2h·⟨dV, u⟩ for v = x, w and b in turn.
    const objective = (xx: Float64Array, ww: Float64Array, bb: Float64Array): number => {
      const out = new Float64Array(batch * outDim);
      denseForward(out, xx, ww, bb, batch, inDim, outDim);
      return dot(dOut, out);
    };
    const h = 1e-3;
    const along = (v: Float64Array, u: Float64Array, sign: number): Float64Array => v.map((value, i) => value + sign * h * u[i]!);
    for (const [name, v, gradient, seed] of [
      ['x', x, dX, 5],
      ['w', w, dW, 6],
      ['b', b, db, 7],
    ] as const) {
      const u = random(v.length, seed);
      const plus = objective(name === 'x' ? along(x, u, 1) : x, name === 'w' ? along(w, u, 1) : w, name === 'b' ? along(b, u, 1) : b);
      const minus = objective(name === 'x' ? along(x, u, -1) : x, name === 'w' ? along(w, u, -1) : w, name === 'b' ? along(b, u, -1) : b);
      expectAllClose([(plus - minus) / (2 * h)], [dot(gradient, u)], 1e-12, `d${name}`);
    }
  });

  it('ReLU: passes the gradient where z > 0 and blocks it elsewhere, the kink z = 0 included', () => {
    const z = new Float64Array([-2, -0.5, 0, 0.5, 2]);
    const a = new Float64Array(5);
    reluForward(a, z, 5);
    expect(Array.from(a)).toEqual([0, 0, 0, 0.5, 2]);
    const dZ = new Float64Array(5);
    reluBackward(dZ, new Float64Array([1, 2, 3, 4, 5]), z, 5);
    expect(Array.from(dZ)).toEqual([0, 0, 0, 4, 5]);
  });

  it('softmax cross-entropy: dLogits is the derivative of the mean loss, (p − y)/B', () => {
    const [batch, classes] = [3, K];
    const logits = random(batch * classes, 8).map((v) => 4 * v);
    const oneHot = syntheticOneHot(batch, 9);
    const probs = new Float64Array(batch * classes);
    softmaxCrossEntropyForward(probs, logits, oneHot, batch, classes);
    const dLogits = new Float64Array(batch * classes);
    softmaxCrossEntropyBackward(dLogits, probs, oneHot, batch, classes);
    const h = 1e-5;
    const numeric = Array.from(logits, (_, i) => {
      const moved = (sign: number): number =>
        softmaxCrossEntropyForward(
          new Float64Array(batch * classes),
          logits.map((v, j) => (j === i ? v + sign * h : v)),
          oneHot,
          batch,
          classes,
        );
      return (moved(1) - moved(-1)) / (2 * h);
    });
    expectAllClose(dLogits, numeric, 1e-9, 'dLogits');
  });

  it('softmaxForward gives the probabilities of softmax cross-entropy, bit for bit, without labels', () => {
    const [batch, classes] = [4, K];
    const logits = random(batch * classes, 10).map((v) => 40 * v);
    const withLoss = new Float64Array(batch * classes);
    softmaxCrossEntropyForward(withLoss, logits, syntheticOneHot(batch, 11), batch, classes);
    const probs = new Float64Array(batch * classes).fill(NaN);
    softmaxForward(probs, logits, batch, classes);
    expect(Array.from(probs)).toEqual(Array.from(withLoss));
    for (let r = 0; r < batch; r++) expect(probs.subarray(r * classes, (r + 1) * classes).reduce((s, p) => s + p, 0)).toBeCloseTo(1, 14);
  });

  it('softmax cross-entropy survives logits that would overflow exp', () => {
    const logits = new Float64Array([1000, 0, -1000, 999, 0, 0, 0, 0, 0, 0]);
    const oneHot = new Float64Array(K);
    oneHot[3] = 1;
    const probs = new Float64Array(K);
    const loss = softmaxCrossEntropyForward(probs, logits, oneHot, 1, K);
    expect(loss).toBeCloseTo(1 + Math.log1p(Math.exp(-1)), 12); // log(e^1000 + e^999) − 999
    expectAllClose(probs, [1 / (1 + Math.exp(-1)), 0, 0, Math.exp(-1) / (1 + Math.exp(-1)), 0, 0, 0, 0, 0, 0], 1e-12, 'probs'); // log p = z − 1000.3…: rounding of ~1000·ε
    const dLogits = new Float64Array(K);
    softmaxCrossEntropyBackward(dLogits, probs, oneHot, 1, K);
    expect(dLogits[3]).toBeCloseTo(probs[3]! - 1, 15);
  });
});

describe('the core in float32 and float64', () => {
  it('agrees on loss, logits and every gradient, to float32 precision', () => {
    const batch = 32;
    const { params: params32, x, y } = syntheticBatch(batch, 6);
    const params64 = toFloat64(params32);
    const act32 = forward(params32, x, y, batch);
    const act64 = forward(params64, x, y, batch);
    expect(Math.abs(act32.loss - act64.loss) / act64.loss).toBeLessThan(1e-6);
    expectAllClose(act32.logits, act64.logits, 1e-5, 'logits f32 vs f64');
    const g32 = backward(params32, act32, y, batch);
    const g64 = backward(params64, act64, y, batch);
    for (const name of PARAM_NAMES) expectAllClose(g32[name], g64[name], 1e-5 * maxAbs(g64[name]), `d${name} f32 vs f64`);
  });
});

describe('sgdStep', () => {
  it('moves every parameter by −lr·∇, and the step lowers the loss on its batch', () => {
    const batch = 10;
    const { params, x, y } = syntheticBatch(batch, 9);
    const before = cloneParams(params);
    const act = forward(params, x, y, batch);
    const grads = backward(params, act, y, batch);
    const lr = 0.05;
    sgdStep(params, grads, lr);
    expectSgdStep(params, before, grads, lr);
    expect(forward(params, x, y, batch).loss).toBeLessThan(act.loss);
  });
});
