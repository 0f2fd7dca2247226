// Image grids drawn directly with node-canvas: weights, digits and activations
// are pixels, not data marks, so they do not go through Vega-Lite.
// D = 784 = 28×28 pixels, H1 = 128, H2 = 64, K = 10.
//
// Every figure is laid out in CSS pixels (text ≥ 12 px) and drawn at SCALE×.

import { createCanvas, type Canvas, type CanvasRenderingContext2D } from 'canvas';
import { D, H1, H2, IMAGE_SIDE, K, type Params } from '../../reference/shapes.js';
import { FONT_FAMILY, registerFonts } from './charts.js';
import type { ConfusedPair, Example, Split } from '../types.js';

const SCALE = 2; // device pixels per layout pixel
const MARGIN = 20;
const TITLE_SIZE = 18;
const SUBTITLE_SIZE = 13;
const LABEL_SIZE = 13;
const SMALL_SIZE = 12; // the smallest text anywhere
const TEXT_COLOUR = '#222222';
const MUTED_COLOUR = '#555555';
const CORRECT_COLOUR = '#1a7f37';
const WRONG_COLOUR = '#d62728';

type Rgb = readonly [number, number, number];

// ---------------------------------------------------------------- colour maps

/** ColorBrewer RdBu, reversed: blue for negative, near-white at 0, red for positive. */
const DIVERGING_STOPS: readonly Rgb[] = [
  [5, 48, 97],
  [33, 102, 172],
  [67, 147, 195],
  [146, 197, 222],
  [209, 229, 240],
  [247, 247, 247],
  [253, 219, 199],
  [244, 165, 130],
  [214, 96, 77],
  [178, 24, 43],
  [103, 0, 31],
];

/** ColorBrewer YlOrBr from white: an inactive (zero) ReLU unit is blank. */
const SEQUENTIAL_STOPS: readonly Rgb[] = [
  [255, 255, 255],
  [254, 227, 145],
  [254, 153, 41],
  [204, 76, 2],
  [102, 37, 6],
];

/** Piecewise-linear colour at t ∈ [0, 1] (clamped) along evenly spaced stops. */
function rampColour(stops: readonly Rgb[], t: number): Rgb {
  const position = Math.min(1, Math.max(0, Number.isFinite(t) ? t : 0)) * (stops.length - 1);
  const lower = Math.min(Math.floor(position), stops.length - 2);
  const fraction = position - lower;
  const a = stops[lower]!;
  const b = stops[lower + 1]!;
  return [
    Math.round(a[0] + (b[0] - a[0]) * fraction),
    Math.round(a[1] + (b[1] - a[1]) * fraction),
    Math.round(a[2] + (b[2] - a[2]) * fraction),
  ];
}

/** Maps v ∈ [−limit, limit] to the diverging ramp, 0 in the middle. */
function divergingColour(value: number, limit: number): Rgb {
  return rampColour(DIVERGING_STOPS, 0.5 + value / (2 * limit));
}

function sequentialColour(value: number, max: number): Rgb {
  return rampColour(SEQUENTIAL_STOPS, value / max);
}

/** Digits as dark ink on white, which reads better on a report page than MNIST's white on black. */
function inkColour(intensity: number): Rgb {
  const level = Math.round(255 * (1 - Math.min(1, Math.max(0, intensity))));
  return [level, level, level];
}

// ---------------------------------------------------------------- drawing helpers

interface Figure {
  canvas: Canvas;
  ctx: CanvasRenderingContext2D;
}

/** Content starts this far down, below the title and subtitle. */
const HEADING_HEIGHT = MARGIN + TITLE_SIZE + 8 + SUBTITLE_SIZE + 24;

/**
 * A white canvas of height layout pixels, drawn at SCALE×, with the title and
 * subtitle at the top left. It is `width` wide, or wider if the heading needs it.
 */
