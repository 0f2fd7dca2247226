// The experiments stage (opt-in, --experiments): how far the same
// 784-128-64-10 network goes with better training recipes.
//
//   EXPERIMENT_VARIANTS ──► runVariant (one cached node per variant) ──► assembleExperiments ──► experimentsFiles
//     single changes            same init, split, shuffle, 15 epochs       best combination,         experiments.md,
//     and combinations          on TF.js; val + test accuracy, time        by validation accuracy    experiments.png
//
// 1. Every variant starts from the shared seeded initial weights and replays the
//    shared epoch shuffle (reference/random.ts), so only the recipe differs.
// 2. Single changes to the spec baseline: momentum, Adam, a step decay, dropout,
//    batch normalisation, augmentation. Then a few combinations of them.
// 3. The best combination is chosen by VALIDATION accuracy; test accuracy is
//    reported for every variant but never used to choose.
//
// B = batch, D = 784, S = 28 (image side), H1 = 128, H2 = 64, K = 10.

import * as tf from '@tensorflow/tfjs';
import type { TopLevelSpec } from 'vega-lite';
import { batchCount, deriveSeed, epochPermutation, mulberry32 } from '../reference/random.js';
import { D, H1, H2, IMAGE_SIDE, K, type Params } from '../reference/shapes.js';
import { epochRecord } from '../reference/train.js';
import { CHART_CONFIG, renderSpecToPng } from './render/charts.js';
import { SPEC_SCHEMA, percent, thousands } from './render/format.js';
import type { Config } from './config.js';
import { LAYER_NAMES, lossAndAccuracy, predictProbabilities } from './tfjs/model.js';
import { epochSummary, type ProgressFactory } from './progress.js';
import { DivergenceError, InterruptedError } from './train.js';
import type { Dataset, EpochRecord, InitialWeights, ReportFile, Split } from './types.js';

/** Test accuracy the best recipe must reach (issue 7). */
export const TARGET_TEST_ACCURACY = 0.98;

export type OptimizerSpec =
  | { kind: 'sgd' } // plain SGD at config.lr, the spec
  | { kind: 'momentum'; momentum: number } // SGD with momentum at config.lr
  | { kind: 'adam'; lr: number }; // Adam with its own learning rate

export interface AugmentSpec {
  maxShift: number; // whole pixels, drawn uniformly from −maxShift..maxShift on each axis
  maxRotationDegrees: number; // drawn uniformly from ±maxRotationDegrees
}

export interface VariantOptions {
  optimizer: OptimizerSpec;
  stepDecay: { afterEpoch: number; factor: number } | null; // the learning rate is multiplied by factor after epoch afterEpoch
  dropout: number; // dropout rate after each hidden ReLU; 0 = none
  batchNorm: boolean; // dense → batch norm → ReLU in both hidden layers
  augment: AugmentSpec | null; // random shift and rotation of every training image, drawn per batch
}

export interface ExperimentVariant {
  name: string;
  description: string;
  kind: 'single' | 'combination'; // the best of the combinations is picked by validation accuracy
  options: VariantOptions;
}

const SPEC: VariantOptions = { optimizer: { kind: 'sgd' }, stepDecay: null, dropout: 0, batchNorm: false, augment: null };
const MOMENTUM: OptimizerSpec = { kind: 'momentum', momentum: 0.9 };
const ADAM: OptimizerSpec = { kind: 'adam', lr: 1e-3 };
const STEP_DECAY = { afterEpoch: 10, factor: 0.1 };
const AUGMENT: AugmentSpec = { maxShift: 2, maxRotationDegrees: 10 };

