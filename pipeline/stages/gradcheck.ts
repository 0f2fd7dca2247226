// Stage gradcheck: the reference's hand-written gradients (its readable core,
// reference/network.ts) against two independent oracles, on one seeded batch of training
// images at the shared initial weights.
//   1. central finite differences in float64 (reference/finite-differences.ts), sampled
//      parameters per tensor, bound FD_MAX_REL_ERROR on the relative error;
//   2. TF.js's own gradients (tf.variableGrads) of the training loss against the fast
//      path's (reference/fast/, what training runs) on the same float32 weights and batch,
//      every entry, bound TFJS_MAX_ROUNDING_RATIO on the difference in units of float32 rounding.
// The tests tie the two together: the fast path matches the core tensor by tensor.
// gradientCheck returns the numbers; gradientBoundViolations and gradcheckSummary judge them.
// B = batchSize, D = 784, H1 = 128, H2 = 64, K = 10; u = 2⁻²⁴, float32's unit roundoff.
//
// Why the float32 comparison counts in units of rounding. A float32 sum Σ tᵢ is off by up to
// ~u·Σ|tᵢ| per rounding, whatever the sum itself is: an entry whose terms cancel (dW1 = xᵀ·δ1 on
// inverted images, mostly 1) keeps the error of its terms, so an error relative to the entry means
// nothing there. roundingScale carries Σ|terms| and the errors they bring through every layer, per
// gradient entry, and the check bounds |a − b| / (u · scale), maxRoundingRatio.

import * as tf from '@tensorflow/tfjs';
import { FD_SAMPLES, FD_STEP, finiteDifferenceCheck, relativeError, toFloat64 } from '../../reference/finite-differences.js';
import { backward, createWorkspace, forward } from '../../reference/fast/network.js';
import { denseBackward, denseForward, forward as forwardCore } from '../../reference/network.js';
import { deriveSeed, epochPermutation } from '../../reference/random.js';
import {
  D,
  H1,
  H2,
  K,
  PARAM_NAMES,
  TFJS_WEIGHT_NAMES,
  cloneParams,
  zeroParams,
  paramSize,
  type FloatArray,
  type ParamName,
  type Params,
} from '../../reference/shapes.js';
import { crossEntropy, modelWithParams } from '../tfjs/model.js';
import { batchBuffers, fillBatch } from './train.js';
import type { Dataset, GradientCheck, InitialWeights, TensorError } from '../types.js';

/** Finite differences must agree with the float64 analytic gradient to this relative error. */
export const FD_MAX_REL_ERROR = 1e-6;
/** Float32's unit roundoff: one rounding moves a value by at most u times its size. */
export const FLOAT32_UNIT_ROUNDOFF = 2 ** -24;
/**
 * TF.js's gradients must agree with the reference's to |a − b| < this × u × roundingScale, entry by entry:
 * each side is within u × scale of the exact gradient. Seen: ≤ 0.9 (batches of 8 to 1024; MNIST, inverted,
 * blank, all-ones, uniform and repeated images; weights up to 3× Glorot), while a relative error of 1e-4
 * in every entry reads ≥ 3.9 at batch 8 on MNIST and inverted MNIST.
 */
export const TFJS_MAX_ROUNDING_RATIO = 2;
/**
 * The floor of maxRelError's denominator, |a − b| / max(|a| + |b|, floor): reported, not bounded
 * (roundingScale's ratio is), and the floor keeps entries that cancel to ~1e-9 from reading order 1.
 */
export const TFJS_REL_ERROR_FLOOR = 1e-2;

/** Each error measure as the log and metrics.json name it, so a line of the log can be looked up in the file. */
const MEASURE_NAMES: Record<keyof TensorError, string> = {
  maxAbsError: 'max_abs_error',
  maxRelError: 'max_rel_error',
  maxRoundingRatio: 'max_rounding_ratio',
};

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

/**
 * Largest absolute, relative and rounding-scaled difference, over every entry, of two float32 gradients
 * of one tensor: maxRoundingRatio is max |a − b| / (u · scale), scale from roundingScale. NaN if either
 * holds a non-finite entry.
 */
