// Preparing a picture of one digit the way MNIST was made, on plain arrays.
// Pure on purpose: no Node, no canvas, no TF.js. `npm run predict` (pipeline/predict/classify.ts)
// and the report's live panel (pipeline/render/live-panel/page.ts, bundled for the browser) both
// call prepareRgba, so the CLI and the page see the same 28×28 input for the same pixels.
//
//   RGBA ─► grayscale (alpha composited on the paper that suits it) ─► invert if dark on light
//        ─► crop to the ink ─► thicken thin pen lines ─► fit 20×20, aspect kept ─► centre of mass to the centre of 28×28
//
// MNIST's recipe: each NIST digit was scaled to fit a 20×20 box keeping its
// aspect ratio, anti-aliased, and centred in 28×28 by its centre of mass.
// The one addition is thickening: a 2-px pen line in a 400-px drawing would
// shrink to a faint 0.1-px trace, far thinner than any pen stroke in MNIST.
//
// S = 28 (field side), BOX = 20, D = 784, K = 10; images are row-major, (H, W).

import { D, IMAGE_SIDE } from '../../reference/shapes.js';

export const BOX_SIDE = 20; // MNIST fits each digit in 20×20 …
export const FIELD_SIDE = IMAGE_SIDE; // … and centres it in 28×28
export const TOP_K = 3;

const MIN_CONTRAST = 0.15; // ink must differ from the background by this much of full scale, or the image is empty
const NOISE_FLOOR = 0.1; // normalised ink below this is paper grain or JPEG noise, not ink
const WORK_SIDE = 4 * BOX_SIDE; // stroke width is measured and fixed at 4× the final size
const BORDER_FRACTION = 0.02; // the background is judged from this outer ring of the image

// Stroke width as a fraction of the digit's longer side, measured with strokeWidth().
// Over MNIST's 10,000 test digits: 0.1st percentile 0.059, 1st 0.074, median 0.137.
const MIN_STROKE_FRACTION = 0.06; // thinner than this is thickened …
const TARGET_STROKE_FRACTION = 0.12; // … to this

/** A problem with one input picture: not decodable, or without ink. */
export class PredictError extends Error {
  override name = 'PredictError';
}

/** Brightness in [0, 1], 1 = white. */
export interface GrayImage {
  pixels: Float32Array; // (H, W)
  width: number;
  height: number;
}

export interface PreparedDigit {
  input: Float32Array; // (D) what the network sees: white ink on black, in [0, 1]
  inverted: boolean; // the source was dark ink on a light background
  box: { x: number; y: number; width: number; height: number }; // the ink's bounding box in the source
  thickenedBy: number; // dilation radius in px at the 80-px working size; 0 = the strokes were thick enough
}

export interface Guess {
  digit: number;
  probability: number;
}

// ---------------------------------------------------------------------------
// Grayscale.

/** Rec. 601 luma of an RGBA (H, W, 4) image composited over `paper` (0 = black, 1 = white). */
function compositedLuma(rgba: ArrayLike<number>, width: number, height: number, paper: number): GrayImage {
  const pixels = new Float32Array(width * height); // (H, W)
  for (let p = 0; p < width * height; p++) {
    const alpha = rgba[4 * p + 3]! / 255;
    const luma = (0.299 * rgba[4 * p]! + 0.587 * rgba[4 * p + 1]! + 0.114 * rgba[4 * p + 2]!) / 255;
    pixels[p] = alpha * luma + (1 - alpha) * paper;
  }
  return { pixels, width, height };
}

/** Fraction of pixels far (> 0.5) from the border's median tone: how much of the picture reads as ink. */
function inkFraction(image: GrayImage): number {
  const background = median(borderPixels(image, Math.max(1, Math.round(BORDER_FRACTION * Math.min(image.width, image.height)))));
  let ink = 0;
  for (const value of image.pixels) if (Math.abs(value - background) > 0.5) ink++;
  return ink / image.pixels.length;
}

