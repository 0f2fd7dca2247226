// The re-registered wasm matmul kernels against a float64 naive matmul and
// against the original kernels; then the optimised training loop against the
// plain one it replaced. Timings are never asserted here (see bench/bench.ts).

import { rmSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../pipeline/tfjs/backend.js';
import { fastKernelsInstalled, installFastKernels } from '../pipeline/tfjs/fast-kernels.js';
import { loadMnist } from '../pipeline/stages/load.js';
import { buildModel, crossEntropy } from '../pipeline/tfjs/model.js';
import { preprocessDataset } from '../pipeline/stages/preprocess.js';
import { silentProgress } from '../pipeline/progress.js';
import { initialWeights } from '../pipeline/stages/init.js';
import { trainTfjs } from '../pipeline/stages/train.js';
import { mulberry32 } from '../reference/random.js';
import { D, K, PARAM_NAMES } from '../reference/shapes.js';
import { writeFakeMnist } from './helpers/idx.js';
import { uninstallFastKernels } from './helpers/original-kernels.js';
import { trainTfjsPlain } from './helpers/plain-loop.js';

const BACKEND = 'wasm';

beforeAll(async () => {
  await selectBackend(BACKEND);
});
afterEach(() => {
  installFastKernels(BACKEND); // the state the pipeline runs in
});

/** Seeded values in [-1, 1). */
function randomValues(count: number, seed: number): Float32Array {
  const random = mulberry32(seed);
  return Float32Array.from({ length: count }, () => random() * 2 - 1);
}

/**
 * The oracle: a float64 triple loop over a batch of row-major matrices.
 * a is (batchA, m, p), or (batchA, p, m) if transposeA; b is (batchB, p, n), or
 * (batchB, n, p) if transposeB; a batch of 1 broadcasts. Returns (batch, m, n).
 */
function matMulNaive(
  a: Float32Array,
  aShape: number[],
  b: Float32Array,
  bShape: number[],
  transposeA: boolean,
  transposeB: boolean,
): { values: Float64Array; shape: number[] } {
  const [batchA, aRows, aCols] = aShape.length === 3 ? aShape : [1, ...aShape];
  const [batchB, bRows, bCols] = bShape.length === 3 ? bShape : [1, ...bShape];
  const m = transposeA ? aCols! : aRows!;
  const p = transposeA ? aRows! : aCols!;
  const n = transposeB ? bRows! : bCols!;
  const batch = Math.max(batchA!, batchB!);
  const values = new Float64Array(batch * m * n); // (batch, m, n)
  const aStride = aRows! * aCols!;
  const bStride = bRows! * bCols!;
  for (let s = 0; s < batch; s++) {
    const aBase = (batchA === 1 ? 0 : s) * aStride;
    const bBase = (batchB === 1 ? 0 : s) * bStride;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let sum = 0;
        for (let k = 0; k < p; k++) {
          const aik = a[aBase + (transposeA ? k * aCols! + i : i * aCols! + k)]!;
          const bkj = b[bBase + (transposeB ? j * bCols! + k : k * bCols! + j)]!;
          sum += aik * bkj;
        }
        values[(s * m + i) * n + j] = sum;
      }
    }
  }
  const shape = aShape.length === 3 || bShape.length === 3 ? [batch, m, n] : [m, n];
  return { values, shape };
}

/** Fails naming the first index beyond tolerance, both values and the largest difference. */
function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, atol: number, rtol: number, what: string): void {
  expect(actual.length).toBe(expected.length);
  let worst = -1;
  let worstExcess = 0;
  let largest = 0;
  for (let i = 0; i < expected.length; i++) {
    const difference = Math.abs(actual[i]! - expected[i]!);
    largest = Math.max(largest, difference);
    const excess = difference - (atol + rtol * Math.abs(expected[i]!));
    if (!(excess <= 0) && (worst < 0 || excess > worstExcess)) {
      worst = i;
      worstExcess = excess;
    }
  }
  if (worst >= 0) {
    throw new Error(
      `${what}: index ${worst} is ${actual[worst]}, expected ${expected[worst]} ` +
        `(|diff| ${Math.abs(actual[worst]! - expected[worst]!)} > ${atol} + ${rtol}·|expected|); largest |diff| ${largest}`,
    );
  }
}

/** Runs `f` with the fast kernels installed or with the backend's originals, and returns its values. */
function withKernels<T>(fast: boolean, f: () => T): T {
  if (fast) installFastKernels(BACKEND);
  else uninstallFastKernels(BACKEND);
  expect(fastKernelsInstalled(BACKEND)).toBe(fast);
  return f();
}

