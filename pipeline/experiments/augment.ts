// Augmentation on the host, where the batches are built: one inverse affine map
// per image (a whole-pixel shift and a rotation about the centre), sampled bilinearly.
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
 * Writes into `out` (N, D) and returns it.
 */
export function augmentImages(
  images: Float32Array,
  count: number,
  spec: AugmentSpec,
  random: () => number,
  out: Float32Array = new Float32Array(count * D),
): Float32Array {
  const S = IMAGE_SIDE;
  const centre = (S - 1) / 2; // pixel centres run 0..S−1
  const maxAngle = (spec.maxRotationDegrees * Math.PI) / 180;
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
        // Undo the shift, then the rotation, to find where this pixel comes from.
        const dx = x - shiftX - centre;
        const dy = y - shiftY - centre;
        const sx = cos * dx + sin * dy + centre;
        const sy = -sin * dx + cos * dy + centre;
        target[y * S + x] = bilinear(source, sx, sy);
      }
    }
  }
  return out;
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
