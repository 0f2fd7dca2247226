// The experiments stage (opt-in, --experiments): how far the same
// 784-128-64-10 network goes with better training recipes.
//
//   EXPERIMENT_VARIANTS ──► runVariant (one cached node per variant) ──► assembleExperiments ──► report stage
//     (the baseline: variantResult of the train stage's model)
//     experiments/variants.ts   trainTfjs with the variant's recipe:       best combination,         experiments.md/.png
//                               same init, split, shuffle and loop         by validation accuracy    (experiments/comparison.ts),
//                               as the train stage                                                   model/best
//
// 1. Every variant is trainTfjs (pipeline/stages/train.ts) with its own recipe, from
//    the shared seeded initial weights over the shared epoch shuffle, so only
//    the recipe differs. The baseline's recipe is the spec's: it IS the train stage,
//    so its node scores the train stage's model instead of training it again.
// 2. Single changes to the spec: momentum, Adam, a step decay, dropout, batch
//    normalisation, augmentation. Then a few combinations of them.
// 3. The best combination is chosen by VALIDATION accuracy; test accuracy is
//    reported for every variant but never used to choose. Its weights, batch
//    norm folded in, are saved as the plain spec network (model/best).

import type { Params } from '../../reference/shapes.js';
import type { Config } from '../config.js';
import {
  EXTENDED_TARGET_TEST_ACCURACY,
  TARGET_TEST_ACCURACY,
  findVariant,
  hasLongSchedule,
  type ExperimentVariant,
  type TrainingRecipe,
} from '../experiments/variants.js';
import { evaluateModel } from './evaluate.js';
import { trainTfjs, type TrainHooks } from './train.js';
import type { Dataset, EpochRecord, InitialWeights, Provenance, TrainedModel } from '../types.js';

/** One variant's outcome. */
export interface VariantResult {
  name: string;
  description: string;
  kind: ExperimentVariant['kind'];
  recipe: TrainingRecipe;
  backend: string;
  history: EpochRecord[];
  trainSeconds: number; // training time, validation passes excluded
  valAccuracy: number; // after the last epoch
  valLoss: number;
  testAccuracy: number; // of the exported weights (`params`)
  testLoss: number;
  testConfusionMatrix: number[][]; // (K, K), rows are the true digit
  params: Params; // the trained weights as the spec's dense network, batch norm folded in
  trainedBy?: Provenance; // the run that trained it; absent in cache entries made before it was recorded
}

/** Output of the experiments stage. */
export interface ExperimentsResult {
  variants: VariantResult[];
  bestCombination: VariantResult | null; // by validation accuracy; null when no combination ran
  targetTestAccuracy: number;
  reachedTarget: string[]; // every variant whose test accuracy reaches the target
  epochs: number;
  batchSize: number;
  seed: number;
  trainSize: number;
  valSize: number;
  testSize: number;
}

export type ExperimentHooks = Pick<TrainHooks, 'progress' | 'signal'>;

type RunSettings = Pick<Config, 'epochs' | 'longEpochs' | 'batchSize' | 'lr' | 'seed'>;

/**
 * Stage node experiment-<name>: trains one variant from `init` with the train
 * stage's loop, on the TF.js backend already selected, and scores the
 * exported weights on the test split.
 */
export async function runVariant(
  name: string,
  dataset: Dataset,
  init: InitialWeights,
  config: RunSettings,
  hooks: ExperimentHooks,
  teachers: Params[] = [],
): Promise<VariantResult> {
  const { epochs, batchSize, lr, seed } = config;
  const recipe = findVariant(name).recipe;
  const longEpochs = hasLongSchedule(recipe) ? config.longEpochs : 0; // the others do not read it (the stage's reads)
  return variantResult(
    name,
    await trainTfjs(dataset, init, { epochs, longEpochs, batchSize, lr, seed, recipe, label: name, teachers }, hooks),
    dataset,
  );
}

/** A variant's outcome from its trained model: the exported weights scored on the test split, as the evaluate stage scores the spec model. */
export function variantResult(name: string, trained: TrainedModel, dataset: Dataset): VariantResult {
  const variant = findVariant(name);
  const test = evaluateModel(dataset, trained);
  const last = trained.history.at(-1);
  return {
    name: variant.name,
    description: variant.description,
    kind: variant.kind,
    recipe: variant.recipe,
    backend: trained.backend,
    history: trained.history,
    trainSeconds: trained.trainSeconds,
    valAccuracy: last?.valAccuracy ?? Number.NaN,
    valLoss: last?.valLoss ?? Number.NaN,
    testAccuracy: test.testAccuracy,
    testLoss: test.testLoss,
    testConfusionMatrix: test.confusionMatrix,
    params: trained.params,
  };
}

/** Stage experiments: collects the variants' results and picks the best combination by validation accuracy. */
export function assembleExperiments(
  results: VariantResult[],
  config: Pick<Config, 'epochs' | 'batchSize' | 'seed' | 'experiments'>,
  dataset: Pick<Dataset, 'train' | 'validation' | 'test'>,
): ExperimentsResult {
  // The target of this run's recipes: the extended ones aim higher (issue 25).
  const target = config.experiments === 'extended' ? EXTENDED_TARGET_TEST_ACCURACY : TARGET_TEST_ACCURACY;
  const combinations = results.filter((result) => result.kind === 'combination');
  // Validation only: the test set must stay unseen by every choice.
  const best = combinations.reduce<VariantResult | null>(
    (leader, result) => (leader === null || result.valAccuracy > leader.valAccuracy ? result : leader),
    null,
  );
  return {
    variants: results,
    bestCombination: best,
    targetTestAccuracy: target,
    reachedTarget: results.filter((result) => result.testAccuracy >= target).map((result) => result.name),
    epochs: config.epochs,
    batchSize: config.batchSize,
    seed: config.seed,
    trainSize: dataset.train.count,
    valSize: dataset.validation.count,
    testSize: dataset.test.count,
  };
}
