// Oracle 1 for the hand-written gradients: central finite differences in float64, run on
// the readable core (reference/network.ts). For a sampled parameter θᵢ,
// n = (L(θ + h·eᵢ) − L(θ − h·eᵢ)) / 2h  is compared with the analytic a = ∂L/∂θᵢ from the core's backward(). B = batch, D = 784, H1 = 128, H2 = 64, K = 10.
//
// Evaluating the difference. Subtracting two losses of ~2.3 computed separately
// leaves rounding of ε·L ≈ 5e-16, i.e. ~2e-11 on n at h = 1e-5, which is a relative
// error near 1e-6 for a gradient of 1e-5 — and small gradients are common (a faint
// edge pixel, a unit active for one image). So lossDifference computes the same
// L(θ+h) − L(θ−h) without the cancellation: with one entry moved, every layer's two
// values are v̄ ± δ, and δ goes through the layers exactly (linear maps carry δ
// linearly, a ReLU passes or blocks it whole, and the softmax cross-entropy's
// difference is a log1p of expm1s). Rounding is then relative to δ, not to L.
// lossDifferenceByForward, the two plain forward passes, stays beside it and the
// tests require the two to agree within the plain one's rounding.
//
// Relative error  |a − n| / max(|a| + |n|, floor):  symmetric in a and n, 0 when both
// are 0, and the floor keeps a parameter whose gradient vanishes (both sides ~0)
// from dividing rounding noise by ~0. The floor is 1e-8, far below the gradients
// checked (~1e-2 .. 1e-6), so it does not hide an error.
//
// ReLU kinks. L is only piecewise smooth: if moving θᵢ by ±h carries a hidden
// pre-activation z across 0, the difference quotient straddles a kink and measures
// neither side's slope. Such samples are skipped and counted. The test is exact:
// while no earlier unit flips, each z is affine in θᵢ, moving by δ = |∂z/∂θᵢ|·h, so
// z lies within reach of 0 exactly when z̄ − δ, z̄ and z̄ + δ do not share a sign.

import { backward, forward, matmulNaive, type Activations } from './network.js';
import { deriveSeed, mulberry32 } from './random.js';
import { D, H1, H2, K, PARAM_NAMES, cloneParams, paramSize, type FloatArray, type ParamName, type Params } from './shapes.js';

/** The floor of the relative error's denominator. */
const REL_ERROR_FLOOR = 1e-8;
/** The default step h: small enough that truncation (~h²) is negligible, large enough that rounding (~ε·L/h) stays ~1e-11. */
export const FD_STEP = 1e-5;
/** The default number of parameters checked per tensor (all of them when a tensor is smaller). */
export const FD_SAMPLES = 50;

/** |a − n| / max(|a| + |n|, floor). */
export function relativeError(analytic: number, numeric: number, floor = REL_ERROR_FLOOR): number {
  return Math.abs(analytic - numeric) / Math.max(Math.abs(analytic) + Math.abs(numeric), floor);
}

/** The analytic gradient under test: ∂L/∂θ for the batch. Replaceable so a test can plant a bug. */
export type AnalyticGradient = (params: Params<Float64Array>, x: Float64Array, oneHot: Float64Array, batch: number) => Params<Float64Array>;

/** The core's own backward pass. */
export const referenceGradient: AnalyticGradient = (params, x, oneHot, batch) =>
  backward(params, forward(params, x, oneHot, batch), oneHot, batch);

export interface FiniteDifferenceOptions {
  samples?: number; // parameters per tensor (default FD_SAMPLES)
  step?: number; // h (default FD_STEP)
  seed?: number; // picks the sampled parameters (default 0)
  analyticGradient?: AnalyticGradient; // default referenceGradient
}

/** One tensor's agreement. */
export interface TensorCheck {
  max_abs_error: number;
  max_rel_error: number;
  checked: number; // samples compared
  skipped: number; // samples dropped because ±h crossed a ReLU kink
  worst: { index: number; analytic: number; numeric: number } | null; // the sample with the largest relative error
}

export interface FiniteDifferenceCheck {
  tensors: Record<ParamName, TensorCheck>;
  samples: number; // requested samples per tensor
  skipped: number; // over all tensors
  step: number;
}

