// Stage 3, train: the spec network on TF.js, mini-batch SGD over the shared
// seeded shuffle, so the reference can replay exactly the same batches.

import * as tf from '@tensorflow/tfjs';
import { batchCount, epochPermutation } from '../reference/random.js';
import { D, K } from '../reference/shapes.js';
import { buildModel, crossEntropy, lossAndAccuracy, predictProbabilities, readParams, writeParams } from './model.js';
import type { ProgressFactory } from './progress.js';
import type { Dataset, EpochRecord, InitialWeights, TrainedModel } from './types.js';

export interface TrainOptions {
  epochs: number;
  batchSize: number;
  lr: number;
  seed: number;
}

/** Thrown when a batch loss stops being finite. */
export class DivergenceError extends Error {
  override name = 'DivergenceError';
}

/** Thrown when the run is interrupted (SIGINT / SIGTERM) between batches. */
export class InterruptedError extends Error {
  override name = 'InterruptedError';
}

export interface TrainHooks {
  progress: ProgressFactory;
  signal?: AbortSignal; // aborted by SIGINT / SIGTERM: stop at the next batch
  onEpochEnd?: (record: EpochRecord, numTensors: number) => void;
}

/** Stage init: the Glorot-uniform weights of a fresh TF.js model, shared by both trainings. */
export function initialWeights(seed: number): InitialWeights {
  const model = buildModel(seed);
  const params = readParams(model);
  model.dispose();
  return { params, seed };
}

/** Stage train: trains the TF.js model from `init` and returns its weights and history. */
export async function trainTfjs(dataset: Dataset, init: InitialWeights, options: TrainOptions, hooks: TrainHooks): Promise<TrainedModel> {
  const { train, validation } = dataset;
  const { epochs, batchSize, lr, seed } = options;
  const model = buildModel(seed);
  writeParams(model, init.params);
  const optimizer = tf.train.sgd(lr);
  const xTrain = tf.tensor2d(train.images, [train.count, D]); // (N, D), on the backend once
  const yTrain = tf.tensor2d(train.oneHot, [train.count, K]); // (N, K)
  const batches = batchCount(train.count, batchSize);
  const history: EpochRecord[] = [];
  let trainSeconds = 0;

  try {
    for (let epoch = 0; epoch < epochs; epoch++) {
      const epochStart = performance.now();
      const order = epochPermutation(train.count, seed, epoch);
      const bar = hooks.progress.epoch(`tfjs epoch ${epoch + 1}/${epochs}`, batches);
      let lossSum = 0;
      let correct = 0;
      let seen = 0;
      for (let b = 0; b < batches; b++) {
        if (hooks.signal?.aborted) throw new InterruptedError(`training interrupted in epoch ${epoch + 1}, batch ${b + 1}`);
        const rows = order.subarray(b * batchSize, Math.min((b + 1) * batchSize, train.count));
        const [batchLoss, batchCorrect] = sgdStep(model, optimizer, xTrain, yTrain, rows);
        if (!Number.isFinite(batchLoss)) {
          throw new DivergenceError(
            `training diverged: the batch loss became ${batchLoss} in epoch ${epoch + 1}, batch ${b + 1} of ${batches} ` +
              `(--lr ${lr} is probably too large)`,
          );
        }
        lossSum += batchLoss * rows.length;
        correct += batchCorrect;
        seen += rows.length;
        bar.batch(b + 1, lossSum / seen, correct / seen);
      }
      trainSeconds += (performance.now() - epochStart) / 1000;
      const val = lossAndAccuracy(predictProbabilities(model, validation.images, validation.count), validation.labels);
      const record: EpochRecord = {
        epoch: epoch + 1,
        loss: lossSum / seen,
        accuracy: correct / seen,
        val_loss: val.loss,
        val_accuracy: val.accuracy,
        seconds: (performance.now() - epochStart) / 1000,
      };
      history.push(record);
      bar.end(
        `tfjs epoch ${record.epoch}/${epochs}: loss ${record.loss.toFixed(4)} acc ${record.accuracy.toFixed(4)} ` +
          `val_loss ${record.val_loss.toFixed(4)} val_acc ${record.val_accuracy.toFixed(4)} (${record.seconds.toFixed(1)} s)`,
      );
      hooks.onEpochEnd?.(record, tf.memory().numTensors);
    }
    const trainAccuracy = lossAndAccuracy(predictProbabilities(model, train.images, train.count), train.labels).accuracy;
    return {
      implementation: 'tfjs',
      backend: tf.getBackend(),
      params: readParams(model),
      history,
      trainSeconds,
      samplesPerSecond: (train.count * epochs) / trainSeconds,
      trainAccuracy,
    };
  } finally {
    tf.dispose([xTrain, yTrain]);
    optimizer.dispose();
    model.dispose();
  }
}

/** One SGD step on the rows `rows` of the training tensors; returns [mean loss, correct count]. */
function sgdStep(
  model: tf.LayersModel,
  optimizer: tf.Optimizer,
  xTrain: tf.Tensor2D,
  yTrain: tf.Tensor2D,
  rows: Uint32Array,
): [number, number] {
  let correct: tf.Tensor | undefined;
  const loss = tf.tidy(() => {
    const indices = tf.tensor1d(Int32Array.from(rows), 'int32');
    const x = tf.gather(xTrain, indices); // (B, D)
    const y = tf.gather(yTrain, indices); // (B, K)
    return optimizer.minimize(() => {
      const probabilities = model.apply(x, { training: true }) as tf.Tensor2D; // (B, K)
      correct = tf.keep(tf.equal(tf.argMax(probabilities, 1), tf.argMax(y, 1)).sum());
      return crossEntropy(y, probabilities);
    }, true) as tf.Scalar;
  });
  if (correct === undefined) throw new Error('sgdStep: the loss function did not run');
  const values: [number, number] = [loss.dataSync()[0]!, correct.dataSync()[0]!];
  tf.dispose([loss, correct]);
  return values;
}
