// The models predict can use, in a module of its own so that parsing the flags loads no TF.js.

import type { Implementation } from '../types.js';

/** The two the pipeline always trains, and the experiments' best. */
export type ModelName = Implementation | 'best';
export const MODEL_NAMES: readonly ModelName[] = ['tfjs', 'reference', 'best'];