/**
 * Brightness of an RGBA image (H, W, 4), 1 = white. Opaque pictures are read as
 * they are. Transparent areas are paper of whichever tone makes the ink a
 * visible minority: white strokes on transparency go on black, black strokes on
 * white, and a sheet of paper with transparent margins keeps its own paper tone.
 */
export function grayscale(rgba: ArrayLike<number>, width: number, height: number): GrayImage {
  let transparent = false;
  for (let p = 0; p < width * height && !transparent; p++) transparent = rgba[4 * p + 3]! < 255;
  const onWhite = compositedLuma(rgba, width, height, 1);
  if (!transparent) return onWhite;
  const onBlack = compositedLuma(rgba, width, height, 0);
  const whiteInk = inkFraction(onWhite);
  const blackInk = inkFraction(onBlack);
  if (whiteInk === 0) return onBlack; // on white the ink vanished (white strokes)
  if (blackInk === 0) return onWhite;
  return blackInk < whiteInk ? onBlack : onWhite;
}

// ---------------------------------------------------------------------------
// Preparation, the way MNIST was made.

function median(values: Float32Array): number {
  const sorted = Float32Array.from(values).sort();
  return sorted[Math.floor(sorted.length / 2)]!;
}

/** The outer ring of the image, `thickness` pixels wide. */
function borderPixels(image: GrayImage, thickness: number): Float32Array {
  const { pixels, width, height } = image;
  const ring: number[] = [];
  for (let y = 0; y < height; y++) {
    const wholeRow = y < thickness || y >= height - thickness;
    for (let x = 0; x < width; x++) {
      if (!wholeRow && x === thickness) x = Math.max(thickness, width - thickness); // skip the inside
      ring.push(pixels[y * width + x]!);
    }
  }
  return Float32Array.from(ring);
}

/**
 * One axis of a separable resampler: for each target pixel, the source pixels
 * it draws from and their weights. Shrinking averages the covered area
 * (anti-aliasing, as MNIST did); enlarging interpolates linearly.
 */
function axisWeights(sourceLength: number, targetLength: number): { index: number; weight: number }[][] {
  const ratio = sourceLength / targetLength; // source pixels per target pixel
  const taps: { index: number; weight: number }[][] = [];
  for (let t = 0; t < targetLength; t++) {
    const row: { index: number; weight: number }[] = [];
    if (ratio > 1) {
      const start = t * ratio;
      const end = start + ratio;
      for (let s = Math.floor(start); s < Math.min(Math.ceil(end), sourceLength); s++) {
        const overlap = Math.min(end, s + 1) - Math.max(start, s);
        if (overlap > 0) row.push({ index: s, weight: overlap / ratio });
      }
    } else {
      const centre = Math.min(Math.max((t + 0.5) * ratio - 0.5, 0), sourceLength - 1);
      const left = Math.floor(centre);
      const fraction = centre - left;
      row.push({ index: left, weight: 1 - fraction });
      if (fraction > 0) row.push({ index: left + 1, weight: fraction });
    }
    taps.push(row);
  }
  return taps;
}

/** Resamples a (sh, sw) image to (th, tw): rows first, then columns. */
function resample(source: Float32Array, sw: number, sh: number, tw: number, th: number): Float32Array {
  const across = axisWeights(sw, tw);
  const down = axisWeights(sh, th);
  const wide = new Float32Array(sh * tw); // (sh, tw)
  for (let y = 0; y < sh; y++) {
    for (let x = 0; x < tw; x++) {
      let sum = 0;
      for (const { index, weight } of across[x]!) sum += weight * source[y * sw + index]!;
      wide[y * tw + x] = sum;
    }
  }
  const target = new Float32Array(th * tw); // (th, tw)
  for (let y = 0; y < th; y++) {
    for (const { index, weight } of down[y]!) {
      for (let x = 0; x < tw; x++) target[y * tw + x] += weight * wide[index * tw + x]!;
    }
  }
  return target;
}