/** Float32 rounding allowed in a p-term sum of products of values in [-1, 1), well above what summation order changes. */
function sumTolerance(p: number): number {
  return 1e-6 + 2e-7 * p;
}

describe('installFastKernels', () => {
  it('installs on wasm once, restores the originals, and is a no-op on cpu', () => {
    uninstallFastKernels(BACKEND);
    const original = tf.getKernel('BatchMatMul', BACKEND)!.kernelFunc;
    expect(installFastKernels(BACKEND)).toBe(true);
    const installed = tf.getKernel('BatchMatMul', BACKEND)!.kernelFunc;
    expect(installed).not.toBe(original);
    expect(installFastKernels(BACKEND)).toBe(true);
    expect(tf.getKernel('BatchMatMul', BACKEND)!.kernelFunc).toBe(installed); // not wrapped twice
    uninstallFastKernels(BACKEND);
    expect(tf.getKernel('BatchMatMul', BACKEND)!.kernelFunc).toBe(original);
    expect(installFastKernels('cpu')).toBe(false);
    expect(fastKernelsInstalled('cpu')).toBe(false);
  });
});

describe('the transposing BatchMatMul', () => {
  // [aShape, bShape] before the transpose flags are applied to them
  const cases: [string, number[], number[]][] = [
    ['a dense layer (64×784·784×128)', [64, 784], [784, 128]],
    ['odd 2-D shapes', [37, 19], [19, 23]],
    ['a row times a column', [1, 13], [13, 1]],
    ['a column times a row', [9, 1], [1, 11]],
    ['batched 3-D', [3, 5, 7], [3, 7, 4]],
    ['batched 3-D with a broadcast a', [1, 6, 5], [4, 5, 3]],
  ];
  const flags: [boolean, boolean][] = [
    [false, false],
    [true, false],
    [false, true],
    [true, true],
  ];
  const swapLastTwo = (shape: number[]) => [...shape.slice(0, -2), shape.at(-1)!, shape.at(-2)!];

  for (const [name, aPlain, bPlain] of cases) {
    for (const [transposeA, transposeB] of flags) {
      it(`matches the naive matmul and the original kernel: ${name}, transposeA ${transposeA}, transposeB ${transposeB}`, () => {
        const aShape = transposeA ? swapLastTwo(aPlain) : aPlain;
        const bShape = transposeB ? swapLastTwo(bPlain) : bPlain;
        const a = randomValues(
          aShape.reduce((x, y) => x * y),
          1,
        );
        const b = randomValues(
          bShape.reduce((x, y) => x * y),
          2,
        );
        const expected = matMulNaive(a, aShape, b, bShape, transposeA, transposeB);
        const run = () =>
          tf.tidy(() => {
            const product = tf.matMul(tf.tensor(a, aShape), tf.tensor(b, bShape), transposeA, transposeB);
            return { shape: product.shape, values: product.dataSync() as Float32Array };
          });
        const original = withKernels(false, run);
        const tensorsBefore = tf.memory().numTensors;
        const dataBefore = tf.engine().backend.numDataIds();
        const fast = withKernels(true, run);
        expect(tf.memory().numTensors).toBe(tensorsBefore);
        expect(tf.engine().backend.numDataIds()).toBe(dataBefore); // the transposed temporaries were freed

        const p = transposeA ? aShape.at(-2)! : aShape.at(-1)!;
        expect(fast.shape).toEqual(expected.shape);
        expectClose(fast.values, expected.values, sumTolerance(p), 0, 'fast kernel vs naive float64');
        expectClose(fast.values, original.values, 2 * sumTolerance(p), 0, 'fast kernel vs original kernel');
      });
    }
  }
});

