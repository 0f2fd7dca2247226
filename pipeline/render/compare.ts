// --compare DIR…: this run beside other report folders of this pipeline, one
// "Compared with" section each, in the order given. Folders are only read.
//
//   DIR/metrics.json ──────────┐
//   DIR/training_history.csv ──┴─► readComparedRun ─► ComparedRun ─┬─► comparedWith ─► Section + compare_<n>.png + specs/compare_<n>.vl.json
//                                                                  └─► metricsDiffLines ─► the terminal table (as `dvc metrics diff`)
//
// Each section: 1. the config options that differ, 2. test and validation accuracies with their
// change, 3. validation accuracy per epoch of both runs in one chart, 4. the confusion cells that changed.
// "Change" is always the compared run minus this run. K = 10 digits.

import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import type { TopLevelSpec } from 'vega-lite';
import { CONFIG_KEYS, ConfigError, FIELDS, describeValue, type Config } from '../config.js';
import type { EpochRecord, MetricsFile, ReportFile } from '../types.js';
import { CHART_CONFIG, renderSpecToPng } from './charts.js';
import type { Block, Section } from './document.js';
import { SPEC_SCHEMA, implementationLabel, percent, percentagePoints, shownPercent, signed, thousands } from './format.js';

const K = 10; // digits: the confusion matrix is (K, K)

/** Options that change where or how fast a run works, never what it computes. */
const IGNORED_OPTIONS: readonly (keyof Config)[] = ['out', 'cacheDir', 'jobs', 'referenceThreads'];

/** The off-diagonal cells a section lists. */
const TOP_CONFUSION_CHANGES = 10;

const HISTORY_COLUMNS = ['implementation', 'epoch', 'loss', 'accuracy', 'val_loss', 'val_accuracy', 'seconds'] as const;

export type History = { implementation: string; history: EpochRecord[] };

/** What a report shows of a run: its metrics.json and its per-epoch history. */
export interface RunResults {
  metrics: MetricsFile;
  histories: History[];
}

/** Another report folder, as read back. */
export interface ComparedRun extends RunResults {
  folder: string; // as given to --compare
}

// ---------------------------------------------------------------- reading a folder

function fail(message: string): never {
  throw new ConfigError(message);
}

/** The value at a dotted path of parsed JSON, or undefined. */
function valueAt(json: unknown, dotted: string): unknown {
  let value = json;
  for (const key of dotted.split('.')) {
    if (typeof value !== 'object' || value === null || Array.isArray(value) || !Object.hasOwn(value, key)) return undefined;
    value = (value as Record<string, unknown>)[key];
  }
  return value;
}

function requireNumber(file: string, json: unknown, dotted: string): void {
  const value = valueAt(json, dotted);
  if (typeof value !== 'number' || !Number.isFinite(value)) fail(`${file}: expected a number at ${dotted}, found ${describeValue(value)}`);
}

function requireConfusionMatrix(file: string, json: unknown, dotted: string): void {
  const matrix = valueAt(json, dotted);
  const isCount = (count: unknown) => typeof count === 'number' && Number.isInteger(count) && count >= 0;
  const ok =
    Array.isArray(matrix) && matrix.length === K && matrix.every((row) => Array.isArray(row) && row.length === K && row.every(isCount));
  if (!ok) fail(`${file}: expected a ${K}×${K} matrix of counts at ${dotted}, found ${describeValue(matrix)}`);
}

/** metrics.json, checked for every field a comparison reads. */
function readMetrics(file: string): MetricsFile {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    if (!(error instanceof SyntaxError)) throw error; // a file-system error: the CLI words it with its path
    fail(`${file}: expected JSON, found text it cannot parse (${error.message})`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json))
    fail(`${file}: expected a JSON object, found ${describeValue(json)}`);
  const config = valueAt(json, 'config');
  if (typeof config !== 'object' || config === null || Array.isArray(config))
    fail(`${file}: expected an object at config, found ${describeValue(config)}`);
  const implementations = valueAt(json, 'reference') === undefined ? ['tfjs'] : ['tfjs', 'reference']; // no reference after --no-reference
  for (const implementation of implementations) {
    requireNumber(file, json, `${implementation}.test_accuracy`);
    requireNumber(file, json, `${implementation}.val_accuracy`);
  }
  requireConfusionMatrix(file, json, 'tfjs.confusion_matrix');
  return json as MetricsFile;
}