/** Every variant, in report order. Each is its own cached unit; adding one leaves the others cached. */
export const EXPERIMENT_VARIANTS = [
  { name: 'baseline', kind: 'single', description: 'the spec: plain SGD at --lr', options: SPEC },
  { name: 'momentum', kind: 'single', description: 'SGD with momentum 0.9', options: { ...SPEC, optimizer: MOMENTUM } },
  { name: 'adam', kind: 'single', description: 'Adam, learning rate 1e-3', options: { ...SPEC, optimizer: ADAM } },
  { name: 'step-decay', kind: 'single', description: 'SGD; learning rate ×0.1 after epoch 10', options: { ...SPEC, stepDecay: STEP_DECAY } },
  { name: 'dropout', kind: 'single', description: 'dropout 0.2 after each hidden layer', options: { ...SPEC, dropout: 0.2 } },
  { name: 'batchnorm', kind: 'single', description: 'batch normalisation before each hidden ReLU', options: { ...SPEC, batchNorm: true } },
  { name: 'augment', kind: 'single', description: 'random shifts up to ±2 px and rotations up to ±10°', options: { ...SPEC, augment: AUGMENT } },
  {
    name: 'adam+decay+augment',
    kind: 'combination',
    description: 'Adam 1e-3, ×0.1 after epoch 10, shifts ±2 px and rotations ±10°',
    options: { ...SPEC, optimizer: ADAM, stepDecay: STEP_DECAY, augment: AUGMENT },
  },
  {
    name: 'momentum+decay+augment',
    kind: 'combination',
    description: 'momentum 0.9, ×0.1 after epoch 10, shifts ±2 px and rotations ±10°',
    options: { ...SPEC, optimizer: MOMENTUM, stepDecay: STEP_DECAY, augment: AUGMENT },
  },
  {
    name: 'adam+batchnorm+decay+augment',
    kind: 'combination',
    description: 'Adam 1e-3, batch norm, ×0.1 after epoch 10, shifts ±2 px and rotations ±10°',
    options: { ...SPEC, optimizer: ADAM, batchNorm: true, stepDecay: STEP_DECAY, augment: AUGMENT },
  },
] as const satisfies readonly ExperimentVariant[];

export type VariantName = (typeof EXPERIMENT_VARIANTS)[number]['name'];
export const VARIANT_NAMES: VariantName[] = EXPERIMENT_VARIANTS.map((variant) => variant.name);

/** One variant's outcome; the field names are those of metrics.json. */
export interface VariantResult {
  name: string;
  description: string;
  kind: ExperimentVariant['kind'];
  options: VariantOptions;
  backend: string;
  history: EpochRecord[];
  train_seconds: number; // training time, validation passes excluded
  val_accuracy: number; // after the last epoch
  val_loss: number;
  test_accuracy: number;
  test_loss: number;
}

export interface BestCombination {
  name: string;
  recipe: string;
  chosen_by: 'validation accuracy';
  val_accuracy: number;
  test_accuracy: number;
  reaches_target: boolean; // test accuracy ≥ TARGET_TEST_ACCURACY
}

/** Output of the experiments stage. */
export interface ExperimentsResult {
  variants: VariantResult[];
  best_combination: BestCombination | null; // null when no combination ran
  target_test_accuracy: number;
  reached_target: string[]; // every variant whose test accuracy reaches the target
  epochs: number;
  batch_size: number;
  seed: number;
  train_size: number;
  val_size: number;
  test_size: number;
}

export interface ExperimentHooks {
  progress: ProgressFactory;
  signal?: AbortSignal; // aborted by SIGINT / SIGTERM: stop at the next batch
}

type RunSettings = Pick<Config, 'epochs' | 'batchSize' | 'lr' | 'seed'>;

export function findVariant(name: string): ExperimentVariant {
  const variant = EXPERIMENT_VARIANTS.find((candidate) => candidate.name === name);
  if (!variant) throw new Error(`unknown experiment variant ${JSON.stringify(name)}: expected one of ${VARIANT_NAMES.join(', ')}`);
  return variant;
}

// ---------------------------------------------------------------------------
// The network: still three dense layers 784-128-64-10; batch norm and dropout
// are inserted between them.

/**
 * tf.layers.dropout with a fixed seed draws the same mask at every step, and
 * without one it is unseeded; this layer derives a new seed for each training call.
 */
class SeededDropout extends tf.layers.Layer {
  static readonly className = 'SeededDropout';
  private calls = 0;

