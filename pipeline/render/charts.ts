// Vega-Lite chart specs, as typed data, and their rendering to PNG.
//
//   builder (pure data)            renderSpecToPng
//   trainingCurvesSpec ─┐      ┌──────────────────────────────────────────────┐
//   confusionMatrixSpec ├─spec─▶ vega-lite compile → vega.parse → vega.View    │
//   perClassMetricsSpec │      │ (renderer 'none') → toCanvas (node-canvas) → PNG │
//   classCountsSpec    ─┘      └──────────────────────────────────────────────┘
//
// Every spec carries its data inline, so the JSON saved beside the PNG opens in
// the Vega editor as is. Text is drawn in DejaVu Sans from the dejavu-fonts-ttf
// npm package, registered with node-canvas before the first render.

import { createRequire } from 'node:module';
import { registerFont, type Canvas } from 'canvas';
import * as vega from 'vega';
import { compile, type Config as VegaLiteConfig, type TopLevelSpec } from 'vega-lite';
import type { ClassMetrics, EpochRecord } from '../types.js';
import { SPEC_SCHEMA, implementationLabel } from './format.js';

export const FONT_FAMILY = 'DejaVu Sans';

/** The font files, from the dejavu-fonts-ttf npm package, so that no system font is needed. */
const FONT_MODULES = [
  { module: 'dejavu-fonts-ttf/ttf/DejaVuSans.ttf', weight: 'normal' },
  { module: 'dejavu-fonts-ttf/ttf/DejaVuSans-Bold.ttf', weight: 'bold' },
] as const;

let fontsRegistered = false; // registerFont is process-wide in node-canvas

