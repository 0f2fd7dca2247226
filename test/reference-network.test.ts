// The reference network's math: a forward pass worked by hand, every fast kernel
// against the naive oracle, zero skipping against dense, and float32 against float64.
// B = batch, D = 784, H1 = 128, H2 = 64, K = 10.

import {
  argmaxRows,
  backward,
  countCorrect,
  createSparseRows,
  createWorkspace,
  denseBackward,
  denseForward,
  evaluate,
  forward,
  forwardRows,
  gatherSparseRows,
  hiddenActivations,
  matmul,
  matmulNaive,
  matmulTransA,
  matmulTransB,
  predict,
  reluBackward,
  reluDenseBackwardInput,
  reluForward,
  sgdUpdate,
  sgdUpdateRange,
  softmaxCrossEntropyBackward,
  softmaxCrossEntropyForward,
  sparseDenseBackward,
  sparseDenseForward,
  sparseMatmul,
  sparseRowsFrom,
  sparseRowsOf,
  trainStep,
  transposeSparse,
  type MatmulLayout,
} from '../reference/network.js';
import { toFloat64 } from '../reference/gradcheck.js';
import { mulberry32 } from '../reference/random.js';
import { D, H1, H2, K, PARAM_NAMES, cloneParams, type FloatArray, type Params } from '../reference/shapes.js';

// ---------------------------------------------------------------------------
// Test data, made here.

function glorotParams(seed: number): Params {
  const random = mulberry32(seed);
  const uniform = (fanIn: number, fanOut: number, scale = 1): Float32Array => {
    const limit = Math.sqrt(6 / (fanIn + fanOut));
    return Float32Array.from({ length: fanIn * fanOut }, () => (random() * 2 - 1) * limit * scale);
  };
  // Small nonzero biases, so a bias bug cannot hide behind zeros.
  return { w1: uniform(D, H1), b1: uniform(1, H1, 0.1), w2: uniform(H1, H2), b2: uniform(1, H2, 0.1), w3: uniform(H2, K), b3: uniform(1, K, 0.1) };
}

/** MNIST-like images (N, D): about 80% exact zeros, the rest in (0, 1]. */
function syntheticImages(count: number, seed: number, density = 0.2): Float32Array {
  const random = mulberry32(seed);
  return Float32Array.from({ length: count * D }, () => (random() < density ? 1 - random() : 0));
}

function syntheticOneHot(count: number, seed: number): Float32Array {
  const random = mulberry32(seed);
  const oneHot = new Float32Array(count * K);
  for (let n = 0; n < count; n++) oneHot[n * K + Math.floor(random() * K)] = 1;
  return oneHot;
}

function randomMatrix(length: number, seed: number, zeroFraction = 0): Float64Array {
  const random = mulberry32(seed);
  return Float64Array.from({ length }, () => (random() < zeroFraction ? 0 : random() * 2 - 1));
}

/** Fails with the index, both values and the difference of the worst entry when any |a − b| > tolerance (or is NaN). */
function expectAllClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tolerance: number, what: string): void {
  if (actual.length !== expected.length) throw new Error(`${what}: length ${actual.length}, expected ${expected.length}`);
  let worst = 0;
  let worstDiff = -1;
  for (let i = 0; i < actual.length; i++) {
    const diff = Math.abs(actual[i]! - expected[i]!);
    if (!(diff <= worstDiff) || Number.isNaN(diff)) {
      worst = i;
      worstDiff = Number.isNaN(diff) ? Infinity : diff;
    }
  }
  if (!(worstDiff <= tolerance)) {
    throw new Error(`${what}: |Δ| = ${worstDiff} > ${tolerance} at index ${worst}: ${actual[worst]} vs expected ${expected[worst]}`);
  }
}

// ---------------------------------------------------------------------------
// A naive network, built only from matmulNaive and obvious loops: the oracle for forward and backward.

