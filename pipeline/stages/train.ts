// Stage train (after preprocess and init): TF.js's step in the one epoch loop (reference/epochs.ts),
// mini-batch training over the shared seeded shuffle, so the reference can replay exactly the same batches.
// The spec is plain SGD (SPEC_RECIPE); the experiment variants are other recipes
// of the same loop: optimizer, step decay, dropout, batch norm, augmentation.
//
// Each step runs the fast path: the batch is built on the host (augmented there
// when asked) and uploaded, forward and backward are written out rather than
// taped (tfjs/training-step.ts: the spec's weights bit for bit those of
// optimizer.minimize, batch norm on the host), the wasm matmuls are the fast
// kernels (tfjs/fast-kernels.ts), Adam updates on the host in one pass
// (tfjs/optimizers.ts), and the correct digits are counted on the host.
//
// B = batch, D = 784, K = 10.

import * as tf from '@tensorflow/tfjs';
import { trainEpochs, type EpochRecord, type EpochTrainer } from '../../reference/epochs.js';
import { D, K, scalePixels } from '../../reference/shapes.js';
import { augmentImages, augmentRandom } from '../experiments/augment.js';
import { SPEC_RECIPE, learningRateAt, type TrainingRecipe } from '../experiments/variants.js';
import { installFastKernels } from '../tfjs/fast-kernels.js';
import { lossAndAccuracy, predictProbabilities } from '../tfjs/model.js';
import { createOptimizer } from '../tfjs/optimizers.js';
import { buildRecipeModel, exportParams } from '../tfjs/recipe-model.js';
import { createTrainingStep } from '../tfjs/training-step.js';
import { epochBars, type ProgressFactory } from '../progress.js';
import type { Dataset, InitialWeights, Split, TrainedModel } from '../types.js';

export interface TrainOptions {
  epochs: number;
  batchSize: number;
  lr: number; // SGD's and momentum's learning rate (Adam's is in its recipe)
  seed: number;
  recipe?: TrainingRecipe; // default SPEC_RECIPE: plain SGD, the spec
  label?: string; // names the run in progress lines ('tfjs' without one) and errors
}

export interface TrainHooks {
  progress: ProgressFactory;
  signal?: AbortSignal; // aborted by SIGINT / SIGTERM: stop at the next batch
  onEpochEnd?: (record: EpochRecord, numTensors: number) => void;
  onTrained?: (model: tf.LayersModel) => void; // sees the trained layers (batch norm unfolded) before they are disposed
}

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
  const trainStep = createTrainingStep(model, optimizer, batchSize);
  const batch = batchBuffers(batchSize);
  let random = augmentRandom(seed, 0); // the epoch's augmentation stream, restarted by startEpoch
  const trainer: EpochTrainer = {
    startEpoch: (epoch) => {
      optimizer.setLearningRate(learningRateAt(recipe, lr, epoch));
      random = augmentRandom(seed, epoch);
    },
    step: (rows) => {
      fillBatch(batch, train, rows);
      const images = recipe.augment ? augmentImages(batch.images, rows.length, recipe.augment, random, batch.augmented) : batch.images;
      return trainStep(images, batch, rows.length);
    },
    validate: () => lossAndAccuracy(predictProbabilities(model, validation.images, validation.count), validation.labels),
    learningRate: (epoch) =>
      recipe.optimizer.kind === 'adam' ? `Adam's learning rate ${learningRateAt(recipe, lr, epoch)}` : `--lr ${lr}`,
  };
  const bars = epochBars(hooks.progress, label, epochs);

  try {
    const { history, trainSeconds } = await trainEpochs(trainer, {
      count: train.count,
      epochs,
      batchSize,
      seed,
      subject,
      signal: hooks.signal,
      ...bars,
      onEpoch: (record) => {
        bars.onEpoch?.(record);
        hooks.onEpochEnd?.(record, tf.memory().numTensors);
      },
    });
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
    scalePixels(train.images.subarray(n * D, (n + 1) * D), batch.images.subarray(r * D, (r + 1) * D));
    batch.oneHot.set(train.oneHot.subarray(n * K, (n + 1) * K), r * K);
    batch.labels[r] = train.labels[n]!;
  }
}
