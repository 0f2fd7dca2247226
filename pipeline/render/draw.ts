// Drawing helpers for the canvas figures of grids.ts: colour maps, a figure
// with its heading, text, rasters, boxes, digits and colour bars.
//
// Every figure is laid out in CSS pixels (text ≥ 12 px) and drawn at SCALE×.

import { createCanvas, type Canvas, type CanvasRenderingContext2D } from 'canvas';
import { D, IMAGE_SIDE, type Pixels } from '../../reference/shapes.js';
import { FONT_FAMILY, registerFonts } from './charts.js';
import { sequentialColour, type Rgb } from './colours.js';

export const SCALE = 2; // device pixels per layout pixel
export const MARGIN = 20;
export const TITLE_SIZE = 18;
export const SUBTITLE_SIZE = 13;
export const LABEL_SIZE = 13;
export const SMALL_SIZE = 12; // the smallest text anywhere
export const TEXT_COLOUR = '#222222';
export const MUTED_COLOUR = '#555555';
export const CORRECT_COLOUR = '#1a7f37';
export const WRONG_COLOUR = '#d62728';

/** Digits as dark ink on white, which reads better on a report page than MNIST's white on black. */
function inkColour(intensity: number): Rgb {
  const level = Math.round(255 * (1 - Math.min(1, Math.max(0, intensity))));
  return [level, level, level];
}

// ---------------------------------------------------------------- drawing helpers

export interface Figure {
  canvas: Canvas;
  ctx: CanvasRenderingContext2D;
}

/** Content starts this far down, below the title and subtitle. */
export const HEADING_HEIGHT = MARGIN + TITLE_SIZE + 8 + SUBTITLE_SIZE + 24;

/**
 * A white canvas of height layout pixels, drawn at SCALE×, with the title and
 * subtitle at the top left. It is `width` wide, or wider if the heading needs it.
 */
export function createFigure(width: number, height: number, title: string, subtitle: string): Figure {
  registerFonts();
  const measuring = createCanvas(1, 1).getContext('2d');
  const headingWidth = Math.max(textWidth(measuring, title, TITLE_SIZE, true), textWidth(measuring, subtitle, SUBTITLE_SIZE));
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

export function pngBytes(figure: Figure): Uint8Array {
  return new Uint8Array(figure.canvas.toBuffer('image/png'));
}

export interface TextStyle {
  size?: number;
  bold?: boolean;
  colour?: string;
  align?: 'left' | 'center' | 'right';
  baseline?: 'alphabetic' | 'middle' | 'top';
}

export function drawText(ctx: CanvasRenderingContext2D, text: string, x: number, y: number, style: TextStyle = {}): void {
  ctx.font = `${style.bold ? 'bold ' : ''}${style.size ?? LABEL_SIZE}px "${FONT_FAMILY}"`;
  ctx.fillStyle = style.colour ?? TEXT_COLOUR;
  ctx.textAlign = style.align ?? 'left';
  ctx.textBaseline = style.baseline ?? 'alphabetic';
  ctx.fillText(text, x, y);
}

export function textWidth(ctx: CanvasRenderingContext2D, text: string, size: number, bold = false): number {
  ctx.font = `${bold ? 'bold ' : ''}${size}px "${FONT_FAMILY}"`;
  return ctx.measureText(text).width;
}

/**
 * Draws a cols × rows raster whose cell (c, r) has colour colourAt(r * cols + c),
 * each cell cellWidth × cellHeight layout pixels, without smoothing between cells.
 */
export function drawRaster(
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

export function strokeBox(
  ctx: CanvasRenderingContext2D,
  x: number,
  y: number,
  width: number,
  height: number,
  colour: string,
  lineWidth: number,
): void {
  ctx.strokeStyle = colour;
  ctx.lineWidth = lineWidth;
  ctx.strokeRect(x - lineWidth / 2, y - lineWidth / 2, width + lineWidth, height + lineWidth);
}

/** Test image `index` of an (N, D) buffer, as dark ink on white. */
export function drawDigit(ctx: CanvasRenderingContext2D, images: Pixels, index: number, x: number, y: number, pixelSize: number): void {
  const offset = index * D; // row stride of the (N, D) image buffer
  drawRaster(ctx, x, y, IMAGE_SIDE, IMAGE_SIDE, pixelSize, (pixel) => inkColour(images[offset + pixel]! / 255));
}

export interface ColourBarTick {
  value: number;
  label: string;
}

/** A vertical colour bar from `min` (bottom) to `max` (top), ticks on the right. */
export function drawVerticalColourBar(
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
export function drawHorizontalColourBar(
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

export function formatValue(value: number): string {
  if (value === 0) return '0';
  const digits = Math.abs(value) >= 10 ? 1 : Math.abs(value) >= 1 ? 2 : 3;
  return value.toFixed(digits).replace('-', '−');
}