interface NaiveRun {
  z1: Float64Array; // (B, H1)
  a1: Float64Array;
  z2: Float64Array; // (B, H2)
  a2: Float64Array;
  logits: Float64Array; // (B, K)
  probs: Float64Array;
  loss: number;
  grads: Params<Float64Array>;
}

function naiveNetwork(params: Params<Float64Array>, x: FloatArray, y: FloatArray, batch: number): NaiveRun {
  const dense = (input: FloatArray, w: Float64Array, b: Float64Array, inDim: number, outDim: number): Float64Array => {
    const out = new Float64Array(batch * outDim);
    matmulNaive(out, input, w, batch, inDim, outDim);
    for (let r = 0; r < batch; r++) for (let j = 0; j < outDim; j++) out[r * outDim + j]! += b[j]!;
    return out;
  };
  const relu = (z: Float64Array): Float64Array => z.map((v) => (v > 0 ? v : 0));
  const z1 = dense(x, params.w1, params.b1, D, H1);
  const a1 = relu(z1);
  const z2 = dense(a1, params.w2, params.b2, H1, H2);
  const a2 = relu(z2);
  const logits = dense(a2, params.w3, params.b3, H2, K);
  const probs = new Float64Array(batch * K);
  let loss = 0;
  for (let r = 0; r < batch; r++) {
    const row = logits.subarray(r * K, (r + 1) * K);
    const sum = row.reduce((s, v) => s + Math.exp(v), 0); // unshifted: fine for the small logits here
    for (let k = 0; k < K; k++) {
      probs[r * K + k] = Math.exp(row[k]!) / sum;
      loss -= (y[r * K + k]! * Math.log(probs[r * K + k]!)) / batch;
    }
  }
  const gradsOf = (input: FloatArray, dOut: Float64Array, inDim: number, outDim: number) => {
    const dW = new Float64Array(inDim * outDim);
    matmulNaive(dW, input, dOut, inDim, batch, outDim, 'tn');
    const db = new Float64Array(outDim);
    for (let r = 0; r < batch; r++) for (let j = 0; j < outDim; j++) db[j]! += dOut[r * outDim + j]!;
    return { dW, db };
  };
  const backThrough = (dOut: Float64Array, w: Float64Array, z: Float64Array, inDim: number, outDim: number): Float64Array => {
    const dIn = new Float64Array(batch * inDim);
    matmulNaive(dIn, dOut, w, batch, outDim, inDim, 'nt');
    return dIn.map((v, i) => (z[i]! > 0 ? v : 0));
  };
  const dLogits = probs.map((p, i) => (p - y[i]!) / batch);
  const layer3 = gradsOf(a2, dLogits, H2, K);
  const dZ2 = backThrough(dLogits, params.w3, z2, H2, K);
  const layer2 = gradsOf(a1, dZ2, H1, H2);
  const dZ1 = backThrough(dZ2, params.w2, z1, H1, H2);
  const layer1 = gradsOf(x, dZ1, D, H1);
  return {
    z1, a1, z2, a2, logits, probs, loss,
    grads: { w1: layer1.dW, b1: layer1.db, w2: layer2.dW, b2: layer2.db, w3: layer3.dW, b3: layer3.db },
  };
}

// ---------------------------------------------------------------------------

