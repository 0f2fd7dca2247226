// Stage train (after preprocess and init), and the one TF.js training loop: mini-batch training over the
// shared seeded shuffle, so the reference can replay exactly the same batches.
// The spec is plain SGD (SPEC_RECIPE); the experiment variants are other recipes
// of the same loop: optimizer, step decay, dropout, batch norm, augmentation.
//
// Each step runs the fast path: the batch is built on the host (augmented there
// when asked) and uploaded, the wasm matmuls are the fast kernels
// (tfjs/fast-kernels.ts), Adam updates on the host in one pass
// (tfjs/optimizers.ts), and the correct digits are counted on the host.
//
// B = batch, D = 784, K = 10.

import * as tf from '@tensorflow/tfjs';
import { batchCount, epochPermutation } from '../../reference/random.js';
import { D, K } from '../../reference/shapes.js';
import { epochRecord } from '../../reference/sgd.js';
import { InterruptedError } from '../dag/interrupted.js';
import { augmentImages, augmentRandom } from '../experiments/augment.js';
import { SPEC_RECIPE, learningRateAt, type TrainingRecipe } from '../experiments/variants.js';
import { installFastKernels } from '../tfjs/fast-kernels.js';
import { argmax, buildModel, crossEntropy, lossAndAccuracy, predictProbabilities, readParams } from '../tfjs/model.js';
import { createOptimizer } from '../tfjs/optimizers.js';
import { buildRecipeModel, exportParams } from '../tfjs/recipe-model.js';
import { epochSummary, type ProgressFactory } from '../progress.js';
import type { Dataset, EpochRecord, InitialWeights, Split, TrainedModel } from '../types.js';

export interface TrainOptions {
  epochs: number;
  batchSize: number;
  lr: number; // SGD's and momentum's learning rate (Adam's is in its recipe)
  seed: number;
  recipe?: TrainingRecipe; // default SPEC_RECIPE: plain SGD, the spec
  label?: string; // names the run in progress lines ('tfjs' without one) and errors
}

/** Thrown when a batch loss stops being finite. */
export class DivergenceError extends Error {
  override name = 'DivergenceError';
}

export interface TrainHooks {
  progress: ProgressFactory;
  signal?: AbortSignal; // aborted by SIGINT / SIGTERM: stop at the next batch
  onEpochEnd?: (record: EpochRecord, numTensors: number) => void;
  onTrained?: (model: tf.LayersModel) => void; // sees the trained layers (batch norm unfolded) before they are disposed
}

/** Stage init: the Glorot-uniform weights of a fresh TF.js model, shared by both trainings. */
export function initialWeights(seed: number): InitialWeights {
  const model = buildModel(seed);
  const params = readParams(model);
  model.dispose();
  return { params, seed };
}

const YIELD_EVERY_MS = 50;

/**
 * Stage train: trains the TF.js model from `init` with `options.recipe` and
 * returns its weights, as the spec's plain dense network, and its history.
 */
