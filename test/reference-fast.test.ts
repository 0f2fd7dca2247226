// The fast path (reference/fast/) against its oracles: every kernel against the core's
// matmulNaive, zero skipping against dense, and the whole network against the readable core
// (reference/network.ts), tensor by tensor: logits, loss, every gradient, then several
// training steps. B = batch, D = 784, H1 = 128, H2 = 64, K = 10.

import { toFloat64 } from '../reference/finite-differences.js';
import * as core from '../reference/network.js';
import * as kernels from '../reference/fast/kernels.js';
import * as fast from '../reference/fast/network.js';
import { mulberry32 } from '../reference/random.js';
import { D, H1, H2, K, PARAM_NAMES, cloneParams, scalePixels, type FloatArray, type Params } from '../reference/shapes.js';
import {
  expectAllClose,
  expectSgdStep,
  glorotParams,
  maxAbs,
  syntheticBatch,
  syntheticImages,
  syntheticOneHot,
  syntheticPixels,
} from './helpers/numeric.js';

function randomMatrix(length: number, seed: number, zeroFraction = 0): Float64Array {
  const random = mulberry32(seed);
  return Float64Array.from({ length }, () => (random() < zeroFraction ? 0 : random() * 2 - 1));
}

describe('fast kernels against matmulNaive', () => {
  const shapes: [number, number, number][] = [
    [1, 1, 1],
    [1, 7, 3],
    [3, 5, 7],
    [13, 17, 9],
    [8, 4, 12],
    [5, 33, 10],
    [64, 128, 64],
  ];
  const layouts: [core.MatmulLayout, typeof kernels.matmul][] = [
    ['nn', (out, a, b, m, p, n) => kernels.matmul(out, a, b, m, p, n)],
    ['tn', kernels.matmulTransA],
    ['nt', kernels.matmulTransB],
  ];

  for (const [layout, kernel] of layouts) {
    it.each(shapes)(`${layout}: (%i, %i) · (·, %i) in float64 and float32`, (m, p, n) => {
      const a = randomMatrix(m * p, m * 31 + p);
      const b = randomMatrix(p * n, n * 17 + p);
      const expected = new Float64Array(m * n);
      core.matmulNaive(expected, a, b, m, p, n, layout);
      const out64 = new Float64Array(m * n).fill(NaN); // stale contents must be overwritten
      kernel(out64, a, b, m, p, n);
      expectAllClose(out64, expected, 1e-13 * p, `${layout} float64`);
      const out32 = new Float32Array(m * n).fill(NaN);
      kernel(out32, Float32Array.from(a), Float32Array.from(b), m, p, n);
      expectAllClose(out32, expected, 1e-6 * p, `${layout} float32`);
    });
  }

  it('matmul adds the bias to every row', () => {
    const [m, p, n] = [6, 9, 5];
    const a = randomMatrix(m * p, 1);
    const b = randomMatrix(p * n, 2);
    const bias = randomMatrix(n, 3);
    const expected = new Float64Array(m * n);
    core.matmulNaive(expected, a, b, m, p, n);
    for (let i = 0; i < m * n; i++) expected[i]! += bias[i % n]!;
    const out = new Float64Array(m * n);
    kernels.matmul(out, a, b, m, p, n, bias);
    expectAllClose(out, expected, 1e-13, 'matmul + bias');
  });

  // Rows with 0..21 nonzeros walk every path of sparseMatmul (8-way, 4-way, the 3/2/1 tails, empty rows).
  it('sparseMatmul skips zeros and agrees with the dense product, bias or not', () => {
    const [m, p, n] = [22, 40, 11];
    const a = new Float64Array(m * p);
    const random = mulberry32(5);
    for (let r = 0; r < m; r++) {
      for (let placed = 0; placed < r; ) {
        const c = Math.floor(random() * p);
        if (a[r * p + c] === 0) {
          a[r * p + c] = random() * 2 - 1;
          placed++;
        }
      }
    }
    const b = randomMatrix(p * n, 6);
    const bias = randomMatrix(n, 7);
    const s = kernels.createSparseRows(a, m, m * p);
    expect(kernels.sparseRowsOf(s, a, m, p)).toBe((m * (m - 1)) / 2);
    const expected = new Float64Array(m * n);
    core.matmulNaive(expected, a, b, m, p, n);
    const out = new Float64Array(m * n).fill(NaN);
    kernels.sparseMatmul(out, s, b, n);
    expectAllClose(out, expected, 1e-13, 'sparse · dense');
    kernels.sparseMatmul(out, s, b, n, bias);
    expectAllClose(
      out,
      expected.map((v, i) => v + bias[i % n]!),
      1e-13,
      'sparse · dense + bias',
    );
    // The transpose, as a sparse index, times a (m, n) matrix is aᵀ·c.
    const sT = kernels.createSparseRows(a, p, m * p);
    kernels.transposeSparse(sT, s, p);
    const c = randomMatrix(m * n, 8);
    const expectedT = new Float64Array(p * n);
    core.matmulNaive(expectedT, a, c, p, m, n, 'tn');
    const outT = new Float64Array(p * n).fill(NaN);
    kernels.sparseMatmul(outT, sT, c, n);
    expectAllClose(outT, expectedT, 1e-13, 'sparse transpose · dense');
  });

  // How threads share a step (reference/fast/threads.ts): each computes a run of rows, which must equal those rows of the whole product bit for bit.
  it('sparseMatmul over runs of rows gives exactly the rows of the whole product, and touches no others', () => {
    const [m, p, n] = [13, 50, 9];
    const a = randomMatrix(m * p, 20, 0.6);
    const b = new Float32Array(randomMatrix(p * n, 21));
    const bias = new Float32Array(randomMatrix(n, 22));
    const s = kernels.createSparseRows(b, m, m * p);
    kernels.sparseRowsOf(s, new Float32Array(a), m, p);
    const whole = new Float32Array(m * n);
    kernels.sparseMatmul(whole, s, b, n, bias);
    const pieced = new Float32Array(m * n).fill(NaN);
    for (const [first, end] of [
      [0, 4],
      [4, 5],
      [5, 5],
      [5, 13],
    ] as const) {
      kernels.sparseMatmul(pieced, s, b, n, bias, first, end);
      expect(pieced.subarray(end * n).every(Number.isNaN)).toBe(true); // rows past the run are untouched
    }
    expect(pieced).toEqual(whole);
    const theta = new Float32Array(randomMatrix(20, 23));
    const grads = new Float32Array(randomMatrix(20, 24));
    const once = theta.slice();
    fast.sgdUpdateRange(once, grads, 0.1, 0, 20);
    fast.sgdUpdateRange(theta, grads, 0.1, 0, 7);
    fast.sgdUpdateRange(theta, grads, 0.1, 7, 20);
    expect(theta).toEqual(once);
  });

  it("reluGate and reluGateBackward are the core's ReLU pair, without a branch", () => {
    const n = 200;
    const z = randomMatrix(n, 30, 0.1); // includes exact zeros: the kink counts as off
    const dA = randomMatrix(n, 31);
    const [aCore, aFast, dZCore, dZFast] = [0, 1, 2, 3].map(() => new Float64Array(n).fill(NaN)) as [
      Float64Array,
      Float64Array,
      Float64Array,
      Float64Array,
    ];
    core.reluForward(aCore, z, n);
    kernels.reluGate(aFast, z, n);
    expectAllClose(aFast, aCore, 0, 'ReLU forward');
    core.reluBackward(dZCore, dA, z, n);
    kernels.reluGateBackward(dZFast, dA, z, n);
    expectAllClose(dZFast, dZCore, 0, 'ReLU backward');
  });

  it("reluDenseBackwardInput is dOut·wᵀ masked by z > 0: the core's denseBackward then reluBackward", () => {
    const [batch, inDim, outDim] = [9, 37, 13];
    const dOut = randomMatrix(batch * outDim, 10, 0.5);
    const w = randomMatrix(inDim * outDim, 11);
    const z = randomMatrix(batch * inDim, 12, 0.1);
    const expected = new Float64Array(batch * inDim);
    core.denseBackward(
      expected,
      new Float64Array(inDim * outDim),
      new Float64Array(outDim),
      dOut,
      new Float64Array(batch * inDim),
      w,
      batch,
      inDim,
      outDim,
    );
    core.reluBackward(expected, expected, z, batch * inDim);
    const a = new Float64Array(batch * inDim);
    kernels.reluGate(a, z, batch * inDim);
    const active = kernels.createSparseRows(a, batch, batch * inDim);
    kernels.sparseRowsOf(active, a, batch, inDim);
    const dOutRows = kernels.createSparseRows(dOut, batch, batch * outDim);
    kernels.sparseRowsOf(dOutRows, dOut, batch, outDim);
    const out = new Float64Array(batch * inDim).fill(NaN);
    kernels.reluDenseBackwardInput(out, dOutRows, w, active, inDim, outDim);
    expectAllClose(out, expected, 1e-13, 'masked input gradient');
  });

  it('sparseRowsOf refuses a matrix larger than its index', () => {
    const s = kernels.createSparseRows(new Float32Array(1), 2, 8);
    expect(() => kernels.sparseRowsOf(s, new Float32Array(12), 3, 4)).toThrow(
      /a \(3, 4\) matrix does not fit an index sized \(2 rows, 8 entries\)/,
    );
  });
});

