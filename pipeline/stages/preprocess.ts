// Stage preprocess (after load): the train / validation / test split, labels to one-hot.
// Pixels stay bytes (0–255); each batch is scaled to float32 in [0, 1] where it is used
// (scalePixels in reference/shapes.ts), so no process holds a float copy of a whole split.

import { D, K } from '../../reference/shapes.js';
import { checkSizes } from '../config.js';
import type { Dataset, Mnist, RawSplit, Split } from '../types.js';

function toSplit(raw: RawSplit, start: number, count: number): Split {
  // Views into the loaded files, not copies: a split holds no second copy of its images, and the
  // loaded files become no garbage to wait for (stages never write into their inputs).
  const images = raw.images.subarray(start * D, (start + count) * D); // (N, D) bytes
  const labels = raw.labels.subarray(start, start + count); // (N)
  const oneHot = new Float32Array(count * K); // (N, K)
  for (let n = 0; n < count; n++) oneHot[n * K + labels[n]!] = 1;
  return { images, labels, oneHot, count };
}

/**
 * Stage preprocess. Training is the first `trainSize` images of the training
 * file, validation the last `valSize`, test the first `testSize` of the test file.
 */
export function preprocessDataset(mnist: Mnist, trainSize: number, valSize: number, testSize: number): Dataset {
  checkSizes({ trainSize, valSize, testSize }, mnist.train.count, mnist.test.count);
  const validationOffset = mnist.train.count - valSize;
  return {
    train: toSplit(mnist.train, 0, trainSize),
    validation: toSplit(mnist.train, validationOffset, valSize),
    test: toSplit(mnist.test, 0, testSize),
    validationOffset,
  };
}
