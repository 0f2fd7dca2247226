// The smoothing of elastic distortions (experiments/augment.ts) on the TF.js backend: for a batch's
// fields U (2B of them, each (S, S)), G·U·G as two matmuls, G the Gaussian matrix (symmetric):
//
//   V = U·G          one (2B·S, S)·(S, S) matmul, every field's rows at once
//   W = Vᵀ·G         per field (U·G)ᵀ·G = G·Uᵀ·G = (G·U·G)ᵀ, then transposed back
//
// smoothFieldsOnHost is the oracle (test/elastic.test.ts); on wasm this is ~25× faster.

import * as tf from '@tensorflow/tfjs';
import { IMAGE_SIDE } from '../../reference/shapes.js';

/** A smoother for augmentImages that runs on the backend; `g` is uploaded on first use and kept until dispose. */
export function backendSmoother(): { smooth: (noise: Float32Array, g: Float32Array) => Float32Array; dispose: () => void } {
  const S = IMAGE_SIDE;
  let matrix: { values: Float32Array; tensor: tf.Tensor2D } | null = null;
  return {
    smooth: (noise, g) => {
      if (matrix?.values !== g) {
        matrix?.tensor.dispose();
        matrix = { values: g, tensor: tf.tensor2d(g, [S, S]) };
      }
      const G = matrix.tensor;
      const fields = noise.length / (S * S);
      const smoothed = tf.tidy(() => {
        const v = tf.matMul(tf.tensor2d(noise, [fields * S, S]), G);
        const vT = tf.transpose(tf.reshape(v, [fields, S, S]), [0, 2, 1]);
        const w = tf.matMul(tf.reshape(vT, [fields * S, S]), G);
        return tf.transpose(tf.reshape(w, [fields, S, S]), [0, 2, 1]);
      });
      noise.set(smoothed.dataSync() as Float32Array);
      smoothed.dispose();
      return noise;
    },
    dispose: () => matrix?.tensor.dispose(),
  };
}
