// Preparing a picture of one digit the way MNIST was made, on plain arrays.
// Pure on purpose: no Node, no canvas, no TF.js. `npm run predict` (pipeline/predict/classify.ts)
// and the report's live panel (pipeline/render/live-panel/page.ts, bundled for the browser) both
// call prepareRgba, so the CLI and the page see the same 28×28 input for the same pixels.
//
//   RGBA ─► grayscale (alpha composited on the paper that suits it) ─► which way the ink goes
//        ─► the paper's own level: flat as it is, or estimated on coarse copies ─► ink = contrast against it
//        ─► threshold (Otsu, above the grain) ─► the digit's connected components (no specks, page edges or far marks)
//        ─► crop to the ink ─► thicken thin pen lines ─► fit 20×20, aspect kept ─► centre of mass to the centre of 28×28
//
// MNIST's recipe is the last line: each NIST digit was scaled to fit a 20×20 box keeping its
// aspect ratio, anti-aliased, and centred in 28×28 by its centre of mass. The steps before it
// are for photos of paper, where light falls off across the page and shadows cross it, so
// no single level is "paper": the ink is measured against the paper around it, and only the
// digit's own marks are kept. A drawing or a scan has flat paper: its ink is measured against that
// one level, as before, and only specks and far marks are dropped.
// Thickening: a 2-px pen line in a 400-px drawing would shrink to a faint 0.1-px trace, far
// thinner than any pen stroke in MNIST.
//
// S = 28 (field side), BOX = 20, D = 784, K = 10; images are row-major, (H, W); the paper's coarse
// copies are (GH, GW).

import { D, IMAGE_SIDE } from '../../reference/shapes.js';

export const BOX_SIDE = 20; // MNIST fits each digit in 20×20 …
export const FIELD_SIDE = IMAGE_SIDE; // … and centres it in 28×28
export const TOP_K = 3;

const MIN_CONTRAST = 0.15; // ink must differ from the paper by this fraction of the paper's level, or the image is empty
const NOISE_FLOOR = 0.1; // normalised ink below this is paper grain or JPEG noise, not ink
const WORK_SIDE = 4 * BOX_SIDE; // stroke width is measured and fixed at 4× the final size
const BORDER_FRACTION = 0.02; // the background is judged from this outer ring of the image

// The paper, on coarse copies: light and shadows vary slowly, a pen stroke does not.
const FLAT_SPREAD = 0.02; // a border whose median lies this close to its 5th or 95th percentile is flat paper (a drawing, a scan)
const CLOSING_GRID = 64; // the first guess is made on a copy this many cells long …
const CLOSING_FRACTION = 0.05; // … closed over a square of this radius, of the longer side: wider than a stroke of a digit filling the frame
const PAPER_GRID = 128; // the answer, on a copy this many cells long, averages the pixels …
const PAPER_TOLERANCE = 0.1; // … no darker than this fraction below the guess …
const MIN_PAPER_SHARE = 0.5; // … in cells that are at least this much paper; the others are filled from around

// Which marks are the digit. Masses are summed ink levels; distances are fractions of the main mark's longer side.
const STRONG_SIGMAS = 5; // ink seeds stand this many grain deviations above the paper …
const WEAK_SIGMAS = 2; // … and a mark extends through pixels this many above it …
const PHOTO_FLOOR = 0.05; // … or this fraction of the peak in a photo, whose blur spreads a stroke's edge below a drawing's NOISE_FLOOR
const SPECK_FRACTION = 0.03; // marks lighter than this fraction of the main one are specks
const NEAR_FRACTION = 0.15; // marks within this gap of the digit are its parts (a 5's bar, a pencil's broken stroke)
const RIVAL_FRACTION = 0.5; // a separate mark this fraction as heavy as the digit makes the answer doubtful
const LITTLE_FRACTION = 0.04; // a digit shorter than this fraction of the picture's longer side is little ink …
const FAINT_CONTRAST = 0.25; // … and so is one this faint against its paper

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
  flattened: boolean; // the paper was uneven (a photo) and its estimated level was divided out
  lowConfidence: string | null; // why the picture is weak evidence ("little ink", "several separate marks", …); null: it is not
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