/** training_history.csv, read by its header's column names. */
function readHistories(file: string): History[] {
  const [header = '', ...rows] = readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line !== '');
  const columns = header.split(',');
  if (!HISTORY_COLUMNS.every((column) => columns.includes(column)))
    fail(`${file}: expected the columns ${HISTORY_COLUMNS.join(',')}, found the header ${describeValue(header)}`);
  const column = (name: (typeof HISTORY_COLUMNS)[number]) => columns.indexOf(name);
  const histories: History[] = [];
  rows.forEach((row, i) => {
    const cells = row.split(',');
    const numberIn = (name: (typeof HISTORY_COLUMNS)[number]) => {
      const cell = cells[column(name)];
      const value = Number(cell);
      if (cell === undefined || cell.trim() === '' || !Number.isFinite(value)) {
        fail(`${file} line ${i + 2}: expected a number for ${name}, found ${describeValue(cell)}`);
      }
      return value;
    };
    const implementation = cells[column('implementation')]!;
    const record: EpochRecord = {
      epoch: numberIn('epoch'),
      loss: numberIn('loss'),
      accuracy: numberIn('accuracy'),
      valLoss: numberIn('val_loss'),
      valAccuracy: numberIn('val_accuracy'),
      seconds: numberIn('seconds'),
    };
    const found = histories.find((history) => history.implementation === implementation);
    if (found) found.history.push(record);
    else histories.push({ implementation, history: [record] });
  });
  if (!histories.some((history) => history.implementation === 'tfjs'))
    fail(`${file}: expected rows of the tfjs implementation, found none`);
  return histories;
}

/** Reads another report folder of this pipeline: its metrics.json and training_history.csv. Writes nothing. */
export function readComparedRun(folder: string): ComparedRun {
  const expected = 'expected a report folder of this pipeline (with metrics.json)';
  const stats = statSync(folder, { throwIfNoEntry: false });
  if (!stats) fail(`--compare ${folder}: ${expected}, found no such folder`);
  if (!stats.isDirectory()) fail(`--compare ${folder}: ${expected}, found a file`);
  const metricsPath = path.join(folder, 'metrics.json');
  if (!statSync(metricsPath, { throwIfNoEntry: false })?.isFile()) fail(`--compare ${folder}: ${expected}, found no ${metricsPath}`);
  const historyPath = path.join(folder, 'training_history.csv');
  if (!statSync(historyPath, { throwIfNoEntry: false })?.isFile()) {
    fail(`--compare ${folder}: expected ${historyPath} beside metrics.json, found no such file`);
  }
  return { folder, metrics: readMetrics(metricsPath), histories: readHistories(historyPath) };
}

// ---------------------------------------------------------------- what differs

/** A config value as a flag takes it: 0.01, true, wasm; '' for an empty string. */
function flagValue(value: unknown): string {
  if (value === undefined) return '(not recorded)';
  return value === '' ? "''" : String(value);
}

/** "--lr 0.01 → 0.05" for every option that differs, except those that cannot change the results. */
export function configDifferences(ours: Config, theirs: Config): string[] {
  return CONFIG_KEYS.filter((key) => !IGNORED_OPTIONS.includes(key) && ours[key] !== theirs[key]).map(
    (key) => `--${FIELDS[key].flag} ${flagValue(ours[key])} → ${flagValue(theirs[key])}`,
  );
}

/** One compared quantity: `key` is its path in metrics.json. */
interface ComparedMetric {
  key: string;
  label: string;
  ours: number;
  theirs: number;
}

/** Test and validation accuracy of TF.js, and of the reference when both runs trained it. */
function comparedMetrics(ours: MetricsFile, theirs: MetricsFile): ComparedMetric[] {
  const implementations: ('tfjs' | 'reference')[] = ours.reference && theirs.reference ? ['tfjs', 'reference'] : ['tfjs'];
  return implementations.flatMap((implementation) => {
    const [a, b] = [ours[implementation]!, theirs[implementation]!];
    const name = implementationLabel(implementation);
    return [
      { key: `${implementation}.test_accuracy`, label: `${name} test accuracy`, ours: a.test_accuracy, theirs: b.test_accuracy },
      {
        key: `${implementation}.val_accuracy`,
        label: `${name} validation accuracy (last epoch)`,
        ours: a.val_accuracy,
        theirs: b.val_accuracy,
      },
    ];
  });
}