/**
 * Mean stroke width in pixels of the ink at or above half the peak: for a
 * stroke of width w and length L the area is about w·L and its edge pixels
 * about 2·L, so w ≈ 2·area / edge pixels.
 */
export function strokeWidth(ink: Float32Array, width: number, height: number): number {
  const peak = ink.reduce((a, b) => Math.max(a, b), 0);
  const on = (x: number, y: number) => x >= 0 && y >= 0 && x < width && y < height && ink[y * width + x]! >= peak / 2;
  let area = 0;
  let edge = 0;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (!on(x, y)) continue;
      area++;
      if (!on(x - 1, y) || !on(x + 1, y) || !on(x, y - 1) || !on(x, y + 1)) edge++;
    }
  }
  return edge === 0 ? 0 : (2 * area) / edge;
}

/** Grey-level dilation by a disc of `radius`: each pixel takes the brightest ink within reach. */
function dilate(ink: Float32Array, width: number, height: number, radius: number): Float32Array {
  const offsets: [number, number][] = [];
  for (let dy = -radius; dy <= radius; dy++) {
    for (let dx = -radius; dx <= radius; dx++) if (dx * dx + dy * dy <= radius * radius + radius) offsets.push([dx, dy]);
  }
  const out = new Float32Array(width * height); // (H, W)
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let brightest = 0;
      for (const [dx, dy] of offsets) {
        const sx = x + dx;
        const sy = y + dy;
        if (sx >= 0 && sy >= 0 && sx < width && sy < height) brightest = Math.max(brightest, ink[sy * width + sx]!);
      }
      out[y * width + x] = brightest;
    }
  }
  return out;
}

/** Scales so the brightest pixel is 1, as in MNIST where stroke centres are full white. */
function normalisePeak(values: Float32Array): Float32Array {
  const peak = values.reduce((a, b) => Math.max(a, b), 0);
  if (peak > 0) for (let i = 0; i < values.length; i++) values[i] = values[i]! / peak;
  return values;
}

/**
 * Turns any grayscale picture of one digit into MNIST's 28×28 format. Throws
 * PredictError when it finds no ink.
 */