function createFigure(width: number, height: number, title: string, subtitle: string): Figure {
  registerFonts();
  const measuring = createCanvas(1, 1).getContext('2d');
  const headingWidth = Math.max(
    textWidth(measuring, title, TITLE_SIZE, true),
    textWidth(measuring, subtitle, SUBTITLE_SIZE),
  );
  const figureWidth = Math.ceil(Math.max(width, headingWidth + 2 * MARGIN));
  const canvas = createCanvas(figureWidth * SCALE, Math.ceil(height * SCALE));
  const ctx = canvas.getContext('2d');
  ctx.scale(SCALE, SCALE);
  ctx.fillStyle = 'white';
  ctx.fillRect(0, 0, figureWidth, height);
  drawText(ctx, title, MARGIN, MARGIN + TITLE_SIZE, { size: TITLE_SIZE, bold: true });
  drawText(ctx, subtitle, MARGIN, MARGIN + TITLE_SIZE + 8 + SUBTITLE_SIZE, { size: SUBTITLE_SIZE, colour: MUTED_COLOUR });
  return { canvas, ctx };
}

function pngBytes(figure: Figure): Uint8Array {
  return new Uint8Array(figure.canvas.toBuffer('image/png'));
}

interface TextStyle {
  size?: number;
  bold?: boolean;
  colour?: string;
  align?: 'left' | 'center' | 'right';
  baseline?: 'alphabetic' | 'middle' | 'top';
}

function drawText(ctx: CanvasRenderingContext2D, text: string, x: number, y: number, style: TextStyle = {}): void {
  ctx.font = `${style.bold ? 'bold ' : ''}${style.size ?? LABEL_SIZE}px "${FONT_FAMILY}"`;
  ctx.fillStyle = style.colour ?? TEXT_COLOUR;
  ctx.textAlign = style.align ?? 'left';
  ctx.textBaseline = style.baseline ?? 'alphabetic';
  ctx.fillText(text, x, y);
}

function textWidth(ctx: CanvasRenderingContext2D, text: string, size: number, bold = false): number {
  ctx.font = `${bold ? 'bold ' : ''}${size}px "${FONT_FAMILY}"`;
  return ctx.measureText(text).width;
}

/**
 * Draws a cols × rows raster whose cell (c, r) has colour colourAt(r * cols + c),
 * each cell cellWidth × cellHeight layout pixels, without smoothing between cells.
 */
function drawRaster(
  ctx: CanvasRenderingContext2D,
  x: number,
  y: number,
  cols: number,
  rows: number,
  cellWidth: number,
  colourAt: (index: number) => Rgb,
  cellHeight = cellWidth,
): void {
  const raster = createCanvas(cols, rows);
  const rasterCtx = raster.getContext('2d');
  const image = rasterCtx.createImageData(cols, rows);
  for (let index = 0; index < cols * rows; index++) {
    const [r, g, b] = colourAt(index);
    image.data[4 * index] = r;
    image.data[4 * index + 1] = g;
    image.data[4 * index + 2] = b;
    image.data[4 * index + 3] = 255;
  }
  rasterCtx.putImageData(image, 0, 0);
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(raster, x, y, cols * cellWidth, rows * cellHeight);
  ctx.imageSmoothingEnabled = true;
}

function strokeBox(ctx: CanvasRenderingContext2D, x: number, y: number, width: number, height: number, colour: string, lineWidth: number): void {
  ctx.strokeStyle = colour;
  ctx.lineWidth = lineWidth;
  ctx.strokeRect(x - lineWidth / 2, y - lineWidth / 2, width + lineWidth, height + lineWidth);
}

/** Test image `index` of an (N, D) buffer, as dark ink on white. */
function drawDigit(ctx: CanvasRenderingContext2D, images: Float32Array, index: number, x: number, y: number, pixelSize: number): void {
  const offset = index * D; // row stride of the (N, D) image buffer
  drawRaster(ctx, x, y, IMAGE_SIDE, IMAGE_SIDE, pixelSize, (pixel) => inkColour(images[offset + pixel]!));
}

interface ColourBarTick {
  value: number;
  label: string;
}