/** The metric's three cells: both accuracies as printed, and their change in the points of the printed percentages. */
function metricCells({ ours, theirs }: ComparedMetric): [string, string, string] {
  return [percent(ours), percent(theirs), percentagePoints(shownPercent(theirs) - shownPercent(ours))];
}

/** One off-diagonal cell of the confusion matrix whose count changed. */
export interface ConfusionChange {
  true: number;
  predicted: number;
  ours: number;
  theirs: number;
  change: number; // theirs − ours: below 0, fewer of these errors
}

/** Off-diagonal cells that changed, largest change first, and the correct answers (the trace) of both. */
export function confusionChanges(
  ours: number[][],
  theirs: number[][],
): { cells: ConfusionChange[]; correct: { ours: number; theirs: number } } {
  const cells: ConfusionChange[] = [];
  const correct = { ours: 0, theirs: 0 };
  for (let t = 0; t < K; t++) {
    for (let p = 0; p < K; p++) {
      const [a, b] = [ours[t]![p]!, theirs[t]![p]!];
      if (t === p) {
        correct.ours += a;
        correct.theirs += b;
      } else if (a !== b) {
        cells.push({ true: t, predicted: p, ours: a, theirs: b, change: b - a });
      }
    }
  }
  cells.sort((x, y) => Math.abs(y.change) - Math.abs(x.change) || x.true - y.true || x.predicted - y.predicted);
  return { cells, correct };
}

// ---------------------------------------------------------------- the chart

/** Validation accuracy per epoch of TF.js, one line per run. */
export function validationCurvesSpec(runs: { run: string; history: EpochRecord[] }[]): TopLevelSpec {
  const values = runs.flatMap(({ run, history }) =>
    history.map((record) => ({ run, epoch: record.epoch, val_accuracy: record.valAccuracy })),
  );
  const epochs = values.map((value) => value.epoch);
  return {
    $schema: SPEC_SCHEMA,
    title: { text: 'Validation accuracy per epoch (TF.js)', subtitle: runs.map(({ run }) => run).join(' against ') },
    data: { values },
    width: 480,
    height: 280,
    encoding: {
      x: {
        field: 'epoch',
        type: 'quantitative',
        title: 'Epoch',
        scale: { domain: [Math.min(1, ...epochs), Math.max(1, ...epochs)], nice: false },
        axis: { tickMinStep: 1, format: 'd' },
      },
      y: { field: 'val_accuracy', type: 'quantitative', title: 'Validation accuracy', scale: { zero: false }, axis: { format: '.1%' } },
      color: {
        field: 'run',
        type: 'nominal',
        title: 'Run',
        scale: { domain: runs.map(({ run }) => run), range: ['#1f77b4', '#e6550d'] },
      },
    },
    layer: [{ mark: { type: 'line', strokeWidth: 2 } }, { mark: { type: 'point', filled: true, size: 36 } }],
    config: CHART_CONFIG,
  };
}

// ---------------------------------------------------------------- the section

const THIS_RUN = 'This run';

function tfjsHistory(histories: History[]): EpochRecord[] {
  return histories.find((history) => history.implementation === 'tfjs')?.history ?? [];
}

