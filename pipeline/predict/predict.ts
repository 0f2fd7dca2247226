// Reading your own digits: an image file becomes the 28×28 input MNIST itself
// would have made of it, and the trained model names its top three digits.
//
//   file ─► decode (node-canvas) ─► grayscale ─► invert if dark on light ─► crop to the ink
//        ─► thicken thin pen lines ─► fit 20×20, aspect kept ─► centre of mass to the centre of 28×28 ─► model
//
// MNIST's recipe: each NIST digit was scaled to fit a 20×20 box keeping its
// aspect ratio, anti-aliased, and centred in 28×28 by its centre of mass.
// The one addition is thickening: a 2-px pen line in a 400-px drawing would
// shrink to a faint 0.1-px trace, far thinner than any pen stroke in MNIST.
//
// S = 28 (field side), BOX = 20, D = 784, K = 10; images are row-major, (H, W).

import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createCanvas, createImageData, loadImage } from 'canvas';
import type * as tf from '@tensorflow/tfjs';
import { D, IMAGE_SIDE, K } from '../../reference/shapes.js';
import { MODEL_JSON, loadModel } from '../tfjs/model-io.js';
import { predictProbabilities } from '../tfjs/model.js';
import type { Implementation } from '../types.js';

export const BOX_SIDE = 20; // MNIST fits each digit in 20×20 …
export const FIELD_SIDE = IMAGE_SIDE; // … and centres it in 28×28
export const TOP_K = 3;

const MIN_CONTRAST = 0.15; // ink must differ from the background by this much of full scale, or the image is empty
const NOISE_FLOOR = 0.1; // normalised ink below this is paper grain or JPEG noise, not ink
const WORK_SIDE = 4 * BOX_SIDE; // stroke width is measured and fixed at 4× the final size
const BORDER_FRACTION = 0.02; // the background is judged from this outer ring of the image

// Stroke width as a fraction of the digit's longer side, measured with strokeWidth().
// Over MNIST's 10,000 test digits: 0.1st percentile 0.059, 1st 0.074, median 0.137.
export const MIN_STROKE_FRACTION = 0.06; // thinner than this is thickened …
export const TARGET_STROKE_FRACTION = 0.12; // … to this

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const JPEG_SIGNATURE = [0xff, 0xd8, 0xff];

/** A problem with one input file: missing, not an image, or without ink. */
export class PredictError extends Error {
  override name = 'PredictError';
}

