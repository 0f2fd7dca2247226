// The live panel's one door into the reference's forward pass: the readable core
// of reference/network.ts, on plain arrays, no TF.js.
// D = 784, H1 = 128, H2 = 64, K = 10.

import { forward } from '../../../reference/network.js';
import type { Params } from '../../../reference/shapes.js';

export interface Activations {
  a1: Float32Array; // (H1) first hidden layer, after ReLU
  a2: Float32Array; // (H2) second hidden layer, after ReLU
  probs: Float32Array; // (K) softmax of the logits
}

/** A forward pass for one image (D) through `params`. */
export function createForward(params: Params): (input: Float32Array) => Activations {
  return (input) => {
    const { a1, a2, probs } = forward(params, input, null, 1); // no label: forward stops at probs
    return { a1, a2, probs };
  };
}