/** Registers DejaVu Sans (regular and bold) with node-canvas, once per process. */
export function registerFonts(): void {
  if (fontsRegistered) return;
  const require = createRequire(import.meta.url);
  for (const { module, weight } of FONT_MODULES) {
    let file: string;
    try {
      file = require.resolve(module);
    } catch {
      throw new Error(`charts: cannot find the font ${module}; it comes with the npm package dejavu-fonts-ttf (run npm install)`);
    }
    registerFont(file, { family: FONT_FAMILY, weight });
  }
  fontsRegistered = true;
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
 * the colour; implementation is the dash. The first history is drawn last, on top.
 */
export function trainingCurvesSpec(histories: { implementation: string; history: EpochRecord[] }[]): TopLevelSpec {
  const values: CurvePoint[] = [];
  // Vega draws lines in data order: the later implementations go first, beneath the first one.
  for (const { implementation, history } of [...histories].reverse()) {
    const label = implementationLabel(implementation);
    for (const record of history) {
      values.push({ implementation: label, epoch: record.epoch, metric: 'loss', split: 'training', value: record.loss });
      values.push({ implementation: label, epoch: record.epoch, metric: 'loss', split: 'validation', value: record.valLoss });
      values.push({ implementation: label, epoch: record.epoch, metric: 'accuracy', split: 'training', value: record.accuracy });
      values.push({
        implementation: label,
        epoch: record.epoch,
        metric: 'accuracy',
        split: 'validation',
        value: record.valAccuracy,
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
        scale: {
          domain: implementations,
          range: [
            [1, 0],
            [6, 4],
            [2, 2],
          ],
        },
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
          ? `${implementations[0]} solid, ${implementations[1]} dashed beneath it: where only a solid line shows, the two coincide`
          : `${implementations.join(', ')}; validation after each epoch`,
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
  correct: boolean; // on the diagonal
}

/** Right answers in blues, errors in oranges: two linear scales, each with its own legend. */
const CORRECT_COLOURS = ['#deebf7', '#6baed6', '#08306b'];
const ERROR_COLOURS = ['#fdd0a2', '#f16913', '#7f2704'];

/** Share of a scale's maximum beyond which a cell is dark enough for white text. */
const DARK_CELL_SHARE = 0.55;

/**
 * Heatmap of counts, true digit down, predicted digit across, with each count
 * printed in its cell. The diagonal and the errors have separate linear colour
 * scales, so that an error of 5 is as visible as it deserves next to 980 right.
 */
export function confusionMatrixSpec(matrix: number[][], title: string): TopLevelSpec {
  const values: ConfusionCell[] = [];
  matrix.forEach((row, trueDigit) => {
    const rowTotal = row.reduce((a, b) => a + b, 0);
    row.forEach((count, predictedDigit) => {
      values.push({
        true: trueDigit,
        predicted: predictedDigit,
        count,
        share_of_row: rowTotal > 0 ? count / rowTotal : 0,
        correct: trueDigit === predictedDigit,
      });
    });
  });
  const total = values.reduce((sum, cell) => sum + cell.count, 0);
  const maxCorrect = Math.max(1, ...values.filter((cell) => cell.correct).map((cell) => cell.count));
  const maxError = Math.max(0, ...values.filter((cell) => !cell.correct).map((cell) => cell.count));
  const errors = values.filter((cell) => !cell.correct).reduce((sum, cell) => sum + cell.count, 0);
  const digits = matrix.map((_, digit) => digit);
  const legend = { gradientLength: 180, format: 'd', tickCount: 4 };

  return {
    $schema: SPEC_SCHEMA,
    title: {
      text: title,
      subtitle: [
        `${total} test images, ${errors} misclassified; rows are the true digit, columns the prediction.`,
        `Right answers in blue, errors in orange on their own scale (darkest orange = ${maxError}); empty cells white.`,
      ],
    },
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
      { mark: { type: 'rect', fill: 'white', stroke: '#e5e5e5', strokeWidth: 1 } },
      {
        transform: [{ filter: 'datum.correct' }],
        mark: { type: 'rect', stroke: 'white', strokeWidth: 1 },
        encoding: {
          color: {
            field: 'count',
            type: 'quantitative',
            title: 'Right (diagonal)',
            scale: { type: 'linear', domain: [0, maxCorrect], range: CORRECT_COLOURS },
            legend,
          },
        },
      },
      ...(maxError > 0
        ? [
            {
              transform: [{ filter: '!datum.correct && datum.count > 0' }],
              mark: { type: 'rect' as const, stroke: 'white', strokeWidth: 1 },
              encoding: {
                color: {
                  field: 'count',
                  type: 'quantitative' as const,
                  title: 'Errors (off-diagonal)',
                  scale: { type: 'linear' as const, domain: [1, Math.max(2, maxError)], range: ERROR_COLOURS }, // a single error is already orange
                  legend: { ...legend, values: [...new Set([1, Math.round((1 + maxError) / 2), maxError])] },
                },
              },
            },
          ]
        : []),
      {
        transform: [{ filter: 'datum.count > 0' }],
        mark: { type: 'text', fontSize: 12 },
        encoding: {
          text: { field: 'count', type: 'quantitative', format: 'd' },
          color: {
            condition: {
              test: `datum.correct ? datum.count > ${DARK_CELL_SHARE * maxCorrect} : datum.count > ${1 + DARK_CELL_SHARE * (maxError - 1)}`,
              value: 'white',
            },
            value: '#222222',
          },
        },
      },
    ],
    resolve: { scale: { color: 'independent' } },
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

/** One bar of the class-count chart. */
export interface ClassCount {
  split: 'training' | 'validation' | 'test';
  digit: number;
  count: number;
}

/** Images per digit in each split, one panel per split with its own y scale. */
export function classCountsSpec(counts: ClassCount[]): TopLevelSpec {
  const splits = [...new Set(counts.map((bar) => bar.split))];
  const totals = splits.map((split) => `${split} ${counts.filter((bar) => bar.split === split).reduce((sum, bar) => sum + bar.count, 0)}`);
  return {
    $schema: SPEC_SCHEMA,
    title: { text: 'Images per digit in each split', subtitle: `${totals.join(', ')} images; each panel has its own scale` },
    data: { values: counts },
    facet: {
      column: { field: 'split', type: 'nominal', title: null, sort: splits, header: { labelFontSize: 13, labelFontWeight: 'bold' } },
    },
    spec: {
      width: 290,
      height: 180,
      encoding: {
        x: { field: 'digit', type: 'ordinal', title: 'Digit', axis: { labelAngle: 0 } },
        y: { field: 'count', type: 'quantitative', title: 'Images', axis: { format: 'd', tickCount: 5 } },
      },
      layer: [
        {
          mark: { type: 'bar' },
          encoding: {
            color: {
              field: 'split',
              type: 'nominal',
              legend: null,
              scale: { domain: ['training', 'validation', 'test'], range: ['#4c78a8', '#e6550d', '#54a24b'] },
            },
          },
        },
        // Counts inside the bars' tops, where they cannot collide with the frame or each other.
        {
          mark: { type: 'text', baseline: 'top', dy: 4, fontSize: 10, color: 'white' },
          encoding: { text: { field: 'count', type: 'quantitative', format: 'd' } },
        },
      ],
    },
    resolve: { scale: { y: 'independent' } },
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
