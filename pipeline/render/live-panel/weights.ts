// The live panel's weights, inline in index.html: half precision, to keep the page under its 3 MB
// budget with three models (float32 would need 1.3 MB of base64 for them; float16 needs 0.4–0.6 MB).
// The page runs the forward pass in float32 on the half-precision weights.
//
//   Params ─► float16 bits ─► byte planes (all high bytes, then all low bytes) ─► deflate ─► base64
//
// The byte planes let deflate find the repeats in the sign/exponent bytes. Every model after the first is stored
// XORed with the first's planes: the reference, trained in lockstep with TF.js, then is mostly zero bytes.
// Pure: Node packs, the browser unpacks.

import { PARAM_NAMES, paramSize, type Params } from '../../../reference/shapes.js';

const float32 = new Float32Array(1);
const float32Bits = new Uint32Array(float32.buffer);

/** IEEE 754 half-precision bits of `value`, rounded to nearest, ties to even. */
export function toFloat16Bits(value: number): number {
  float32[0] = value;
  const bits = float32Bits[0]!;
  const sign = (bits >>> 16) & 0x8000;
  const exponent = ((bits >>> 23) & 0xff) - 127 + 15; // rebiased for 5 exponent bits
  let mantissa = bits & 0x7fffff;
  if (((bits >>> 23) & 0xff) === 0xff) return sign | 0x7c00 | (mantissa ? 0x200 : 0); // Inf, NaN
  if (exponent >= 0x1f) return sign | 0x7c00; // too large: Inf
  let shift = 13; // mantissa bits dropped
  let half = (exponent << 10) | (mantissa >>> 13);
  if (exponent <= 0) {
    if (exponent < -10) return sign; // below half the smallest subnormal: ±0
    mantissa |= 0x800000; // the implicit leading 1 becomes explicit in a subnormal
    shift = 14 - exponent;
    half = mantissa >>> shift;
  }
  const rest = mantissa & ((1 << shift) - 1);
  const halfway = 1 << (shift - 1);
  if (rest > halfway || (rest === halfway && (half & 1) === 1)) half++; // a carry rolls into the exponent, as it should
  return sign | half;
}

/** The number whose half-precision bits are `bits`. */
export function fromFloat16Bits(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >>> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 0x1f) return mantissa ? NaN : sign * Infinity;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

const TOTAL = PARAM_NAMES.reduce((sum, name) => sum + paramSize(name), 0);

/** w1 b1 w2 b2 w3 b3 as float16 byte planes: (2, TOTAL), high bytes first. Not yet deflated. */
export function packParams(params: Params): Uint8Array {
  const planes = new Uint8Array(2 * TOTAL); // (2, TOTAL)
  let offset = 0;
  for (const name of PARAM_NAMES) {
    const values = params[name];
    if (values.length !== paramSize(name)) throw new Error(`packParams: ${name} has ${values.length} values, expected ${paramSize(name)}`);
    for (let i = 0; i < values.length; i++, offset++) {
      const bits = toFloat16Bits(values[i]!);
      planes[offset] = bits >>> 8;
      planes[TOTAL + offset] = bits & 0xff;
    }
  }
  return planes;
}

/** a XOR b, byte by byte; its own inverse, so it both stores and restores a model relative to another. */
export function xorBytes(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length !== b.length) throw new Error(`xorBytes: expected two arrays of one length, found ${a.length} and ${b.length}`);
  return a.map((byte, i) => byte ^ b[i]!);
}

/** The inverse of packParams: float32 params holding the half-precision values. */
export function unpackParams(planes: Uint8Array): Params {
  if (planes.length !== 2 * TOTAL)
    throw new Error(`unpackParams: expected ${2 * TOTAL} bytes (${TOTAL} float16 weights), found ${planes.length}`);
  const params = {} as Params;
  let offset = 0;
  for (const name of PARAM_NAMES) {
    const values = new Float32Array(paramSize(name));
    for (let i = 0; i < values.length; i++, offset++) values[i] = fromFloat16Bits((planes[offset]! << 8) | planes[TOTAL + offset]!);
    params[name] = values;
  }
  return params;
}

/** The params exactly as the page will hold them: what any comparison with the page should load. */
export function pageParams(params: Params): Params {
  return unpackParams(packParams(params));
}
