// report.md and index.html from hand-built metrics: the numbers are formatted
// as promised, both files agree, every figure is embedded, and the HTML is offline.
// metrics.json's gradient_check block keeps the snake_case keys users and scripts read.

import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createCanvas } from 'canvas';
import { DEFAULTS } from '../pipeline/config.js';
import { gradientCheckFromJson, metricsFile, runMetadataJson } from '../pipeline/render/run-files.js';
import { buildReport } from '../pipeline/render/report-sections.js';
import { runMetadata } from '../pipeline/provenance.js';
import { paramSize, type ParamName } from '../reference/shapes.js';
import type {
  ConfusedPair,
  GradientCheck,
  ImplementationMetrics,
  MetricsFile,
  ModelEvaluation,
  RunMetadata,
  TrainedModel,
  Visuals,
} from '../pipeline/types.js';
import { PNG_PATHS } from './helpers/outputs.js';
import { history } from './helpers/report-fixtures.js';
import {
  htmlSection,
  htmlTables,
  markdownTables,
  section,
  text,
  unescapeHtml,
  unescapeMarkdown,
  type Table,
} from './helpers/report-reading.js';

/** A small PNG of its own colour, so each file's base64 is distinct. */
function tinyPng(seed: number): Uint8Array {
  const canvas = createCanvas(40, 20);
  const ctx = canvas.getContext('2d');
  ctx.fillStyle = `rgb(${(seed * 37) % 256}, ${(seed * 91) % 256}, ${(seed * 53) % 256})`;
  ctx.fillRect(0, 0, 40, 20);
  return new Uint8Array(canvas.toBuffer('image/png'));
}

function visuals(): Visuals {
  const encoder = new TextEncoder();
  return {
    files: [
      ...PNG_PATHS.map((path, i) => ({ path, data: tinyPng(i + 1) })),
      ...['training_curves', 'confusion_matrix', 'per_class_metrics', 'class_counts'].map((name) => ({
        path: `specs/${name}.vl.json`,
        data: encoder.encode('{}\n'),
      })),
    ],
  };
}

/** 1,000 test images per digit: 3 taken for the next digit, the confused pairs, and the rest right. */
function confusion(pairs: ConfusedPair[]): number[][] {
  const matrix = Array.from({ length: 10 }, (_, t) => Array.from({ length: 10 }, (_, p): number => (p === (t + 1) % 10 ? 3 : 0)));
  for (const pair of pairs) matrix[pair.true]![pair.predicted]! += pair.count;
  matrix.forEach((row, t) => {
    row[t] = 1000 - row.reduce((sum, count) => sum + count, 0);
  });
  return matrix;
}

/** What one implementation measured; TF.js and the reference differ in every field, so a swapped column shows. */
interface Measured {
  train: number;
  val: number;
  test: number;
  loss: number;
  seconds: number;
  samplesPerSecond: number;
  fiveAsEight: number; // test images of a 5 predicted as 8
}

const TFJS: Measured = {
  train: 0.96312,
  val: 0.95891,
  test: 0.95617,
  loss: 0.145234,
  seconds: 41.27,
  samplesPerSecond: 18174.4,
  fiveAsEight: 61,
};
const REFERENCE: Measured = {
  train: 0.96287,
  val: 0.95871,
  test: 0.95604,
  loss: 0.151289,
  seconds: 88.64,
  samplesPerSecond: 8462.2,
  fiveAsEight: 58,
};

function implementation(backend: string, measured: Measured): ImplementationMetrics {
  const mostConfused = [
    { true: 5, predicted: 8, count: measured.fiveAsEight },
    { true: 4, predicted: 9, count: 42 },
  ];
  return {
    backend,
    epochs: 3,
    train_accuracy: measured.train,
    val_accuracy: measured.val,
    test_accuracy: measured.test,
    test_loss: measured.loss,
    train_seconds: measured.seconds,
    train_samples_per_second: measured.samplesPerSecond,
    confusion_matrix: confusion(mostConfused),
    per_class: Array.from({ length: 10 }, (_, digit) => ({
      digit,
      precision: 0.9512 + digit / 1000,
      recall: 0.9745,
      f1: 0.96271,
      support: 1000,
    })),
    macro_avg: { precision: 0.9551, recall: 0.9549, f1: 0.955, support: 10000 },
    weighted_avg: { precision: 0.9562, recall: 0.9561, f1: 0.9561, support: 10000 },
    most_confused: mostConfused,
  };
}

