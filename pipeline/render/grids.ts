// Image grids drawn directly with node-canvas: weights, digits and activations
// are pixels, not data marks, so they do not go through Vega-Lite.
// D = 784 = 28×28 pixels, H1 = 128, H2 = 64, K = 10.

import { forward } from '../../reference/network.js';
import { D, H1, H2, IMAGE_SIDE, K, scalePixels, type Params, type Pixels } from '../../reference/shapes.js';
import type { ConfusedPair, Example, Split } from '../types.js';
import { percent, thousands } from './format.js';
import {
  CORRECT_COLOUR,
  HEADING_HEIGHT,
  LABEL_SIZE,
  MARGIN,
  MUTED_COLOUR,
  SCALE,
  SMALL_SIZE,
  WRONG_COLOUR,
  createFigure,
  drawDigit,
  drawHorizontalColourBar,
  drawRaster,
  drawText,
  drawVerticalColourBar,
  formatValue,
  pngBytes,
  strokeBox,
  textWidth,
  type TextStyle,
} from './draw.js';
import { divergingColour, sequentialColour } from './colours.js';

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
export function samplePredictionsPng(images: Pixels /* (N, D) */, samples: Example[]): Uint8Array {
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
    'The first right and first wrong ones in test order: the wrong ones are picked on purpose, so this mix is not the error rate.',
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
    drawText(ctx, `p = ${percent(sample.probability)}  #${sample.index}`, centre, labelY + LABEL_SIZE + 5, {
      size: SMALL_SIZE,
      align: 'center',
      colour: MUTED_COLOUR,
    });
  });
  return pngBytes(figure);
}

// ---------------------------------------------------------------- the training data

const DATA_PER_DIGIT = 12;
const DATA_PIXEL = 2; // layout pixels per image pixel
const DATA_TILE = IMAGE_SIDE * DATA_PIXEL; // 56
const DATA_GAP = 6;
const DATA_LABEL_WIDTH = 40;

/** The first DATA_PER_DIGIT training images of each digit, one row per digit, in file order. */
export function trainingImagesPng(train: Split): Uint8Array {
  const rows: number[][] = Array.from({ length: K }, () => []);
  for (let i = 0; i < train.count; i++) {
    const row = rows[train.labels[i]!]!;
    if (row.length < DATA_PER_DIGIT) row.push(i);
  }
  const top = HEADING_HEIGHT;
  const width = 2 * MARGIN + DATA_LABEL_WIDTH + DATA_PER_DIGIT * (DATA_TILE + DATA_GAP);
  const height = top + K * (DATA_TILE + DATA_GAP) + MARGIN;
  const figure = createFigure(
    width,
    height,
    `Training images: the first ${DATA_PER_DIGIT} of each digit`,
    `From the ${thousands(train.count)} images of the training split, in file order; 28×28 pixels, ink drawn dark (the network reads ink as 1).`,
  );
  const { ctx } = figure;
  rows.forEach((indices, digit) => {
    const y = top + digit * (DATA_TILE + DATA_GAP);
    drawText(ctx, `${digit}`, MARGIN + DATA_LABEL_WIDTH / 2, y + DATA_TILE / 2, {
      size: 16,
      bold: true,
      align: 'center',
      baseline: 'middle',
    });
    if (indices.length === 0)
      drawText(ctx, 'no images of this digit', MARGIN + DATA_LABEL_WIDTH, y + DATA_TILE / 2, { colour: MUTED_COLOUR, baseline: 'middle' });
    indices.forEach((index, column) => {
      const x = MARGIN + DATA_LABEL_WIDTH + column * (DATA_TILE + DATA_GAP);
      drawDigit(ctx, train.images, index, x, y, DATA_PIXEL);
      strokeBox(ctx, x, y, DATA_TILE, DATA_TILE, '#cccccc', 1);
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
    drawText(ctx, `true ${pair.true} → predicted ${pair.predicted}`, MARGIN, rowY + DIGIT_TILE / 2 - 2, {
      size: LABEL_SIZE + 1,
      bold: true,
    });
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
      drawText(ctx, `p = ${percent(confidence[index]!)}`, x + DIGIT_TILE / 2, rowY + DIGIT_TILE + 6 + SMALL_SIZE, {
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

const H1_COLUMNS = 16; // h1 drawn as 16 wide × 8 high
const H2_COLUMNS = 8; // h2 drawn as 8 × 8
const ACTIVATION_CELL = 10; // layout pixels per unit
const ACTIVATION_PANEL_COLUMNS = 2;

/**
 * For each digit, the test image shown (the first one the model gets right, else the first one, else
 * null) and its two hidden layers' ReLU activations; with the largest activation of each layer.
 */
function activationsPerDigit(test: Split, params: Params, predictions: Uint8Array /* (N) */) {
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
  const shown = chosen.filter((index): index is number => index !== null);
  const images = new Float32Array(shown.length * D); // (shown, D)
  shown.forEach((index, row) => scalePixels(test.images.subarray(index * D, (index + 1) * D), images.subarray(row * D, (row + 1) * D)));
  const { a1, a2 } = forward(params, images, null, shown.length); // (shown, H1), (shown, H2); no labels, no loss
  const activations = chosen.map((index) => {
    if (index === null) return null;
    const row = shown.indexOf(index);
    return { h1: a1.subarray(row * H1, (row + 1) * H1), h2: a2.subarray(row * H2, (row + 1) * H2) };
  });
  let h1Max = 0;
  let h2Max = 0;
  for (const activation of activations) {
    if (!activation) continue;
    for (const value of activation.h1) h1Max = Math.max(h1Max, value);
    for (const value of activation.h2) h2Max = Math.max(h2Max, value);
  }
  // All units dead: draw white, keep the colour bar finite.
  return { chosen, activations, h1Max: h1Max || 1, h2Max: h2Max || 1 };
}

/**
 * For one test image of each digit, the input and both hidden layers' ReLU activations as heatmaps.
 * Each layer has one colour scale shared by all ten digits.
 */
export function activationPatternsPng(test: Split, params: Params, predictions: Uint8Array /* (N) */): Uint8Array {
  const { chosen, activations, h1Max, h2Max } = activationsPerDigit(test, params, predictions);
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