/** There is no usable trained model to predict with. */
export class ModelError extends Error {
  override name = 'ModelError';
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

export type FileResult =
  | { file: string; ok: true; guesses: Guess[]; inputImage?: string } // inputImage: the --show-input PNG
  | { file: string; ok: false; error: string };

// ---------------------------------------------------------------------------
// Decoding.

function startsWith(bytes: Uint8Array, signature: readonly number[]): boolean {
  return bytes.length >= signature.length && signature.every((byte, i) => bytes[i] === byte);
}

/** Rec. 601 luma, composited over white so transparent paper reads as paper. */
export function grayscale(rgba: Uint8ClampedArray, width: number, height: number): GrayImage {
  const pixels = new Float32Array(width * height); // (H, W)
  for (let p = 0; p < width * height; p++) {
    const alpha = rgba[4 * p + 3]! / 255;
    const luma = (0.299 * rgba[4 * p]! + 0.587 * rgba[4 * p + 1]! + 0.114 * rgba[4 * p + 2]!) / 255;
    pixels[p] = alpha * luma + (1 - alpha);
  }
  return { pixels, width, height };
}

/** Reads a PNG or JPEG file; every failure is a PredictError naming what was wrong. */
export async function decodeImage(file: string): Promise<GrayImage> {
  if (!existsSync(file)) throw new PredictError('no such file');
  if (statSync(file).isDirectory()) throw new PredictError('is a folder, expected a PNG or JPEG file');
  const bytes = readFileSync(file);
  if (bytes.length === 0) throw new PredictError('empty file (0 bytes), expected a PNG or JPEG image');
  const kind = startsWith(bytes, PNG_SIGNATURE) ? 'PNG' : startsWith(bytes, JPEG_SIGNATURE) ? 'JPEG' : null;
  if (!kind) {
    const head = [...bytes.subarray(0, 4)].map((byte) => byte.toString(16).padStart(2, '0')).join(' ');
    throw new PredictError(`not a PNG or JPEG image (it starts with bytes ${head})`);
  }
  let image;
  try {
    image = await loadImage(bytes);
  } catch (error) {
    throw new PredictError(`could not decode it as ${kind} (${(error as Error).message})`);
  }
  if (image.width === 0 || image.height === 0) throw new PredictError(`the ${kind} is ${image.width}×${image.height} pixels`);
  const canvas = createCanvas(image.width, image.height);
  const context = canvas.getContext('2d');
  context.drawImage(image, 0, 0);
  return grayscale(context.getImageData(0, 0, image.width, image.height).data, image.width, image.height);
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
export function resample(source: Float32Array, sw: number, sh: number, tw: number, th: number): Float32Array {
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
    throw new PredictError(`no ink: the image is a single tone (${image.width}×${image.height}, contrast ${(peak - background).toFixed(2)})`);
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

// ---------------------------------------------------------------------------
// Prediction.

/** The `k` most probable digits, most probable first. */
export function topGuesses(probabilities: ArrayLike<number>, k = TOP_K): Guess[] {
  return Array.from(probabilities, (probability, digit) => ({ digit, probability }))
    .sort((a, b) => b.probability - a.probability || a.digit - b.digit)
    .slice(0, k);
}

/** A 28×28 grayscale PNG of a (D) input, white ink on black as the network sees it. */
export function inputPng(input: Float32Array): Uint8Array {
  const rgba = new Uint8ClampedArray(D * 4);
  for (let p = 0; p < D; p++) {
    const level = Math.round(input[p]! * 255);
    rgba.set([level, level, level, 255], p * 4);
  }
  const canvas = createCanvas(FIELD_SIDE, FIELD_SIDE);
  canvas.getContext('2d').putImageData(createImageData(rgba, FIELD_SIDE, FIELD_SIDE), 0, 0);
  return new Uint8Array(canvas.toBuffer('image/png'));
}

/** The folder a trained model is saved in, under the report folder `out`. */
export function modelFolder(out: string, implementation: Implementation): string {
  return path.join(out, 'model', implementation);
}

/** Loads <out>/model/<implementation>; a missing model says to run the pipeline first. */
export async function loadTrainedModel(out: string, implementation: Implementation): Promise<tf.LayersModel> {
  const folder = modelFolder(out, implementation);
  if (!existsSync(path.join(folder, MODEL_JSON))) {
    const command = `npm run pipeline${out === 'reports' ? '' : ` -- --out ${out}`}`;
    throw new ModelError(
      `no trained ${implementation} model: ${path.join(folder, MODEL_JSON)} does not exist. ` +
        `Run the pipeline first (${command})${implementation === 'reference' ? ', without --no-reference' : ''}.`,
    );
  }
  let model: tf.LayersModel;
  try {
    model = await loadModel(folder);
  } catch (error) {
    throw new ModelError(`${folder}: could not load the model (${(error as Error).message}); rerun the pipeline to write it again`);
  }
  const inputShape = model.inputs[0]?.shape;
  const outputShape = model.outputs[0]?.shape;
  if (inputShape?.at(-1) !== D || outputShape?.at(-1) !== K) {
    model.dispose();
    throw new ModelError(`${folder}: expected a model from ${D} inputs to ${K} digits, found [${inputShape}] → [${outputShape}]`);
  }
  return model;
}

/** A file name in `folder` that no earlier input has taken. */
function uniqueName(folder: string, file: string, taken: Set<string>): string {
  const stem = path.basename(file, path.extname(file)) || 'input';
  let name = `${stem}.png`;
  for (let n = 2; taken.has(name); n++) name = `${stem}-${n}.png`;
  taken.add(name);
  return path.join(folder, name);
}

/**
 * Prepares and classifies every file. A file that fails gets its error and the
 * others go on. With `showInput`, the 28×28 image each file became is written there.
 */
export async function predictFiles(files: readonly string[], model: tf.LayersModel, options: { showInput?: string } = {}): Promise<FileResult[]> {
  const results: FileResult[] = [];
  const prepared: { slot: number; input: Float32Array }[] = [];
  const taken = new Set<string>();
  if (options.showInput) mkdirSync(options.showInput, { recursive: true });
  for (const file of files) {
    try {
      const { input } = prepareDigit(await decodeImage(file));
      let inputImage: string | undefined;
      if (options.showInput) {
        inputImage = uniqueName(options.showInput, file, taken);
        writeFileSync(inputImage, inputPng(input));
      }
      prepared.push({ slot: results.length, input });
      results.push({ file, ok: true, guesses: [], ...(inputImage ? { inputImage } : {}) });
    } catch (error) {
      if (!(error instanceof PredictError)) throw error;
      results.push({ file, ok: false, error: error.message });
    }
  }
  const batch = new Float32Array(prepared.length * D); // (N, D)
  prepared.forEach(({ input }, n) => batch.set(input, n * D));
  const probabilities = predictProbabilities(model, batch, prepared.length); // (N, K)
  prepared.forEach(({ slot }, n) => {
    const result = results[slot]!;
    if (result.ok) result.guesses = topGuesses(probabilities.subarray(n * K, (n + 1) * K));
  });
  return results;
}

/** One line per file: the guesses, or the error. */
export function formatResult(result: FileResult): string {
  if (!result.ok) return `${result.file}: error: ${result.error}`;
  const guesses = result.guesses.map((guess) => `${guess.digit} (${(guess.probability * 100).toFixed(1)}%)`).join(', ');
  return `${result.file}: ${guesses}${result.inputImage ? `  [input: ${result.inputImage}]` : ''}`;
}