describe('forward on a case worked by hand', () => {
  // One image with two lit pixels; weights chosen so that only unit 0 of each hidden layer fires.
  //   z1 = [1·2 + 0.5·0 + 0.5, 0.5·(−4), 0, …] = [2.5, −2, 0, …]   a1 = [2.5, 0, …]
  //   z2 = [2.5·0.4, 2.5·(−1), 0, …] = [1, −2.5, 0, …]              a2 = [1, 0, …]
  //   logits_k = 1·(k/10) + 0 = k/10, label 3
  //   loss = log Σₖ e^{k/10} − 0.3,  with Σₖ e^{k/10} = (e − 1)/(e^{0.1} − 1) (a geometric sum)
  const params: Params<Float64Array> = {
    w1: new Float64Array(D * H1),
    b1: new Float64Array(H1),
    w2: new Float64Array(H1 * H2),
    b2: new Float64Array(H2),
    w3: new Float64Array(H2 * K),
    b3: new Float64Array(K),
  };
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
  const ws = createWorkspace(params, 1);
  const result = forward(params, x, 1, ws, y);
  const sumExp = (Math.E - 1) / (Math.exp(0.1) - 1);

  it('gives the hidden layers worked out above', () => {
    expectAllClose(ws.z1.subarray(0, 3), [2.5, -2, 0], 1e-15, 'z1');
    expectAllClose(ws.a1.subarray(0, 3), [2.5, 0, 0], 1e-15, 'a1');
    expectAllClose(ws.z2.subarray(0, 3), [1, -2.5, 0], 1e-15, 'z2');
    expectAllClose(ws.a2.subarray(0, 3), [1, 0, 0], 1e-15, 'a2');
  });

  it('gives logits k/10, softmax probabilities and the loss', () => {
    expectAllClose(result.logits.subarray(0, K), [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9], 1e-15, 'logits');
    const probs = Array.from({ length: K }, (_, k) => Math.exp(k / 10) / sumExp);
    expectAllClose(result.probs.subarray(0, K), probs, 1e-15, 'probs');
    expect(result.loss).toBeCloseTo(Math.log(sumExp) - 0.3, 14);
    expect(result.loss).toBeCloseTo(2.4935, 4); // log(16.3380) − 0.3
  });

  it('gives the gradients (p − y)·… the chain rule predicts', () => {
    const grads = backward(params, y, 1, ws);
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
    const loss = forward(params, x2, 2, createWorkspace(params, 2), y2).loss;
    expect(loss).toBeCloseTo((Math.log(sumExp) - 0.3 + Math.log(sumExp) - 0.9) / 2, 14);
  });
});

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
  const kernels: [MatmulLayout, typeof matmul][] = [
    ['nn', (out, a, b, m, p, n) => matmul(out, a, b, m, p, n)],
    ['tn', matmulTransA],
    ['nt', matmulTransB],
  ];

  for (const [layout, kernel] of kernels) {
    it.each(shapes)(`${layout}: (%i, %i) · (·, %i) in float64 and float32`, (m, p, n) => {
      const a = randomMatrix(m * p, m * 31 + p);
      const b = randomMatrix(p * n, n * 17 + p);
      const expected = new Float64Array(m * n);
      matmulNaive(expected, a, b, m, p, n, layout);
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
    matmulNaive(expected, a, b, m, p, n);
    for (let i = 0; i < m * n; i++) expected[i]! += bias[i % n]!;
    const out = new Float64Array(m * n);
    matmul(out, a, b, m, p, n, bias);
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
    const s = createSparseRows(a, m, m * p);
    expect(sparseRowsOf(s, a, m, p)).toBe((m * (m - 1)) / 2);
    const expected = new Float64Array(m * n);
    matmulNaive(expected, a, b, m, p, n);
    const out = new Float64Array(m * n).fill(NaN);
    sparseMatmul(out, s, b, n);
    expectAllClose(out, expected, 1e-13, 'sparse · dense');
    sparseMatmul(out, s, b, n, bias);
    expectAllClose(out, expected.map((v, i) => v + bias[i % n]!), 1e-13, 'sparse · dense + bias');
    // The transpose, as a sparse index, times a (m, n) matrix is aᵀ·c.
    const sT = createSparseRows(a, p, m * p);
    transposeSparse(sT, s, p);
    const c = randomMatrix(m * n, 8);
    const expectedT = new Float64Array(p * n);
    matmulNaive(expectedT, a, c, p, m, n, 'tn');
    const outT = new Float64Array(p * n).fill(NaN);
    sparseMatmul(outT, sT, c, n);
    expectAllClose(outT, expectedT, 1e-13, 'sparse transpose · dense');
  });

  // How threads share layer 1 (reference/threads.ts): each computes a run of rows, which must equal those rows of the whole product bit for bit.
  it('sparseMatmul over runs of rows gives exactly the rows of the whole product, and touches no others', () => {
    const [m, p, n] = [13, 50, 9];
    const a = randomMatrix(m * p, 20, 0.6);
    const b = new Float32Array(randomMatrix(p * n, 21));
    const bias = new Float32Array(randomMatrix(n, 22));
    const s = createSparseRows(b, m, m * p);
    sparseRowsOf(s, new Float32Array(a), m, p);
    const whole = new Float32Array(m * n);
    sparseMatmul(whole, s, b, n, bias);
    const pieced = new Float32Array(m * n).fill(NaN);
    for (const [first, end] of [[0, 4], [4, 5], [5, 5], [5, 13]] as const) {
      sparseMatmul(pieced, s, b, n, bias, first, end);
      expect(pieced.subarray(end * n).every(Number.isNaN)).toBe(true); // rows past the run are untouched
    }
    expect(pieced).toEqual(whole);
    const pixels = new Float32Array(randomMatrix(20, 23));
    const grads = new Float32Array(randomMatrix(20, 24));
    const once = pixels.slice();
    sgdUpdate(once, grads, 0.1, 20);
    sgdUpdateRange(pixels, grads, 0.1, 0, 7);
    sgdUpdateRange(pixels, grads, 0.1, 7, 20);
    expect(pixels).toEqual(once);
  });

  it('reluDenseBackwardInput is dOut·wᵀ masked by z > 0', () => {
    const [batch, inDim, outDim] = [9, 37, 13];
    const dOut = randomMatrix(batch * outDim, 10, 0.5);
    const w = randomMatrix(inDim * outDim, 11);
    const z = randomMatrix(batch * inDim, 12, 0.1); // includes exact zeros: the kink counts as off
    const expected = new Float64Array(batch * inDim);
    matmulNaive(expected, dOut, w, batch, outDim, inDim, 'nt');
    reluBackward(expected, expected, z, batch * inDim);
    const a = new Float64Array(batch * inDim);
    reluForward(a, z, batch * inDim);
    const active = createSparseRows(a, batch, batch * inDim);
    sparseRowsOf(active, a, batch, inDim);
    const dOutRows = createSparseRows(dOut, batch, batch * outDim);
    sparseRowsOf(dOutRows, dOut, batch, outDim);
    const out = new Float64Array(batch * inDim).fill(NaN);
    reluDenseBackwardInput(out, dOutRows, w, active, inDim, outDim);
    expectAllClose(out, expected, 1e-13, 'masked input gradient');
  });

  it('sparseRowsOf refuses a matrix larger than its index', () => {
    const s = createSparseRows(new Float32Array(1), 2, 8);
    expect(() => sparseRowsOf(s, new Float32Array(12), 3, 4)).toThrow(/a \(3, 4\) matrix does not fit an index sized \(2 rows, 8 entries\)/);
  });
});