export function compareTensors(
  reference: Float32Array | Float64Array,
  other: Float32Array | Float64Array,
  scale: Float64Array,
): TensorError {
  if (reference.length !== other.length || scale.length !== other.length) {
    throw new Error(`compareTensors: lengths differ, ${reference.length} vs ${other.length} (scale ${scale.length})`);
  }
  let maxAbs = 0;
  let maxRel = 0;
  let maxRatio = 0;
  for (let i = 0; i < reference.length; i++) {
    const a = reference[i]!;
    const b = other[i]!;
    // A non-finite entry is reported as NaN, which fails every bound (and is not lost to later Math.max calls).
    if (!Number.isFinite(a) || !Number.isFinite(b)) return { maxAbsError: NaN, maxRelError: NaN, maxRoundingRatio: NaN };
    const difference = Math.abs(a - b);
    maxAbs = Math.max(maxAbs, difference);
    maxRel = Math.max(maxRel, relativeError(a, b, TFJS_REL_ERROR_FLOOR));
    // A scale of 0 means every term is 0, so both sides must be exactly 0: any difference is infinitely many u.
    if (difference > 0) maxRatio = Math.max(maxRatio, difference / (FLOAT32_UNIT_ROUNDOFF * scale[i]!));
  }
  return { maxAbsError: maxAbs, maxRelError: maxRel, maxRoundingRatio: maxRatio };
}

/** The reference's float32 gradient of the mean cross-entropy on the batch, as training computes it (the fast path). */
export function referenceGradients32(params: Params, x: Float32Array, y: Float32Array, batch: number): Params {
  const ws = createWorkspace(params, batch);
  forward(params, x, batch, ws, y);
  return cloneParams(backward(params, y, batch, ws));
}

// ---------------------------------------------------------------------------
// The rounding scale: how far float32 rounding can move each gradient entry, in units of u.

/** A float64 copy of θ with f applied to every entry. */
function mapParams(params: Params<FloatArray>, f: (value: number) => number): Params<Float64Array> {
  const mapped = toFloat64(params);
  for (const name of PARAM_NAMES) mapped[name] = mapped[name].map(f);
  return mapped;
}

/**
 * e (B, OUT) = the error of z = a·W + b, in units of u: its own rounding, |a|·|W| + |b| (u per term), plus
 * the input's error eIn carried through W, in quadrature, √(eIn²·W²): different units round independently.
 */
function denseError(
  e: Float64Array,
  a: Float64Array,
  eIn: Float64Array | null,
  absW: Float64Array,
  absB: Float64Array,
  squaredW: Float64Array,
  batch: number,
  inDim: number,
  outDim: number,
): void {
  denseForward(e, a, absW, absB, batch, inDim, outDim);
  if (eIn === null) return; // the images are exact
  const carried = new Float64Array(batch * outDim); // (B, OUT)
  denseForward(
    carried,
    eIn.map((v) => v * v),
    squaredW,
    new Float64Array(outDim),
    batch,
    inDim,
    outDim,
  );
  for (let i = 0; i < e.length; i++) e[i]! += Math.sqrt(carried[i]!);
}

/**
 * ReLU on errors, in place: a unit with z ≤ 0 passes none, unless z lies within the bound of 0, where
 * TF.js and the reference may gate it differently. Returns those near-kink units.
 */
function reluError(e: Float64Array, z: Float64Array): Uint8Array {
  const nearKink = new Uint8Array(e.length);
  for (let i = 0; i < e.length; i++) {
    nearKink[i] = Math.abs(z[i]!) <= TFJS_MAX_ROUNDING_RATIO * FLOAT32_UNIT_ROUNDOFF * e[i]! ? 1 : 0;
    if (!(z[i]! > 0) && nearKink[i] === 0) e[i] = 0;
  }
  return nearKink;
}

/**
 * ReLU backward on magnitudes, in place: terms t and errors s pass where z > 0; at a near-kink unit both
 * pass, and the whole of t joins the error (t / u), since one side may drop what the other keeps.
 */