/** A vertical colour bar from `min` (bottom) to `max` (top), ticks on the right. */
function drawVerticalColourBar(
  ctx: CanvasRenderingContext2D,
  x: number,
  y: number,
  height: number,
  min: number,
  max: number,
  colourOf: (value: number) => Rgb,
  ticks: ColourBarTick[],
  title: string,
): void {
  const width = 16;
  drawText(ctx, title, x, y - 16, { size: LABEL_SIZE, bold: true });
  const steps = Math.round(height);
  drawRaster(ctx, x, y, 1, steps, width, (row) => colourOf(max - ((max - min) * (row + 0.5)) / steps), height / steps);
  strokeBox(ctx, x, y, width, height, '#888888', 1);
  for (const tick of ticks) {
    const tickY = y + ((max - tick.value) / (max - min)) * height;
    ctx.strokeStyle = TEXT_COLOUR;
    ctx.lineWidth = 1;
    ctx.beginPath();
    ctx.moveTo(x + width, tickY);
    ctx.lineTo(x + width + 5, tickY);
    ctx.stroke();
    drawText(ctx, tick.label, x + width + 8, tickY, { size: SMALL_SIZE, baseline: 'middle' });
  }
}

/** A horizontal colour bar from 0 (left) to max (right), labelled below. */
function drawHorizontalColourBar(
  ctx: CanvasRenderingContext2D,
  x: number,
  y: number,
  width: number,
  max: number,
  title: string,
): void {
  const height = 14;
  drawText(ctx, title, x, y - 6, { size: LABEL_SIZE, bold: true });
  drawRaster(ctx, x, y, width, 1, 1, (column) => sequentialColour(((column + 0.5) / width) * max, max), height);
  strokeBox(ctx, x, y, width, height, '#888888', 1);
  const ticks = [0, max / 2, max];
  ticks.forEach((value, i) => {
    const tickX = x + (value / max) * width;
    drawText(ctx, formatValue(value), tickX, y + height + 16, {
      size: SMALL_SIZE,
      align: i === 0 ? 'left' : i === ticks.length - 1 ? 'right' : 'center',
    });
  });
}

function formatValue(value: number): string {
  if (value === 0) return '0';
  const digits = Math.abs(value) >= 10 ? 1 : Math.abs(value) >= 1 ? 2 : 3;
  return value.toFixed(digits).replace('-', '−');
}

function formatPercent(fraction: number): string {
  return `${(fraction * 100).toFixed(1)}%`;
}

// ---------------------------------------------------------------- first-layer weights

const WEIGHT_COLUMNS = 16;
const WEIGHT_ROWS = H1 / WEIGHT_COLUMNS; // 8
const WEIGHT_PIXEL = 2; // layout pixels per weight
const WEIGHT_TILE = IMAGE_SIDE * WEIGHT_PIXEL;
const WEIGHT_GAP = 8;
const WEIGHT_LABEL_HEIGHT = SMALL_SIZE + 4;

/**
 * All 128 first-layer filters as 28×28 tiles in a 16 × 8 grid. Colour is the
 * weight on a blue–white–red scale centred on 0 with symmetric limits ±max|w|.
 */
export function weightGridPng(w1: Float32Array /* (D, H1) */): Uint8Array {
  if (w1.length !== D * H1) {
    throw new Error(`weightGridPng: expected w1 of shape (${D}, ${H1}) = ${D * H1} values, found ${w1.length}`);
  }
  let limit = 0;
  for (const weight of w1) limit = Math.max(limit, Math.abs(weight));
  if (limit === 0) limit = 1; // all-zero weights: any symmetric range draws them white

  const gridWidth = WEIGHT_COLUMNS * WEIGHT_TILE + (WEIGHT_COLUMNS - 1) * WEIGHT_GAP;
  const rowHeight = WEIGHT_LABEL_HEIGHT + WEIGHT_TILE + WEIGHT_GAP;
  const gridHeight = WEIGHT_ROWS * rowHeight - WEIGHT_GAP;
  const colourBarX = MARGIN + gridWidth + 30;
  const width = colourBarX + 16 + 70 + MARGIN;
  const top = HEADING_HEIGHT + 8;
  const height = top + gridHeight + MARGIN;

  const figure = createFigure(
    width,
    height,
    `First-layer weights: the ${H1} hidden units of layer 1 (${D} → ${H1})`,
    `Each tile is one unit's ${D} incoming weights laid out as the 28×28 input image; ` +
      `blue negative, red positive, white 0 (limits ±${formatValue(limit)} = ±max |w|).`,
  );
  const { ctx } = figure;
  for (let unit = 0; unit < H1; unit++) {
    const column = unit % WEIGHT_COLUMNS;
    const row = Math.floor(unit / WEIGHT_COLUMNS);
    const x = MARGIN + column * (WEIGHT_TILE + WEIGHT_GAP);
    const y = top + row * rowHeight;
    drawText(ctx, `${unit}`, x, y + SMALL_SIZE, { size: SMALL_SIZE, colour: MUTED_COLOUR });
    const tileY = y + WEIGHT_LABEL_HEIGHT;
    // w1 is (D, H1): the weight from pixel p to this unit sits at p * H1 + unit.
    drawRaster(ctx, x, tileY, IMAGE_SIDE, IMAGE_SIDE, WEIGHT_PIXEL, (pixel) => divergingColour(w1[pixel * H1 + unit]!, limit));
    strokeBox(ctx, x, tileY, WEIGHT_TILE, WEIGHT_TILE, '#cccccc', 1);
  }
  const barTop = top + WEIGHT_LABEL_HEIGHT + 10;
  drawVerticalColourBar(
    ctx,
    colourBarX,
    barTop,
    gridHeight - WEIGHT_LABEL_HEIGHT - 10,
    -limit,
    limit,
    (value) => divergingColour(value, limit),
    [-limit, -limit / 2, 0, limit / 2, limit].map((value) => ({ value, label: formatValue(value) })),
    'weight',
  );
  return pngBytes(figure);
}