// ---------------------------------------------------------------------------
// The paper and the ink on it: the steps photos need.

/** A copy at most `side` cells on its longer side, each cell the mean of the pixels it covers. */
function grid(pixels: Float32Array, width: number, height: number, side: number) {
  const scale = Math.min(1, side / Math.max(width, height));
  const gridWidth = Math.max(1, Math.round(width * scale));
  const gridHeight = Math.max(1, Math.round(height * scale));
  return { cells: resample(pixels, width, height, gridWidth, gridHeight), gridWidth, gridHeight }; // (GH, GW)
}

/** Each value replaced by the max (or min) over the (2·radius + 1)² square around it: rows, then columns. */
function squareFilter(values: Float32Array, width: number, height: number, radius: number, pick: (a: number, b: number) => number) {
  const rows = new Float32Array(values.length); // (H, W)
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let best = values[y * width + x]!;
      for (let sx = Math.max(0, x - radius); sx <= Math.min(width - 1, x + radius); sx++) best = pick(best, values[y * width + sx]!);
      rows[y * width + x] = best;
    }
  }
  const out = new Float32Array(values.length); // (H, W)
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let best = rows[y * width + x]!;
      for (let sy = Math.max(0, y - radius); sy <= Math.min(height - 1, y + radius); sy++) best = pick(best, rows[sy * width + x]!);
      out[y * width + x] = best;
    }
  }
  return out;
}

/** A (GH, GW) grid whose NaN cells take the mean of their valid neighbours, ring by ring inwards. */
function fillHoles(cells: Float32Array, gridWidth: number, gridHeight: number): Float32Array {
  let current = cells;
  for (let holes = true; holes; ) {
    holes = false;
    const next = Float32Array.from(current);
    for (let y = 0; y < gridHeight; y++) {
      for (let x = 0; x < gridWidth; x++) {
        if (!Number.isNaN(current[y * gridWidth + x]!)) continue;
        let sum = 0;
        let count = 0;
        for (let sy = Math.max(0, y - 1); sy <= Math.min(gridHeight - 1, y + 1); sy++) {
          for (let sx = Math.max(0, x - 1); sx <= Math.min(gridWidth - 1, x + 1); sx++) {
            const value = current[sy * gridWidth + sx]!;
            if (Number.isNaN(value)) continue;
            sum += value;
            count++;
          }
        }
        if (count > 0) next[y * gridWidth + x] = sum / count;
        else holes = true;
      }
    }
    current = next;
  }
  return current;
}

/**
 * The paper's level under each pixel of `light` (H, W), an image whose ink is darker than its paper.
 * A first guess is a closing (max, then min) of a coarse copy over a square wider than any stroke:
 * strokes vanish, light gradients and shadow edges remain. The closing follows a shadow's edge only
 * cell by cell, and lends a stroke that touches a shadow the shadow's level, so the answer is the mean
 * of the pixels the guess calls paper, on a copy twice as fine, with the cells of ink filled from around.
 */
function paperLevel(light: GrayImage): Float32Array {
  const { pixels, width, height } = light;
  const coarse = grid(pixels, width, height, CLOSING_GRID);
  const radius = Math.max(1, Math.round(CLOSING_FRACTION * Math.max(coarse.gridWidth, coarse.gridHeight)));
  const dilated = squareFilter(coarse.cells, coarse.gridWidth, coarse.gridHeight, radius, Math.max);
  const closed = squareFilter(dilated, coarse.gridWidth, coarse.gridHeight, radius, Math.min); // (GH, GW)
  const guess = resample(closed, coarse.gridWidth, coarse.gridHeight, width, height); // (H, W), drawn up linearly
  const isPaper = new Float32Array(pixels.length); // (H, W) 1 = paper
  const paperOnly = new Float32Array(pixels.length); // (H, W) the paper's pixels, 0 elsewhere
  for (let p = 0; p < pixels.length; p++) {
    if (pixels[p]! < (1 - PAPER_TOLERANCE) * guess[p]!) continue;
    isPaper[p] = 1;
    paperOnly[p] = pixels[p]!;
  }
  const share = grid(isPaper, width, height, PAPER_GRID);
  const sum = grid(paperOnly, width, height, PAPER_GRID).cells;
  const mean = share.cells.map((fraction, cell) => (fraction >= MIN_PAPER_SHARE ? sum[cell]! / fraction : Number.NaN)); // (GH, GW)
  if (mean.every(Number.isNaN)) return guess;
  return resample(fillHoles(mean, share.gridWidth, share.gridHeight), share.gridWidth, share.gridHeight, width, height);
}