export function prepareDigit(image: GrayImage): PreparedDigit {
  const { width, height } = image;
  // 1. Polarity and levels from the border, which is background in any sensible picture of one digit.
  const border = borderPixels(image, Math.max(1, Math.round(BORDER_FRACTION * Math.min(width, height))));
  const inverted = median(border) > 0.5;
  const ink = new Float32Array(width * height); // (H, W) 1 = ink
  for (let p = 0; p < ink.length; p++) ink[p] = inverted ? 1 - image.pixels[p]! : image.pixels[p]!;
  const background = median(inverted ? border.map((value) => 1 - value) : border);
  const peak = ink.reduce((a, b) => Math.max(a, b), 0);
  if (peak - background < MIN_CONTRAST) {
    throw new PredictError(
      `no ink: the image is a single tone (${image.width}×${image.height}, contrast ${(peak - background).toFixed(2)})`,
    );
  }
  let x0 = width;
  let y0 = height;
  let x1 = -1;
  let y1 = -1;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const p = y * width + x;
      const level = Math.min(1, Math.max(0, (ink[p]! - background) / (peak - background)));
      ink[p] = level < NOISE_FLOOR ? 0 : level;
      if (ink[p]! > 0) {
        x0 = Math.min(x0, x);
        x1 = Math.max(x1, x);
        y0 = Math.min(y0, y);
        y1 = Math.max(y1, y);
      }
    }
  }
  if (x1 < 0) throw new PredictError('no ink found above the noise floor');

  // 2. Crop to the ink's bounding box.
  const cropWidth = x1 - x0 + 1;
  const cropHeight = y1 - y0 + 1;
  let digit: Float32Array = new Float32Array(cropWidth * cropHeight); // (cropHeight, cropWidth)
  for (let y = 0; y < cropHeight; y++) digit.set(ink.subarray((y0 + y) * width + x0, (y0 + y) * width + x0 + cropWidth), y * cropWidth);
  let digitWidth = cropWidth;
  let digitHeight = cropHeight;

  // 3. Thicken a thin pen line, measured at 4× the final size.
  const longSide = Math.max(cropWidth, cropHeight);
  const workWidth = Math.max(1, Math.round((cropWidth * WORK_SIDE) / longSide));
  const workHeight = Math.max(1, Math.round((cropHeight * WORK_SIDE) / longSide));
  const work = normalisePeak(resample(digit, cropWidth, cropHeight, workWidth, workHeight)); // (workHeight, workWidth)
  const stroke = strokeWidth(work, workWidth, workHeight);
  let thickenedBy = 0;
  if (stroke < MIN_STROKE_FRACTION * WORK_SIDE) {
    thickenedBy = Math.max(1, Math.round((TARGET_STROKE_FRACTION * WORK_SIDE - stroke) / 2));
    digit = dilate(work, workWidth, workHeight, thickenedBy);
    digitWidth = workWidth;
    digitHeight = workHeight;
  }

  // 4. Fit the longer side to 20 px, keeping the aspect ratio.
  const boxWidth = Math.max(1, Math.round((cropWidth * BOX_SIDE) / longSide));
  const boxHeight = Math.max(1, Math.round((cropHeight * BOX_SIDE) / longSide));
  const boxed = normalisePeak(resample(digit, digitWidth, digitHeight, boxWidth, boxHeight)); // (boxHeight, boxWidth)

  // 5. Put the centre of mass on pixel (14, 14) of the 28×28 field, as MNIST does
  //    (its digits' centres of mass, in pixel indices, all round to 14).
  let mass = 0;
  let sumX = 0;
  let sumY = 0;
  for (let y = 0; y < boxHeight; y++) {
    for (let x = 0; x < boxWidth; x++) {
      const value = boxed[y * boxWidth + x]!;
      mass += value;
      sumX += value * x;
      sumY += value * y;
    }
  }
  const clamp = (offset: number, size: number) => Math.min(Math.max(offset, 0), FIELD_SIDE - size); // never cut ink off
  const left = clamp(Math.round(FIELD_SIDE / 2 - sumX / mass), boxWidth);
  const top = clamp(Math.round(FIELD_SIDE / 2 - sumY / mass), boxHeight);
  const input = new Float32Array(D); // (S, S)
  for (let y = 0; y < boxHeight; y++) input.set(boxed.subarray(y * boxWidth, (y + 1) * boxWidth), (top + y) * FIELD_SIDE + left);
  return { input, inverted, box: { x: x0, y: y0, width: cropWidth, height: cropHeight }, thickenedBy };
}

/** The whole preparation from RGBA (H, W, 4) pixels, as a canvas or a decoded file gives them. */
export function prepareRgba(rgba: ArrayLike<number>, width: number, height: number): PreparedDigit {
  return prepareDigit(grayscale(rgba, width, height));
}

// ---------------------------------------------------------------------------
// Reading the answer.

/** The network's input (FIELD_SIDE², values 0–1) as opaque RGBA, white ink on black as the network sees it. */
export function inputRgba(input: Float32Array): Uint8ClampedArray {
  const rgba = new Uint8ClampedArray(FIELD_SIDE * FIELD_SIDE * 4);
  for (let p = 0; p < FIELD_SIDE * FIELD_SIDE; p++) {
    const level = Math.round(input[p]! * 255);
    rgba.set([level, level, level, 255], p * 4);
  }
  return rgba;
}

/** The `k` most probable digits, most probable first. */
export function topGuesses(probabilities: ArrayLike<number>, k = TOP_K): Guess[] {
  return Array.from(probabilities, (probability, digit) => ({ digit, probability }))
    .sort((a, b) => b.probability - a.probability || a.digit - b.digit)
    .slice(0, k);
}