  constructor(
    private readonly rate: number,
    private readonly seed: number,
    name: string,
  ) {
    super({ name });
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape | tf.Shape[] {
    return inputShape;
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>): tf.Tensor {
    const x = Array.isArray(inputs) ? inputs[0]! : inputs;
    if (kwargs.training !== true || this.rate === 0) return x;
    return tf.dropout(x, this.rate, undefined, deriveSeed(this.seed, this.calls++));
  }
}

/** The variant's layer stack, its three dense layers holding `params`. */
export function buildVariantModel(params: Params, options: VariantOptions, seed: number): tf.Sequential {
  const model = tf.sequential({ name: 'mnist_dense_variant' });
  const units = [H1, H2, K];
  const kernels = [params.w1, params.w2, params.w3];
  const biases = [params.b1, params.b2, params.b3];
  const inputs = [D, H1, H2];
  for (let layer = 0; layer < 3; layer++) {
    const hidden = layer < 2;
    const dense = tf.layers.dense({
      name: LAYER_NAMES[layer],
      units: units[layer]!,
      activation: !hidden ? 'softmax' : options.batchNorm ? 'linear' : 'relu',
      ...(layer === 0 ? { inputShape: [D] } : {}),
    });
    model.add(dense);
    const weights = [tf.tensor2d(kernels[layer]!, [inputs[layer]!, units[layer]!]), tf.tensor1d(biases[layer]!)];
    dense.setWeights(weights);
    tf.dispose(weights);
    if (!hidden) continue;
    if (options.batchNorm) {
      model.add(tf.layers.batchNormalization({ name: `batchnorm${layer + 1}` }));
      model.add(tf.layers.activation({ name: `relu${layer + 1}`, activation: 'relu' }));
    }
    if (options.dropout > 0) model.add(new SeededDropout(options.dropout, deriveSeed(seed, 0xd0 + layer), `dropout${layer + 1}`));
  }
  return model;
}

// ---------------------------------------------------------------------------
// Optimizers and the learning-rate schedule.

/** Adam keeps its learning rate protected; the step decay needs to lower it mid-run. */
class AdjustableAdam extends tf.AdamOptimizer {
  setLearningRate(lr: number): void {
    this.learningRate = lr;
  }
}

export type AdjustableOptimizer = tf.Optimizer & { setLearningRate(lr: number): void };

/** The variant's optimizer at its starting learning rate; SGD and momentum start at `configLr`. */
export function createOptimizer(spec: OptimizerSpec, configLr: number): AdjustableOptimizer {
  switch (spec.kind) {
    case 'sgd':
      return tf.train.sgd(configLr);
    case 'momentum':
      return tf.train.momentum(configLr, spec.momentum);
    case 'adam':
      return new AdjustableAdam(spec.lr, 0.9, 0.999);
  }
}

/** The learning rate for 0-based `epoch`. */
export function learningRateAt(options: VariantOptions, configLr: number, epoch: number): number {
  const base = options.optimizer.kind === 'adam' ? options.optimizer.lr : configLr;
  return options.stepDecay && epoch >= options.stepDecay.afterEpoch ? base * options.stepDecay.factor : base;
}

// ---------------------------------------------------------------------------
// Augmentation, on the JS side: one inverse affine map per image, sampled bilinearly.

const AUGMENT_STREAM = 0x617567; // keeps augmentation draws apart from the shuffle streams (0..epochs−1)

/** The augmentation random stream of one epoch. */
export function augmentRandom(seed: number, epoch: number): () => number {
  return mulberry32(deriveSeed(seed, AUGMENT_STREAM + epoch));
}

/**
 * Shifts every image of `images` (N, D) by whole pixels and rotates it about
 * its centre, each by its own draw from `random`; pixels from outside are 0.
 * Writes into `out` (N, D) and returns it.
 */
export function augmentImages(
  images: Float32Array,
  count: number,
  spec: AugmentSpec,
  random: () => number,
  out: Float32Array = new Float32Array(count * D),
): Float32Array {
  const S = IMAGE_SIDE;
  const centre = (S - 1) / 2; // pixel centres run 0..S−1
  const maxAngle = (spec.maxRotationDegrees * Math.PI) / 180;
  for (let n = 0; n < count; n++) {
    const shiftX = Math.floor(random() * (2 * spec.maxShift + 1)) - spec.maxShift;
    const shiftY = Math.floor(random() * (2 * spec.maxShift + 1)) - spec.maxShift;
    const angle = (2 * random() - 1) * maxAngle;
    const cos = Math.cos(angle);
    const sin = Math.sin(angle);
    const source = images.subarray(n * D, (n + 1) * D); // (S, S)
    const target = out.subarray(n * D, (n + 1) * D); // (S, S)
    for (let y = 0; y < S; y++) {
      for (let x = 0; x < S; x++) {
        // Undo the shift, then the rotation, to find where this pixel comes from.
        const dx = x - shiftX - centre;
        const dy = y - shiftY - centre;
        const sx = cos * dx + sin * dy + centre;
        const sy = -sin * dx + cos * dy + centre;
        target[y * S + x] = bilinear(source, sx, sy);
      }
    }
  }
  return out;
}

function bilinear(image: Float32Array, x: number, y: number): number {
  const S = IMAGE_SIDE;
  const x0 = Math.floor(x);
  const y0 = Math.floor(y);
  if (x0 < -1 || y0 < -1 || x0 >= S || y0 >= S) return 0;
  const fx = x - x0;
  const fy = y - y0;
  const left = x0 >= 0;
  const right = x0 + 1 < S;
  let top = 0;
  let bottom = 0;
  if (y0 >= 0) top = (left ? (1 - fx) * image[y0 * S + x0]! : 0) + (right ? fx * image[y0 * S + x0 + 1]! : 0);
  if (y0 + 1 < S) bottom = (left ? (1 - fx) * image[(y0 + 1) * S + x0]! : 0) + (right ? fx * image[(y0 + 1) * S + x0 + 1]! : 0);
  return (1 - fy) * top + fy * bottom;
}

// ---------------------------------------------------------------------------
// Training one variant.

const YIELD_EVERY_MS = 50;

/** Cross-entropy and accuracy of `model` on a split. */
function score(model: tf.LayersModel, split: Split): { loss: number; accuracy: number } {
  return lossAndAccuracy(predictProbabilities(model, split.images, split.count), split.labels);
}

/**
 * Stage node experiment-<name>: trains one variant from `init` on the TF.js
 * backend already selected, and measures it on validation and test.
 */
export async function runVariant(
  name: string,
  dataset: Dataset,
  init: InitialWeights,
  config: RunSettings,
  hooks: ExperimentHooks,
): Promise<VariantResult> {
  const variant = findVariant(name);
  const { options } = variant;
  const { train, validation, test } = dataset;
  const { epochs, batchSize, seed } = config;
  const model = buildVariantModel(init.params, options, seed);
  const optimizer = createOptimizer(options.optimizer, config.lr);
  // Batches are gathered on the host and uploaded: cheaper than tf.gather on wasm, and augmentation needs them there.
  const batchImages = new Float32Array(batchSize * D); // (B, D)
  const batchOneHot = new Float32Array(batchSize * K); // (B, K)
  const augmented = new Float32Array(batchSize * D); // (B, D)
  const batches = batchCount(train.count, batchSize);
  const history: EpochRecord[] = [];
  let trainSeconds = 0;
  let lastYield = performance.now();

  try {
    for (let epoch = 0; epoch < epochs; epoch++) {
      const epochStart = performance.now();
      optimizer.setLearningRate(learningRateAt(options, config.lr, epoch));
      const order = epochPermutation(train.count, seed, epoch);
      const random = augmentRandom(seed, epoch);
      const bar = hooks.progress.epoch(`${name} epoch ${epoch + 1}/${epochs}`, batches);
      let lossSum = 0;
      let correct = 0;
      let seen = 0;
      for (let b = 0; b < batches; b++) {
        // The loop is synchronous; without a turn of the event loop now and then a SIGINT would wait for the end.
        if (performance.now() - lastYield >= YIELD_EVERY_MS) {
          await new Promise<void>((resolve) => setImmediate(resolve));
          lastYield = performance.now();
        }
        if (hooks.signal?.aborted) throw new InterruptedError(`experiment ${name} interrupted in epoch ${epoch + 1}, batch ${b + 1}`);
        const rows = order.subarray(b * batchSize, Math.min((b + 1) * batchSize, train.count));
        const count = rows.length;
        for (let i = 0; i < count; i++) {
          batchImages.set(train.images.subarray(rows[i]! * D, (rows[i]! + 1) * D), i * D);
          batchOneHot.set(train.oneHot.subarray(rows[i]! * K, (rows[i]! + 1) * K), i * K);
        }
        const images = options.augment ? augmentImages(batchImages, count, options.augment, random, augmented) : batchImages;
        const [batchLoss, batchCorrect] = trainStep(model, optimizer, images.subarray(0, count * D), batchOneHot.subarray(0, count * K), count);
        if (!Number.isFinite(batchLoss)) {
          throw new DivergenceError(`experiment ${name} diverged: the batch loss became ${batchLoss} in epoch ${epoch + 1}, batch ${b + 1}`);
        }
        lossSum += batchLoss * rows.length;
        correct += batchCorrect;
        seen += rows.length;
        bar.batch(b + 1, lossSum / seen, correct / seen);
      }
      trainSeconds += (performance.now() - epochStart) / 1000;
      const val = score(model, validation);
      const record = epochRecord(epoch + 1, lossSum, correct, seen, val, epochStart);
      history.push(record);
      bar.end(epochSummary(name, record, epochs));
    }
    const testScore = score(model, test);
    const last = history.at(-1);
    return {
      name: variant.name,
      description: variant.description,
      kind: variant.kind,
      options,
      backend: tf.getBackend(),
      history,
      train_seconds: trainSeconds,
      val_accuracy: last?.val_accuracy ?? Number.NaN,
      val_loss: last?.val_loss ?? Number.NaN,
      test_accuracy: testScore.accuracy,
      test_loss: testScore.loss,
    };
  } finally {
    optimizer.dispose();
    model.dispose();
  }
}

/** One optimizer step on a (B, D) batch of images with (B, K) one-hot labels; returns [mean loss, correct count]. */
function trainStep(model: tf.LayersModel, optimizer: tf.Optimizer, images: Float32Array, oneHot: Float32Array, count: number): [number, number] {
  let correct: tf.Tensor | undefined;
  const loss = tf.tidy(() => {
    const x = tf.tensor2d(images, [count, D]); // (B, D)
    const y = tf.tensor2d(oneHot, [count, K]); // (B, K)
    return optimizer.minimize(() => {
      const probabilities = model.apply(x, { training: true }) as tf.Tensor2D; // (B, K)
      correct = tf.keep(tf.equal(tf.argMax(probabilities, 1), tf.argMax(y, 1)).sum());
      return tf.mean(tf.metrics.categoricalCrossentropy(y, probabilities)) as tf.Scalar;
    }, true) as tf.Scalar;
  });
  if (correct === undefined) throw new Error('trainStep: the loss function did not run');
  const values: [number, number] = [loss.dataSync()[0]!, correct.dataSync()[0]!];
  tf.dispose([loss, correct]);
  return values;
}

// ---------------------------------------------------------------------------
// Putting the variants together.

/** Collects the variants' results and picks the best combination by validation accuracy. */
export function assembleExperiments(
  results: VariantResult[],
  config: Pick<Config, 'epochs' | 'batchSize' | 'seed'>,
  dataset: Pick<Dataset, 'train' | 'validation' | 'test'>,
): ExperimentsResult {
  const combinations = results.filter((result) => result.kind === 'combination');
  // Validation only: the test set must stay unseen by every choice.
  const best = combinations.reduce<VariantResult | null>(
    (leader, result) => (leader === null || result.val_accuracy > leader.val_accuracy ? result : leader),
    null,
  );
  return {
    variants: results,
    best_combination: best && {
      name: best.name,
      recipe: best.description,
      chosen_by: 'validation accuracy',
      val_accuracy: best.val_accuracy,
      test_accuracy: best.test_accuracy,
      reaches_target: best.test_accuracy >= TARGET_TEST_ACCURACY,
    },
    target_test_accuracy: TARGET_TEST_ACCURACY,
    reached_target: results.filter((result) => result.test_accuracy >= TARGET_TEST_ACCURACY).map((result) => result.name),
    epochs: config.epochs,
    batch_size: config.batchSize,
    seed: config.seed,
    train_size: dataset.train.count,
    val_size: dataset.validation.count,
    test_size: dataset.test.count,
  };
}

/**
 * Stage experiments: every variant in `variants` (all by default), one after
 * the other, then the comparison. The TF.js backend must already be selected.
 */
export async function runExperiments(
  dataset: Dataset,
  init: InitialWeights,
  config: Config,
  hooks: ExperimentHooks,
  variants: readonly string[] = VARIANT_NAMES,
): Promise<ExperimentsResult> {
  variants.forEach(findVariant); // unknown names fail before any training
  const results: VariantResult[] = [];
  for (const name of variants) {
    const result = await runVariant(name, dataset, init, config, hooks);
    hooks.progress.log(
      `experiment ${name}: val ${percent(result.val_accuracy)}, test ${percent(result.test_accuracy)}, ${result.train_seconds.toFixed(1)} s`,
    );
    results.push(result);
  }
  return assembleExperiments(results, config, dataset);
}

// ---------------------------------------------------------------------------
// Report: experiments.md, experiments.png (+ its spec) and the metrics.json block.

/** The `experiments` block of metrics.json: no per-epoch history, which the chart shows. */
export function experimentsMetrics(result: ExperimentsResult) {
  return {
    epochs: result.epochs,
    batch_size: result.batch_size,
    seed: result.seed,
    target_test_accuracy: result.target_test_accuracy,
    best_combination: result.best_combination,
    reached_target: result.reached_target,
    variants: Object.fromEntries(
      result.variants.map((variant) => [
        variant.name,
        {
          description: variant.description,
          kind: variant.kind,
          options: variant.options,
          backend: variant.backend,
          val_accuracy: variant.val_accuracy,
          val_loss: variant.val_loss,
          test_accuracy: variant.test_accuracy,
          test_loss: variant.test_loss,
          train_seconds: variant.train_seconds,
        },
      ]),
    ),
  };
}

/** The markdown table and the chart spec of the comparison. */
export function experimentsReport(result: ExperimentsResult): { markdown: string; chartSpec: TopLevelSpec } {
  const best = result.best_combination;
  const rows = result.variants.map((variant) => {
    const marks = [
      best?.name === variant.name ? '**best combination**' : '',
      variant.test_accuracy >= result.target_test_accuracy ? `≥ ${percent(result.target_test_accuracy, 1)} test` : '',
    ].filter((mark) => mark !== '');
    return (
      `| ${variant.name} | ${variant.description} | ${percent(variant.val_accuracy)} | ${percent(variant.test_accuracy)} | ` +
      `${variant.train_seconds.toFixed(1)} s | ${marks.join(', ')} |`
    );
  });
  const backends = [...new Set(result.variants.map((variant) => variant.backend))].join(', ');
  const lines = [
    '# Experiments: how far the same network goes',
    '',
    `Every variant keeps the 784-128-64-10 dense network, starts from the same seeded initial weights (seed ${result.seed}), ` +
      `uses the same split (${thousands(result.train_size)} train / ${thousands(result.val_size)} validation / ${thousands(result.test_size)} test), ` +
      `replays the same shuffled batches of ${result.batch_size} and trains ${result.epochs} epochs on TF.js (${backends}).`,
    '',
    '| Variant | Change from the spec | Validation accuracy | Test accuracy | Training time | Notes |',
    '|---|---|---:|---:|---:|---|',
    ...rows,
    '',
  ];
  if (best) {
    lines.push(
      `**Best combination: ${best.name}** (${best.recipe}): validation ${percent(best.val_accuracy)}, test ${percent(best.test_accuracy)}; ` +
        (best.reaches_target
          ? `it reaches the ${percent(result.target_test_accuracy, 1)} test target in ${result.epochs} epochs on the unchanged architecture.`
          : `it falls short of the ${percent(result.target_test_accuracy, 1)} test target.`),
      '',
      'The best combination is chosen among the combinations by validation accuracy (the last ' +
        `${thousands(result.val_size)} images of the training file). Test accuracy is shown for every variant but never used to choose, ` +
        'so it stays an unbiased estimate.',
      '',
    );
  } else {
    lines.push('No combination was run, so no best combination was chosen.', '');
  }
  lines.push(
    result.reached_target.length > 0
      ? `Variants at or above ${percent(result.target_test_accuracy, 1)} test accuracy: ${result.reached_target.join(', ')}.`
      : `No variant reached ${percent(result.target_test_accuracy, 1)} test accuracy.`,
    '',
    'Training time excludes the validation pass after each epoch.',
    '',
    '![Validation accuracy per epoch and final accuracies](experiments.png)',
    '',
  );
  return { markdown: lines.join('\n'), chartSpec: experimentsChartSpec(result) };
}

/** Validation accuracy per epoch for each variant, beside the final validation and test accuracies. */
function experimentsChartSpec(result: ExperimentsResult): TopLevelSpec {
  const curves = result.variants.flatMap((variant) =>
    variant.history.map((record) => ({ variant: variant.name, epoch: record.epoch, val_accuracy: record.val_accuracy })),
  );
  const finals = result.variants.flatMap((variant) => [
    { variant: variant.name, split: 'validation', accuracy: variant.val_accuracy },
    { variant: variant.name, split: 'test', accuracy: variant.test_accuracy },
  ]);
  const names = result.variants.map((variant) => variant.name);
  // Start the axes a little under the worst final accuracy so differences of tenths of a percent show.
  const finalMin = Math.min(result.target_test_accuracy, ...finals.map((bar) => bar.accuracy));
  const yMin = Math.max(0, Math.floor((finalMin - 0.01) * 100) / 100);
  const curveMin = Math.max(0, yMin - 0.02); // early epochs below this are left out of the curves
  const colour = {
    field: 'variant',
    type: 'nominal',
    title: 'Variant',
    scale: { domain: names, scheme: 'tableau10' },
    legend: { labelLimit: 320 },
  } as const;
  const barY = { field: 'variant', type: 'nominal', title: null, sort: names, axis: { labelLimit: 320 } } as const;
  const barOffset = { field: 'split', type: 'nominal', sort: ['validation', 'test'] } as const;
  const height = Math.max(320, 36 * names.length); // room for two labelled bars per variant
  return {
    $schema: SPEC_SCHEMA,
    title: {
      text: `Experiments: the 784-128-64-10 network, ${result.epochs} epochs, different recipes`,
      subtitle: result.best_combination
        ? `Best combination by validation accuracy: ${result.best_combination.name}; dashed line: ${percent(result.target_test_accuracy, 0)} target`
        : `Dashed line: ${percent(result.target_test_accuracy, 0)} target`,
    },
    hconcat: [
      {
        title: { text: `Validation accuracy per epoch (from ${percent(curveMin, 0)})`, fontSize: 14, anchor: 'middle' },
        data: { values: curves },
        width: 380,
        height,
        transform: [{ filter: `datum.val_accuracy >= ${curveMin}` }],
        mark: { type: 'line', point: true, strokeWidth: 2 },
        encoding: {
          x: { field: 'epoch', type: 'quantitative', title: 'Epoch', axis: { tickMinStep: 1, format: 'd' } },
          y: { field: 'val_accuracy', type: 'quantitative', title: 'Validation accuracy', scale: { domain: [curveMin, 1], zero: false }, axis: { format: '.1%' } },
          color: colour,
        },
      },
      {
        title: { text: 'After the last epoch', fontSize: 14, anchor: 'middle' },
        width: 340,
        height,
        layer: [
          {
            data: { values: finals },
            mark: { type: 'bar' },
            encoding: {
              y: barY,
              yOffset: barOffset,
              x: {
                field: 'accuracy',
                type: 'quantitative',
                title: 'Accuracy',
                scale: { domain: [yMin, 1], zero: false, clamp: true, nice: false },
                axis: { format: '.1%' },
              },
              color: {
                field: 'split',
                type: 'nominal',
                title: 'Split',
                scale: { domain: ['validation', 'test'], range: ['#9ecae1', '#08519c'] },
              },
            },
          },
          {
            data: { values: finals },
            mark: { type: 'text', align: 'left', dx: 4, fontSize: 11 },
            encoding: {
              y: barY,
              yOffset: barOffset,
              x: { field: 'accuracy', type: 'quantitative' },
              text: { field: 'accuracy', type: 'quantitative', format: '.2%' },
            },
          },
          {
            data: { values: [{ target: result.target_test_accuracy }] },
            mark: { type: 'rule', strokeDash: [6, 4], color: '#d62728', strokeWidth: 2 },
            encoding: { x: { field: 'target', type: 'quantitative' } },
          },
        ],
      },
    ],
    resolve: { scale: { color: 'independent' } },
    config: CHART_CONFIG,
  };
}

/** experiments.md, experiments.png and specs/experiments.vl.json, relative to the report folder. */
export async function experimentsFiles(result: ExperimentsResult): Promise<ReportFile[]> {
  const { markdown, chartSpec } = experimentsReport(result);
  const encode = (text: string) => new TextEncoder().encode(text);
  return [
    { path: 'experiments.md', data: encode(markdown) },
    { path: 'experiments.png', data: await renderSpecToPng(chartSpec) },
    { path: 'specs/experiments.vl.json', data: encode(`${JSON.stringify(chartSpec, null, 2)}\n`) },
  ];
}
