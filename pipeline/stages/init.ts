// Stage init (after nothing): the Glorot-uniform initial weights, drawn once from --seed by TF.js's own
// initializer and shared by both trainings, so the reference starts from the very weights TF.js does.

import { buildModel, readParams } from '../tfjs/model.js';
import type { InitialWeights } from '../types.js';

/** Stage init: the Glorot-uniform weights of a fresh TF.js model, shared by both trainings. */
export function initialWeights(seed: number): InitialWeights {
  const model = buildModel(seed);
  const params = readParams(model);
  model.dispose();
  return { params, seed };
}