const TFJS_HISTORY = history([0.9101, 0.9302, 0.9589]);
const REFERENCE_HISTORY = history([0.9099, 0.9287, 0.9587]); // largest gap: 0.0015 at epoch 2

const RUN: RunMetadata = {
  startedAt: '2026-11-28T21:04:05.123Z',
  gitCommit: '0123456789abcdef0123456789abcdef01234567',
  gitDirty: true,
  nodeVersion: '20.18.1',
  tfjsVersion: '4.22.0',
  backend: 'wasm',
  backendVersion: '4.22.1',
  os: 'linux 6.1.0 (x64)',
  cpuModel: 'Test CPU @ 2.10GHz',
  cpuCores: 2,
  wallSeconds: 183.46,
  peakMemoryMiB: 612.4,
  peakMemoryProcesses: 3,
};

/** The gradient check's settings as metrics.json writes them (snake_case), shared by the fixture and the round-trip test. */
const CHECK_SETTINGS_JSON = {
  batch_size: 8,
  seed: 42,
  finite_difference_samples: 50,
  finite_difference_skipped: 2,
  step: 1e-5,
  backend: 'wasm',
} as const;

function metrics(overrides: Partial<MetricsFile> = {}): MetricsFile {
  return {
    run: runMetadataJson(RUN),
    config: { ...DEFAULTS, epochs: 15 },
    backend: 'wasm',
    tfjs: implementation('wasm', TFJS),
    reference: implementation('typescript', REFERENCE),
    gradient_check: {
      finite_difference: { w1: { max_abs_error: 1.2e-9, max_rel_error: 3.4e-7 }, b3: { max_abs_error: 2e-10, max_rel_error: 1e-8 } },
      tfjs: {
        w1: { max_abs_error: 5e-8, max_rel_error: 2e-5, max_rounding_ratio: 0.171 },
        b3: { max_abs_error: 1e-8, max_rel_error: 3e-6, max_rounding_ratio: 0.042 },
      },
      ...CHECK_SETTINGS_JSON,
    },
    stage_seconds: { load: 0.42, train: 48.2, reference: 95.1 },
    ...overrides,
  };
}

/** The one cell in `column` of the row whose leading cells are `row`; an error unless exactly one exists. */
function cell(tables: Table[], row: string[], column: string): string | undefined {
  const found = tables.flatMap(({ header, rows }) => {
    const index = header.indexOf(column);
    if (index < 0) return [];
    return rows.filter((cells) => row.every((label, i) => cells[i] === label)).map((cells) => cells[index]);
  });
  if (found.length !== 1) throw new Error(`expected one cell in row [${row.join(', ')}], column "${column}"; found ${found.length}`);
  return found[0];
}