describe('zero skipping in the first layer', () => {
  const batch = 16;
  const params = glorotParams(1);

  it('the synthetic images really are ~80% zeros, as MNIST is', () => {
    const x = syntheticImages(batch, 2);
    const lit = kernels.sparseRowsOf(kernels.createSparseRows(x, batch, batch * D), x, batch, D) / (batch * D);
    expect(lit).toBeGreaterThan(0.15);
    expect(lit).toBeLessThan(0.25);
  });

  it('a batch gathered from the split bytes runs exactly like the dense scaled batch', () => {
    const split = syntheticPixels(40, 21); // (40, D) bytes, ~80% zeros
    const order = Uint32Array.from({ length: 40 }, (_, i) => (i * 7) % 40);
    const dense = new Float32Array(batch * D);
    for (let r = 0; r < batch; r++)
      scalePixels(split.subarray(order[3 + r]! * D, (order[3 + r]! + 1) * D), dense.subarray(r * D, (r + 1) * D));
    const wsDense = fast.createWorkspace(params, batch);
    const wsRows = fast.createWorkspace(params, batch);
    fast.forward(params, dense, batch, wsDense);
    kernels.gatherPixelRows(wsRows.xRows, split, order, 3, batch, D);
    let lit = 0;
    for (let r = 0; r < batch; r++) for (const p of split.subarray(order[3 + r]! * D, (order[3 + r]! + 1) * D)) lit += +(p !== 0);
    expect(wsRows.xRows.start[batch]).toBe(lit); // exactly the batch's nonzeros
    fast.forwardRows(params, batch, wsRows);
    expect(Array.from(wsRows.logits)).toEqual(Array.from(wsDense.logits));
    expect(() => fast.forwardRows(params, batch - 1, wsRows)).toThrow('forwardRows: ws.xRows holds 16 images, expected the batch of 15');
    expect(() => kernels.gatherPixelRows(wsRows.xRows, split, order, 0, batch + 1, D)).toThrow(
      'gatherPixelRows: 17 rows of 784 pixels do not fit an index sized (16 rows, 12544 entries)',
    );
  });
});