function reluBackwardMagnitudes(t: Float64Array, s: Float64Array, z: Float64Array, nearKink: Uint8Array): void {
  for (let i = 0; i < t.length; i++) {
    if (nearKink[i] === 1) s[i] = s[i]! + t[i]! / FLOAT32_UNIT_ROUNDOFF;
    else if (!(z[i]! > 0)) {
      t[i] = 0;
      s[i] = 0;
    }
  }
}

/**
 * Per gradient entry, the scale of its float32 rounding, in units of u: the network's forward and backward
 * pass in float64 on magnitudes, to first order in u.
 *   forward   e = an activation's error: its own sum's rounding |a|·|W| + |b|, plus the input's error
 *             carried through W in quadrature (different units round independently);
 *   loss      t = |p − y| / B, and its error s = (p ⊙ (1 + e3 + Σ_k p_k·e3_k) + y) / B: logits off by u·e3
 *             move p_k by ≤ u·p_k·(e3_k + Σ p·e3) (softmax's Jacobian), and p − y rounds relative to p + y;
 *   backward  the core's, on |W|: t bounds |δ|, so |a|ᵀ·t is the Σ|terms| of a gradient entry, and s bounds
 *             δ's error, so (|a| + e)ᵀ·s covers the rounding of each a·δ and the errors a and δ bring.
 * A gradient entry sums over the batch, whose terms are equal when images are, so its rounding is taken at
 * its worst, γ_B = B·u: scale = (|a| + e)ᵀ·s + B·|a|ᵀ·t. Each side is then within ~u·scale of the exact gradient.
 */
export function roundingScale(params: Params<FloatArray>, x: FloatArray, y: FloatArray, batch: number): Params<Float64Array> {
  const act = forwardCore(toFloat64(params), x, y, batch); // the ReLU masks and p, in float64
  const abs = mapParams(params, Math.abs);
  const squared = mapParams(params, (v) => v * v);
  const absX = Float64Array.from(x.subarray(0, batch * D), Math.abs); // (B, D)

  const e1 = new Float64Array(batch * H1); // (B, H1)
  const e2 = new Float64Array(batch * H2); // (B, H2)
  const e3 = new Float64Array(batch * K); // (B, K) the logits' error
  denseError(e1, absX, null, abs.w1, abs.b1, squared.w1, batch, D, H1);
  const nearKink1 = reluError(e1, act.z1);
  denseError(e2, act.a1, e1, abs.w2, abs.b2, squared.w2, batch, H1, H2);
  const nearKink2 = reluError(e2, act.z2);
  denseError(e3, act.a2, e2, abs.w3, abs.b3, squared.w3, batch, H2, K);

  const tLogits = new Float64Array(batch * K); // (B, K)
  const sLogits = new Float64Array(batch * K); // (B, K)
  for (let r = 0; r < batch; r++) {
    const row = r * K;
    let meanShift = 0; // Σ_k p_k·e3_k
    for (let k = 0; k < K; k++) meanShift += act.probs[row + k]! * e3[row + k]!;
    for (let k = 0; k < K; k++) {
      const p = act.probs[row + k]!;
      const label = Math.abs(y[row + k]!);
      tLogits[row + k] = Math.abs(p - y[row + k]!) / batch;
      sLogits[row + k] = (p * (1 + e3[row + k]! + meanShift) + label) / batch;
    }
  }

  const terms = zeroParams();
  const errors = zeroParams();
  const a1WithError = act.a1.map((a, i) => a + e1[i]!); // (B, H1)
  const a2WithError = act.a2.map((a, i) => a + e2[i]!); // (B, H2)
  const tA2 = new Float64Array(batch * H2); // (B, H2)
  const sA2 = new Float64Array(batch * H2); // (B, H2)
  const tA1 = new Float64Array(batch * H1); // (B, H1)
  const sA1 = new Float64Array(batch * H1); // (B, H1)
  denseBackward(tA2, terms.w3, terms.b3, tLogits, act.a2, abs.w3, batch, H2, K);
  denseBackward(sA2, errors.w3, errors.b3, sLogits, a2WithError, abs.w3, batch, H2, K);
  reluBackwardMagnitudes(tA2, sA2, act.z2, nearKink2);
  denseBackward(tA1, terms.w2, terms.b2, tA2, act.a1, abs.w2, batch, H1, H2);
  denseBackward(sA1, errors.w2, errors.b2, sA2, a1WithError, abs.w2, batch, H1, H2);
  reluBackwardMagnitudes(tA1, sA1, act.z1, nearKink1);
  denseBackward(null, terms.w1, terms.b1, tA1, absX, abs.w1, batch, D, H1);
  denseBackward(null, errors.w1, errors.b1, sA1, absX, abs.w1, batch, D, H1);

  for (const name of PARAM_NAMES) errors[name].forEach((s, i, scale) => (scale[i] = s + batch * terms[name][i]!));
  return errors;
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
    const tensor = fd.tensors[name];
    finiteDifference[TFJS_WEIGHT_NAMES[name]] = { maxAbsError: tensor.max_abs_error, maxRelError: tensor.max_rel_error };
  }

  const ours = referenceGradients32(init.params, x, y, batchSize);
  const theirs = tfjsGradients(init.params, x, y, batchSize);
  const scale = roundingScale(init.params, x, y, batchSize);
  const tfjs: Record<string, TensorError> = {};
  for (const name of PARAM_NAMES) {
    checkShape(name, theirs[name].length);
    tfjs[TFJS_WEIGHT_NAMES[name]] = compareTensors(ours[name], theirs[name], scale[name]);
  }

  return {
    finiteDifference,
    tfjs,
    batchSize,
    seed,
    finiteDifferenceSamples: FD_SAMPLES,
    finiteDifferenceSkipped: fd.skipped,
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
  for (const [tensor, error] of Object.entries(check.finiteDifference)) {
    if (!(error.maxRelError < FD_MAX_REL_ERROR))
      violations.push(`finite differences ${tensor}: ${MEASURE_NAMES.maxRelError} ${error.maxRelError} ≥ ${FD_MAX_REL_ERROR}`);
  }
  // The TF.js side is judged in units of float32 rounding only: an absolute bound holds for some inputs and not
  // for others (its error grows with the batch and with the size of the terms), so it is reported, not judged.
  for (const [tensor, error] of Object.entries(check.tfjs)) {
    // Absent only from a metrics.json written before the ratio existed, by a run that passed the bounds of its day.
    const ratio = error.maxRoundingRatio;
    if (ratio !== undefined && !(ratio < TFJS_MAX_ROUNDING_RATIO))
      violations.push(`TF.js ${tensor}: ${MEASURE_NAMES.maxRoundingRatio} ${ratio} ≥ ${TFJS_MAX_ROUNDING_RATIO}`);
  }
  return violations;
}