// ---------------------------------------------------------------- sample predictions

const SAMPLE_COLUMNS = 8;
const DIGIT_PIXEL = 3; // layout pixels per image pixel
const DIGIT_TILE = IMAGE_SIDE * DIGIT_PIXEL; // 84
const SAMPLE_CELL_WIDTH = 124;
const SAMPLE_CELL_HEIGHT = DIGIT_TILE + 2 * (LABEL_SIZE + 5) + 20;

/**
 * Test digits with their true label, prediction and confidence. Wrong
 * predictions get a red border and a red label.
 */
export function samplePredictionsPng(images: Float32Array /* (N, D) */, samples: Example[]): Uint8Array {
  const columns = Math.max(1, Math.min(SAMPLE_COLUMNS, samples.length));
  const rows = Math.max(1, Math.ceil(samples.length / columns));
  const wrongCount = samples.filter((sample) => sample.label !== sample.predicted).length;
  const top = HEADING_HEIGHT;
  const width = 2 * MARGIN + columns * SAMPLE_CELL_WIDTH;
  const height = top + rows * SAMPLE_CELL_HEIGHT + MARGIN;

  const figure = createFigure(
    width,
    height,
    `Sample test predictions: ${samples.length - wrongCount} right, ${wrongCount} wrong`,
    'Each digit shows its true label, the prediction and the probability given to it; wrong predictions have a red border.',
  );
  const { ctx } = figure;
  if (samples.length === 0) {
    drawText(ctx, 'No test examples to show.', MARGIN, top + LABEL_SIZE, { colour: MUTED_COLOUR });
  }
  samples.forEach((sample, i) => {
    const cellX = MARGIN + (i % columns) * SAMPLE_CELL_WIDTH;
    const cellY = top + Math.floor(i / columns) * SAMPLE_CELL_HEIGHT;
    const imageX = cellX + (SAMPLE_CELL_WIDTH - DIGIT_TILE) / 2;
    const wrong = sample.label !== sample.predicted;
    drawDigit(ctx, images, sample.index, imageX, cellY + 4, DIGIT_PIXEL);
    strokeBox(ctx, imageX, cellY + 4, DIGIT_TILE, DIGIT_TILE, wrong ? WRONG_COLOUR : '#bbbbbb', wrong ? 4 : 1);
    const centre = cellX + SAMPLE_CELL_WIDTH / 2;
    const labelY = cellY + 4 + DIGIT_TILE + 8 + LABEL_SIZE;
    drawText(ctx, `true ${sample.label} · pred ${sample.predicted}`, centre, labelY, {
      align: 'center',
      bold: wrong,
      colour: wrong ? WRONG_COLOUR : CORRECT_COLOUR,
    });
    drawText(ctx, `p = ${formatPercent(sample.probability)}  #${sample.index}`, centre, labelY + LABEL_SIZE + 5, {
      size: SMALL_SIZE,
      align: 'center',
      colour: MUTED_COLOUR,
    });
  });
  return pngBytes(figure);
}