/** The n-th "Compared with" section (n from 1), its chart already rendered as `figure`. */
function comparedSection(ours: RunResults, other: ComparedRun, n: number, figure: { png: ReportFile; specPath: string }): Section {
  const { folder, metrics: theirs } = other;
  const differences = configDifferences(ours.metrics.config, theirs.config);
  const { cells, correct } = confusionChanges(ours.metrics.tfjs.confusion_matrix, theirs.tfjs.confusion_matrix);
  const shown = cells.slice(0, TOP_CONFUSION_CHANGES);
  const sameTestImages = ours.metrics.config.testSize === theirs.config.testSize && ours.metrics.config.dataDir === theirs.config.dataDir;
  const blocks: Block[] = [
    { kind: 'heading', level: 2, text: `Compared with ${folder}` },
    {
      kind: 'paragraph',
      content: ['This run against the report folder ', { code: folder }, '. Every change below is that run minus this one.'],
    },
    { kind: 'heading', level: 3, text: 'Configuration' },
    differences.length === 0
      ? {
          kind: 'paragraph',
          content: ['Same config (--out, --cache-dir, --jobs and --reference-threads aside, which do not change the results).'],
        }
      : { kind: 'list', items: differences.map((difference) => [{ code: difference }]) },
    { kind: 'heading', level: 3, text: 'Accuracy' },
    {
      kind: 'table',
      header: ['Metric', THIS_RUN, folder, 'Change'],
      numeric: [false, true, true, true],
      rows: comparedMetrics(ours.metrics, theirs).map((metric) => [metric.label, ...metricCells(metric)]),
    },
    {
      kind: 'figure',
      file: figure.png,
      caption: `Validation accuracy after each epoch (TF.js): this run and ${folder}.`,
      specPath: figure.specPath,
    },
    { kind: 'heading', level: 3, text: 'Confusion matrix change (TF.js, test set)' },
    {
      kind: 'paragraph',
      content: [
        `Correct test answers: ${thousands(correct.ours)} → ${thousands(correct.theirs)} (${signed(correct.theirs - correct.ours, 0)}). `,
        sameTestImages
          ? ''
          : 'The two runs tested different images (--test-size or --data-dir differ), so these are counts of different images. ',
        cells.length === 0
          ? 'No error (off-diagonal cell) changed its count.'
          : `Error counts that changed, by (true digit, predicted digit): ${cells.length}` +
            `${cells.length > shown.length ? `, the ${shown.length} largest below` : ''}.`,
      ],
    },
  ];
  if (shown.length > 0) {
    blocks.push({
      kind: 'table',
      header: ['True digit', 'Predicted digit', THIS_RUN, folder, 'Change', 'Effect'],
      numeric: [true, true, true, true, true, false],
      rows: shown.map((cell) => [
        `${cell.true}`,
        `${cell.predicted}`,
        `${cell.ours}`,
        `${cell.theirs}`,
        signed(cell.change, 0),
        cell.change < 0 ? 'fewer errors' : 'more errors',
      ]),
    });
  }
  return { id: `compare-${n}`, blocks };
}

/** The "Compared with" sections and their charts (compare_<n>.png, specs/compare_<n>.vl.json), in the order of `others`. */
export async function comparedWith(
  ours: RunResults,
  others: readonly ComparedRun[],
): Promise<{ sections: Section[]; files: ReportFile[] }> {
  const sections: Section[] = [];
  const files: ReportFile[] = [];
  for (const [i, other] of others.entries()) {
    const n = i + 1;
    const spec = validationCurvesSpec([
      { run: THIS_RUN, history: tfjsHistory(ours.histories) },
      { run: other.folder, history: tfjsHistory(other.histories) },
    ]);
    const png: ReportFile = { path: `compare_${n}.png`, data: await renderSpecToPng(spec) };
    const specFile: ReportFile = {
      path: `specs/compare_${n}.vl.json`,
      data: new TextEncoder().encode(`${JSON.stringify(spec, null, 2)}\n`),
    };
    files.push(png, specFile);
    sections.push(comparedSection(ours, other, n, { png, specPath: specFile.path }));
  }
  return { sections, files };
}

// ---------------------------------------------------------------- the terminal

/** Columns left-aligned, two spaces apart. */
function alignColumns(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  return rows.map((row) =>
    row
      .map((cell, column) => cell.padEnd(widths[column]!))
      .join('  ')
      .trimEnd(),
  );
}

/**
 * The terminal's view of one comparison, as `dvc metrics diff` prints it: the differing options,
 * then one line per metric (its metrics.json path) with this run (`out`), the other run and the change.
 */
export function metricsDiffLines(out: string, ours: MetricsFile, other: ComparedRun): string[] {
  const differences = configDifferences(ours.config, other.metrics.config);
  return [
    `${out} against ${other.folder}: ${differences.length === 0 ? 'same config' : differences.join(', ')}`,
    ...alignColumns([
      ['Metric', out, other.folder, 'Change'],
      ...comparedMetrics(ours, other.metrics).map((metric) => [metric.key, ...metricCells(metric)]),
    ]),
  ];
}
