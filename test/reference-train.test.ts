// The reference trainer in lockstep with TF.js: same start, same epochPermutation
// batches, plain SGD on both sides. Step by step the losses match, and after two
// epochs the weights differ only by float32 drift (seen: 5e-8; bound 1e-6). N = 330 images, B = 32, so each
// epoch ends on a short batch of 10. D = 784, K = 10. Both trainers run the one epoch loop
// (reference/epochs.ts), tested here on its own too.

import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../pipeline/tfjs/backend.js';
import { buildModel, crossEntropy, readParams, writeParams } from '../pipeline/tfjs/model.js';
import { silentProgress } from '../pipeline/progress.js';
import { InterruptedError as PipelineInterruptedError } from '../pipeline/dag/interrupted.js';
import { trainTfjs } from '../pipeline/stages/train.js';
import type { Dataset, EpochRecord, Split } from '../pipeline/types.js';
import { DivergenceError, InterruptedError, trainEpochs, type BatchProgress, type EpochTrainer } from '../reference/epochs.js';
import { sparseRowsOf } from '../reference/fast/kernels.js';
import { createWorkspace, evaluate, trainStepRows } from '../reference/fast/network.js';
import { batchCount, epochPermutation, mulberry32 } from '../reference/random.js';
import { D, K, PARAM_NAMES, cloneParams, scalePixels, type Params } from '../reference/shapes.js';
import { trainReferenceAsync } from '../reference/sgd.js';
import { expectAllClose } from './helpers/numeric.js';

const COUNT = 330;
const OPTIONS = { epochs: 2, batchSize: 32, lr: 0.1, seed: 11 };

/** Images (N, D), ~80% zeros, whose label is which of ten fixed pixel blocks is brightest: learnable, not trivial. */
function syntheticSplit(count: number, seed: number): Split {
  const random = mulberry32(seed);
  const images = new Uint8Array(count * D); // (N, D) bytes
  const labels = new Uint8Array(count);
  for (let n = 0; n < count; n++) {
    const label = Math.floor(random() * K);
    labels[n] = label;
    for (let d = 0; d < D; d++) {
      const inBlock = Math.floor(d / 78) === label;
      if (random() < (inBlock ? 0.6 : 0.15)) images[n * D + d] = 1 + Math.floor(random() * 255);
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
    scalePixels(dataset.train.images.subarray(row * D, (row + 1) * D), x.subarray(r * D, (r + 1) * D));
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
          sparseRowsOf(ws.xRows, x, rows.length, D);
          const ours = trainStepRows(params, y, rows.length, OPTIONS.lr, ws);
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

  it('trainReferenceAsync replays exactly the steps of that loop: same slices, same weighted epoch loss', async () => {
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
        sparseRowsOf(ws.xRows, x, rows.length, D);
        const step = trainStepRows(params, y, rows.length, OPTIONS.lr, ws);
        lossSum += step.loss * rows.length;
        correct += step.correct;
      }
      expectedLoss.push(lossSum / COUNT);
      expectedAccuracy.push(correct / COUNT);
    }
    const records: EpochRecord[] = [];
    const progress: BatchProgress[] = [];
    const trained = await trainReferenceAsync(dataset, init, {
      ...OPTIONS,
      onBatch: (p) => progress.push(p),
      onEpoch: (r) => records.push(r),
    });
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
    const reference = await trainReferenceAsync(dataset, init, OPTIONS);
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
  it('stops at the first non-finite batch loss, naming epoch and batch (1-based)', async () => {
    const error: unknown = await trainReferenceAsync(dataset, initialParams(5), { ...OPTIONS, epochs: 5, lr: 1e10 }).catch(
      (caught) => caught,
    );
    expect(error).toBeInstanceOf(DivergenceError);
    const divergence = error as DivergenceError;
    expect(divergence.message).toMatch(
      /^reference training diverged: the batch loss became (NaN|Infinity|-Infinity) in epoch \d, batch \d+ of 11 \(--lr 10000000000 is probably too large\)$/,
    );
    expect(divergence.message).toContain(`epoch ${divergence.epoch}, batch ${divergence.batch} of 11`);
    expect(Number.isFinite(divergence.loss)).toBe(false);
  });

  it('stops before the next batch when the signal is aborted', async () => {
    const controller = new AbortController();
    controller.abort();
    await expect(trainReferenceAsync(dataset, initialParams(5), { ...OPTIONS, signal: controller.signal })).rejects.toThrow(
      'reference training interrupted in epoch 1, batch 1',
    );
  });

  it('lets a signal aborted by a timer stop it mid-run', async () => {
    const init = initialParams(5);
    // The abort can only land if training hands the event loop a turn between batches.
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), 150);
    const epochs = 1000; // minutes of work: only the signal can end it in time
    const attempt = trainReferenceAsync(dataset, init, { ...OPTIONS, epochs, signal: controller.signal });
    await expect(attempt).rejects.toThrow(/^reference training interrupted in epoch \d+, batch \d+$/);
    clearTimeout(timer);
  });

  it('refuses a split whose arrays do not match its count', async () => {
    const broken = { ...dataset, train: { ...dataset.train, count: COUNT + 1 } };
    await expect(trainReferenceAsync(broken, initialParams(5), OPTIONS)).rejects.toThrow(
      `trainReferenceAsync: train.images should hold (${COUNT + 1}, ${D}) = ${(COUNT + 1) * D} values, found ${COUNT * D}`,
    );
  });
});

