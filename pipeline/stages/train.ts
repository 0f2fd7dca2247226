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
import { deriveSeed } from '../../reference/random.js';
import { D, H1, H2, K, scalePixels, type Params } from '../../reference/shapes.js';
import { augmentImages, augmentRandom } from '../experiments/augment.js';
import { COPY_STREAM, SPEC_RECIPE, learningRateAt, trainingEpochs, type TrainingRecipe } from '../experiments/variants.js';
import { installFastKernels } from '../tfjs/fast-kernels.js';
import { lossAndAccuracy, predictProbabilities } from '../tfjs/model.js';
import { createOptimizer } from '../tfjs/optimizers.js';
import { buildRecipeModel, exportParams } from '../tfjs/recipe-model.js';
import { createTrainingStep } from '../tfjs/training-step.js';
import { WeightAverage } from '../tfjs/weight-average.js';
import { backendSmoother } from '../tfjs/elastic.js';
import { initialWeights } from './init.js';
import { epochBars, type ProgressFactory } from '../progress.js';
import type { Dataset, InitialWeights, Split, TrainedModel } from '../types.js';

export interface TrainOptions {
  epochs: number; // --epochs; a long schedule trains trainingEpochs(recipe, options)
  longEpochs?: number; // --long-epochs: a long schedule's epochs (0 or absent: its multiple of `epochs`)
  batchSize: number;
  lr: number; // SGD's and momentum's learning rate (Adam's is in its recipe)
  seed: number;
  recipe?: TrainingRecipe; // default SPEC_RECIPE: plain SGD, the spec
  label?: string; // names the run in progress lines ('tfjs' without one) and errors
  teachers?: Params[]; // the trained teachers of a recipe that distills, in its order
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
  const { batchSize, lr, recipe = SPEC_RECIPE } = options;
  const epochs = trainingEpochs(recipe, options);
  // A copy of the recipe starts from its own weights, shuffle and draws.
  const seed = recipe.copy === undefined ? options.seed : deriveSeed(options.seed, COPY_STREAM + recipe.copy);
  const start = recipe.copy === undefined ? init.params : initialWeights(seed).params;
  const label = options.label ?? 'tfjs';
  const subject = options.label === undefined ? 'training' : `${options.label} training`; // the train stage's errors keep their words
  installFastKernels(tf.getBackend()); // idempotent; a no-op where transposed matmuls are not slow
  const model = buildRecipeModel(start, recipe, seed);
  const optimizer = createOptimizer(recipe.optimizer, lr);
  const soft = recipe.labelSmoothing !== undefined || recipe.distill !== undefined;
  const trainStep = createTrainingStep(model, optimizer, batchSize, soft);
  const batch = batchBuffers(batchSize);
  const targets = soft ? softTargets(recipe, options.teachers ?? [], batchSize) : null;
  const average = recipe.ema ? new WeightAverage(model, recipe.ema.decay) : null;
  const smoother = recipe.augment?.elastic ? backendSmoother() : null;
  const stepsPerEpoch = Math.ceil(train.count / batchSize);
  let steps = 0;
  let random = augmentRandom(seed, 0); // the epoch's augmentation stream, restarted by startEpoch
  const trainer: EpochTrainer = {
    startEpoch: (epoch) => {
      optimizer.setLearningRate(learningRateAt(recipe, lr, epoch));
      random = augmentRandom(seed, epoch);
    },
    step: (rows) => {
      if (recipe.schedule) optimizer.setLearningRate(scheduledRate(recipe, lr, steps, epochs * stepsPerEpoch, stepsPerEpoch));
      steps++;
      fillBatch(batch, train, rows);
      const images = recipe.augment
        ? augmentImages(batch.images, rows.length, recipe.augment, random, batch.augmented, smoother?.smooth)
        : batch.images;
      const result = trainStep(
        images,
        targets ? { labels: batch.labels, oneHot: targets.fill(images, batch.oneHot, rows.length) } : batch,
        rows.length,
      );
      average?.update();
      return result;
    },
    validate: () => {
      const score = () => lossAndAccuracy(predictProbabilities(model, validation.images, validation.count), validation.labels);
      return average ? average.with(score) : score();
    },
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
    average?.keep(); // the averaged weights are the model from here on
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
    targets?.dispose();
    smoother?.dispose();
    optimizer.dispose();
    model.dispose();
  }
}

/**
 * The learning rate of 0-based step `step` of `total` under a cosine schedule: a linear warm-up
 * to the recipe's rate over its first warm-up epochs, then base·½(1 + cos(π·progress)) down to 0.
 */
export function scheduledRate(recipe: TrainingRecipe, configLr: number, step: number, total: number, stepsPerEpoch: number): number {
  const base = learningRateAt({ ...recipe, stepDecay: null }, configLr, 0);
  const warmup = Math.min((recipe.schedule?.warmupEpochs ?? 0) * stepsPerEpoch, total - 1);
  if (step < warmup) return (base * (step + 1)) / warmup;
  return base * 0.5 * (1 + Math.cos((Math.PI * (step - warmup)) / Math.max(total - warmup, 1)));
}

/**
 * The soft targets of a recipe with label smoothing or distillation, made per batch into one
 * buffer: (1 − ε)·one-hot + ε/K, then mixed with the teachers' mean softmax(logits / T) on the
 * same (augmented) images, computed on the backend.
 */
export function softTargets(
  recipe: TrainingRecipe,
  teachers: Params[],
  batchSize: number,
): { fill(images: Float32Array, oneHot: Float32Array, rows: number): Float32Array; dispose(): void } {
  const distill = recipe.distill;
  if (distill && teachers.length !== distill.teachers.length)
    throw new Error(
      `distillation: expected the ${distill.teachers.length} teachers ${distill.teachers.join(', ')}, given ${teachers.length}`,
    );
  const epsilon = recipe.labelSmoothing ?? 0;
  const out = new Float32Array(batchSize * K);
  const layers = teachers.map((params) => ({
    w: [tf.tensor2d(params.w1, [D, H1]), tf.tensor2d(params.w2, [H1, H2]), tf.tensor2d(params.w3, [H2, K])],
    b: [tf.tensor1d(params.b1), tf.tensor1d(params.b2), tf.tensor1d(params.b3)],
  }));
  const fill = (images: Float32Array, oneHot: Float32Array, rows: number): Float32Array => {
    for (let i = 0; i < rows * K; i++) out[i] = (1 - epsilon) * oneHot[i]! + epsilon / K;
    if (!distill) return out;
    const mean = tf.tidy(() => {
      const x = tf.tensor2d(images.subarray(0, rows * D), [rows, D]);
      const probabilities = layers.map(({ w, b }) => {
        const a1 = tf.relu(tf.add(tf.matMul(x, w[0]!), b[0]!));
        const a2 = tf.relu(tf.add(tf.matMul(a1, w[1]!), b[1]!));
        return tf.softmax(tf.div(tf.add(tf.matMul(a2, w[2]!), b[2]!), distill.temperature));
      });
      return tf.div(tf.addN(probabilities), probabilities.length);
    });
    const teacher = mean.dataSync() as Float32Array;
    mean.dispose();
    for (let i = 0; i < rows * K; i++) out[i] = (1 - distill.weight) * out[i]! + distill.weight * teacher[i]!;
    return out;
  };
  return { fill, dispose: () => tf.dispose(layers.flatMap(({ w, b }) => [...w, ...b])) };
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