/** The sentences of a report.md section's paragraphs (not its tables, lists or captions), as plain text. */
function markdownSentences(sectionText: string): string[] {
  return sectionText
    .split('\n')
    .filter((line) => line !== '' && !/^[|#!*-]/.test(line))
    .flatMap((line) => unescapeMarkdown(line.replace(/\*\*|`/g, '')).split(/(?<=\.) /));
}

/** The sentences of an index.html section's <p> elements, as plain text. */
function htmlSentences(sectionHtml: string): string[] {
  return [...sectionHtml.matchAll(/<p>(.*?)<\/p>/g)].flatMap((match) => unescapeHtml(match[1]!.replace(/<[^>]+>/g, '')).split(/(?<=\.) /));
}

describe('buildReport', () => {
  const both = [
    { implementation: 'tfjs', history: TFJS_HISTORY },
    { implementation: 'reference', history: REFERENCE_HISTORY },
  ];
  const files = buildReport(metrics(), both, visuals());
  const markdown = text(files, 'report.md');
  const html = text(files, 'index.html');

  test('writes report.md and index.html', () => {
    expect(files.map((f) => f.path)).toEqual(['report.md', 'index.html']);
  });

  // [fact, section heading, leading cells of its row, column header, the exact cell]
  test.each([
    ['test accuracy with its fraction', 'Results', ['Test accuracy'], 'TF.js', '95.62% (0.9562)'],
    ['validation accuracy', 'Results', ['Validation accuracy (last epoch)'], 'TF.js', '95.89% (0.9589)'],
    ['train accuracy', 'Results', ['Train accuracy (after training)'], 'TF.js', '96.31% (0.9631)'],
    ['reference test accuracy', 'Results', ['Test accuracy'], 'TypeScript reference', '95.60% (0.9560)'],
    ['test loss to 4 decimals', 'Results', ['Test loss'], 'TF.js', '0.1452'],
    ['reference test loss', 'Results', ['Test loss'], 'TypeScript reference', '0.1513'],
    ['the test loss difference', 'Results', ['Test loss'], 'Difference (reference − TF.js)', '+0.0061'], // 0.151289 − 0.145234
    ['training seconds', 'Results', ['Training seconds'], 'TF.js', '41.3'],
    ['reference training seconds', 'Results', ['Training seconds'], 'TypeScript reference', '88.6'],
    ['samples per second', 'Results', ['Training images/s'], 'TF.js', '18,174'],
    ['reference samples per second', 'Results', ['Training images/s'], 'TypeScript reference', '8,462'],
    ['a stage time', 'Timings', ['reference'], 'Seconds', '95.1'],
    ['the total stage time', 'Timings', ['total'], 'Seconds', '143.7'], // 0.42 + 48.2 + 95.1
    ['per-class precision', 'Per-class metrics (test set)', ['0'], 'Precision (TF.js)', '95.12% (0.9512)'],
    ['a confusion count on the diagonal', 'Confusion matrix counts (TF.js)', ['5'], '5', '936'], // 1000 − 3 − 61
    ['a confusion count off the diagonal', 'Confusion matrix counts (TF.js)', ['5'], '8', '61'],
    ['the transposed confusion count (true 8, predicted 5)', 'Confusion matrix counts (TF.js)', ['8'], '5', '0'],
    ['a most-confused count', 'Mistakes (test set)', ['5', '8'], 'TF.js (images)', '61'],
    ['a most-confused count of the reference', 'Mistakes (test set)', ['5', '8'], 'TypeScript reference (images)', '58'],
    ['a most-confused difference', 'Mistakes (test set)', ['5', '8'], 'Difference', '-3'],
    ['the gradient check', 'Gradient check', ['w1'], 'FD max rel', '3.40e-7'],
    ['the rounding ratio of the TF.js check', 'Gradient check', ['b3'], 'TF.js rounding ratio', '0.042'],
    ['a history value', 'Training history', ['2'], 'val_accuracy (TF.js)', '93.02% (0.9302)'],
  ])('report.md and index.html show %s in its cell', (_, heading, row, column, expected) => {
    expect(cell(markdownTables(section(markdown, heading)), row, column)).toBe(expected);
    expect(cell(htmlTables(htmlSection(html, heading)), row, column)).toBe(expected);
  });

  test.each([
    ['the backend', 'MNIST training report', 'TF.js ran on the wasm backend.'],
    [
      'the gradient check batch',
      'Gradient check',
      "The reference's analytic gradients against central finite differences in float64 (FD) and against TF.js's own gradients, " +
        'on one batch of 8 images (seed 42, wasm backend).',
    ],
    [
      'skipped FD samples',
      'Gradient check',
      'FD sampled 50 parameters per tensor with step h = 1.00e-5; 2 samples were skipped because a ReLU input sat within h of 0.',
    ],
    [
      'the largest per-epoch val_accuracy difference, computed from the histories',
      'Results',
      'Largest per-epoch |val_accuracy| difference between the two: 0.15 pp (0.0015) at epoch 2 ' +
        '(TF.js 93.02%, reference 92.87%; about 15 of 10,000 validation images).',
    ],
  ])('report.md and index.html state %s in its own sentence', (_, heading, sentence) => {
    expect(markdownSentences(section(markdown, heading))).toContain(sentence);
    expect(htmlSentences(htmlSection(html, heading))).toContain(sentence);
  });

  test('the comparison with the course document states published and measured numbers and their differences', () => {
    const comparison = section(markdown, 'Compared with the original course document');
    expect(comparison).toContain('about 98.5% train, 97.8% validation and 97.2–97.9% test accuracy in 2–3 minutes of CPU');
    expect(comparison).toContain('96.31% train, 95.89% validation and 95.62% test accuracy');
    expect(comparison).toContain('-2.19 pp'); // 96.31 − 98.5
    expect(comparison).toContain('-1.91 pp'); // 95.89 − 97.8
    expect(comparison).toContain('1.58 pp below the published 97.2–97.9%'); // 97.2 − 95.62
    expect(comparison).toContain('do not follow from the spec hyperparameters (lr 0.01, batch 64, 15 epochs');
    expect(comparison).toContain('95.5–95.7%');
  });

  test('a test accuracy inside the published range is not called inconsistent', () => {
    const good = buildReport(
      metrics({ tfjs: implementation('wasm', { ...TFJS, train: 0.98512, val: 0.97831, test: 0.97456 }) }),
      both,
      visuals(),
    );
    const comparison = section(text(good, 'report.md'), 'Compared with the original course document');
    expect(comparison).toContain('within the published 97.2–97.9%');
    expect(comparison).toContain('+0.01 pp'); // 98.51 − 98.5
    expect(comparison).not.toContain('do not follow');
  });

  test('the course comparison appears only for the spec hyperparameters, and one epoch is singular', () => {
    const quick = text(buildReport(metrics({ config: { ...DEFAULTS, epochs: 1, lr: 0.1 } }), both, visuals()), 'report.md');
    expect(quick).not.toContain('course document');
    expect(quick).toContain('for 1 epoch. ');
    expect(markdown).toContain('for 15 epochs. ');
  });

  test('the run metadata comes before the results', () => {
    for (const document of [markdown, html]) {
      for (const expected of [
        '2026-11-28 21:04:05 UTC',
        '183.5 s wall time',
        '0123456789ab',
        'with uncommitted changes',
        'Node 20.18.1',
        'TF.js 4.22.0',
        'wasm backend 4.22.1',
        'linux 6.1.0 (x64)',
        'Test CPU @ 2.10GHz',
        '2 cores',
      ]) {
        expect(document).toContain(expected);
        expect(document.indexOf(expected)).toBeLessThan(document.indexOf('Results'));
      }
    }
  });

  test('results lead: the comparison table, curves and confusion matrix come before configuration and timings', () => {
    const order = ['## Results', 'training_curves.png', 'confusion_matrix.png', '## Configuration', '## Timings', '## Training history'];
    const positions = order.map((heading) => markdown.indexOf(heading));
    expect(positions.every((position) => position >= 0)).toBe(true);
    expect([...positions].sort((a, b) => a - b)).toEqual(positions);
    expect(html).toMatch(/<details id="configuration">\n<summary><h2>Configuration<\/h2><\/summary>/);
  });

  test('one results table compares TF.js and the reference, with the difference', () => {
    const results = section(markdown, 'Results');
    expect(results).toContain('|  | TF.js | TypeScript reference | Difference (reference − TF.js) |');
    expect(results).toContain('| Test accuracy | 95.62% (0.9562) | 95.60% (0.9560) | -0.01 pp |'); // 95.604 − 95.617
    expect(results).toContain('| Validation accuracy (last epoch) | 95.89% (0.9589) | 95.87% (0.9587) | -0.02 pp |');
    expect(markdown).not.toMatch(/### (TF\.js|TypeScript reference)\n/); // no per-implementation copies of a table
  });

  test('without --experiments the report says how to run them', () => {
    expect(section(markdown, 'Experiments')).toContain('`npm run pipeline -- --experiments`');
  });

  test('extra HTML sections go right after the results, in index.html only', () => {
    const panel = '<section id="panel"><p>a live panel</p></section>';
    const withPanel = buildReport(metrics(), both, visuals(), { htmlAfterResults: [panel] });
    const page = text(withPanel, 'index.html');
    const results = page.indexOf('<section id="results">');
    expect(results).toBeGreaterThan(0);
    expect(page.indexOf(panel)).toBeGreaterThan(results);
    expect(page.indexOf(panel)).toBeLessThan(page.indexOf('<section id="training-curves">'));
    expect(text(withPanel, 'report.md')).toBe(markdown);
  });

  test('report.md embeds every PNG with a relative link, and links the specs', () => {
    for (const path of PNG_PATHS) expect(markdown).toMatch(new RegExp(`!\\[[^\\]]+\\]\\(${path.replace('.', '\\.')}\\)`));
    expect(markdown).toContain('(specs/training_curves.vl.json)');
  });

  test('index.html inlines every PNG as a data URI and loads nothing from the network', () => {
    for (const file of visuals().files.filter((f) => f.path.endsWith('.png'))) {
      expect(html).toContain(`src="data:image/png;base64,${Buffer.from(file.data).toString('base64')}"`);
    }
    expect(html.match(/<img /g)).toHaveLength(PNG_PATHS.length);
    expect(html).not.toMatch(/https?:\/\//);
    expect(html).not.toMatch(/<(script|link)\b/);
    expect(html).toMatch(/^<!DOCTYPE html>/);
  });

  test('report.md and index.html show the same numbers', () => {
    const numbers = (document: string) =>
      (
        document
          .replace(/<style>[\s\S]*?<\/style>/, '')
          .replace(/data:image\/png;base64,[A-Za-z0-9+/=]+/g, '')
          .match(/-?\d[\d,]*\.\d+(%| pp)?/g) ?? []
      ).sort();
    expect(numbers(html)).toEqual(numbers(markdown));
  });

  test('the gradient check table has one row per tensor', () => {
    const table = section(markdown, 'Gradient check');
    expect(table).toContain('| Tensor | FD max abs | FD max rel | TF.js max abs | TF.js max rel | TF.js rounding ratio |');
    expect(table).toContain('| w1 | 1.20e-9 | 3.40e-7 | 5.00e-8 | 2.00e-5 | 0.171 |');
    expect(table).toContain('| b3 | 2.00e-10 | 1.00e-8 | 1.00e-8 | 3.00e-6 | 0.042 |');
  });
});

describe('runMetadata', () => {
  test('says "unknown" for the commit outside a git repository, and describes this process and machine', () => {
    const outside = mkdtempSync(path.join(os.tmpdir(), 'no-git-'));
    try {
      const run = runMetadata('wasm', outside);
      expect(run.gitCommit).toBe('unknown');
      expect(run.gitDirty).toBe('unknown');
      expect(run.nodeVersion).toBe(process.versions.node);
      expect(run.cpuCores).toBe(os.cpus().length);
      expect(run.backendVersion).toMatch(/^\d+\.\d+\.\d+/);
      expect(Date.now() - Date.parse(run.startedAt)).toBeCloseTo(run.wallSeconds * 1000, -3);
    } finally {
      rmSync(outside, { recursive: true, force: true });
    }
  });
});

describe('buildReport without the reference', () => {
  const { reference: _, gradient_check: __, ...rest } = metrics();
  const files = buildReport(rest, [{ implementation: 'tfjs', history: TFJS_HISTORY }], visuals());
  const markdown = text(files, 'report.md');

  test('says there is nothing to compare, and has no reference or gradient-check rows', () => {
    expect(markdown).toContain('Only TF.js ran');
    expect(markdown).not.toContain('| TypeScript reference |');
    expect(markdown).not.toContain('### TypeScript reference');
    expect(markdown).not.toContain('## Gradient check');
    expect(text(files, 'index.html')).toContain('Only TF.js ran');
  });
});

describe("metrics.json's gradient_check block", () => {
  const check: GradientCheck = {
    finiteDifference: { 'dense1/kernel': { maxAbsError: 1.2e-9, maxRelError: 3.4e-7 } },
    tfjs: { 'dense1/kernel': { maxAbsError: 5e-8, maxRelError: 2e-5, maxRoundingRatio: 0.171 } },
    batchSize: 8,
    seed: 42,
    finiteDifferenceSamples: 50,
    finiteDifferenceSkipped: 2,
    step: 1e-5,
    backend: 'wasm',
  };
  const zeros = (name: ParamName) => new Float32Array(paramSize(name));
  const trained: TrainedModel = {
    implementation: 'tfjs',
    backend: 'wasm',
    params: { w1: zeros('w1'), b1: zeros('b1'), w2: zeros('w2'), b2: zeros('b2'), w3: zeros('w3'), b3: zeros('b3') }, // not written to metrics.json
    history: TFJS_HISTORY,
    trainSeconds: 41.27,
    samplesPerSecond: 18174.4,
    trainAccuracy: 0.96312,
  };
  const evaluation: ModelEvaluation = {
    implementation: 'tfjs',
    testAccuracy: 0.95617,
    testLoss: 0.145234,
    confusionMatrix: confusion([]),
    perClass: [],
    macroAverage: { precision: 0.9551, recall: 0.9549, f1: 0.955, support: 10000 },
    weightedAverage: { precision: 0.9562, recall: 0.9561, f1: 0.9561, support: 10000 },
    mostConfused: [],
    examples: { correct: [], wrong: [] },
    predictions: new Uint8Array(0),
    confidence: new Float32Array(0),
  };
  const written = JSON.parse(
    JSON.stringify(
      metricsFile({
        run: RUN,
        config: DEFAULTS,
        tfjs: trained,
        tfjsEvaluation: evaluation,
        reference: null,
        referenceEvaluation: null,
        gradientCheck: check,
        stageSeconds: {},
        experiments: null,
      }),
    ),
  ) as MetricsFile;

  test('has the snake_case keys it had before the in-memory names became camelCase, in the same order', () => {
    const block = written.gradient_check!;
    expect(Object.keys(block)).toEqual([
      'finite_difference',
      'tfjs',
      'batch_size',
      'seed',
      'finite_difference_samples',
      'finite_difference_skipped',
      'step',
      'backend',
    ]);
    expect(Object.keys(block.finite_difference['dense1/kernel']!)).toEqual(['max_abs_error', 'max_rel_error']);
    expect(Object.keys(block.tfjs['dense1/kernel']!)).toEqual(['max_abs_error', 'max_rel_error', 'max_rounding_ratio']);
    expect(block).toEqual({
      finite_difference: { 'dense1/kernel': { max_abs_error: 1.2e-9, max_rel_error: 3.4e-7 } },
      tfjs: { 'dense1/kernel': { max_abs_error: 5e-8, max_rel_error: 2e-5, max_rounding_ratio: 0.171 } },
      ...CHECK_SETTINGS_JSON,
    });
  });

  test('reads back as the check that was written, and a block without the ratio reads back without it', () => {
    expect(gradientCheckFromJson(written.gradient_check!)).toEqual(check);
    const older = { ...written.gradient_check!, tfjs: { 'dense1/kernel': { max_abs_error: 5e-8, max_rel_error: 2e-6 } } };
    expect(gradientCheckFromJson(older).tfjs).toEqual({ 'dense1/kernel': { maxAbsError: 5e-8, maxRelError: 2e-6 } });
  });
});
