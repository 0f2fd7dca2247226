// Stage gradcheck: the reference's hand-written gradients (its readable core,
// reference/network.ts) against two independent oracles, on one seeded batch of training
// images at the shared initial weights.
//   1. central finite differences in float64 (reference/gradcheck.ts), sampled
//      parameters per tensor, bound FD_MAX_REL_ERROR on the relative error;
//   2. TF.js's own gradients (tf.variableGrads) of the training loss against the fast
//      path's (reference/fast/, what training runs) on the same float32 weights and batch,
//      every entry, bounds TFJS_MAX_ABS_ERROR and TFJS_MAX_REL_ERROR.
// The tests tie the two together: the fast path matches the core tensor by tensor.
// gradientCheck returns the numbers; gradientBoundViolations and gradcheckSummary judge them.
// B = batchSize, D = 784, K = 10.

import * as tf from '@tensorflow/tfjs';
import { FD_SAMPLES, FD_STEP, finiteDifferenceCheck, relativeError, toFloat64 } from '../reference/gradcheck.js';
import { backward, createWorkspace, forward } from '../reference/fast/network.js';
import { deriveSeed, epochPermutation } from '../reference/random.js';
import { D, K, PARAM_NAMES, TFJS_WEIGHT_NAMES, cloneParams, paramSize, type ParamName, type Params } from '../reference/shapes.js';
import { crossEntropy, modelWithParams } from './tfjs/model.js';
import { batchBuffers, fillBatch } from './train.js';
import type { Dataset, GradientCheck, InitialWeights, TensorError } from './types.js';

/** Finite differences must agree with the float64 analytic gradient to this relative error. */
export const FD_MAX_REL_ERROR = 1e-6;
/** TF.js's float32 gradients must agree with the reference's float32 gradients to this absolute error. */
export const TFJS_MAX_ABS_ERROR = 1e-5;
/**
 * TF.js's gradients must agree with the reference's to this relative error, |a − b| / max(|a| + |b|, floor):
 * a relative error of 1e-4 in an entry above the floor reads 5e-5 and fails. Seen: ≤ 3.5e-6 (batches of 8 to 1024).
 */
export const TFJS_MAX_REL_ERROR = 1e-5;
/**
 * The relative-error floor for the float32 comparison: below it the relative bound becomes an absolute
 * one, 1e-5 × 1e-2 = 1e-7, twice the float32 rounding seen (≤ 4.5e-8); entries that cancel to ~1e-9
 * would otherwise show meaningless relative errors of order 1.
 */
export const TFJS_REL_ERROR_FLOOR = 1e-2;

/** Stream number that keeps the gradcheck batch apart from every training epoch's shuffle. */
const GRADCHECK_STREAM = 0x67726164; // 'grad'

/** The gradcheck batch: the first `batchSize` of a seeded permutation of the training split. */
function gradcheckBatch(dataset: Dataset, batchSize: number, seed: number): { x: Float32Array; y: Float32Array } {
  const { train } = dataset;
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > train.count) {
    throw new Error(`gradientCheck: --gradcheck-batch must be between 1 and the ${train.count} training images, found ${batchSize}`);
  }
  const order = epochPermutation(train.count, deriveSeed(seed, GRADCHECK_STREAM), 0);
  const batch = batchBuffers(batchSize);
  fillBatch(batch, train, order.subarray(0, batchSize)); // as a training step fills its batch
  return { x: batch.images, y: batch.oneHot };
}

/** TF.js's gradient of the training loss (pipeline/tfjs/model.ts crossEntropy) for every weight, in reference order. */
export function tfjsGradients(params: Params, x: Float32Array, y: Float32Array, batch: number): Params {
  const model = modelWithParams(params);
  const xs = tf.tensor2d(x, [batch, D]);
  const ys = tf.tensor2d(y, [batch, K]);
  try {
    const weights = model.trainableWeights;
    PARAM_NAMES.forEach((name, i) => {
      if (weights[i]?.originalName !== TFJS_WEIGHT_NAMES[name]) {
        throw new Error(`gradientCheck: TF.js weight ${i} is ${weights[i]?.originalName}, expected ${TFJS_WEIGHT_NAMES[name]}`);
      }
    });
    const variables = weights.map((w) => w.read() as tf.Variable);
    const { value, grads } = tf.variableGrads(() => crossEntropy(ys, model.apply(xs, { training: true }) as tf.Tensor2D), variables);
    try {
      const read = (i: number): Float32Array => {
        const gradient = grads[variables[i]!.name];
        if (gradient === undefined) throw new Error(`gradientCheck: TF.js returned no gradient for ${weights[i]!.originalName}`);
        return Float32Array.from(gradient.dataSync());
      };
      return { w1: read(0), b1: read(1), w2: read(2), b2: read(3), w3: read(4), b3: read(5) };
    } finally {
      tf.dispose([value, ...Object.values(grads)]);
    }
  } finally {
    tf.dispose([xs, ys]);
    model.dispose();
  }
}