/** Otsu's threshold over a 256-bin histogram of values in [0, 1]: the level that best splits them in two. */
function otsuThreshold(values: Float32Array): number {
  const BINS = 256;
  const histogram = new Float64Array(BINS);
  for (const value of values) histogram[Math.min(BINS - 1, Math.floor(value * BINS))]++;
  let total = 0;
  let weightedTotal = 0;
  for (let bin = 0; bin < BINS; bin++) {
    total += histogram[bin]!;
    weightedTotal += bin * histogram[bin]!;
  }
  let below = 0;
  let weightedBelow = 0;
  let best = { threshold: 0, spread: -1 };
  for (let bin = 0; bin < BINS - 1; bin++) {
    below += histogram[bin]!;
    weightedBelow += bin * histogram[bin]!;
    const above = total - below;
    if (below === 0 || above === 0) continue;
    const meanDifference = weightedBelow / below - (weightedTotal - weightedBelow) / above;
    const spread = below * above * meanDifference * meanDifference; // between-class variance, up to a constant
    if (spread > best.spread) best = { threshold: (bin + 1) / BINS, spread };
  }
  return best.threshold;
}

/** The grain: a robust standard deviation (1.4826 × the median absolute deviation) of the contrast, over a sample. */
function grainSigma(contrast: Float32Array): number {
  const step = Math.max(1, Math.floor(contrast.length / 20_000));
  const sample = new Float32Array(Math.ceil(contrast.length / step));
  for (let i = 0; i < sample.length; i++) sample[i] = contrast[i * step]!;
  const centre = median(sample);
  return 1.4826 * median(sample.map((value) => Math.abs(value - centre)));
}