describe('the one epoch loop (reference/epochs.ts)', () => {
  const LOOP = { count: COUNT, epochs: 2, batchSize: 32, seed: 11, subject: 'test training' };

  it("steps through each epoch's permutation in consecutive batches, the last one short, and records each epoch", async () => {
    const calls: string[] = [];
    const batches: number[][] = [];
    const trainer: EpochTrainer = {
      startEpoch: (epoch) => calls.push(`start ${epoch}`),
      step: (rows) => {
        calls.push('step');
        batches.push(Array.from(rows));
        return { loss: batches.length, correct: rows.length % 3 }; // loss 1, 2, 3, … so the weighting shows
      },
      validate: () => {
        calls.push('validate');
        return { loss: 0.5, accuracy: 0.25 };
      },
      learningRate: () => '--lr 1',
    };
    const { history, trainSeconds } = await trainEpochs(trainer, {
      ...LOOP,
      onEpochStart: (epoch, count) => calls.push(`bar ${epoch} of ${count}`),
      onEpoch: (record) => calls.push(`end ${record.epoch}`),
    });
    const epochCalls = (epoch: number) => [
      `start ${epoch}`,
      `bar ${epoch + 1} of 11`,
      ...Array(11).fill('step'),
      'validate',
      `end ${epoch + 1}`,
    ];
    expect(calls).toEqual([...epochCalls(0), ...epochCalls(1)]);
    expect(batches.map((rows) => rows.length)).toEqual([...Array(10).fill(32), 10, ...Array(10).fill(32), 10]);
    for (const epoch of [0, 1]) {
      expect(batches.slice(epoch * 11, (epoch + 1) * 11).flat()).toEqual(Array.from(epochPermutation(COUNT, LOOP.seed, epoch)));
    }
    // Epoch 1: losses 1..10 on 32 images and 11 on the last 10; 32 % 3 = 2 right in each full batch, 10 % 3 = 1 in the short one.
    expect(history[0]).toMatchObject({
      epoch: 1,
      loss: (32 * 55 + 11 * 10) / COUNT,
      accuracy: 21 / COUNT,
      valLoss: 0.5,
      valAccuracy: 0.25,
    });
    expect(history[1]).toMatchObject({ epoch: 2, loss: (32 * (12 + 21) * 5 + 22 * 10) / COUNT });
    expect(trainSeconds).toBeGreaterThan(0);
    expect(trainSeconds).toBeLessThanOrEqual(history[0]!.seconds + history[1]!.seconds);
  });

  it("stops at the first non-finite batch loss with a DivergenceError naming the trainer's learning rate", async () => {
    let steps = 0;
    const trainer: EpochTrainer = {
      step: () => ({ loss: ++steps === 14 ? Number.NaN : 1, correct: 0 }),
      validate: () => ({ loss: 1, accuracy: 0 }),
      learningRate: (epoch) => `the rate of epoch index ${epoch}`,
    };
    const error: unknown = await trainEpochs(trainer, LOOP).catch((caught) => caught);
    expect(error).toBeInstanceOf(DivergenceError);
    expect(error).toMatchObject({
      message:
        'test training diverged: the batch loss became NaN in epoch 2, batch 3 of 11 (the rate of epoch index 1 is probably too large)',
      epoch: 2,
      batch: 3,
      batches: 11,
    });
  });

  it('hands the event loop a turn between batches, so a signal aborted by a timer stops it', async () => {
    const trainer: EpochTrainer = {
      step: () => {
        const until = performance.now() + 1; // a synchronous step of 1 ms
        while (performance.now() < until);
        return { loss: 1, correct: 0 };
      },
      validate: () => ({ loss: 1, accuracy: 0 }),
      learningRate: () => '--lr 1',
    };
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), 100);
    const attempt = trainEpochs(trainer, { ...LOOP, epochs: 1000, signal: controller.signal }); // minutes of work: only the signal can end it in time
    await expect(attempt).rejects.toThrow(/^test training interrupted in epoch \d+, batch \d+$/);
    await expect(attempt).rejects.toBeInstanceOf(InterruptedError);
    clearTimeout(timer);
  });

  it('is the loop of both trainers: they stop with its one DivergenceError and its one InterruptedError', async () => {
    const init = initialParams(5);
    const diverging = { ...OPTIONS, epochs: 5, lr: 1e10 };
    const tfjsDivergence: unknown = await trainTfjs(dataset, { params: init, seed: 5 }, diverging, { progress: silentProgress() }).catch(
      (caught) => caught,
    );
    const referenceDivergence: unknown = await trainReferenceAsync(dataset, init, diverging).catch((caught) => caught);
    expect(tfjsDivergence).toBeInstanceOf(DivergenceError);
    expect(referenceDivergence).toBeInstanceOf(DivergenceError);
    expect((tfjsDivergence as Error).message).toMatch(/^training diverged: .* \(--lr 10000000000 is probably too large\)$/);
    expect((referenceDivergence as Error).message).toMatch(/^reference training diverged: .* \(--lr 10000000000 is probably too large\)$/);

    const signal = AbortSignal.abort();
    const tfjsStop: unknown = await trainTfjs(dataset, { params: init, seed: 5 }, OPTIONS, { progress: silentProgress(), signal }).catch(
      (caught) => caught,
    );
    const referenceStop: unknown = await trainReferenceAsync(dataset, init, { ...OPTIONS, signal }).catch((caught) => caught);
    expect(tfjsStop).toBeInstanceOf(InterruptedError);
    expect(referenceStop).toBeInstanceOf(InterruptedError);
    expect((tfjsStop as Error).message).toBe('training interrupted in epoch 1, batch 1');
    expect((referenceStop as Error).message).toBe('reference training interrupted in epoch 1, batch 1');
    expect(PipelineInterruptedError).toBe(InterruptedError); // the pipeline's stop between stages is the same class, not a look-alike
  });
});