describe('the transposing _FusedMatMul', () => {
  const [m, p, n] = [17, 29, 11];
  const a = randomValues(p * m, 3); // (p, m), used transposed
  const b = randomValues(n * p, 4); // (n, p), used transposed
  const bias = randomValues(n, 5);
  const product = matMulNaive(a, [p, m], b, [n, p], true, true).values; // (m, n)
  const fusedMatMul = (withBias: boolean) => () =>
    tf.tidy(() => {
      const out = tf.fused.matMul({
        a: tf.tensor2d(a, [p, m]),
        b: tf.tensor2d(b, [n, p]),
        transposeA: true,
        transposeB: true,
        ...(withBias ? { bias: tf.tensor1d(bias) } : {}),
        activation: 'relu',
      });
      return out.dataSync() as Float32Array;
    });

  it('matches the naive matmul + relu and the original kernel with both operands transposed', () => {
    const expected = product.map((v) => Math.max(v, 0));
    const original = withKernels(false, fusedMatMul(false));
    const fast = withKernels(true, fusedMatMul(false));
    expectClose(fast, expected, sumTolerance(p), 0, 'fast fused kernel vs naive float64');
    expectClose(fast, original, 2 * sumTolerance(p), 0, 'fast fused kernel vs original kernel');
  });

  it('matches the naive matmul + bias + relu with both operands transposed', () => {
    // Not compared with the original: tfjs-backend-wasm 4.22's _FusedMatMul adds the
    // bias wrongly when an operand is transposed; the replacement never asks it to.
    const expected = product.map((v, i) => Math.max(v + bias[i % n]!, 0));
    const fast = withKernels(true, fusedMatMul(true));
    expectClose(fast, expected, sumTolerance(p), 0, 'fast fused kernel vs naive float64');
  });
});

describe('gradients through the dense layers', () => {
  it('agree with the original kernels within 1e-5 for every weight', () => {
    const B = 64;
    const images = randomValues(B * D, 6).map((v) => (v + 1) / 2); // (B, D) in [0, 1)
    const labelRandom = mulberry32(7);
    const oneHot = new Float32Array(B * K); // (B, K)
    for (let r = 0; r < B; r++) oneHot[r * K + Math.floor(labelRandom() * K)] = 1;

    const gradients = (fast: boolean) =>
      withKernels(fast, () => {
        const model = buildModel(11);
        const variables = model.trainableWeights.map((weight) => weight.read() as tf.Variable); // w1, b1, w2, b2, w3, b3
        try {
          return tf.tidy(() => {
            const x = tf.tensor2d(images, [B, D]);
            const y = tf.tensor2d(oneHot, [B, K]);
            const { value, grads } = tf.variableGrads(() => crossEntropy(y, model.apply(x, { training: true }) as tf.Tensor2D), variables);
            return { loss: value.dataSync()[0]!, grads: variables.map((v) => grads[v.name]!.dataSync() as Float32Array) };
          });
        } finally {
          model.dispose();
        }
      });
    const original = gradients(false);
    const fast = gradients(true);
    expect(Math.abs(fast.loss - original.loss)).toBeLessThan(1e-6);
    expect(fast.grads).toHaveLength(PARAM_NAMES.length);
    PARAM_NAMES.forEach((param, i) => expectClose(fast.grads[i]!, original.grads[i]!, 1e-5, 0, `gradient of ${param}`));
  });
});

describe('the optimised training loop', () => {
  let dir: string;
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('replays the plain gather loop on the original kernels, up to float32 rounding', async () => {
    dir = writeFakeMnist(undefined, { trainCount: 300, testCount: 100 });
    const dataset = preprocessDataset(loadMnist(dir), 200, 100, 100); // 200 = 6 full batches and a short one
    const options = { epochs: 2, batchSize: 32, lr: 0.1, seed: 7 };
    const init = initialWeights(7);
    const plain = withKernels(false, () => trainTfjsPlain(dataset, init, options));
    const optimised = await trainTfjs(dataset, init, options, { progress: silentProgress() });
    expect(fastKernelsInstalled(BACKEND)).toBe(true); // trainTfjs installs them

    const batches = Math.ceil(dataset.train.count / options.batchSize);
    for (let epoch = 0; epoch < options.epochs; epoch++) {
      const rows = plain.losses.slice(epoch * batches, (epoch + 1) * batches);
      const sizes = rows.map((_, b) => Math.min(options.batchSize, dataset.train.count - b * options.batchSize));
      const meanLoss = rows.reduce((sum, loss, b) => sum + loss * sizes[b]!, 0) / dataset.train.count;
      const correct = plain.corrects.slice(epoch * batches, (epoch + 1) * batches).reduce((x, y) => x + y, 0);
      expect(Math.abs(optimised.history[epoch]!.loss - meanLoss)).toBeLessThan(1e-5);
      expect(optimised.history[epoch]!.accuracy).toBe(correct / dataset.train.count);
    }
    for (const param of PARAM_NAMES) expectClose(optimised.params[param], plain.params[param], 1e-5, 0, `trained ${param}`);
  });
});