export async function trainTfjs(dataset: Dataset, init: InitialWeights, options: TrainOptions, hooks: TrainHooks): Promise<TrainedModel> {
  const { train, validation } = dataset;
  const { epochs, batchSize, lr, seed, recipe = SPEC_RECIPE } = options;
  const label = options.label ?? 'tfjs';
  const subject = options.label === undefined ? 'training' : `${options.label} training`; // the train stage's errors keep their words
  installFastKernels(tf.getBackend()); // idempotent; a no-op where transposed matmuls are not slow
  const model = buildRecipeModel(init.params, recipe, seed);
  const optimizer = createOptimizer(recipe.optimizer, lr);
  const batch = batchBuffers(batchSize);
  const batches = batchCount(train.count, batchSize);
  const history: EpochRecord[] = [];
  let trainSeconds = 0;
  let lastYield = performance.now();

  try {
    for (let epoch = 0; epoch < epochs; epoch++) {
      const epochStart = performance.now();
      const epochLr = learningRateAt(recipe, lr, epoch);
      optimizer.setLearningRate(epochLr);
      const order = epochPermutation(train.count, seed, epoch);
      const random = augmentRandom(seed, epoch);
      const bar = hooks.progress.epoch(`${label} epoch ${epoch + 1}/${epochs}`, batches);
      let lossSum = 0;
      let correct = 0;
      let seen = 0;
      for (let b = 0; b < batches; b++) {
        // The loop is synchronous; give the event loop a turn now and then, or a SIGINT would wait for the end.
        if (performance.now() - lastYield >= YIELD_EVERY_MS) {
          await new Promise<void>((resolve) => setImmediate(resolve));
          lastYield = performance.now();
        }
        if (hooks.signal?.aborted) throw new InterruptedError(`${subject} interrupted in epoch ${epoch + 1}, batch ${b + 1}`);
        const rows = order.subarray(b * batchSize, Math.min((b + 1) * batchSize, train.count));
        fillBatch(batch, train, rows);
        const images = recipe.augment ? augmentImages(batch.images, rows.length, recipe.augment, random, batch.augmented) : batch.images;
        const [batchLoss, batchCorrect] = trainStep(model, optimizer, images, batch, rows.length);
        if (!Number.isFinite(batchLoss)) {
          throw new DivergenceError(
            `${subject} diverged: the batch loss became ${batchLoss} in epoch ${epoch + 1}, batch ${b + 1} of ${batches} ` +
              `(${recipe.optimizer.kind === 'adam' ? `Adam's learning rate ${epochLr}` : `--lr ${lr}`} is probably too large)`,
          );
        }
        lossSum += batchLoss * rows.length;
        correct += batchCorrect;
        seen += rows.length;
        bar.batch(b + 1, lossSum / seen, correct / seen);
      }
      trainSeconds += (performance.now() - epochStart) / 1000;
      const val = lossAndAccuracy(predictProbabilities(model, validation.images, validation.count), validation.labels);
      const record = epochRecord(epoch + 1, lossSum, correct, seen, val, epochStart);
      history.push(record);
      bar.end(epochSummary(label, record, epochs));
      hooks.onEpochEnd?.(record, tf.memory().numTensors);
    }
    const trainAccuracy = lossAndAccuracy(predictProbabilities(model, train.images, train.count), train.labels).accuracy;
    hooks.onTrained?.(model);
    return {
      implementation: 'tfjs',
      backend: tf.getBackend(),
      params: exportParams(model),
      history,
      trainSeconds,
      samplesPerSecond: (train.count * epochs) / trainSeconds,
      trainAccuracy,
    };
  } finally {
    optimizer.dispose();
    model.dispose();
  }
}

/**
 * One batch on the host. Copying 64 rows here and uploading them costs far less
 * than tf.gather from the whole training set on the backend (~1.6 ms a step on wasm).
 * Reused every step: the cpu backend keeps a reference instead of copying, which
 * is safe because each step disposes every tensor made from it.
 */
export interface BatchBuffers {
  images: Float32Array; // (B, D)
  augmented: Float32Array; // (B, D), the images after augmentation, when the recipe asks for it
  oneHot: Float32Array; // (B, K)
  labels: Uint8Array; // (B)
}

export function batchBuffers(batchSize: number): BatchBuffers {
  return {
    images: new Float32Array(batchSize * D),
    augmented: new Float32Array(batchSize * D),
    oneHot: new Float32Array(batchSize * K),
    labels: new Uint8Array(batchSize),
  };
}

/** Copies the training rows `rows` into the batch buffers, in order. */
export function fillBatch(batch: BatchBuffers, train: Split, rows: Uint32Array): void {
  for (let r = 0; r < rows.length; r++) {
    const n = rows[r]!;
    batch.images.set(train.images.subarray(n * D, (n + 1) * D), r * D);
    batch.oneHot.set(train.oneHot.subarray(n * K, (n + 1) * K), r * K);
    batch.labels[r] = train.labels[n]!;
  }
}

/** One optimizer step on the first `rows` rows of `images` (B, D) and of `batch`'s labels; returns [mean loss, correct count]. */
function trainStep(
  model: tf.LayersModel,
  optimizer: tf.Optimizer,
  images: Float32Array,
  batch: BatchBuffers,
  rows: number,
): [number, number] {
  let probabilities: tf.Tensor2D | undefined;
  const loss = tf.tidy(() => {
    const x = tf.tensor2d(images.subarray(0, rows * D), [rows, D]); // (B, D)
    const y = tf.tensor2d(batch.oneHot.subarray(0, rows * K), [rows, K]); // (B, K)
    return optimizer.minimize(() => {
      probabilities = tf.keep(model.apply(x, { training: true }) as tf.Tensor2D); // (B, K)
      return crossEntropy(y, probabilities);
    }, true) as tf.Scalar;
  });
  if (probabilities === undefined) throw new Error('trainStep: the loss function did not run');
  const lossValue = loss.dataSync()[0]!;
  const predicted = probabilities.dataSync(); // (B, K); argmax on the host saves four kernels a step
  tf.dispose([loss, probabilities]);
  let correct = 0;
  for (let r = 0; r < rows; r++) if (argmax(predicted.subarray(r * K, (r + 1) * K)) === batch.labels[r]) correct++;
  return [lossValue, correct];
}