/** The core's and the fast path's forward and backward on one batch. */
function bothPaths<T extends FloatArray>(params: Params<T>, x: FloatArray, y: FloatArray, batch: number) {
  const act = core.forward(params, x, y, batch);
  const coreGrads = core.backward(params, act, y, batch);
  const ws = fast.createWorkspace(params, batch + 3); // a workspace larger than the batch, as in training
  const result = fast.forward(params, x, batch, ws, y);
  const fastGrads = cloneParams(fast.backward(params, y, batch, ws));
  return { act, coreGrads, ws, result, fastGrads };
}

describe('the fast path against the core, tensor by tensor', () => {
  // float64: both paths compute the same sums in a different order, so they agree to rounding.
  describe('in float64', () => {
    const batch = 12;
    const params = toFloat64(glorotParams(3));
    const x = syntheticImages(batch, 4);
    const y = syntheticOneHot(batch, 5);
    const { act, coreGrads, ws, result, fastGrads } = bothPaths(params, x, y, batch);

    it('hidden layers, logits, probabilities, then the loss', () => {
      expectAllClose(ws.z1.subarray(0, batch * H1), act.z1, 1e-13, 'z1');
      expectAllClose(ws.a1.subarray(0, batch * H1), act.a1, 1e-13, 'a1');
      expectAllClose(ws.z2.subarray(0, batch * H2), act.z2, 1e-13, 'z2');
      expectAllClose(ws.a2.subarray(0, batch * H2), act.a2, 1e-13, 'a2');
      expectAllClose(result.logits.subarray(0, batch * K), act.logits, 1e-13, 'logits');
      expectAllClose(result.probs.subarray(0, batch * K), act.probs, 1e-14, 'probs');
      expectAllClose([result.loss], [act.loss], 1e-13, 'loss');
    });

    it.each(PARAM_NAMES)('the gradient of %s', (name) => {
      expectAllClose(fastGrads[name], coreGrads[name], 1e-15, `d${name}`);
    });
  });

  // float32: each path rounds at different points (the core once per sum, the fast kernels
  // once per 4–8 products), so they agree to float32 precision relative to each tensor's scale.
  describe('in float32', () => {
    const batch = 32;
    const { params, x, y } = syntheticBatch(batch, 6);
    const { act, coreGrads, result, fastGrads } = bothPaths(params, x, y, batch);

    it('logits, then the loss', () => {
      expectAllClose(result.logits.subarray(0, batch * K), act.logits, 2e-6 * maxAbs(act.logits), 'logits');
      expectAllClose([result.loss], [act.loss], 1e-6 * act.loss, 'loss');
    });

    it.each(PARAM_NAMES)('the gradient of %s', (name) => {
      expectAllClose(fastGrads[name], coreGrads[name], 1e-5 * maxAbs(coreGrads[name]), `d${name}`);
    });

    it('five SGD steps: the same loss and correct count at each, and the same weights after each', () => {
      const coreParams = cloneParams(params);
      const fastParams = cloneParams(params);
      const ws = fast.createWorkspace(fastParams, batch);
      const lr = 0.1;
      for (let step = 1; step <= 5; step++) {
        const stepX = syntheticImages(batch, 100 + step);
        const stepY = syntheticOneHot(batch, 200 + step);
        const coreAct = core.forward(coreParams, stepX, stepY, batch);
        const correct = fast.countCorrect(coreAct.logits, stepY, batch, K);
        core.sgdStep(coreParams, core.backward(coreParams, coreAct, stepY, batch), lr);
        kernels.sparseRowsOf(ws.xRows, stepX, batch, D);
        const fastStep = fast.trainStepRows(fastParams, stepY, batch, lr, ws);
        expectAllClose([fastStep.loss], [coreAct.loss], 1e-6 * coreAct.loss, `loss before step ${step}`);
        expect({ step, correct: fastStep.correct }).toEqual({ step, correct });
        for (const name of PARAM_NAMES)
          expectAllClose(fastParams[name], coreParams[name], 1e-6 * maxAbs(coreParams[name]), `${name} after step ${step}`);
      }
      // ...and the steps moved the weights well beyond that tolerance.
      expect(maxAbs(fastParams.w3.map((v, i) => v - params.w3[i]!))).toBeGreaterThan(1e-3);
    });
  });
});