/** Scratch for lossDifference: the half-differences δ = (v(θ+h) − v(θ−h)) / 2 of each layer. */
interface Deltas {
  z1: Float64Array; // (B, H1)
  z2: Float64Array; // (B, H2)
  logits: Float64Array; // (B, K)
}

function createDeltas(batch: number): Deltas {
  return { z1: new Float64Array(batch * H1), z2: new Float64Array(batch * H2), logits: new Float64Array(batch * K) };
}

/**
 * Passes δz through a ReLU in place (δa = δz where z̄ > 0, else 0) and reports whether
 * some z̄ ± δz changes sign, i.e. ±h reaches a kink.
 */
function reluDelta(delta: Float64Array, z: Float64Array, n: number): boolean {
  for (let i = 0; i < n; i++) {
    const dz = delta[i]!;
    const zi = z[i]!;
    const on = zi > 0;
    if (dz !== 0 && (zi + dz > 0 !== on || zi - dz > 0 !== on)) return true;
    if (!on) delta[i] = 0;
  }
  return false;
}

/**
 * δz (B, out) += the direct effect of moving one entry of this layer by step:
 * step·input[b, i] in column j for w[i, j] (in, out), or step in column j for b[j].
 */
function addDirectDelta(
  dz: Float64Array,
  weight: boolean,
  index: number,
  step: number,
  input: Float64Array,
  batch: number,
  inDim: number,
  outDim: number,
): void {
  const i = weight ? Math.floor(index / outDim) : -1;
  const j = index % outDim;
  for (let b = 0; b < batch; b++) dz[b * outDim + j]! += i < 0 ? step : step * input[b * inDim + i]!;
}

/** One central difference: entry `index` of tensor `name` of θ moved by ±step, on x (B, D) with labels oneHot (B, K). */
export interface Perturbation {
  theta: Params<Float64Array>;
  name: ParamName;
  index: number;
  step: number; // h
  x: Float64Array; // (B, D)
  oneHot: Float64Array; // (B, K)
  batch: number; // B
}

/**
 * L(θ + h·eᵢ) − L(θ − h·eᵢ) for entry `index` of tensor `name`, or null when ±h reaches
 * a ReLU kink. act is forward(θ) on this batch.
 */
export function lossDifference(
  { theta, name, index, step, x, oneHot, batch }: Perturbation,
  act: Activations<Float64Array>,
  delta: Deltas = createDeltas(batch),
): number | null {
  const dz1 = delta.z1;
  const dz2 = delta.z2;
  const dLogits = delta.logits;
  // Layer 1: z1 = x·w1 + b1 moves only in column j.
  dz1.fill(0, 0, batch * H1);
  if (name === 'w1' || name === 'b1') addDirectDelta(dz1, name === 'w1', index, step, x, batch, D, H1);
  if (reluDelta(dz1, act.z1, batch * H1)) return null;
  // Layer 2: δz2 = δa1·w2, plus a1·δw2 or δb2 when the entry is in this layer.
  matmulNaive(dz2, dz1, theta.w2, batch, H1, H2);
  if (name === 'w2' || name === 'b2') addDirectDelta(dz2, name === 'w2', index, step, act.a1, batch, H1, H2);
  if (reluDelta(dz2, act.z2, batch * H2)) return null;
  // Layer 3: δlogits = δa2·w3, plus a2·δw3 or δb3.
  matmulNaive(dLogits, dz2, theta.w3, batch, H2, K);
  if (name === 'w3' || name === 'b3') addDirectDelta(dLogits, name === 'w3', index, step, act.a2, batch, H2, K);
  // Loss: per image ℓ = (Σy)·logsumexp(z) − y·z, and with q = softmax(z̄),
  // logsumexp(z̄ ± δ) = logsumexp(z̄) + log1p(Σ q·expm1(±δ)).
  let total = 0;
  for (let b = 0; b < batch; b++) {
    const row = b * K;
    let up = 0;
    let down = 0;
    let labelMass = 0;
    let labelShift = 0;
    for (let k = 0; k < K; k++) {
      const q = act.probs[row + k]!;
      const d = dLogits[row + k]!;
      const y = oneHot[row + k]!;
      up += q * Math.expm1(d);
      down += q * Math.expm1(-d);
      labelMass += y;
      labelShift += y * d;
    }
    total += labelMass * (Math.log1p(up) - Math.log1p(down)) - 2 * labelShift;
  }
  return total / batch;
}