describe('zero skipping in the first layer', () => {
  const batch = 16;
  const params = glorotParams(1);
  const x = syntheticImages(batch, 2);

  it('sparseDenseForward equals denseForward', () => {
    const dense = new Float32Array(batch * H1);
    denseForward(dense, x, params.w1, params.b1, batch, D, H1);
    const s = createSparseRows(x, batch, batch * D);
    const lit = sparseRowsOf(s, x, batch, D);
    expect(lit / (batch * D)).toBeGreaterThan(0.15); // the data really is ~80% zeros
    expect(lit / (batch * D)).toBeLessThan(0.25);
    const sparse = new Float32Array(batch * H1);
    sparseDenseForward(sparse, s, params.w1, params.b1, H1);
    expectAllClose(sparse, dense, 1e-5, 'z1 sparse vs dense');
  });

  it('a batch gathered from the indexed split runs exactly like the dense batch', () => {
    const split = syntheticImages(40, 21);
    const index = sparseRowsFrom(split, 40, D);
    expect(index.start[40]).toBe(split.filter((v) => v !== 0).length); // exactly the nonzeros
    expect(index.column.length).toBe(index.start[40]! + 1); // and the one spare slot the branch-free fill writes
    const order = Uint32Array.from({ length: 40 }, (_, i) => (i * 7) % 40);
    const dense = new Float32Array(batch * D);
    for (let r = 0; r < batch; r++) dense.set(split.subarray(order[3 + r]! * D, (order[3 + r]! + 1) * D), r * D);
    const wsDense = createWorkspace(params, batch);
    const wsRows = createWorkspace(params, batch);
    forward(params, dense, batch, wsDense);
    gatherSparseRows(wsRows.xRows, index, order, 3, batch);
    forwardRows(params, batch, wsRows);
    expect(Array.from(wsRows.logits)).toEqual(Array.from(wsDense.logits));
    expect(() => forwardRows(params, batch - 1, wsRows)).toThrow('forwardRows: ws.xRows holds 16 images, expected the batch of 15');
  });

  it('sparseDenseBackward gives the dense dW1 and db1, dark pixels included', () => {
    const dZ1 = Float32Array.from(randomMatrix(batch * H1, 3, 0.5));
    const dW = new Float32Array(D * H1);
    const db = new Float32Array(H1);
    denseBackward(null, dW, db, dZ1, x, params.w1, batch, D, H1);
    const s = createSparseRows(x, batch, batch * D);
    sparseRowsOf(s, x, batch, D);
    const sT = createSparseRows(x, D, batch * D);
    transposeSparse(sT, s, D);
    const dWSparse = new Float32Array(D * H1).fill(NaN); // rows of dark pixels must be zeroed, not left stale
    const dbSparse = new Float32Array(H1);
    sparseDenseBackward(dWSparse, dbSparse, dZ1, sT, batch, H1);
    expectAllClose(dWSparse, dW, 1e-5, 'dW1 sparse vs dense');
    expectAllClose(dbSparse, db, 1e-5, 'db1');
  });
});

