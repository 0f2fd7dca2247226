// report.md and index.html from hand-built metrics: the numbers are formatted
// as promised, both files agree, every figure is embedded, and the HTML is offline.

import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createCanvas } from 'canvas';
import { DEFAULTS } from '../pipeline/config.js';
import { runMetadataJson } from '../pipeline/render/publish.js';
import { buildReport } from '../pipeline/render/report.js';
import { runMetadata } from '../pipeline/report.js';
import type { EpochRecord, ImplementationMetrics, MetricsFile, ReportFile, RunMetadata, Visuals } from '../pipeline/types.js';
import { PNG_PATHS } from './helpers/outputs.js';

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

function confusion(correctPerDigit: number): number[][] {
  return Array.from({ length: 10 }, (_, t) =>
    Array.from({ length: 10 }, (_, p) => (t === p ? correctPerDigit : p === (t + 1) % 10 ? 3 : 0)),
  );
}

function implementation(backend: string, accuracies: { train: number; val: number; test: number }): ImplementationMetrics {
  return {
    backend,
    epochs: 3,
    train_accuracy: accuracies.train,
    val_accuracy: accuracies.val,
    test_accuracy: accuracies.test,
    test_loss: 0.145234,
    train_seconds: 41.27,
    train_samples_per_second: 18174.4,
    confusion_matrix: confusion(997),
    per_class: Array.from({ length: 10 }, (_, digit) => ({
      digit,
      precision: 0.9512 + digit / 1000,
      recall: 0.9745,
      f1: 0.96271,
      support: 1000,
    })),
    macro_avg: { precision: 0.9551, recall: 0.9549, f1: 0.955, support: 10000 },
    weighted_avg: { precision: 0.9562, recall: 0.9561, f1: 0.9561, support: 10000 },
    most_confused: [
      { true: 5, predicted: 8, count: 61 },
      { true: 4, predicted: 9, count: 42 },
    ],
  };
}

function history(validationAccuracies: number[]): EpochRecord[] {
  return validationAccuracies.map((valAccuracy, i) => ({
    epoch: i + 1,
    loss: 0.5 / (i + 1),
    accuracy: 0.9 + i / 100,
    valLoss: 0.6 / (i + 1),
    valAccuracy,
    seconds: 3.25,
  }));
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
};

function metrics(overrides: Partial<MetricsFile> = {}): MetricsFile {
  return {
    run: runMetadataJson(RUN),
    config: { ...DEFAULTS, epochs: 15 },
    backend: 'wasm',
    tfjs: implementation('wasm', { train: 0.96312, val: 0.95891, test: 0.95617 }),
    reference: implementation('typescript', { train: 0.96287, val: 0.95871, test: 0.95604 }),
    gradient_check: {
      finite_difference: { w1: { max_abs_error: 1.2e-9, max_rel_error: 3.4e-7 }, b3: { max_abs_error: 2e-10, max_rel_error: 1e-8 } },
      tfjs: { w1: { max_abs_error: 5e-8, max_rel_error: 2e-5 }, b3: { max_abs_error: 1e-8, max_rel_error: 3e-6 } },
      batch_size: 8,
      seed: 42,
      finite_difference_samples: 50,
      finite_difference_skipped: 2,
      step: 1e-5,
      backend: 'wasm',
    },
    stage_seconds: { load: 0.42, train: 48.2, reference: 95.1 },
    ...overrides,
  };
}

function text(files: ReportFile[], path: string): string {
  const file = files.find((candidate) => candidate.path === path);
  if (!file) throw new Error(`buildReport made no ${path}; it made ${files.map((f) => f.path).join(', ')}`);
  return new TextDecoder().decode(file.data);
}

/** Section of a Markdown report from a heading to the next heading of level 2. */
function section(markdown: string, heading: string): string {
  const start = markdown.indexOf(`## ${heading}`);
  if (start < 0) throw new Error(`no section "${heading}"`);
  const end = markdown.indexOf('\n## ', start + 3);
  return markdown.slice(start, end < 0 ? undefined : end);
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

  test.each([
    ['test accuracy with its fraction', '95.62% (0.9562)'],
    ['validation accuracy', '95.89% (0.9589)'],
    ['train accuracy', '96.31% (0.9631)'],
    ['reference test accuracy', '95.60% (0.9560)'],
    ['test loss to 4 decimals', '0.1452'],
    ['training seconds', '41.3'],
    ['samples per second', '18,174'],
    ['the backend', 'wasm'],
    ['a stage time', '95.1'],
    ['per-class precision', '95.12% (0.9512)'],
    ['a confusion count', '997'],
    ['a most-confused count', '61'],
    ['the gradient check', '3.40e-7'],
    ['the gradient check batch', 'batch of 8 images'],
    ['skipped FD samples', '2 samples were skipped'],
    ['a history value', '93.02% (0.9302)'],
  ])('report.md and index.html both show %s', (_, expected) => {
    expect(markdown).toContain(expected);
    expect(html).toContain(expected);
  });

  test('the largest per-epoch val_accuracy difference is computed from the histories', () => {
    for (const document of [markdown, html]) {
      expect(document).toContain('0.15 pp (0.0015)');
      expect(document).toContain('at epoch 2');
    }
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
    const good = buildReport(metrics({ tfjs: implementation('wasm', { train: 0.98512, val: 0.97831, test: 0.97456 }) }), both, visuals());
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
    expect(table).toContain('| Tensor | FD max abs | FD max rel | TF.js max abs | TF.js max rel |');
    expect(table).toContain('| w1 | 1.20e-9 | 3.40e-7 | 5.00e-8 | 2.00e-5 |');
    expect(table).toContain('| b3 | 2.00e-10 | 1.00e-8 | 1.00e-8 | 3.00e-6 |');
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
