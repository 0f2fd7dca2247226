// The reference trainer in lockstep with TF.js: same start, same epochPermutation
// batches, plain SGD on both sides. Step by step the losses match, and after two
// epochs the weights differ only by float32 drift (seen: 5e-8; bound 1e-6). N = 330 images, B = 32, so each
// epoch ends on a short batch of 10. D = 784, K = 10.

import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../pipeline/tfjs/backend.js';
import { buildModel, crossEntropy, readParams, writeParams } from '../pipeline/tfjs/model.js';
import { silentProgress } from '../pipeline/progress.js';
import { trainTfjs } from '../pipeline/stages/train.js';
import type { Dataset, EpochRecord, Split } from '../pipeline/types.js';
import { createWorkspace, evaluate, trainStep } from '../reference/fast/network.js';
import { batchCount, epochPermutation, mulberry32 } from '../reference/random.js';
import { D, K, PARAM_NAMES, cloneParams, type Params } from '../reference/shapes.js';
import { ReferenceDivergenceError, trainReference, trainReferenceAsync, type BatchProgress } from '../reference/sgd.js';
import { expectAllClose } from './helpers/numeric.js';

const COUNT = 330;
const OPTIONS = { epochs: 2, batchSize: 32, lr: 0.1, seed: 11 };

/** Images (N, D), ~80% zeros, whose label is which of ten fixed pixel blocks is brightest: learnable, not trivial. */
function syntheticSplit(count: number, seed: number): Split {
  const random = mulberry32(seed);
  const images = new Float32Array(count * D);
  const labels = new Uint8Array(count);
  for (let n = 0; n < count; n++) {
    const label = Math.floor(random() * K);
    labels[n] = label;
    for (let d = 0; d < D; d++) {
      const inBlock = Math.floor(d / 78) === label;
      if (random() < (inBlock ? 0.6 : 0.15)) images[n * D + d] = 1 - random();
    }
  }
  const oneHot = new Float32Array(count * K);
  labels.forEach((label, n) => (oneHot[n * K + label] = 1));
  return { images, labels, oneHot, count };
}

const dataset: Dataset = {
  train: syntheticSplit(COUNT, 1),
  validation: syntheticSplit(60, 2),
  test: syntheticSplit(10, 3),
  validationOffset: COUNT,
};

function initialParams(seed: number): Params {
  const model = buildModel(seed);
  const params = readParams(model);
  model.dispose();
  return params;
}

/** The batch rows of epoch `epoch`, batch `b`: a consecutive slice of the permutation. */
function batchRows(epoch: number, b: number): Uint32Array {
  const order = epochPermutation(COUNT, OPTIONS.seed, epoch);
  return order.subarray(b * OPTIONS.batchSize, Math.min((b + 1) * OPTIONS.batchSize, COUNT));
}

function gather(rows: Uint32Array): { x: Float32Array; y: Float32Array } {
  const x = new Float32Array(rows.length * D); // (B, D)
  const y = new Float32Array(rows.length * K); // (B, K)
  rows.forEach((row, r) => {
    x.set(dataset.train.images.subarray(row * D, (row + 1) * D), r * D);
    y.set(dataset.train.oneHot.subarray(row * K, (row + 1) * K), r * K);
  });
  return { x, y };
}

beforeAll(async () => {
  await selectBackend('wasm');
});