describe('the whole network against the naive oracle', () => {
  const batch = 12;
  const params = toFloat64(glorotParams(3));
  const x = syntheticImages(batch, 4);
  const y = syntheticOneHot(batch, 5);
  const oracle = naiveNetwork(params, x, y, batch);
  const ws = createWorkspace(params, batch);
  const result = forward(params, x, batch, ws, y);
  const grads = cloneParams(backward(params, y, batch, ws));

  it('compares logits, then the loss', () => {
    expectAllClose(result.logits.subarray(0, batch * K), oracle.logits, 1e-13, 'logits');
    expectAllClose(result.probs.subarray(0, batch * K), oracle.probs, 1e-14, 'probs');
    expect(Math.abs(result.loss - oracle.loss)).toBeLessThan(1e-13);
  });

  it.each(PARAM_NAMES)('compares the gradient of %s', (name) => {
    expectAllClose(grads[name], oracle.grads[name], 1e-14, `d${name}`);
  });

  it('softmaxCrossEntropy survives logits that would overflow exp', () => {
    const logits = new Float64Array([1000, 0, -1000, 999, 0, 0, 0, 0, 0, 0]);
    const oneHot = new Float64Array(K);
    oneHot[3] = 1;
    const probs = new Float64Array(K);
    const loss = softmaxCrossEntropyForward(probs, logits, oneHot, 1, K);
    expect(loss).toBeCloseTo(1 + Math.log1p(Math.exp(-1)), 12); // log(e^1000 + e^999) − 999
    expect(probs.every(Number.isFinite)).toBe(true);
    const dLogits = new Float64Array(K);
    softmaxCrossEntropyBackward(dLogits, probs, oneHot, 1, K);
    expect(dLogits[3]).toBeCloseTo(probs[3]! - 1, 15);
  });
});

