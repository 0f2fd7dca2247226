// Augmentation on the host, where the batches are built: one inverse affine map
// per image (a whole-pixel shift and a rotation about the centre), sampled bilinearly,
// and, when the recipe asks, an elastic distortion before it (Simard, Steinkraus and
// Platt 2003): a random displacement field per image, uniform in [−1, 1] at each pixel,
// smoothed by a Gaussian of σ px (G·U·G, G the Gaussian as a matrix) and scaled by α px.
// The target pixel (x, y) reads the affine-augmented image at (x + Δx, y + Δy): one
// bilinear sample does both. The smoothing is the costly part: training does it on the
// backend (tfjs/elastic.ts), with this file's host version as its oracle.
//
// N = images, D = 784, S = 28 (image side).

import { deriveSeed, mulberry32 } from '../../reference/random.js';
import { D, IMAGE_SIDE } from '../../reference/shapes.js';
import type { AugmentSpec } from './variants.js';

const AUGMENT_STREAM = 0x617567; // keeps augmentation draws apart from the shuffle streams (0..epochs−1)

/** The augmentation random stream of one epoch. */
export function augmentRandom(seed: number, epoch: number): () => number {
  return mulberry32(deriveSeed(seed, AUGMENT_STREAM + epoch));
}

/**
 * Shifts every image of `images` (N, D) by whole pixels and rotates it about
 * its centre, each by its own draw from `random`; pixels from outside are 0.
 * With spec.elastic, the batch's noise is drawn first (elasticNoise), smoothed by
 * `smooth` (on the host unless the caller passes the backend's), and scaled by α.
 * Writes into `out` (N, D) and returns it.
 */
export function augmentImages(
  images: Float32Array,
  count: number,
  spec: AugmentSpec,
  random: () => number,
  out: Float32Array = new Float32Array(count * D),
  smooth: (noise: Float32Array, g: Float32Array) => Float32Array = smoothFieldsOnHost,
): Float32Array {
  const S = IMAGE_SIDE;
  const centre = (S - 1) / 2; // pixel centres run 0..S−1
  const maxAngle = (spec.maxRotationDegrees * Math.PI) / 180;
  const alpha = spec.elastic?.alpha ?? 0;
  const fields = spec.elastic ? smooth(elasticNoise(count, random), gaussianMatrix(spec.elastic.sigma)) : null; // (N, 2, S, S)
  for (let n = 0; n < count; n++) {
    const shiftX = Math.floor(random() * (2 * spec.maxShift + 1)) - spec.maxShift;
    const shiftY = Math.floor(random() * (2 * spec.maxShift + 1)) - spec.maxShift;
    const angle = (2 * random() - 1) * maxAngle;
    const cos = Math.cos(angle);
    const sin = Math.sin(angle);
    const source = images.subarray(n * D, (n + 1) * D); // (S, S)
    const target = out.subarray(n * D, (n + 1) * D); // (S, S)
    for (let y = 0; y < S; y++) {
      for (let x = 0; x < S; x++) {
        // Displace, then undo the shift, then the rotation, to find where this pixel comes from.
        const dx = x + (fields ? alpha * fields[2 * n * D + y * S + x]! : 0) - shiftX - centre;
        const dy = y + (fields ? alpha * fields[(2 * n + 1) * D + y * S + x]! : 0) - shiftY - centre;
        const sx = cos * dx + sin * dy + centre;
        const sy = -sin * dx + cos * dy + centre;
        target[y * S + x] = bilinear(source, sx, sy);
      }
    }
  }
  return out;
}

/** The Gaussian of σ px as an (S, S) matrix, G[i][j] = g(i − j), truncated at 3σ and normalised: G·U·G smooths a field U, zero outside the image. */
export function gaussianMatrix(sigma: number): Float32Array {
  const known = GAUSSIANS.get(sigma);
  if (known) return known;
  const S = IMAGE_SIDE;
  const radius = Math.ceil(3 * sigma);
  const taps = Array.from({ length: 2 * radius + 1 }, (_, i) => Math.exp(-((i - radius) ** 2) / (2 * sigma ** 2)));
  const total = taps.reduce((sum, tap) => sum + tap, 0);
  const g = new Float32Array(S * S);
  for (let i = 0; i < S; i++)
    for (let j = Math.max(0, i - radius); j <= Math.min(S - 1, i + radius); j++) g[i * S + j] = taps[j - i + radius]! / total;
  GAUSSIANS.set(sigma, g);
  return g;
}
const GAUSSIANS = new Map<number, Float32Array>(); // made once per σ, and the same array each batch (the backend keeps it uploaded)

/** Uniform [−1, 1] noise for `count` images' displacement fields, (count, 2, S, S): each image's Δx, then its Δy. */
export function elasticNoise(count: number, random: () => number): Float32Array {
  const noise = new Float32Array(count * 2 * D);
  for (let i = 0; i < noise.length; i++) noise[i] = 2 * random() - 1;
  return noise;
}

/** Smooths each (S, S) field of `noise` in place: G·U·G, in float64. The readable oracle of the backend's version (tfjs/elastic.ts). */
export function smoothFieldsOnHost(noise: Float32Array, g: Float32Array): Float32Array {
  const S = IMAGE_SIDE;
  const half = new Float64Array(D);
  for (let f = 0; f < noise.length / D; f++) {
    const u = noise.subarray(f * D, (f + 1) * D);
    for (let y = 0; y < S; y++) {
      for (let x = 0; x < S; x++) {
        let sum = 0; // (U·G)[y][x]
        for (let k = 0; k < S; k++) sum += u[y * S + k]! * g[k * S + x]!;
        half[y * S + x] = sum;
      }
    }
    for (let y = 0; y < S; y++) {
      for (let x = 0; x < S; x++) {
        let sum = 0; // (G·U·G)[y][x]
        for (let k = 0; k < S; k++) sum += g[y * S + k]! * half[k * S + x]!;
        u[y * S + x] = sum;
      }
    }
  }
  return noise;
}

function bilinear(image: Float32Array, x: number, y: number): number {
  const S = IMAGE_SIDE;
  const x0 = Math.floor(x);
  const y0 = Math.floor(y);
  if (x0 < -1 || y0 < -1 || x0 >= S || y0 >= S) return 0;
  const fx = x - x0;
  const fy = y - y0;
  const left = x0 >= 0;
  const right = x0 + 1 < S;
  let top = 0;
  let bottom = 0;
  if (y0 >= 0) top = (left ? (1 - fx) * image[y0 * S + x0]! : 0) + (right ? fx * image[y0 * S + x0 + 1]! : 0);
  if (y0 + 1 < S) bottom = (left ? (1 - fx) * image[(y0 + 1) * S + x0]! : 0) + (right ? fx * image[(y0 + 1) * S + x0 + 1]! : 0);
  return (1 - fy) * top + fy * bottom;
}