/**
 * The worst tensor of one oracle for one error measure, "worst max_rel_error 9.43e-11 (dense3/bias) < 1e-6";
 * NaN (or a missing value) counts as worst. Errors print in scientific notation, ratios in u as plain numbers.
 */
function worstAgainst(table: Record<string, TensorError>, measure: keyof TensorError, bound: number): string {
  const measured = (error: TensorError): number => error[measure] ?? NaN;
  const [tensor, error] = Object.entries(table).reduce((a, b) => (Number.isNaN(measured(b[1])) || measured(b[1]) > measured(a[1]) ? b : a));
  const value = measured(error);
  const ratio = measure === 'maxRoundingRatio';
  const shown = ratio ? value.toPrecision(2) : value.toExponential(2);
  return `worst ${MEASURE_NAMES[measure]} ${shown} (${tensor}) ${value < bound ? '<' : '≥'} ${ratio ? `${bound} u` : bound.toExponential(0)}`;
}

/** One line for the log: each oracle's worst error beside its bound, then ok or FAILED. */
export function gradcheckSummary(check: GradientCheck): string {
  const verdict = gradientBoundViolations(check).length === 0 ? 'ok' : 'FAILED';
  const fd = worstAgainst(check.finiteDifference, 'maxRelError', FD_MAX_REL_ERROR);
  const tfjs = worstAgainst(check.tfjs, 'maxRoundingRatio', TFJS_MAX_ROUNDING_RATIO);
  return `gradcheck: finite differences ${fd}; TF.js ${tfjs}; ${verdict}`;
}