describe('float32 and float64 agree', () => {
  it('on loss, logits and every gradient, to float32 precision', () => {
    const batch = 32;
    const params32 = glorotParams(6);
    const params64 = toFloat64(params32);
    const x = syntheticImages(batch, 7);
    const y = syntheticOneHot(batch, 8);
    const ws32 = createWorkspace(params32, batch);
    const ws64 = createWorkspace(params64, batch);
    const loss32 = forward(params32, x, batch, ws32, y).loss;
    const loss64 = forward(params64, x, batch, ws64, y).loss;
    expect(Math.abs(loss32 - loss64) / loss64).toBeLessThan(1e-6);
    expectAllClose(ws32.logits, ws64.logits, 1e-5, 'logits f32 vs f64');
    const g32 = backward(params32, y, batch, ws32);
    const g64 = backward(params64, y, batch, ws64);
    for (const name of PARAM_NAMES) {
      const scale = g64[name].reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      expectAllClose(g32[name], g64[name], 1e-5 * scale, `d${name} f32 vs f64`);
    }
  });
});

describe('training step, prediction and evaluation', () => {
  it('trainStep returns the pre-update loss and correct count, and moves θ by −lr·∇', () => {
    const batch = 10;
    const params = glorotParams(9);
    const x = syntheticImages(batch, 10);
    const y = syntheticOneHot(batch, 11);
    const ws = createWorkspace(params, 16);
    const before = cloneParams(params);
    const lossBefore = forward(before, x, batch, createWorkspace(before, batch), y).loss;
    const probe = createWorkspace(before, batch);
    forward(before, x, batch, probe, y);
    const correct = countCorrect(probe.logits, y, batch, K);
    const grads = cloneParams(backward(before, y, batch, probe));
    const lr = 0.05;
    const step = trainStep(params, x, y, batch, lr, ws);
    expect(step.loss).toBe(lossBefore);
    expect(step.correct).toBe(correct);
    for (const name of PARAM_NAMES) {
      expectAllClose(params[name], before[name].map((v, i) => v - lr * grads[name][i]!), 1e-7, `${name} after one step`);
    }
    expect(forward(params, x, batch, ws, y).loss).toBeLessThan(lossBefore);
  });

  it('refuses a batch larger than the workspace', () => {
    const params = glorotParams(1);
    const ws = createWorkspace(params, 4);
    expect(() => forward(params, syntheticImages(5, 1), 5, ws)).toThrow(/forward: batch must be an integer in 1\.\.4 \(the workspace's maxBatch\), found 5/);
  });

  it('predict, hiddenActivations and evaluate agree with forward across chunk boundaries', () => {
    const count = 300; // more than one 256-row chunk
    const params = glorotParams(12);
    const images = syntheticImages(count, 13);
    const oneHot = syntheticOneHot(count, 14);
    const ws = createWorkspace(params, count);
    const { loss } = forward(params, images, count, ws, oneHot);
    const expectedPredictions = new Uint8Array(count);
    argmaxRows(expectedPredictions, ws.logits, count, K);

    const { predictions, probs } = predict(params, images, count);
    expect(Array.from(predictions)).toEqual(Array.from(expectedPredictions));
    expectAllClose(probs, ws.probs, 1e-7, 'predict probs');

    const { a1, a2 } = hiddenActivations(params, images, count);
    expect(a1.length).toBe(count * H1);
    expect(a2.length).toBe(count * H2);
    expectAllClose(a1, ws.a1, 1e-6, 'a1');
    expectAllClose(a2, ws.a2, 1e-6, 'a2');

    const evaluation = evaluate(params, images, oneHot, count);
    expect(evaluation.loss).toBeCloseTo(loss, 6);
    expect(evaluation.accuracy).toBe(countCorrect(ws.logits, oneHot, count, K) / count);
    expect(Array.from(evaluation.predictions)).toEqual(Array.from(expectedPredictions));
  });
});