// ---------------------------------------------------------------- misclassified pairs

const MISCLASSIFIED_PER_PAIR = 10;
const MISCLASSIFIED_CELL_WIDTH = 96;
const MISCLASSIFIED_LABEL_WIDTH = 210; // fits "true 4 → predicted 9" in bold 14 px
const MISCLASSIFIED_ROW_HEIGHT = DIGIT_TILE + LABEL_SIZE + 30;

/**
 * For each confused pair, the test images behind it: a row per pair, most
 * confident mistakes first (ties by test index), at most 10 per row.
 */
export function misclassifiedPng(
  test: Split,
  predictions: Uint8Array, // (N) predicted digit per test image
  confidence: Float32Array, // (N) probability of the predicted digit
  pairs: ConfusedPair[],
): Uint8Array {
  const shownPairs = pairs.filter((pair) => pair.count > 0);
  const rowsOfImages = shownPairs.map((pair) => {
    const indices: number[] = [];
    for (let i = 0; i < test.count; i++) {
      if (test.labels[i] === pair.true && predictions[i] === pair.predicted) indices.push(i);
    }
    indices.sort((a, b) => confidence[b]! - confidence[a]! || a - b);
    return indices.slice(0, MISCLASSIFIED_PER_PAIR);
  });

  const labelWidth = MISCLASSIFIED_LABEL_WIDTH;
  const top = HEADING_HEIGHT;
  const width = MARGIN * 2 + labelWidth + MISCLASSIFIED_PER_PAIR * MISCLASSIFIED_CELL_WIDTH;
  const height = top + Math.max(1, shownPairs.length) * MISCLASSIFIED_ROW_HEIGHT + MARGIN;

  const figure = createFigure(
    width,
    height,
    'Most confused pairs: the test images behind them',
    `One row per pair; the most confident mistakes first, at most ${MISCLASSIFIED_PER_PAIR} per pair, ` +
      'each with the probability given to the wrong digit.',
  );
  const { ctx } = figure;
  if (shownPairs.length === 0) {
    drawText(ctx, 'No misclassified test images.', MARGIN, top + LABEL_SIZE, { colour: MUTED_COLOUR });
  }
  shownPairs.forEach((pair, row) => {
    const rowY = top + row * MISCLASSIFIED_ROW_HEIGHT;
    drawText(ctx, `true ${pair.true} → predicted ${pair.predicted}`, MARGIN, rowY + DIGIT_TILE / 2 - 2, { size: LABEL_SIZE + 1, bold: true });
    drawText(ctx, `n = ${pair.count} test images`, MARGIN, rowY + DIGIT_TILE / 2 + LABEL_SIZE + 4, {
      size: SMALL_SIZE,
      colour: MUTED_COLOUR,
    });
    const indices = rowsOfImages[row]!;
    if (indices.length === 0) {
      drawText(ctx, 'no matching images in the predictions', MARGIN + labelWidth, rowY + DIGIT_TILE / 2, {
        colour: MUTED_COLOUR,
      });
    }
    indices.forEach((index, i) => {
      const x = MARGIN + labelWidth + i * MISCLASSIFIED_CELL_WIDTH + (MISCLASSIFIED_CELL_WIDTH - DIGIT_TILE) / 2;
      drawDigit(ctx, test.images, index, x, rowY, DIGIT_PIXEL);
      strokeBox(ctx, x, rowY, DIGIT_TILE, DIGIT_TILE, '#bbbbbb', 1);
      drawText(ctx, `p = ${formatPercent(confidence[index]!)}`, x + DIGIT_TILE / 2, rowY + DIGIT_TILE + 6 + SMALL_SIZE, {
        size: SMALL_SIZE,
        align: 'center',
        colour: MUTED_COLOUR,
      });
    });
    if (row < shownPairs.length - 1) {
      ctx.strokeStyle = '#e5e5e5';
      ctx.lineWidth = 1;
      ctx.beginPath();
      ctx.moveTo(MARGIN, rowY + MISCLASSIFIED_ROW_HEIGHT - 8);
      ctx.lineTo(figure.canvas.width / SCALE - MARGIN, rowY + MISCLASSIFIED_ROW_HEIGHT - 8);
      ctx.stroke();
    }
  });
  return pngBytes(figure);
}

