// The fused Adam against TF.js's own, kept as the oracle: the same
// problem, step after step, must give the same weights to float32 rounding,
// far closer than one step moves them.

import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../pipeline/tfjs/backend.js';
import { FusedAdam, createOptimizer } from '../pipeline/tfjs/optimizers.js';

beforeAll(async () => {
  await selectBackend('wasm');
});

/** A small problem with two variables: a matrix and a vector, gradients from a nonlinear loss. */
function problem(seed: number) {
  const w = tf.variable(tf.randomNormal([20, 7], 0, 1, 'float32', seed));
  const b = tf.variable(tf.randomNormal([7], 0, 1, 'float32', seed + 1));
  const x = tf.randomNormal([16, 20], 0, 1, 'float32', seed + 2);
  const loss = () => tf.tidy(() => tf.mean(tf.square(tf.tanh(tf.add(tf.matMul(x, w), b)))) as tf.Scalar);
  return { w, b, variables: [w, b], dispose: () => tf.dispose([w, b, x]), loss };
}

/** Runs `steps` steps of each optimizer on identical problems; returns the weights of both. */
function race(oracle: tf.Optimizer, fused: tf.Optimizer & { setLearningRate(lr: number): void }, steps: number, decayAt?: number) {
  const a = problem(1);
  const b = problem(1);
  const start = Array.from(a.w.dataSync());
  for (let step = 0; step < steps; step++) {
    if (step === decayAt) {
      const lr = (oracle.getConfig().learningRate as number) * 0.1;
      const settable = oracle as unknown as { learningRate: number; setLearningRate?: (lr: number) => void };
      if (settable.setLearningRate)
        settable.setLearningRate(lr); // SGD and momentum keep −lr in a tensor
      else settable.learningRate = lr; // Adam reads it on every step
      fused.setLearningRate((fused.getConfig().learningRate as number) * 0.1);
    }
    tf.tidy(() => void oracle.minimize(a.loss, false, a.variables));
    tf.tidy(() => void fused.minimize(b.loss, false, b.variables));
  }
  const weights = [a.w, a.b, b.w, b.b].map((v) => Array.from(v.dataSync()));
  a.dispose();
  b.dispose();
  oracle.dispose();
  fused.dispose();
  return { oracle: weights.slice(0, 2), fused: weights.slice(2), start };
}

/** Weights are O(1) and a step moves them by ~1e-2; float32 rounding over 30 steps stays near 1e-6. */
const WEIGHT_TOLERANCE = 1e-5;

function expectSameWeights(actual: number[][], expected: number[][]): void {
  for (let t = 0; t < expected.length; t++) {
    let worst = 0;
    let at = 0;
    actual[t]!.forEach((value, i) => {
      const difference = Math.abs(value - expected[t]![i]!);
      if (!(difference <= worst)) [worst, at] = [difference, i]; // NaN counts as worst
    });
    if (!(worst <= WEIGHT_TOLERANCE)) {
      throw new Error(
        `tensor ${t}, index ${at}: fused ${actual[t]![at]} vs TF.js ${expected[t]![at]}, difference ${worst} > ${WEIGHT_TOLERANCE}`,
      );
    }
  }
}

describe('the fused Adam', () => {
  it('Adam: the weights of tf.train.adam over 30 steps, through a learning-rate change', () => {
    const { oracle, fused, start } = race(tf.train.adam(1e-2, 0.9, 0.999), new FusedAdam(1e-2, 0.9, 0.999), 30, 20);
    expectSameWeights(fused, oracle);
    expect(fused[0]).not.toEqual(start); // the weights moved
  });

  it('moves the weights, and a wrong update would be caught', () => {
    const a = problem(3);
    const before = Array.from(a.w.dataSync());
    const adam = new FusedAdam(1e-2);
    tf.tidy(() => void adam.minimize(a.loss, false, a.variables));
    const after = Array.from(a.w.dataSync());
    expect(after).not.toEqual(before);
    // The first Adam step moves every weight by about the learning rate (m̂/√v̂ = ±1).
    for (let i = 0; i < after.length; i++) expect(Math.abs(after[i]! - before[i]!)).toBeCloseTo(1e-2, 4);
    adam.dispose();
    a.dispose();
  });

  it('leave the tensor count flat', () => {
    const a = problem(4);
    for (const optimizer of [
      new FusedAdam(1e-3),
      createOptimizer({ kind: 'momentum', momentum: 0.9 }, 0.01),
      createOptimizer({ kind: 'sgd' }, 0.01),
    ]) {
      tf.tidy(() => void optimizer.minimize(a.loss, false, a.variables)); // first step: state is allocated
      const before = tf.memory().numTensors;
      for (let step = 0; step < 3; step++) tf.tidy(() => void optimizer.minimize(a.loss, false, a.variables));
      expect(tf.memory().numTensors).toBe(before);
      optimizer.dispose();
    }
    a.dispose();
  });
});
