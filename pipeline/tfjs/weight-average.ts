// An exponential moving average of a model's weights (Polyak averaging, as in TF's
// ExponentialMovingAverage with num_updates): after step t,
//
//   d = min(decay, (1 + t) / (10 + t));   w̄ ← d·w̄ + (1 − d)·w
//
// the early steps, whose weights are still far from the end, fading out fast. Every weight of
// the model is averaged, batch norm's moving statistics too, so the average folds as the model does.
// On the host in float64, stored in float32.

import * as tf from '@tensorflow/tfjs';

/** The decay of the t-th update (1-based). */
export function averageDecay(decay: number, t: number): number {
  return Math.min(decay, (1 + t) / (10 + t));
}

export class WeightAverage {
  private readonly variables: tf.Variable[];
  private readonly average: Float32Array[];
  private updates = 0;

  constructor(
    model: tf.LayersModel,
    private readonly decay: number,
  ) {
    this.variables = model.weights.map((weight) => weight.read() as tf.Variable);
    this.average = this.variables.map((variable) => Float32Array.from(variable.dataSync() as Float32Array));
  }

  /** One update from the weights as they are now. */
  update(): void {
    const d = averageDecay(this.decay, ++this.updates);
    for (const [i, variable] of this.variables.entries()) {
      const w = variable.dataSync() as Float32Array;
      const average = this.average[i]!;
      for (let j = 0; j < w.length; j++) average[j] = d * average[j]! + (1 - d) * w[j]!;
    }
  }

  /** The averaged weights, in the model's order. */
  values(): readonly Float32Array[] {
    return this.average;
  }

  /** Runs `read` with the model holding the average, then puts the trained weights back. */
  with<T>(read: () => T): T {
    const trained = this.variables.map((variable) => Float32Array.from(variable.dataSync() as Float32Array));
    this.assign(this.average);
    try {
      return read();
    } finally {
      this.assign(trained);
    }
  }

  /** Leaves the average in the model, for the last scores and the export. */
  keep(): void {
    this.assign(this.average);
  }

  private assign(values: readonly Float32Array[]): void {
    for (const [i, variable] of this.variables.entries()) {
      const next = tf.tensor(values[i]!, variable.shape, 'float32');
      variable.assign(next);
      next.dispose();
    }
  }
}