// ---------------------------------------------------------------- hidden activations

interface HiddenActivations {
  h1: Float32Array; // (H1)
  h2: Float32Array; // (H2)
}

/**
 * relu(x·W1 + b1) and relu(h1·W2 + b2) for one image. A local stand-in until
 * the reference module exports its own hiddenActivations.
 */
function hiddenActivationsForImage(params: Params, images: Float32Array /* (N, D) */, index: number): HiddenActivations {
  const offset = index * D;
  const h1 = new Float32Array(H1); // (H1)
  for (let j = 0; j < H1; j++) {
    let sum = params.b1[j]!;
    for (let p = 0; p < D; p++) sum += images[offset + p]! * params.w1[p * H1 + j]!; // w1 stride H1
    h1[j] = Math.max(0, sum);
  }
  const h2 = new Float32Array(H2); // (H2)
  for (let k = 0; k < H2; k++) {
    let sum = params.b2[k]!;
    for (let j = 0; j < H1; j++) sum += h1[j]! * params.w2[j * H2 + k]!; // w2 stride H2
    h2[k] = Math.max(0, sum);
  }
  return { h1, h2 };
}

const H1_COLUMNS = 16; // h1 drawn as 16 wide × 8 high
const H2_COLUMNS = 8; // h2 drawn as 8 × 8
const ACTIVATION_CELL = 10; // layout pixels per unit
const ACTIVATION_PANEL_COLUMNS = 2;

/**
 * For one test image of each digit (the first one the model gets right, else
 * the first one), the input and both hidden layers' ReLU activations as heatmaps.
 * Each layer has one colour scale shared by all ten digits.
 */
