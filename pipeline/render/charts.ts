// Vega-Lite chart specs, as typed data, and their rendering to PNG.
//
//   builder (pure data)            renderSpecToPng
//   trainingCurvesSpec ─┐      ┌──────────────────────────────────────────────┐
//   confusionMatrixSpec ├─spec─▶ vega-lite compile → vega.parse → vega.View    │
//   perClassMetricsSpec ┘      │ (renderer 'none') → toCanvas (node-canvas) → PNG │
//                              └──────────────────────────────────────────────┘
//
// Every spec carries its data inline, so the JSON saved beside the PNG opens in
// the Vega editor as is. Text is drawn in DejaVu Sans, registered with
// node-canvas before the first render; rendering refuses to run without it.

import { existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { registerFont, type Canvas } from 'canvas';
import * as vega from 'vega';
import { compile, type Config as VegaLiteConfig, type TopLevelSpec } from 'vega-lite';
import type { ClassMetrics, EpochRecord } from '../types.js';
import { SPEC_SCHEMA, implementationLabel } from './format.js';

export const FONT_FAMILY = 'DejaVu Sans';

export interface FontFile {
  path: string;
  weight: 'normal' | 'bold';
}

const DEJAVU_DIR = '/usr/share/fonts/truetype/dejavu';

/** Debian's fonts-dejavu-core layout; fontconfig is asked when these are absent. */
export const DEJAVU_FILES: readonly FontFile[] = [
  { path: `${DEJAVU_DIR}/DejaVuSans.ttf`, weight: 'normal' },
  { path: `${DEJAVU_DIR}/DejaVuSans-Bold.ttf`, weight: 'bold' },
];

// registerFont is process-wide in node-canvas, so remembering what was registered is too.
const registeredFontPaths = new Set<string>();

function fontconfigFile(pattern: string): string | null {
  try {
    const path = execFileSync('fc-match', ['-f', '%{file}', pattern], { encoding: 'utf8', timeout: 5000 }).trim();
    return path.length > 0 && /dejavu/i.test(path) && existsSync(path) ? path : null;
  } catch {
    return null; // no fontconfig tools
  }
}

/**
 * Registers DejaVu Sans (regular and bold) with node-canvas. Falls back to the
 * files fontconfig reports; throws when no regular face can be found, because
 * charts rendered without a font have no readable text.
 */
export function registerFonts(candidates: readonly FontFile[] = DEJAVU_FILES): void {
  const found: FontFile[] = candidates.filter((font) => existsSync(font.path));
  if (!found.some((font) => font.weight === 'normal')) {
    const regular = fontconfigFile(`${FONT_FAMILY}:style=Book`);
    const bold = fontconfigFile(`${FONT_FAMILY}:style=Bold`);
    if (regular) found.push({ path: regular, weight: 'normal' });
    if (bold && bold !== regular) found.push({ path: bold, weight: 'bold' });
  }
  if (!found.some((font) => font.weight === 'normal')) {
    throw new Error(
      `No '${FONT_FAMILY}' font found: looked for ${candidates.map((font) => font.path).join(', ')} ` +
        `and asked fontconfig (fc-match '${FONT_FAMILY}'). Charts need it to draw text; ` +
        `install it (Debian/Ubuntu: apt-get install fonts-dejavu-core).`,
    );
  }
  for (const font of found) {
    if (registeredFontPaths.has(font.path)) continue;
    registerFont(font.path, { family: FONT_FAMILY, weight: font.weight });
    registeredFontPaths.add(font.path);
  }
}

/** Shared look: one font everywhere, white background, readable sizes at 1×. */
export const CHART_CONFIG: VegaLiteConfig = {
  font: FONT_FAMILY,
  background: 'white',
  padding: 12,
  title: { fontSize: 16, subtitleFontSize: 12, anchor: 'start', offset: 10 },
  axis: { labelFontSize: 12, titleFontSize: 13 },
  legend: { labelFontSize: 12, titleFontSize: 13 },
  header: { labelFontSize: 13, titleFontSize: 13 },
  view: { stroke: '#bbbbbb' },
};

/** One panel of a horizontal concatenation. */
type ConcatPanel = Extract<TopLevelSpec, { hconcat: unknown }>['hconcat'][number];

/** One long-format row of the training curves. */
interface CurvePoint {
  implementation: string;
  epoch: number;
  metric: 'loss' | 'accuracy';
  split: 'training' | 'validation';
  value: number;
}

/**
 * Loss and accuracy per epoch, training and validation, in two panels. Split is
 * the colour; implementation is the dash, so a reference run
 * drawn over the TF.js run stays visible where the two coincide.
 */
export function trainingCurvesSpec(histories: { implementation: string; history: EpochRecord[] }[]): TopLevelSpec {
  const values: CurvePoint[] = [];
  for (const { implementation, history } of histories) {
    const label = implementationLabel(implementation);
    for (const record of history) {
      values.push({ implementation: label, epoch: record.epoch, metric: 'loss', split: 'training', value: record.loss });
      values.push({ implementation: label, epoch: record.epoch, metric: 'loss', split: 'validation', value: record.val_loss });
      values.push({ implementation: label, epoch: record.epoch, metric: 'accuracy', split: 'training', value: record.accuracy });
      values.push({
        implementation: label,
        epoch: record.epoch,
        metric: 'accuracy',
        split: 'validation',
        value: record.val_accuracy,
      });
    }
  }
  const implementations = histories.map(({ implementation }) => implementationLabel(implementation));
  const epochs = values.map((point) => point.epoch);
  const epochDomain = [Math.min(1, ...epochs), Math.max(1, ...epochs)];

  const panel = (metric: 'loss' | 'accuracy', title: string, format: string): ConcatPanel => ({
    title: { text: title, fontSize: 14, anchor: 'middle' },
    width: 340,
    height: 260,
    transform: [{ filter: `datum.metric === '${metric}'` }],
    encoding: {
      x: {
        field: 'epoch',
        type: 'quantitative',
        title: 'Epoch',
        scale: { domain: epochDomain, nice: false },
        axis: { tickMinStep: 1, format: 'd' },
      },
      y: { field: 'value', type: 'quantitative', title, scale: { zero: false }, axis: { format } },
      color: {
        field: 'split',
        type: 'nominal',
        title: 'Split',
        scale: { domain: ['training', 'validation'], range: ['#1f77b4', '#e6550d'] },
      },
      strokeDash: {
        field: 'implementation',
        type: 'nominal',
        title: 'Implementation',
        scale: { domain: implementations, range: [[1, 0], [6, 4], [2, 2]] },
        legend: { symbolType: 'stroke', symbolStrokeWidth: 2, symbolSize: 400, symbolStrokeColor: '#333333' },
      },
    },
    layer: [
      { mark: { type: 'line', strokeWidth: 2 } },
      { mark: { type: 'point', filled: true, size: 36 }, encoding: { strokeDash: { value: [1, 0] } } },
    ],
  });

  return {
    $schema: SPEC_SCHEMA,
    title: {
      text: 'Training curves',
      subtitle:
        implementations.length === 2
          ? `${implementations[0]} solid, ${implementations[1]} dashed: the two train in lockstep from the same weights`
          : implementations.join(', '),
    },
    data: { values },
    hconcat: [panel('loss', 'Cross-entropy loss', '.2f'), panel('accuracy', 'Accuracy', '.1%')],
    resolve: { scale: { y: 'independent' } },
    config: CHART_CONFIG,
  };
}

/** One cell of the confusion matrix. */
interface ConfusionCell {
  true: number;
  predicted: number;
  count: number;
  share_of_row: number; // count / images of this true digit
}

/** ColorBrewer Blues from (almost) white, so that empty cells read as empty. */
const CONFUSION_COLOURS = ['#f7fbff', '#c6dbef', '#6baed6', '#2171b5', '#08306b'];

/** Colour scale position beyond which the cell is dark enough for white text. */
const DARK_CELL_POSITION = 0.6;

/**
 * Heatmap of counts, true digit down, predicted digit across, with each count
 * printed in its cell. The sqrt colour scale keeps small off-diagonal counts
 * visible next to a diagonal a hundred times larger.
 */
export function confusionMatrixSpec(matrix: number[][], title: string): TopLevelSpec {
  const values: ConfusionCell[] = [];
  let maxCount = 0;
  matrix.forEach((row, trueDigit) => {
    const rowTotal = row.reduce((a, b) => a + b, 0);
    row.forEach((count, predictedDigit) => {
      values.push({ true: trueDigit, predicted: predictedDigit, count, share_of_row: rowTotal > 0 ? count / rowTotal : 0 });
      maxCount = Math.max(maxCount, count);
    });
  });
  const total = values.reduce((sum, cell) => sum + cell.count, 0);
  // sqrt scale: a cell sits at sqrt(count / max) along the colour ramp.
  const darkCountThreshold = DARK_CELL_POSITION ** 2 * Math.max(maxCount, 1);
  const digits = matrix.map((_, digit) => digit);

  return {
    $schema: SPEC_SCHEMA,
    title: { text: title, subtitle: `${total} test images; rows are the true digit, columns the prediction` },
    data: { values },
    width: 440,
    height: 440,
    encoding: {
      x: {
        field: 'predicted',
        type: 'ordinal',
        title: 'Predicted digit',
        scale: { domain: digits },
        axis: { labelAngle: 0, orient: 'top', labelFontSize: 13 },
      },
      y: { field: 'true', type: 'ordinal', title: 'True digit', scale: { domain: digits }, axis: { labelFontSize: 13 } },
    },
    layer: [
      {
        mark: { type: 'rect', stroke: 'white', strokeWidth: 1 },
        encoding: {
          color: {
            field: 'count',
            type: 'quantitative',
            title: 'Images',
            scale: { type: 'sqrt', domain: [0, Math.max(maxCount, 1)], range: CONFUSION_COLOURS },
            legend: { gradientLength: 300 },
          },
        },
      },
      {
        mark: { type: 'text', fontSize: 12 },
        encoding: {
          text: { field: 'count', type: 'quantitative', format: 'd' },
          color: {
            condition: { test: `datum.count > ${darkCountThreshold}`, value: 'white' },
            value: '#222222',
          },
        },
      },
    ],
    config: CHART_CONFIG,
  };
}

/** One bar of the per-class chart. */
interface ClassMetricBar {
  digit: number;
  metric: 'precision' | 'recall' | 'F1';
  value: number;
  support: number;
}

/**
 * Precision, recall and F1 for each digit as grouped bars. The y axis starts
 * just under the smallest value, since every bar sits near 1.
 */
export function perClassMetricsSpec(perClass: ClassMetrics[]): TopLevelSpec {
  const values: ClassMetricBar[] = [];
  for (const row of perClass) {
    values.push({ digit: row.digit, metric: 'precision', value: row.precision, support: row.support });
    values.push({ digit: row.digit, metric: 'recall', value: row.recall, support: row.support });
    values.push({ digit: row.digit, metric: 'F1', value: row.f1, support: row.support });
  }
  const smallest = Math.min(1, ...values.map((bar) => bar.value));
  // Round down to a 0.02 step, leaving a visible stub for the smallest bar.
  const yMin = Math.max(0, Math.floor((smallest - 0.01) / 0.02) * 0.02);
  const format = 1 - yMin >= 0.1 ? '.0%' : '.1%';

  return {
    $schema: SPEC_SCHEMA,
    title: {
      text: 'Per-class precision, recall and F1 (test set)',
      subtitle: `y axis starts at ${(yMin * 100).toFixed(0)}% so that differences between digits are visible`,
    },
    data: { values },
    width: 620,
    height: 300,
    mark: { type: 'bar' },
    encoding: {
      x: { field: 'digit', type: 'ordinal', title: 'Digit', axis: { labelAngle: 0, labelFontSize: 13 } },
      xOffset: { field: 'metric', type: 'nominal', sort: ['precision', 'recall', 'F1'] },
      y: {
        field: 'value',
        type: 'quantitative',
        title: 'Score',
        scale: { domain: [yMin, 1], zero: false, clamp: true, nice: false },
        axis: { format },
      },
      color: {
        field: 'metric',
        type: 'nominal',
        title: 'Metric',
        sort: ['precision', 'recall', 'F1'],
        scale: { domain: ['precision', 'recall', 'F1'], range: ['#4c78a8', '#f58518', '#54a24b'] },
      },
    },
    config: CHART_CONFIG,
  };
}

/** Renders a Vega-Lite spec to PNG bytes through node-canvas; `scale` multiplies every dimension. */
export async function renderSpecToPng(spec: TopLevelSpec, scale = 2): Promise<Uint8Array> {
  registerFonts();
  const vegaSpec = compile(spec).spec;
  const view = new vega.View(vega.parse(vegaSpec), { renderer: 'none' });
  try {
    // vega's types describe the browser canvas; in Node it is node-canvas.
    const canvas = (await view.toCanvas(scale)) as unknown as Canvas;
    return new Uint8Array(canvas.toBuffer('image/png'));
  } finally {
    view.finalize();
  }
}