describe('reference training in lockstep with TF.js', () => {
  it('matches a TF.js tf.train.sgd loop step by step, and ends within float32 drift', () => {
    const init = initialParams(5);
    const model = buildModel(0);
    writeParams(model, init);
    const optimizer = tf.train.sgd(OPTIONS.lr);
    const params = cloneParams(init);
    const ws = createWorkspace(params, OPTIONS.batchSize);
    const batches = batchCount(COUNT, OPTIONS.batchSize);
    let steps = 0;
    try {
      for (let epoch = 0; epoch < OPTIONS.epochs; epoch++) {
        for (let b = 0; b < batches; b++) {
          const rows = batchRows(epoch, b);
          const { x, y } = gather(rows);
          const tfLoss = tf.tidy(() => {
            const xs = tf.tensor2d(x, [rows.length, D]);
            const ys = tf.tensor2d(y, [rows.length, K]);
            const loss = optimizer.minimize(() => crossEntropy(ys, model.apply(xs, { training: true }) as tf.Tensor2D), true)!;
            return loss.dataSync()[0]!;
          });
          const ours = trainStep(params, x, y, rows.length, OPTIONS.lr, ws);
          // The loss before the step, from the same weights: float32 rounding apart, the same number.
          if (!(Math.abs(ours.loss - tfLoss) < 1e-5))
            throw new Error(`epoch ${epoch + 1}, batch ${b + 1}: loss ${ours.loss} vs TF.js ${tfLoss}`);
          steps++;
        }
      }
      expect(steps).toBe(22);
      const tfParams = readParams(model);
      for (const name of PARAM_NAMES) expectAllClose(params[name], tfParams[name], 1e-6, `${name} after ${steps} steps`);
      // ...and the run really moved the weights, far beyond that tolerance.
      const moved = Math.max(...Array.from(params.w3, (v, i) => Math.abs(v - init.w3[i]!)));
      expect(moved).toBeGreaterThan(1e-2);
    } finally {
      optimizer.dispose();
      model.dispose();
    }
  });

  it('trainReference replays exactly the steps of that loop: same slices, same weighted epoch loss', () => {
    const init = initialParams(5);
    const params = cloneParams(init);
    const ws = createWorkspace(params, OPTIONS.batchSize);
    const expectedLoss: number[] = [];
    const expectedAccuracy: number[] = [];
    for (let epoch = 0; epoch < OPTIONS.epochs; epoch++) {
      let lossSum = 0;
      let correct = 0;
      for (let b = 0; b < batchCount(COUNT, OPTIONS.batchSize); b++) {
        const rows = batchRows(epoch, b);
        const { x, y } = gather(rows);
        const step = trainStep(params, x, y, rows.length, OPTIONS.lr, ws);
        lossSum += step.loss * rows.length;
        correct += step.correct;
      }
      expectedLoss.push(lossSum / COUNT);
      expectedAccuracy.push(correct / COUNT);
    }
    const records: EpochRecord[] = [];
    const progress: BatchProgress[] = [];
    const trained = trainReference(dataset, init, { ...OPTIONS, onBatch: (p) => progress.push(p) }, (r) => records.push(r));
    for (const name of PARAM_NAMES) expect(Array.from(trained.params[name])).toEqual(Array.from(params[name]));
    expect(trained.history.map((r) => r.loss)).toEqual(expectedLoss);
    expect(trained.history.map((r) => r.accuracy)).toEqual(expectedAccuracy);
    expect(trained.history.map((r) => r.epoch)).toEqual([1, 2]);
    expect(records).toEqual(trained.history);
    expect(progress).toHaveLength(22);
    expect(progress[10]).toMatchObject({ epoch: 1, batch: 11, batches: 11, loss: expectedLoss[0], accuracy: expectedAccuracy[0] });
    expect(init.w1).toEqual(initialParams(5).w1); // the caller's start is left untouched
    expect(trained.samplesPerSecond).toBeCloseTo((COUNT * OPTIONS.epochs) / trained.trainSeconds, 6);
    // The last epoch's validation scores and the training accuracy are those of the final weights.
    const { validation } = dataset;
    const last = evaluate(params, validation.images, validation.oneHot, validation.count);
    expect(trained.history.at(-1)).toMatchObject({ valLoss: last.loss, valAccuracy: last.accuracy });
    expect(trained.trainAccuracy).toBe(evaluate(params, dataset.train.images, dataset.train.oneHot, COUNT).accuracy);
  });

  it('ends where the pipeline TF.js trainer (trainTfjs) ends, with the same history', async () => {
    const init = initialParams(6);
    const tfjs = await trainTfjs(dataset, { params: init, seed: 6 }, OPTIONS, { progress: silentProgress() });
    const reference = trainReference(dataset, init, OPTIONS);
    for (const name of PARAM_NAMES) expectAllClose(reference.params[name], tfjs.params[name], 1e-6, name);
    expectAllClose(
      reference.history.map((r) => r.loss),
      tfjs.history.map((r) => r.loss),
      1e-5,
      'epoch loss',
    );
    expectAllClose(
      reference.history.map((r) => r.valLoss),
      tfjs.history.map((r) => r.valLoss),
      1e-4,
      'validation loss',
    );
    expectAllClose(
      reference.history.map((r) => r.accuracy),
      tfjs.history.map((r) => r.accuracy),
      1 / COUNT,
      'epoch accuracy',
    );
    expect(Math.abs(reference.trainAccuracy - tfjs.trainAccuracy)).toBeLessThanOrEqual(1 / COUNT);
  });
});

describe('reference training failures', () => {
  it('stops at the first non-finite batch loss, naming epoch and batch (1-based)', () => {
    let error: unknown;
    try {
      trainReference(dataset, initialParams(5), { ...OPTIONS, epochs: 5, lr: 1e10 });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ReferenceDivergenceError);
    const divergence = error as ReferenceDivergenceError;
    expect(divergence.message).toMatch(
      /^reference training diverged: the batch loss became (NaN|Infinity|-Infinity) in epoch \d, batch \d+ of 11 \(--lr 10000000000 is probably too large\)$/,
    );
    expect(divergence.message).toContain(`epoch ${divergence.epoch}, batch ${divergence.batch} of 11`);
    expect(Number.isFinite(divergence.loss)).toBe(false);
  });

  it('stops before the next batch when the signal is aborted', () => {
    const controller = new AbortController();
    controller.abort();
    expect(() => trainReference(dataset, initialParams(5), { ...OPTIONS, signal: controller.signal })).toThrow(
      'reference training interrupted in epoch 1, batch 1',
    );
  });

  it('trainReferenceAsync gives the same result, and lets a signal aborted by a timer stop it mid-run', async () => {
    const init = initialParams(5);
    const sync = trainReference(dataset, init, OPTIONS);
    const async = await trainReferenceAsync(dataset, init, OPTIONS);
    for (const name of PARAM_NAMES) expect(Array.from(async.params[name])).toEqual(Array.from(sync.params[name]));
    expect(async.history.map((r) => r.loss)).toEqual(sync.history.map((r) => r.loss));

    // The abort can only land if training hands the event loop a turn between batches.
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), 150);
    const epochs = 1000; // minutes of work: only the signal can end it in time
    const attempt = trainReferenceAsync(dataset, init, { ...OPTIONS, epochs, signal: controller.signal });
    await expect(attempt).rejects.toThrow(/^reference training interrupted in epoch \d+, batch \d+$/);
    clearTimeout(timer);
  });

  it('refuses a split whose arrays do not match its count', () => {
    const broken = { ...dataset, train: { ...dataset.train, count: COUNT + 1 } };
    expect(() => trainReference(broken, initialParams(5), OPTIONS)).toThrow(
      `trainReference: train.images should hold (${COUNT + 1}, ${D}) = ${(COUNT + 1) * D} values, found ${COUNT * D}`,
    );
  });
});
