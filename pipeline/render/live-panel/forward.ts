// The live panel's one door into the reference's forward pass (plain arrays, no TF.js).
// When the reference's API changes, this file is the only one to repoint.
// D = 784, H1 = 128, H2 = 64, K = 10.

import { createWorkspace, forward } from '../../../reference/network.js';
import { H1, H2, K, type Params } from '../../../reference/shapes.js';

export interface Activations {
  a1: Float32Array; // (H1) first hidden layer, after ReLU
  a2: Float32Array; // (H2) second hidden layer, after ReLU
  probs: Float32Array; // (K) softmax of the logits
}

/** A forward pass for one image (D) through `params`, reusing one workspace between calls. */
export function createForward(params: Params): (input: Float32Array) => Activations {
  const ws = createWorkspace(params, 1);
  return (input) => {
    forward(params, input, 1, ws);
    return { a1: ws.a1.slice(0, H1), a2: ws.a2.slice(0, H2), probs: ws.probs.slice(0, K) };
  };
}
