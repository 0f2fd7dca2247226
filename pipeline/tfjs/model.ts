// The TF.js model: a stack of tf.layers.dense, 784 → 128 ReLU → 64 ReLU → 10 softmax.

import * as tf from '@tensorflow/tfjs';
import { argmax } from '../../reference/network.js';
import { D, H1, H2, K, PARAM_NAMES, PARAM_SHAPES, scalePixels, type Params, type Pixels } from '../../reference/shapes.js';

export const LAYER_NAMES = ['dense1', 'dense2', 'dense3'] as const;

/** Builds the spec network; `seed` makes the Glorot-uniform kernels reproducible. */
export function buildModel(seed: number): tf.Sequential {
  const model = tf.sequential({ name: 'mnist_dense' });
  const units = [H1, H2, K];
  const activations = ['relu', 'relu', 'softmax'] as const;
  for (let layer = 0; layer < 3; layer++) {
    model.add(
      tf.layers.dense({
        name: LAYER_NAMES[layer],
        units: units[layer]!,
        activation: activations[layer],
        kernelInitializer: tf.initializers.glorotUniform({ seed: seed * 3 + layer }),
        biasInitializer: 'zeros',
        ...(layer === 0 ? { inputShape: [D] } : {}),
      }),
    );
  }
  return model;
}

/** Reads the model's weights in reference order (w1, b1, w2, b2, w3, b3). */
export function readParams(model: tf.LayersModel): Params {
  const values = model.getWeights().map((w) => w.dataSync() as Float32Array);
  const [w1, b1, w2, b2, w3, b3] = values.map((v) => Float32Array.from(v));
  return { w1: w1!, b1: b1!, w2: w2!, b2: b2!, w3: w3!, b3: b3! };
}

/** Copies params into the model's variables. */
export function writeParams(model: tf.LayersModel, params: Params): void {
  const tensors = PARAM_NAMES.map((name) => tf.tensor(params[name], [...PARAM_SHAPES[name]], 'float32'));
  model.setWeights(tensors);
  tf.dispose(tensors);
}

/** A fresh model holding `params`. */
export function modelWithParams(params: Params): tf.Sequential {
  const model = buildModel(0);
  writeParams(model, params);
  return model;
}

const PREDICT_BATCH = 2000;

/**
 * The training loss: mean over the batch of −log p[true digit] (cross-entropy
 * with one-hot y). Unlike Keras's categorical cross-entropy it does not clip p,
 * so a diverging run shows a non-finite loss instead of one stuck at −log(1e−7)
 * with zero gradients, and its gradient is exactly the reference's (p − y)/B.
 * Taking Σₖ y·p before the log keeps an underflowed wrong-class p out of it.
 */
export function crossEntropy(y: tf.Tensor2D, probabilities: tf.Tensor2D): tf.Scalar {
  return tf.tidy(() => tf.neg(tf.mean(tf.log(tf.sum(tf.mul(y, probabilities), 1)))) as tf.Scalar);
}

/** Softmax outputs for `count` images (bytes from the dataset, scaled a batch at a time, or prepared floats), in batches so memory stays flat. Returns (N, K). */
export function predictProbabilities(model: tf.LayersModel, images: Pixels | Float32Array, count: number): Float32Array {
  const probabilities = new Float32Array(count * K); // (N, K)
  const chunk = new Float32Array(Math.min(PREDICT_BATCH, count) * D); // (rows, D): bytes scaled, one chunk at a time
  for (let start = 0; start < count; start += PREDICT_BATCH) {
    const rows = Math.min(PREDICT_BATCH, count - start);
    const slice = images.subarray(start * D, (start + rows) * D);
    const batch = tf.tidy(() => {
      const x = tf.tensor2d(slice instanceof Uint8Array ? scalePixels(slice, chunk.subarray(0, rows * D)) : slice, [rows, D]);
      return model.predict(x, { batchSize: rows }) as tf.Tensor; // the default of 32 copies the whole input per slice on wasm
    });
    probabilities.set(batch.dataSync(), start * K);
    batch.dispose();
  }
  return probabilities;
}

/** Mean cross-entropy and accuracy of (N, K) probabilities against (N) labels. */
export function lossAndAccuracy(probabilities: Float32Array, labels: Uint8Array): { loss: number; accuracy: number } {
  const count = labels.length;
  let loss = 0;
  let correct = 0;
  for (let n = 0; n < count; n++) {
    const row = probabilities.subarray(n * K, (n + 1) * K);
    loss -= Math.log(Math.max(row[labels[n]!]!, 1e-7)); // the same floor as Keras's categorical cross-entropy
    if (argmax(row) === labels[n]) correct++;
  }
  return { loss: loss / count, accuracy: correct / count };
}