describe('training step and evaluation on the fast path', () => {
  it('trainStepRows returns the pre-update loss and correct count, and moves θ by −lr·∇', () => {
    const batch = 10;
    const { params, x, y } = syntheticBatch(batch, 9);
    const ws = fast.createWorkspace(params, 16);
    const before = cloneParams(params);
    const probe = fast.createWorkspace(before, batch);
    const lossBefore = fast.forward(before, x, batch, probe, y).loss;
    const correct = fast.countCorrect(probe.logits, y, batch, K);
    const grads = cloneParams(fast.backward(before, y, batch, probe));
    const lr = 0.05;
    kernels.sparseRowsOf(ws.xRows, x, batch, D);
    const step = fast.trainStepRows(params, y, batch, lr, ws);
    expect(step.loss).toBe(lossBefore);
    expect(step.correct).toBe(correct);
    expectSgdStep(params, before, grads, lr);
  });

  it('refuses a batch larger than the workspace', () => {
    const params = glorotParams(1);
    const ws = fast.createWorkspace(params, 4);
    expect(() => fast.forward(params, syntheticImages(5, 1), 5, ws)).toThrow(
      /forward: batch must be an integer in 1\.\.4 \(the workspace's maxBatch\), found 5/,
    );
  });

  it('evaluate agrees with one forward over the whole split, across chunk boundaries and workspace sizes', () => {
    const count = 300; // more than one 256-row chunk
    const params = glorotParams(12);
    const images = syntheticImages(count, 13);
    const oneHot = syntheticOneHot(count, 14);
    const ws = fast.createWorkspace(params, count);
    const { loss } = fast.forward(params, images, count, ws, oneHot);
    const expectedPredictions = Array.from({ length: count }, (_, n) => core.argmax(ws.logits, n * K, K));
    const expectedCorrect = expectedPredictions.filter((predicted, n) => predicted === core.argmax(oneHot, n * K, K)).length;
    expect(fast.countCorrect(ws.logits, oneHot, count, K)).toBe(expectedCorrect);

    for (const evaluation of [
      fast.evaluate(params, images, oneHot, count),
      fast.evaluate(params, images, oneHot, count, fast.createWorkspace(params, 7)),
    ]) {
      expect(evaluation.loss).toBeCloseTo(loss, 6);
      expect(evaluation.accuracy).toBe(expectedCorrect / count);
      expect(Array.from(evaluation.predictions)).toEqual(expectedPredictions);
    }
  });
});