/** The same difference the plain way: two forward passes and a subtraction (θ is restored). */
export function lossDifferenceByForward({ theta, name, index, step, x, oneHot, batch }: Perturbation): number {
  const values = theta[name];
  const original = values[index]!;
  values[index] = original + step;
  const lossPlus = forward(theta, x, oneHot, batch).loss;
  values[index] = original - step;
  const lossMinus = forward(theta, x, oneHot, batch).loss;
  values[index] = original;
  return lossPlus - lossMinus;
}

/**
 * The indices of one tensor to check, without repeats. For w1 they are drawn from
 * the rows of pixels lit in at least one batch image: a pixel dark in the whole batch
 * leaves the loss independent of its row, whose gradient is then 0 on both sides
 * and would test nothing.
 */
function sampleIndices(name: ParamName, count: number, random: () => number, litPixels: number[]): number[] {
  const candidates = name === 'w1' ? litPixels.length * H1 : paramSize(name);
  const chosen = new Set<number>();
  const wanted = Math.min(count, candidates);
  while (chosen.size < wanted) chosen.add(Math.floor(random() * candidates));
  return [...chosen].map((c) => (name === 'w1' ? litPixels[Math.floor(c / H1)]! * H1 + (c % H1) : c));
}

/**
 * Checks the analytic gradient of the mean cross-entropy on x (B, D), oneHot (B, K)
 * against central finite differences, for `samples` parameters of every tensor.
 */
export function finiteDifferenceCheck(
  params: Params<Float64Array>,
  x: Float64Array,
  oneHot: Float64Array,
  batch: number,
  options: FiniteDifferenceOptions = {},
): FiniteDifferenceCheck {
  const samples = options.samples ?? FD_SAMPLES;
  const step = options.step ?? FD_STEP;
  const seed = options.seed ?? 0;
  const analyticGradient = options.analyticGradient ?? referenceGradient;
  if (x.length < batch * D || oneHot.length < batch * K) {
    throw new Error(
      `finiteDifferenceCheck: expected x (${batch}, ${D}) and oneHot (${batch}, ${K}), found ${x.length} and ${oneHot.length} values`,
    );
  }
  const theta = cloneParams(params); // the hook may not touch the caller's weights
  const analytic = cloneParams(analyticGradient(theta, x, oneHot, batch));
  const act = forward(theta, x, oneHot, batch); // lossDifference reads the activations at θ
  const delta = createDeltas(batch);

  const litPixels: number[] = [];
  for (let d = 0; d < D; d++) {
    for (let b = 0; b < batch; b++) {
      if (x[b * D + d] !== 0) {
        litPixels.push(d);
        break;
      }
    }
  }

  const tensors = {} as Record<ParamName, TensorCheck>;
  let skippedTotal = 0;
  PARAM_NAMES.forEach((name, tensorIndex) => {
    const random = mulberry32(deriveSeed(seed, tensorIndex));
    const result: TensorCheck = { max_abs_error: 0, max_rel_error: 0, checked: 0, skipped: 0, worst: null };
    for (const index of sampleIndices(name, samples, random, litPixels)) {
      const difference = lossDifference({ theta, name, index, step, x, oneHot, batch }, act, delta);
      if (difference === null) {
        result.skipped++;
        continue;
      }
      const numeric = difference / (2 * step);
      const a = analytic[name][index]!;
      const rel = relativeError(a, numeric);
      // A NaN is the worst there is, and Math.max keeps it once it appears.
      const worse = result.worst === null || (Number.isNaN(rel) ? !Number.isNaN(result.max_rel_error) : rel > result.max_rel_error);
      if (worse) result.worst = { index, analytic: a, numeric };
      result.max_abs_error = Math.max(result.max_abs_error, Math.abs(a - numeric));
      result.max_rel_error = Math.max(result.max_rel_error, rel);
      result.checked++;
    }
    skippedTotal += result.skipped;
    tensors[name] = result;
  });
  return { tensors, samples, skipped: skippedTotal, step };
}

/** A float64 copy of any params. */
export function toFloat64(params: Params<FloatArray>): Params<Float64Array> {
  return {
    w1: Float64Array.from(params.w1),
    b1: Float64Array.from(params.b1),
    w2: Float64Array.from(params.w2),
    b2: Float64Array.from(params.b2),
    w3: Float64Array.from(params.w3),
    b3: Float64Array.from(params.b3),
  };
}
