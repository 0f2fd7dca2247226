// Smaller datasets cut from the real one, for benchmarks that run a fixed number of steps.

import { D, K } from '../reference/shapes.js';
import type { Dataset, Split } from '../pipeline/types.js';

/** The first `count` images of `split`. */
export function headOf(split: Split, count: number): Split {
  if (count > split.count) throw new Error(`headOf: asked for ${count} images, the split has ${split.count}`);
  return {
    images: split.images.subarray(0, count * D),
    labels: split.labels.subarray(0, count),
    oneHot: split.oneHot.subarray(0, count * K),
    count,
  };
}

/** `dataset` with its training split cut to `trainCount` images and its validation split to `validationCount`. */
export function subsetDataset(dataset: Dataset, trainCount: number, validationCount: number): Dataset {
  return { ...dataset, train: headOf(dataset.train, trainCount), validation: headOf(dataset.validation, validationCount) };
}
