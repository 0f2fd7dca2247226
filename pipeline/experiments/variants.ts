// The experiment variants: training recipes for the same 784-128-64-10 network.
// Plain data only, no TF.js, vega or canvas: the CLI's --help reads VARIANT_NAMES
// from here, and must not pay for loading them.

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

/** How trainTfjs trains: the spec is SPEC_RECIPE; every experiment variant changes some of it. */
export interface TrainingRecipe {
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
  recipe: TrainingRecipe;
}

/** The spec's recipe: plain mini-batch SGD at --lr, nothing else. */
export const SPEC_RECIPE: TrainingRecipe = { optimizer: { kind: 'sgd' }, stepDecay: null, dropout: 0, batchNorm: false, augment: null };
const MOMENTUM: OptimizerSpec = { kind: 'momentum', momentum: 0.9 };
const ADAM: OptimizerSpec = { kind: 'adam', lr: 1e-3 };
const STEP_DECAY = { afterEpoch: 10, factor: 0.1 };
const AUGMENT: AugmentSpec = { maxShift: 2, maxRotationDegrees: 10 };

/** Every variant, in report order. Each is its own cached unit; adding one leaves the others cached. */
export const EXPERIMENT_VARIANTS = [
  { name: 'baseline', kind: 'single', description: 'the spec: plain SGD at --lr', recipe: SPEC_RECIPE },
  { name: 'momentum', kind: 'single', description: 'SGD with momentum 0.9', recipe: { ...SPEC_RECIPE, optimizer: MOMENTUM } },
  { name: 'adam', kind: 'single', description: 'Adam, learning rate 1e-3', recipe: { ...SPEC_RECIPE, optimizer: ADAM } },
  {
    name: 'step-decay',
    kind: 'single',
    description: 'SGD; learning rate ×0.1 after epoch 10',
    recipe: { ...SPEC_RECIPE, stepDecay: STEP_DECAY },
  },
  { name: 'dropout', kind: 'single', description: 'dropout 0.2 after each hidden layer', recipe: { ...SPEC_RECIPE, dropout: 0.2 } },
  {
    name: 'batchnorm',
    kind: 'single',
    description: 'batch normalisation before each hidden ReLU',
    recipe: { ...SPEC_RECIPE, batchNorm: true },
  },
  {
    name: 'augment',
    kind: 'single',
    description: 'random shifts up to ±2 px and rotations up to ±10°',
    recipe: { ...SPEC_RECIPE, augment: AUGMENT },
  },
  {
    name: 'adam+decay+augment',
    kind: 'combination',
    description: 'Adam 1e-3, ×0.1 after epoch 10, shifts ±2 px and rotations ±10°',
    recipe: { ...SPEC_RECIPE, optimizer: ADAM, stepDecay: STEP_DECAY, augment: AUGMENT },
  },
  {
    name: 'momentum+decay+augment',
    kind: 'combination',
    description: 'momentum 0.9, ×0.1 after epoch 10, shifts ±2 px and rotations ±10°',
    recipe: { ...SPEC_RECIPE, optimizer: MOMENTUM, stepDecay: STEP_DECAY, augment: AUGMENT },
  },
  {
    name: 'adam+batchnorm+decay+augment',
    kind: 'combination',
    description: 'Adam 1e-3, batch norm, ×0.1 after epoch 10, shifts ±2 px and rotations ±10°',
    recipe: { ...SPEC_RECIPE, optimizer: ADAM, batchNorm: true, stepDecay: STEP_DECAY, augment: AUGMENT },
  },
] as const satisfies readonly ExperimentVariant[];

export type VariantName = (typeof EXPERIMENT_VARIANTS)[number]['name'];
export const VARIANT_NAMES: VariantName[] = EXPERIMENT_VARIANTS.map((variant) => variant.name);

export function findVariant(name: string): ExperimentVariant {
  const variant = EXPERIMENT_VARIANTS.find((candidate) => candidate.name === name);
  if (!variant) throw new Error(`unknown experiment variant ${JSON.stringify(name)}: expected one of ${VARIANT_NAMES.join(', ')}`);
  return variant;
}

/**
 * Rough cost of training one image with `recipe`, plain SGD = 1: each change adds what it cost on its
 * own in `npm run bench -- --recipes-only` (CPU time, two runs, docs/performance.md). Only for --jobs:
 * the costliest stage starts first, and a cheap training runs in the main process (pipeline/cli/run.ts).
 */
export function recipeCost(recipe: TrainingRecipe): number {
  const optimizer = { sgd: 0, momentum: 0.01, adam: 0.59 }[recipe.optimizer.kind];
  return 1 + optimizer + (recipe.dropout > 0 ? 0.14 : 0) + (recipe.augment ? 0.32 : 0) + (recipe.batchNorm ? 0.27 : 0);
}

/** The learning rate for 0-based `epoch`; SGD and momentum start at `configLr`, Adam at its own. */
export function learningRateAt(recipe: TrainingRecipe, configLr: number, epoch: number): number {
  const base = recipe.optimizer.kind === 'adam' ? recipe.optimizer.lr : configLr;
  return recipe.stepDecay && epoch >= recipe.stepDecay.afterEpoch ? base * recipe.stepDecay.factor : base;
}

/** Where the report stage saves the best combination's weights, relative to --out (predict's --model best reads it). */
export const BEST_MODEL_FOLDER = 'model/best';
