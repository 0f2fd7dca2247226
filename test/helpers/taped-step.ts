// The TF.js training step as it was before issue 24, kept as the oracle of the written-out
// step (pipeline/tfjs/training-step.ts, tested in test/training-step.test.ts):
// optimizer.minimize over model.apply, TF.js's tape differentiating crossEntropy
// through its own layers (tf.layers.batchNormalization included).
//
// B = batch, D = 784, K = 10.

import * as tf from '@tensorflow/tfjs';
import type { BatchResult } from '../../reference/epochs.js';
import { argmax } from '../../reference/network.js';
import { D, K } from '../../reference/shapes.js';
import { crossEntropy } from '../../pipeline/tfjs/model.js';
import type { BatchLabels } from '../../pipeline/tfjs/training-step.js';

/** One optimizer step on the first `rows` rows of `images` (B, D) and `batch`, taped; returns the mean loss and the correct count. */
export function tapedStep(
  model: tf.LayersModel,
  optimizer: tf.Optimizer,
  images: Float32Array,
  batch: BatchLabels,
  rows: number,
): BatchResult {
  let probabilities: tf.Tensor2D | undefined;
  const loss = tf.tidy(() => {
    const x = tf.tensor2d(images.subarray(0, rows * D), [rows, D]); // (B, D)
    const y = tf.tensor2d(batch.oneHot.subarray(0, rows * K), [rows, K]); // (B, K)
    return optimizer.minimize(() => {
      probabilities = tf.keep(model.apply(x, { training: true }) as tf.Tensor2D); // (B, K)
      return crossEntropy(y, probabilities);
    }, true) as tf.Scalar;
  });
  if (probabilities === undefined) throw new Error('tapedStep: the loss function did not run');
  const lossValue = loss.dataSync()[0]!;
  const predicted = probabilities.dataSync(); // (B, K)
  tf.dispose([loss, probabilities]);
  let correct = 0;
  for (let r = 0; r < rows; r++) if (argmax(predicted.subarray(r * K, (r + 1) * K)) === batch.labels[r]) correct++;
  return { loss: lossValue, correct };
}