/** A bounding box, corners included, in pixels. */
interface Box {
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

/** One connected mark (8-neighbours) of the ink image. */
interface Mark extends Box {
  mass: number; // summed ink level
  peak: number; // its darkest ink
  touchesBorder: boolean;
}

const union = (a: Box, b: Box): Box => ({
  x0: Math.min(a.x0, b.x0),
  y0: Math.min(a.y0, b.y0),
  x1: Math.max(a.x1, b.x1),
  y1: Math.max(a.y1, b.y1),
});
const longSide = (box: Box) => Math.max(box.x1 - box.x0 + 1, box.y1 - box.y0 + 1);
const gap = (a: Box, b: Box) => Math.max(0, a.x0 - b.x1 - 1, b.x0 - a.x1 - 1, a.y0 - b.y1 - 1, b.y0 - a.y1 - 1);
const overlap = (a: Box, b: Box) => a.x0 <= b.x1 && b.x0 <= a.x1 && a.y0 <= b.y1 && b.y0 <= a.y1;

/**
 * The marks of `ink` (H, W): pixels at or above `weak` joined by 8-connectivity, kept when one of their
 * pixels reaches `strong` (hysteresis, as in Canny's edges). labels (H, W): 1 + the mark's index, 0 = none.
 */
function marks(ink: Float32Array, width: number, height: number, weak: number, strong: number): { labels: Int32Array; found: Mark[] } {
  const labels = new Int32Array(width * height); // (H, W)
  const stack = new Int32Array(width * height);
  const found: Mark[] = [];
  for (let start = 0; start < ink.length; start++) {
    if (ink[start]! < strong || labels[start] !== 0) continue;
    const mark: Mark = { mass: 0, peak: 0, x0: width, y0: height, x1: -1, y1: -1, touchesBorder: false };
    found.push(mark);
    labels[start] = found.length;
    let top = 0;
    stack[top++] = start;
    while (top > 0) {
      const p = stack[--top]!;
      const x = p % width;
      const y = (p - x) / width;
      mark.mass += ink[p]!;
      mark.peak = Math.max(mark.peak, ink[p]!);
      mark.x0 = Math.min(mark.x0, x);
      mark.x1 = Math.max(mark.x1, x);
      mark.y0 = Math.min(mark.y0, y);
      mark.y1 = Math.max(mark.y1, y);
      if (x === 0 || y === 0 || x === width - 1 || y === height - 1) mark.touchesBorder = true;
      for (let sy = Math.max(0, y - 1); sy <= Math.min(height - 1, y + 1); sy++) {
        for (let sx = Math.max(0, x - 1); sx <= Math.min(width - 1, x + 1); sx++) {
          const q = sy * width + sx;
          if (labels[q] === 0 && ink[q]! >= weak) {
            labels[q] = found.length;
            stack[top++] = q;
          }
        }
      }
    }
  }
  return { labels, found };
}

/**
 * Which marks make the digit: the heaviest one, and the marks near it that are more than specks.
 * In a photo, marks touching the picture's border are the page's edge, the table or a shadow, and
 * are left out while any mark lies inside; a drawing's paper has no edges, and its digit may run off
 * the canvas. `doubts` names what makes the reading weak: nothing but edge marks, or another mark as
 * heavy as the digit beside it.
 */
function digitMarks(found: Mark[], photo: boolean): { parts: Set<number>; doubts: string[] } {
  const heaviest = (indices: number[]) => indices.reduce((best, i) => (found[i]!.mass > found[best]!.mass ? i : best));
  const all = found.map((_, i) => i);
  const inside = all.filter((i) => !found[i]!.touchesBorder);
  const candidates = photo && inside.length > 0 ? inside : all;
  const mainIndex = heaviest(candidates);
  const main = found[mainIndex]!;
  const marks = candidates.filter((i) => found[i]!.mass >= SPECK_FRACTION * main.mass);
  const parts = new Set([mainIndex]);
  let group: Box = main;
  for (let grown = true; grown; ) {
    grown = false;
    for (const i of marks) {
      if (parts.has(i) || gap(found[i]!, group) > NEAR_FRACTION * longSide(main)) continue;
      parts.add(i);
      group = union(group, found[i]!);
      grown = true;
    }
  }
  const doubts: string[] = [];
  if (photo && inside.length === 0) doubts.push("only marks at the picture's edge");
  if (marks.some((i) => i !== mainIndex && found[i]!.mass >= RIVAL_FRACTION * main.mass && !overlap(found[i]!, main))) {
    doubts.push('several separate marks');
  }
  return { parts, doubts };
}

// ---------------------------------------------------------------------------
// The whole preparation.

/**
 * Turns any grayscale picture of one digit into MNIST's 28×28 format. Throws
 * PredictError when it finds no ink.
 */
export function prepareDigit(image: GrayImage): PreparedDigit {
  const { width, height } = image;
  // 1. The paper, and the ink as contrast against it: 1 − light / paper, 0 on paper, 1 for black ink.
  //    A photo's paper is uneven and lighter than its ink; a drawing's or a scan's is flat, and its ink
  //    is whatever differs from the border's level, dark or light.
  const border = Float32Array.from(borderPixels(image, Math.max(1, Math.round(BORDER_FRACTION * Math.min(width, height))))).sort();
  const borderAt = (fraction: number) => border[Math.floor(fraction * (border.length - 1))]!;
  // Flat paper fills at least half the border at one level; ink touching the border (a digit that fills
  // the frame) spreads only one side of it, where a photo's light spreads both.
  const flattened = Math.min(borderAt(0.95) - borderAt(0.5), borderAt(0.5) - borderAt(0.05)) > FLAT_SPREAD;
  const borderLevel = median(border);
  const inverted = flattened || image.pixels.reduce((sum, value) => sum + value - borderLevel, 0) <= 0;
  const light = inverted ? image : { ...image, pixels: image.pixels.map((value) => 1 - value) }; // (H, W) ink darker than paper
  const paper = flattened
    ? paperLevel(light)
    : new Float32Array(width * height).fill(median(inverted ? border : border.map((value) => 1 - value))); // (H, W)
  const contrast = new Float32Array(width * height); // (H, W) may dip below 0 where paper is lighter than its estimate
  for (let p = 0; p < contrast.length; p++) contrast[p] = paper[p]! > 0 ? 1 - light.pixels[p]! / paper[p]! : 0;
  const ink = contrast.map((value) => Math.min(1, Math.max(0, value))); // (H, W)
  const peak = ink.reduce((a, b) => Math.max(a, b), 0);
  if (peak < MIN_CONTRAST) {
    const what = flattened ? "only the paper's light and shade" : 'the image is a single tone';
    throw new PredictError(`no ink: ${what} (${image.width}×${image.height}, contrast ${peak.toFixed(2)})`);
  }

  // 2. Threshold: Otsu's level, but never within the grain; marks grow from there down to the noise floor.
  const grain = flattened ? grainSigma(contrast) : 0;
  const strong = Math.max(otsuThreshold(ink), STRONG_SIGMAS * grain, MIN_CONTRAST);
  const weak = flattened ? Math.max(PHOTO_FLOOR * peak, WEAK_SIGMAS * grain) : NOISE_FLOOR * peak;
  const { labels, found } = marks(ink, width, height, weak, strong);
  if (found.length === 0) throw new PredictError(`no ink: nothing stands out from the paper's grain (contrast ${peak.toFixed(2)})`);

  // 3. Keep the digit's marks, normalised so that its darkest ink is 1.
  const { parts, doubts } = digitMarks(found, flattened);
  const kept = new Uint8Array(found.length + 1); // by label: 1 = the digit's
  for (const i of parts) kept[i + 1] = 1;
  const digitPeak = Math.max(...[...parts].map((i) => found[i]!.peak));
  for (let p = 0; p < ink.length; p++) ink[p] = kept[labels[p]!] ? ink[p]! / digitPeak : 0;
  const digitBox = [...parts].map((i): Box => found[i]!).reduce(union);
  if (longSide(digitBox) < LITTLE_FRACTION * Math.max(width, height) || digitPeak < FAINT_CONTRAST) doubts.push('little ink');
  const { x0, y0, x1, y1 } = digitBox;

  // 4. Crop to the ink's bounding box.
  const cropWidth = x1 - x0 + 1;
  const cropHeight = y1 - y0 + 1;
  let digit: Float32Array = new Float32Array(cropWidth * cropHeight); // (cropHeight, cropWidth)
  for (let y = 0; y < cropHeight; y++) digit.set(ink.subarray((y0 + y) * width + x0, (y0 + y) * width + x0 + cropWidth), y * cropWidth);
  let digitWidth = cropWidth;
  let digitHeight = cropHeight;

  // 5. Thicken a thin pen line, measured at 4× the final size.
  const longest = Math.max(cropWidth, cropHeight);
  const workWidth = Math.max(1, Math.round((cropWidth * WORK_SIDE) / longest));
  const workHeight = Math.max(1, Math.round((cropHeight * WORK_SIDE) / longest));
  const work = normalisePeak(resample(digit, cropWidth, cropHeight, workWidth, workHeight)); // (workHeight, workWidth)
  const stroke = strokeWidth(work, workWidth, workHeight);
  let thickenedBy = 0;
  if (stroke < MIN_STROKE_FRACTION * WORK_SIDE) {
    thickenedBy = Math.max(1, Math.round((TARGET_STROKE_FRACTION * WORK_SIDE - stroke) / 2));
    digit = dilate(work, workWidth, workHeight, thickenedBy);
    digitWidth = workWidth;
    digitHeight = workHeight;
  }

  // 6. Fit the longer side to 20 px, keeping the aspect ratio.
  const boxWidth = Math.max(1, Math.round((cropWidth * BOX_SIDE) / longest));
  const boxHeight = Math.max(1, Math.round((cropHeight * BOX_SIDE) / longest));
  const boxed = normalisePeak(resample(digit, digitWidth, digitHeight, boxWidth, boxHeight)); // (boxHeight, boxWidth)

  // 7. Put the centre of mass on pixel (14, 14) of the 28×28 field, as MNIST does
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
  return {
    input,
    inverted,
    box: { x: x0, y: y0, width: cropWidth, height: cropHeight },
    thickenedBy,
    flattened,
    lowConfidence: doubts.length > 0 ? doubts.join('; ') : null,
  };
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