/** Largest absolute and relative difference, over every entry, of two gradients of one tensor; NaN if either holds a non-finite entry. */
export function compareTensors(reference: Float32Array | Float64Array, other: Float32Array | Float64Array, floor: number): TensorError {
  if (reference.length !== other.length) throw new Error(`compareTensors: lengths differ, ${reference.length} vs ${other.length}`);
  let maxAbs = 0;
  let maxRel = 0;
  for (let i = 0; i < reference.length; i++) {
    const a = reference[i]!;
    const b = other[i]!;
    // A non-finite entry is reported as NaN, which fails every bound (and is not lost to later Math.max calls).
    if (!Number.isFinite(a) || !Number.isFinite(b)) return { max_abs_error: NaN, max_rel_error: NaN };
    maxAbs = Math.max(maxAbs, Math.abs(a - b));
    maxRel = Math.max(maxRel, relativeError(a, b, floor));
  }
  return { max_abs_error: maxAbs, max_rel_error: maxRel };
}

/** The reference's float32 gradient of the mean cross-entropy on the batch, as training computes it (the fast path). */
export function referenceGradients32(params: Params, x: Float32Array, y: Float32Array, batch: number): Params {
  const ws = createWorkspace(params, batch);
  forward(params, x, batch, ws, y);
  return cloneParams(backward(params, y, batch, ws));
}

/**
 * Stage gradcheck. `backend` is the TF.js backend the runner activated (selectBackend's
 * answer); TF.js must be running it.
 */
export function gradientCheck(dataset: Dataset, init: InitialWeights, batchSize: number, seed: number, backend: string): GradientCheck {
  if (tf.getBackend() !== backend) {
    throw new Error(
      `gradientCheck: expected the TF.js backend "${backend}" to be active, found "${tf.getBackend()}" (call selectBackend first)`,
    );
  }
  const { x, y } = gradcheckBatch(dataset, batchSize, seed);

  const fd = finiteDifferenceCheck(toFloat64(init.params), Float64Array.from(x), Float64Array.from(y), batchSize, {
    samples: FD_SAMPLES,
    step: FD_STEP,
    seed,
  });
  const finiteDifference: Record<string, TensorError> = {};
  for (const name of PARAM_NAMES) {
    const { max_abs_error, max_rel_error } = fd.tensors[name];
    finiteDifference[TFJS_WEIGHT_NAMES[name]] = { max_abs_error, max_rel_error };
  }

  const ours = referenceGradients32(init.params, x, y, batchSize);
  const theirs = tfjsGradients(init.params, x, y, batchSize);
  const tfjs: Record<string, TensorError> = {};
  for (const name of PARAM_NAMES) {
    checkShape(name, theirs[name].length);
    tfjs[TFJS_WEIGHT_NAMES[name]] = compareTensors(ours[name], theirs[name], TFJS_REL_ERROR_FLOOR);
  }

  return {
    finite_difference: finiteDifference,
    tfjs,
    batch_size: batchSize,
    seed,
    finite_difference_samples: FD_SAMPLES,
    finite_difference_skipped: fd.skipped,
    step: FD_STEP,
    backend,
  };
}

function checkShape(name: ParamName, length: number): void {
  const expected = paramSize(name);
  if (length !== expected)
    throw new Error(`gradientCheck: TF.js gradient of ${TFJS_WEIGHT_NAMES[name]} has ${length} entries, expected ${expected}`);
}

/** Every tensor outside its bound, as "oracle tensor: value ≥ bound" lines; empty when the check passes. */
export function gradientBoundViolations(check: GradientCheck): string[] {
  const violations: string[] = [];
  for (const [tensor, error] of Object.entries(check.finite_difference)) {
    if (!(error.max_rel_error < FD_MAX_REL_ERROR))
      violations.push(`finite differences ${tensor}: max_rel_error ${error.max_rel_error} ≥ ${FD_MAX_REL_ERROR}`);
  }
  for (const [tensor, error] of Object.entries(check.tfjs)) {
    if (!(error.max_abs_error < TFJS_MAX_ABS_ERROR))
      violations.push(`TF.js ${tensor}: max_abs_error ${error.max_abs_error} ≥ ${TFJS_MAX_ABS_ERROR}`);
    if (!(error.max_rel_error < TFJS_MAX_REL_ERROR))
      violations.push(`TF.js ${tensor}: max_rel_error ${error.max_rel_error} ≥ ${TFJS_MAX_REL_ERROR}`);
  }
  return violations;
}

/** The worst tensor of one oracle for one error measure, "worst max_rel_error 9.43e-11 (dense3/bias) < 1e-6"; NaN counts as worst. */
function worstAgainst(table: Record<string, TensorError>, measure: keyof TensorError, bound: number): string {
  const [tensor, error] = Object.entries(table).reduce((a, b) => (Number.isNaN(b[1][measure]) || b[1][measure] > a[1][measure] ? b : a));
  const value = error[measure];
  return `worst ${measure} ${value.toExponential(2)} (${tensor}) ${value < bound ? '<' : '≥'} ${bound.toExponential(0)}`;
}

/** One line for the log: each oracle's worst error beside its bound, then ok or FAILED. */
export function gradcheckSummary(check: GradientCheck): string {
  const verdict = gradientBoundViolations(check).length === 0 ? 'ok' : 'FAILED';
  const fd = worstAgainst(check.finite_difference, 'max_rel_error', FD_MAX_REL_ERROR);
  const tfjs = `${worstAgainst(check.tfjs, 'max_abs_error', TFJS_MAX_ABS_ERROR)}, ${worstAgainst(check.tfjs, 'max_rel_error', TFJS_MAX_REL_ERROR)}`;
  return `gradcheck: finite differences ${fd}; TF.js ${tfjs}; ${verdict}`;
}
