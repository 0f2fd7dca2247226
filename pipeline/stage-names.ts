// The stages' names, apart from the stages: the CLI validates --stage and --from
// with them before anything heavy (TF.js, vega, canvas) is loaded.

import { EXTENDED_NAMES, VARIANT_NAMES, type ExtendedVariantName, type VariantName } from './experiments/variants.js';

/** One node per experiment variant, so adding a variant leaves the others cached; the extended ones after the standard. */
export type ExperimentStageName = `experiment-${VariantName | ExtendedVariantName}`;
export const EXPERIMENT_STAGE_NAMES: ExperimentStageName[] = [...VARIANT_NAMES, ...EXTENDED_NAMES].map(
  (name) => `experiment-${name}` as const,
);

export type StageName =
  | 'load'
  | 'preprocess'
  | 'init'
  | 'gradcheck'
  | 'train'
  | 'reference'
  | 'evaluate'
  | 'visualize'
  | ExperimentStageName
  | 'experiments'
  | 'report';

/** The stages that train a model. */
export const TRAINING_STAGE_NAMES: StageName[] = ['train', 'reference', ...EXPERIMENT_STAGE_NAMES];

/** In the order they run. */
export const STAGE_NAMES: StageName[] = [
  'load',
  'preprocess',
  'init',
  'gradcheck',
  'train',
  'reference',
  'evaluate',
  'visualize',
  ...EXPERIMENT_STAGE_NAMES,
  'experiments',
  'report',
];