export function activationPatternsPng(test: Split, params: Params, predictions: Uint8Array /* (N) */): Uint8Array {
  const chosen: (number | null)[] = [];
  for (let digit = 0; digit < K; digit++) {
    let first: number | null = null;
    let firstRight: number | null = null;
    for (let i = 0; i < test.count && firstRight === null; i++) {
      if (test.labels[i] !== digit) continue;
      if (first === null) first = i;
      if (predictions[i] === digit) firstRight = i;
    }
    chosen.push(firstRight ?? first);
  }
  const activations = chosen.map((index) => (index === null ? null : hiddenActivationsForImage(params, test.images, index)));
  let h1Max = 0;
  let h2Max = 0;
  for (const activation of activations) {
    if (!activation) continue;
    for (const value of activation.h1) h1Max = Math.max(h1Max, value);
    for (const value of activation.h2) h2Max = Math.max(h2Max, value);
  }
  if (h1Max === 0) h1Max = 1; // all units dead: draw white, keep the colour bar finite
  if (h2Max === 0) h2Max = 1;

  const h1Width = H1_COLUMNS * ACTIVATION_CELL; // 160
  const h1Height = (H1 / H1_COLUMNS) * ACTIVATION_CELL; // 80
  const h2Width = H2_COLUMNS * ACTIVATION_CELL; // 80
  const h2Height = (H2 / H2_COLUMNS) * ACTIVATION_CELL; // 80
  const blockGap = 28;
  const labelRoom = 24; // the h2 caption is wider than its block
  const panelWidth = DIGIT_TILE + blockGap + h1Width + blockGap + h2Width + labelRoom;
  const panelHeight = LABEL_SIZE + 8 + DIGIT_TILE + 8 + SMALL_SIZE;
  const panelGap = 22;
  const columnGap = 40;
  const panelRows = Math.ceil(K / ACTIVATION_PANEL_COLUMNS);
  const columnHeaderHeight = LABEL_SIZE + 10;
  const top = HEADING_HEIGHT + columnHeaderHeight;
  const legendTop = top + panelRows * (panelHeight + panelGap) + 8;
  const width = 2 * MARGIN + ACTIVATION_PANEL_COLUMNS * panelWidth + (ACTIVATION_PANEL_COLUMNS - 1) * columnGap;
  const height = legendTop + 20 + 14 + 18 + MARGIN;

  const figure = createFigure(
    width,
    height,
    'Hidden-layer activations for one test image of each digit',
    `ReLU outputs of layer 1 (${H1} units, drawn 16×8) and layer 2 (${H2} units, 8×8), in unit order; white = inactive.`,
  );
  const { ctx } = figure;
  const blockX = (panelX: number) => ({
    h1: panelX + DIGIT_TILE + blockGap,
    h2: panelX + DIGIT_TILE + blockGap + h1Width + blockGap,
  });
  for (let column = 0; column < ACTIVATION_PANEL_COLUMNS; column++) {
    const panelX = MARGIN + column * (panelWidth + columnGap);
    const headerY = HEADING_HEIGHT + LABEL_SIZE - 4;
    const style: TextStyle = { size: SMALL_SIZE, bold: true, colour: MUTED_COLOUR, align: 'center' };
    drawText(ctx, 'input', panelX + DIGIT_TILE / 2, headerY, style);
    drawText(ctx, `layer 1 (${H1})`, blockX(panelX).h1 + h1Width / 2, headerY, style);
    drawText(ctx, `layer 2 (${H2})`, blockX(panelX).h2 + h2Width / 2, headerY, style);
  }
  for (let digit = 0; digit < K; digit++) {
    const panelX = MARGIN + (digit % ACTIVATION_PANEL_COLUMNS) * (panelWidth + columnGap);
    const panelY = top + Math.floor(digit / ACTIVATION_PANEL_COLUMNS) * (panelHeight + panelGap);
    const index = chosen[digit]!;
    const activation = activations[digit]!;
    if (index === null || activation === null) {
      drawText(ctx, `digit ${digit}: no test image of this digit`, panelX, panelY + LABEL_SIZE, { bold: true, colour: MUTED_COLOUR });
      continue;
    }
    const predicted = predictions[index];
    drawText(ctx, `digit ${digit}`, panelX, panelY + LABEL_SIZE, { bold: true });
    drawText(
      ctx,
      `test #${index}, predicted ${predicted}`,
      panelX + textWidth(ctx, `digit ${digit}`, LABEL_SIZE, true) + 8,
      panelY + LABEL_SIZE,
      { size: SMALL_SIZE, colour: predicted === digit ? MUTED_COLOUR : WRONG_COLOUR },
    );
    const blockY = panelY + LABEL_SIZE + 8;
    drawDigit(ctx, test.images, index, panelX, blockY, DIGIT_PIXEL);
    strokeBox(ctx, panelX, blockY, DIGIT_TILE, DIGIT_TILE, '#bbbbbb', 1);
    const captionY = blockY + DIGIT_TILE + 6 + SMALL_SIZE;
    const caption: TextStyle = { size: SMALL_SIZE, align: 'center', colour: MUTED_COLOUR };

    const { h1: h1X, h2: h2X } = blockX(panelX);
    const h1Y = blockY + (DIGIT_TILE - h1Height) / 2;
    drawRaster(ctx, h1X, h1Y, H1_COLUMNS, H1 / H1_COLUMNS, ACTIVATION_CELL, (unit) => sequentialColour(activation.h1[unit]!, h1Max));
    strokeBox(ctx, h1X, h1Y, h1Width, h1Height, '#999999', 1);
    const h1Active = activation.h1.filter((value) => value > 0).length;
    drawText(ctx, `${h1Active}/${H1} active`, h1X + h1Width / 2, captionY, caption);

    const h2Y = blockY + (DIGIT_TILE - h2Height) / 2;
    drawRaster(ctx, h2X, h2Y, H2_COLUMNS, H2 / H2_COLUMNS, ACTIVATION_CELL, (unit) => sequentialColour(activation.h2[unit]!, h2Max));
    strokeBox(ctx, h2X, h2Y, h2Width, h2Height, '#999999', 1);
    const h2Active = activation.h2.filter((value) => value > 0).length;
    drawText(ctx, `${h2Active}/${H2} active`, h2X + h2Width / 2, captionY, caption);
  }
  const barWidth = 260;
  drawHorizontalColourBar(ctx, MARGIN, legendTop + 20, barWidth, h1Max, 'Layer 1 activation');
  drawHorizontalColourBar(ctx, MARGIN + barWidth + 60, legendTop + 20, barWidth, h2Max, 'Layer 2 activation');
  return pngBytes(figure);
}
