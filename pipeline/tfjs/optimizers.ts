// The optimizers of the training recipes, with Adam fused into one pass on the host.
//
// TF.js's own Adam updates each variable with ~12 small kernels (two moments,
// two bias corrections, sqrt, add ε, divide, scale, add, three assigns); on
// wasm each call has a fixed cost, so its update took 13× the CPU time of SGD's
// and 2× that of the fused version here (bench/recipes.ts). The fused Adam
// reads each gradient once, updates a host copy of the weights in one float64
// loop and uploads them once. (Rounding every intermediate to float32 with
// Math.fround, to match TF.js bit for bit, made that loop 7× slower; so the
// weights agree with tf.train.adam to float32 rounding, the test keeping it as
// the oracle.) Momentum has only 4 kernels a variable, and a host round trip
// measured slower than them, so it stays TF.js's.
//
//   Adam: m ← β₁m + (1−β₁)g;  v ← β₂v + (1−β₂)g²;  w ← w − lr · (m/(1−β₁ᵗ)) / (√(v/(1−β₂ᵗ)) + ε)

import * as tf from '@tensorflow/tfjs';
import type { OptimizerSpec } from '../experiments/variants.js';

/** What Optimizer.applyGradients receives (tf does not export NamedTensor). */
type VariableGradients = Parameters<tf.Optimizer['applyGradients']>[0];

/** An optimizer whose learning rate the step decay can lower mid-run. */
export type AdjustableOptimizer = tf.Optimizer & { setLearningRate(lr: number): void };

/** Pairs of (variable, its gradient), by the variable names TF.js registered. */
function gradientPairs(variableGradients: VariableGradients): [tf.Variable, tf.Tensor][] {
  const entries = Array.isArray(variableGradients)
    ? variableGradients.map(({ name, tensor }) => [name, tensor] as const)
    : Object.entries(variableGradients);
  return entries.map(([name, gradient]) => {
    const variable = tf.engine().registeredVariables[name];
    if (variable === undefined) throw new Error(`optimizer: no variable named ${name}`);
    return [variable, gradient];
  });
}

/**
 * A host copy of each variable the optimizer updates, so a step reads only the
 * gradient and uploads only the new value. Read again whenever the variable
 * holds other data than the optimizer last uploaded (someone else wrote it).
 */
class HostWeights {
  private readonly copies = new Map<string, { values: Float32Array; dataId: object }>();

  /** The current values of `variable`, to update in place and then `upload`. */
  values(variable: tf.Variable): Float32Array {
    const copy = this.copies.get(variable.name);
    if (copy !== undefined && copy.dataId === variable.dataId) return copy.values;
    const values = Float32Array.from(variable.dataSync() as Float32Array);
    this.copies.set(variable.name, { values, dataId: variable.dataId });
    return values;
  }

  /** Makes `variable` hold its updated host values. */
  upload(variable: tf.Variable): void {
    const copy = this.copies.get(variable.name)!;
    const next = tf.tensor(copy.values, variable.shape, 'float32');
    variable.assign(next);
    next.dispose(); // the variable keeps the data
    copy.dataId = variable.dataId;
  }
}

/** Adam on the host: tf.train.adam(lr, β₁, β₂) with the backend's ε, to float32 rounding. */
export class FusedAdam extends tf.Optimizer {
  static get className(): string {
    return 'FusedAdam';
  }
  private readonly weights = new HostWeights();
  private readonly moments = new Map<string, { m: Float32Array; v: Float32Array }>();
  private step = 0;
  private readonly epsilon = tf.backend().epsilon();

  constructor(
    private learningRate: number,
    private readonly beta1 = 0.9,
    private readonly beta2 = 0.999,
  ) {
    super();
  }

  setLearningRate(lr: number): void {
    this.learningRate = lr;
  }

  override applyGradients(variableGradients: VariableGradients): void {
    this.step++;
    const { beta1, beta2, epsilon, learningRate } = this;
    // lr·(m/(1−β₁ᵗ)) / (√(v/(1−β₂ᵗ)) + ε), times √(1−β₂ᵗ) above and below: one divide and one root per weight
    const root2 = Math.sqrt(1 - beta2 ** this.step);
    const stepSize = (learningRate * root2) / (1 - beta1 ** this.step);
    const scaledEpsilon = epsilon * root2;
    for (const [variable, gradient] of gradientPairs(variableGradients)) {
      const g = gradient.dataSync() as Float32Array;
      const w = this.weights.values(variable);
      let state = this.moments.get(variable.name);
      if (state === undefined) {
        state = { m: new Float32Array(w.length), v: new Float32Array(w.length) };
        this.moments.set(variable.name, state);
      }
      const { m, v } = state;
      for (let i = 0; i < w.length; i++) {
        const gi = g[i]!;
        const mi = beta1 * m[i]! + (1 - beta1) * gi;
        const vi = beta2 * v[i]! + (1 - beta2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        w[i] = w[i]! - (stepSize * mi) / (Math.sqrt(vi) + scaledEpsilon);
      }
      this.weights.upload(variable);
    }
    this.incrementIterations();
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { learningRate: this.learningRate, beta1: this.beta1, beta2: this.beta2, epsilon: this.epsilon };
  }
}

/** TF.js's momentum, whose dispose forgets the −lr scalar it inherits from SGD (one tensor leaked per run). */
class Momentum extends tf.MomentumOptimizer {
  override dispose(): void {
    super.dispose();
    this.c.dispose();
  }
}

/**
 * The recipe's optimizer at its starting learning rate; SGD and momentum start
 * at `configLr`, Adam at its own. SGD and momentum stay TF.js's: their 2 and 4
 * kernels a variable cost less than a round trip through the host (bench/recipes.ts).
 */
export function createOptimizer(spec: OptimizerSpec, configLr: number): AdjustableOptimizer {
  switch (spec.kind) {
    case 'sgd':
      return tf.train.sgd(configLr);
    case 'momentum':
      return new Momentum(configLr, spec.momentum);
    case 'adam':
      return new FusedAdam(spec.lr, 0.9, 0.999);
  }
}
