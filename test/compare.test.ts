// --compare DIR…: report folders written by the test (metrics built in memory, nothing trained) are
// read back, refused with an exact message when they are not report folders, and set beside this
// run in report.md and index.html: config differences, accuracies with their change, the
// confusion cells that changed, a chart per compared run, and the terminal's table.

import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError, DEFAULTS, type Config } from '../pipeline/config.js';
import { comparedWith, confusionChanges, metricsDiffLines, readComparedRun, type RunResults } from '../pipeline/render/compare.js';
import { buildReport } from '../pipeline/render/report-sections.js';
import { historyCsv, runMetadataJson } from '../pipeline/render/run-files.js';
import { writeReportFolder } from '../pipeline/stages/report.js';
import { paramSize, type ParamName } from '../reference/shapes.js';
import type { ImplementationMetrics, MetricsFile, ModelEvaluation, ReportFile, TrainedModel } from '../pipeline/types.js';
import * as reading from './helpers/report-reading.js';
import { history } from './helpers/report-fixtures.js';

// ---------------------------------------------------------------- fixtures

type Errors = [trueDigit: number, predicted: number, count: number][];

/** 1,000 test images per digit: the given errors, the rest right. */
function confusion(errors: Errors): number[][] {
  const matrix = Array.from({ length: 10 }, () => Array.from({ length: 10 }, () => 0));
  for (const [t, p, count] of errors) matrix[t]![p]! += count;
  matrix.forEach((row, t) => {
    row[t] = 1000 - row.reduce((sum, count) => sum + count, 0);
  });
  return matrix;
}

function implementation(test: number, val: number, errors: Errors): ImplementationMetrics {
  return {
    backend: 'cpu',
    epochs: 3,
    train_accuracy: 0.97,
    val_accuracy: val,
    test_accuracy: test,
    test_loss: 0.14,
    train_seconds: 40,
    train_samples_per_second: 18000,
    confusion_matrix: confusion(errors),
    per_class: Array.from({ length: 10 }, (_, digit) => ({ digit, precision: 0.95, recall: 0.95, f1: 0.95, support: 1000 })),
    macro_avg: { precision: 0.95, recall: 0.95, f1: 0.95, support: 10000 },
    weighted_avg: { precision: 0.95, recall: 0.95, f1: 0.95, support: 10000 },
    most_confused: [],
  };
}

function metrics(config: Partial<Config>, tfjs: ImplementationMetrics, reference?: ImplementationMetrics): MetricsFile {
  return {
    run: runMetadataJson({
      startedAt: '2026-11-28T21:04:05.123Z',
      gitCommit: '0123456789abcdef0123456789abcdef01234567',
      gitDirty: false,
      nodeVersion: '20.18.1',
      tfjsVersion: '4.22.0',
      backend: 'cpu',
      backendVersion: '4.22.0',
      os: 'linux 6.1.0 (x64)',
      cpuModel: 'Test CPU',
      cpuCores: 2,
      wallSeconds: 60,
      peakMemoryMiB: null,
      peakMemoryProcesses: null,
    }),
    config: { ...DEFAULTS, epochs: 3, ...config },
    backend: 'cpu',
    tfjs,
    ...(reference ? { reference } : {}),
    stage_seconds: { train: 40 },
  };
}

// This run: lr 0.01; errors 5→8 ×61, 4→9 ×42, 7→2 ×10 (113 wrong, 9,887 right).
const OURS_ERRORS: Errors = [
  [5, 8, 61],
  [4, 9, 42],
  [7, 2, 10],
];
// The other run: lr 0.05; 5→8 ×40 (−21), 4→9 ×50 (+8), 7→2 unchanged, 3→5 ×7 (+7): 107 wrong, 9,893 right (+6).
const THEIRS_ERRORS: Errors = [
  [5, 8, 40],
  [4, 9, 50],
  [7, 2, 10],
  [3, 5, 7],
];

const OURS: RunResults = {
  metrics: metrics({ lr: 0.01 }, implementation(0.95584, 0.9589, OURS_ERRORS), implementation(0.95512, 0.95871, OURS_ERRORS)),
  histories: [
    { implementation: 'tfjs', history: history([0.9101, 0.9302, 0.9589]) },
    { implementation: 'reference', history: history([0.9099, 0.9287, 0.95871]) },
  ],
};
// Only lr differs in what it computes; out, cacheDir, jobs and referenceThreads cannot change a result.
const LR05 = {
  metrics: metrics(
    { lr: 0.05, out: 'reports-lr05', cacheDir: '/elsewhere', jobs: 1, referenceThreads: 2 },
    implementation(0.97406, 0.9612, THEIRS_ERRORS),
    implementation(0.97311, 0.96007, THEIRS_ERRORS),
  ),
  histories: [
    { implementation: 'tfjs', history: history([0.9402, 0.9555, 0.9612]) },
    { implementation: 'reference', history: history([0.9401, 0.9549, 0.96007]) },
  ],
};
// Same config, no reference (--no-reference is then the one difference).
const NO_REFERENCE = {
  metrics: metrics({ reference: false }, implementation(0.95584, 0.9589, OURS_ERRORS)),
  histories: [{ implementation: 'tfjs', history: history([0.9101, 0.9302, 0.9589]) }],
};

const scratch = mkdtempSync(path.join(os.tmpdir(), 'compare-test-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** A report folder as a run leaves it (the two files --compare reads), named `name` under the scratch folder. */
function reportFolder(name: string, run: RunResults): string {
  const folder = path.join(scratch, name);
  mkdirSync(folder, { recursive: true });
  writeFileSync(path.join(folder, 'metrics.json'), `${JSON.stringify(run.metrics, null, 2)}\n`);
  writeFileSync(path.join(folder, 'training_history.csv'), historyCsv(run.histories));
  return folder;
}

/** Every file under `folder` with its bytes, to show that nothing was written there. */
function snapshot(folder: string): Record<string, string> {
  return Object.fromEntries(
    readdirSync(folder, { recursive: true, encoding: 'utf8' }).map((file) => [file, readFileSync(path.join(folder, file), 'latin1')]),
  );
}

/** The rows of the table whose header is `header`, exactly; an error unless exactly one table has it. */
function rowsOf(tables: reading.Table[], header: string[]): string[][] {
  const found = tables.filter((table) => JSON.stringify(table.header) === JSON.stringify(header));
  if (found.length !== 1) {
    const headers = tables.map((table) => `[${table.header.join(', ')}]`).join(', ');
    throw new Error(`expected one table headed [${header.join(', ')}]; found ${found.length} among ${headers || 'no tables'}`);
  }
  return found[0]!.rows;
}

// ---------------------------------------------------------------- reading a folder

describe('readComparedRun', () => {
  test('reads back the metrics and the per-epoch history a run wrote, and writes nothing into the folder', () => {
    const folder = reportFolder('read-back', LR05);
    const before = snapshot(folder);
    const run = readComparedRun(folder);
    expect(run.folder).toBe(folder);
    expect(run.metrics).toEqual(LR05.metrics);
    expect(run.histories).toEqual(LR05.histories);
    expect(snapshot(folder)).toEqual(before);
  });

  test.each([
    [
      'a missing folder',
      () => path.join(scratch, 'no-such-run'),
      (folder: string) => `--compare ${folder}: expected a report folder of this pipeline (with metrics.json), found no such folder`,
    ],
    [
      'a folder without metrics.json',
      () => {
        const folder = path.join(scratch, 'empty-run');
        mkdirSync(folder, { recursive: true });
        return folder;
      },
      (folder: string) =>
        `--compare ${folder}: expected a report folder of this pipeline (with metrics.json), found no ${folder}/metrics.json`,
    ],
    [
      'a file instead of a folder',
      () => {
        const file = path.join(scratch, 'a-file');
        writeFileSync(file, 'not a folder\n');
        return file;
      },
      (folder: string) => `--compare ${folder}: expected a report folder of this pipeline (with metrics.json), found a file`,
    ],
    [
      'a metrics.json without tfjs.test_accuracy',
      () => {
        const folder = reportFolder('no-test-accuracy', LR05);
        const { test_accuracy: _, ...tfjs } = LR05.metrics.tfjs;
        writeFileSync(path.join(folder, 'metrics.json'), JSON.stringify({ ...LR05.metrics, tfjs }));
        return folder;
      },
      (folder: string) => `${folder}/metrics.json: expected a number at tfjs.test_accuracy, found nothing`,
    ],
    [
      'a reference block without its validation accuracy',
      () => {
        const folder = reportFolder('no-reference-val', LR05);
        writeFileSync(path.join(folder, 'metrics.json'), JSON.stringify({ ...LR05.metrics, reference: { test_accuracy: 0.97 } }));
        return folder;
      },
      (folder: string) => `${folder}/metrics.json: expected a number at reference.val_accuracy, found nothing`,
    ],
    [
      'a confusion matrix of the wrong shape',
      () => {
        const folder = reportFolder('small-matrix', LR05);
        const tfjs = { ...LR05.metrics.tfjs, confusion_matrix: [[1, 2]] };
        writeFileSync(path.join(folder, 'metrics.json'), JSON.stringify({ ...LR05.metrics, tfjs }));
        return folder;
      },
      (folder: string) => `${folder}/metrics.json: expected a 10×10 matrix of counts at tfjs.confusion_matrix, found an array`,
    ],
    [
      'a history without the val_accuracy column',
      () => {
        const folder = reportFolder('old-history', LR05);
        writeFileSync(path.join(folder, 'training_history.csv'), 'implementation,epoch,loss\ntfjs,1,0.5\n');
        return folder;
      },
      (folder: string) =>
        `${folder}/training_history.csv: expected the columns implementation,epoch,loss,accuracy,val_loss,val_accuracy,seconds, ` +
        'found the header "implementation,epoch,loss"',
    ],
    [
      'a history row that is not a number',
      () => {
        const folder = reportFolder('bad-history', LR05);
        const csv = historyCsv(LR05.histories).replace('tfjs,2,', 'tfjs,two,');
        writeFileSync(path.join(folder, 'training_history.csv'), csv);
        return folder;
      },
      (folder: string) => `${folder}/training_history.csv line 3: expected a number for epoch, found "two"`,
    ],
    [
      'a folder without training_history.csv',
      () => {
        const folder = reportFolder('no-history', LR05);
        rmSync(path.join(folder, 'training_history.csv'));
        return folder;
      },
      (folder: string) => `--compare ${folder}: expected ${folder}/training_history.csv beside metrics.json, found no such file`,
    ],
  ])('refuses %s with one line naming the file, what was expected and what was found', (_, make, message) => {
    const folder = make();
    const read = () => readComparedRun(folder);
    expect(read).toThrow(ConfigError);
    expect(read).toThrow(new Error(message(folder)));
  });

  test('refuses a metrics.json that is not JSON, with the parser’s reason', () => {
    const folder = reportFolder('not-json', LR05);
    writeFileSync(path.join(folder, 'metrics.json'), '{"tfjs": ');
    let message = '';
    try {
      readComparedRun(folder);
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      message = (error as Error).message;
    }
    expect(message.startsWith(`${folder}/metrics.json: expected JSON, found text it cannot parse (`)).toBe(true);
    expect(message).not.toContain('\n');
  });
});

// ---------------------------------------------------------------- what differs

describe('confusionChanges', () => {
  test('lists the changed error cells, largest change first, and the correct answers of both', () => {
    const { cells, correct } = confusionChanges(confusion(OURS_ERRORS), confusion(THEIRS_ERRORS));
    expect(cells).toEqual([
      { true: 5, predicted: 8, ours: 61, theirs: 40, change: -21 },
      { true: 4, predicted: 9, ours: 42, theirs: 50, change: 8 },
      { true: 3, predicted: 5, ours: 0, theirs: 7, change: 7 },
    ]);
    expect(correct).toEqual({ ours: 9887, theirs: 9893 });
  });
});

// ---------------------------------------------------------------- the report

describe('the "Compared with" sections', () => {
  const lr05 = reportFolder('reports-lr05', LR05);
  const noReference = reportFolder('reports-noref', NO_REFERENCE);
  let files: ReportFile[];
  let charts: ReportFile[];
  let markdown: string;
  let html: string;

  beforeAll(async () => {
    const comparison = await comparedWith(OURS, [readComparedRun(lr05), readComparedRun(noReference)]);
    charts = comparison.files;
    files = buildReport(OURS.metrics, OURS.histories, { files: [] }, { comparedWith: comparison.sections });
    markdown = reading.text(files, 'report.md');
    html = reading.text(files, 'index.html');
  });

  const documents = () => [
    { name: 'report.md', tables: reading.markdownTables(reading.section(markdown, `Compared with ${lr05}`)) },
    { name: 'index.html', tables: reading.htmlTables(reading.htmlSection(html, `Compared with ${lr05}`)) },
  ];

  test('report.md and index.html both have one section per compared folder, in the order given, after the results', () => {
    for (const document of [markdown, html]) {
      const positions = ['Results', `Compared with ${lr05}`, `Compared with ${noReference}`, 'Training history'].map((heading) =>
        document.search(new RegExp(`(## |<h2>)${heading.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}`)),
      );
      expect(positions.every((position) => position >= 0)).toBe(true);
      expect([...positions].sort((a, b) => a - b)).toEqual(positions);
    }
    expect(html).toContain('<section id="compare-1">');
    expect(html).toContain('<section id="compare-2">');
  });

  test('the accuracies sit side by side with their change in percentage points, the reference too when both trained it', () => {
    for (const { tables } of documents()) {
      expect(rowsOf(tables, ['Metric', 'This run', lr05, 'Change'])).toEqual([
        ['TF.js test accuracy', '95.58%', '97.41%', '+1.83 pp'],
        ['TF.js validation accuracy (last epoch)', '95.89%', '96.12%', '+0.23 pp'],
        ['TypeScript reference test accuracy', '95.51%', '97.31%', '+1.80 pp'],
        ['TypeScript reference validation accuracy (last epoch)', '95.87%', '96.01%', '+0.14 pp'],
      ]);
    }
    const withoutReference = reading.markdownTables(reading.section(markdown, `Compared with ${noReference}`));
    expect(rowsOf(withoutReference, ['Metric', 'This run', noReference, 'Change'])).toEqual([
      ['TF.js test accuracy', '95.58%', '95.58%', '0.00 pp'],
      ['TF.js validation accuracy (last epoch)', '95.89%', '95.89%', '0.00 pp'],
    ]);
  });

  test('the config differences name the flags, and leave out where and how fast a run works', () => {
    const lr05Section = reading.section(markdown, `Compared with ${lr05}`);
    expect(lr05Section).toContain('### Configuration\n\n- `--lr 0.01 → 0.05`\n\n### Accuracy');
    expect(reading.section(markdown, `Compared with ${noReference}`)).toContain('- `--reference true → false`');
    expect(reading.htmlSection(html, `Compared with ${lr05}`)).toContain('<li><code>--lr 0.01 → 0.05</code></li>');
  });

  test('the confusion change lists the error cells that changed and the net change in correct answers', () => {
    for (const { tables } of documents()) {
      expect(rowsOf(tables, ['True digit', 'Predicted digit', 'This run', lr05, 'Change', 'Effect'])).toEqual([
        ['5', '8', '61', '40', '-21', 'fewer errors'],
        ['4', '9', '42', '50', '+8', 'more errors'],
        ['3', '5', '0', '7', '+7', 'more errors'],
      ]);
    }
    expect(reading.unescapeMarkdown(reading.section(markdown, `Compared with ${lr05}`))).toContain(
      'Correct test answers: 9,887 → 9,893 (+6). Error counts that changed, by (true digit, predicted digit): 3.',
    );
    expect(reading.unescapeHtml(reading.htmlSection(html, `Compared with ${lr05}`))).toContain('Correct test answers: 9,887 → 9,893 (+6).');
    expect(reading.section(markdown, `Compared with ${noReference}`)).toContain('No error (off-diagonal cell) changed its count.');
  });

  test('each compared run has its chart, compare_<n>.png in the order given, with its Vega-Lite spec beside it', () => {
    expect(charts.map((file) => file.path)).toEqual([
      'compare_1.png',
      'specs/compare_1.vl.json',
      'compare_2.png',
      'specs/compare_2.vl.json',
    ]);
    for (const png of charts.filter((file) => file.path.endsWith('.png'))) {
      expect([...png.data.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
      expect(html).toContain(`src="data:image/png;base64,${Buffer.from(png.data).toString('base64')}"`);
    }
    const spec = JSON.parse(reading.text(charts, 'specs/compare_1.vl.json')) as {
      data: { values: { run: string; epoch: number; val_accuracy: number }[] };
    };
    expect(spec.data.values).toEqual([
      { run: 'This run', epoch: 1, val_accuracy: 0.9101 },
      { run: 'This run', epoch: 2, val_accuracy: 0.9302 },
      { run: 'This run', epoch: 3, val_accuracy: 0.9589 },
      { run: lr05, epoch: 1, val_accuracy: 0.9402 },
      { run: lr05, epoch: 2, val_accuracy: 0.9555 },
      { run: lr05, epoch: 3, val_accuracy: 0.9612 },
    ]);
    expect(markdown).toContain('](compare_1.png)');
    expect(markdown).toContain('(specs/compare_2.vl.json)');
  });

  test('only the ten largest changes are listed when more cells changed', async () => {
    // t → t + 1 (t + 1 times) for every digit, and 0 → 2 ×11, 1 → 3 ×12; OURS_ERRORS' three cells all go: 15 changed cells.
    const many: Errors = [...Array.from({ length: 10 }, (_, t): Errors[number] => [t, (t + 1) % 10, t + 1]), [0, 2, 11], [1, 3, 12]];
    const folder = reportFolder('many-changes', { ...LR05, metrics: { ...LR05.metrics, tfjs: implementation(0.9, 0.9, many) } });
    const { sections } = await comparedWith(OURS, [readComparedRun(folder)]);
    const report = buildReport(OURS.metrics, OURS.histories, { files: [] }, { comparedWith: sections });
    const compared = reading.section(reading.text(report, 'report.md'), `Compared with ${folder}`);
    expect(rowsOf(reading.markdownTables(compared), ['True digit', 'Predicted digit', 'This run', folder, 'Change', 'Effect'])).toEqual([
      ['5', '8', '61', '0', '-61', 'fewer errors'],
      ['4', '9', '42', '0', '-42', 'fewer errors'],
      ['1', '3', '0', '12', '+12', 'more errors'],
      ['0', '2', '0', '11', '+11', 'more errors'],
      ['7', '2', '10', '0', '-10', 'fewer errors'], // a tie of |10|: the smaller true digit first
      ['9', '0', '0', '10', '+10', 'more errors'],
      ['8', '9', '0', '9', '+9', 'more errors'],
      ['7', '8', '0', '8', '+8', 'more errors'],
      ['6', '7', '0', '7', '+7', 'more errors'],
      ['5', '6', '0', '6', '+6', 'more errors'],
    ]);
    expect(reading.unescapeMarkdown(compared)).toContain(
      'Error counts that changed, by (true digit, predicted digit): 15, the 10 largest below.',
    );
  });

  test('without --compare the report is byte for byte what it was', () => {
    const plain = buildReport(OURS.metrics, OURS.histories, { files: [] });
    const empty = buildReport(OURS.metrics, OURS.histories, { files: [] }, { comparedWith: [] });
    expect(empty).toEqual(plain);
    expect(reading.text(plain, 'report.md')).not.toContain('Compared with reports');
  });
});

// ---------------------------------------------------------------- the terminal

describe('metricsDiffLines', () => {
  test('prints the differing options, then one line per metric as `dvc metrics diff` does', () => {
    const lines = metricsDiffLines('reports', OURS.metrics, { folder: 'reports-lr05', ...LR05 });
    expect(lines).toEqual([
      'reports against reports-lr05: --lr 0.01 → 0.05',
      'Metric                   reports  reports-lr05  Change',
      'tfjs.test_accuracy       95.58%   97.41%        +1.83 pp',
      'tfjs.val_accuracy        95.89%   96.12%        +0.23 pp',
      'reference.test_accuracy  95.51%   97.31%        +1.80 pp',
      'reference.val_accuracy   95.87%   96.01%        +0.14 pp',
    ]);
  });

  test('says "same config" when only where and how fast a run works differ', () => {
    const elsewhere = {
      folder: 'runs/b',
      ...OURS,
      metrics: { ...OURS.metrics, config: { ...OURS.metrics.config, out: 'runs/b', jobs: 2 } },
    };
    expect(metricsDiffLines('reports', OURS.metrics, elsewhere)[0]).toBe('reports against runs/b: same config');
  });
});

// ---------------------------------------------------------------- the report stage

describe('writeReportFolder with --compare', () => {
  const zeros = (name: ParamName) => new Float32Array(paramSize(name));
  const train: TrainedModel = {
    implementation: 'tfjs',
    backend: 'cpu',
    params: { w1: zeros('w1'), b1: zeros('b1'), w2: zeros('w2'), b2: zeros('b2'), w3: zeros('w3'), b3: zeros('b3') },
    history: history([0.9101, 0.9302, 0.9589]),
    trainSeconds: 40,
    samplesPerSecond: 18000,
    trainAccuracy: 0.97,
  };
  const evaluation: ModelEvaluation = {
    implementation: 'tfjs',
    testAccuracy: 0.95584,
    testLoss: 0.14,
    confusionMatrix: confusion(OURS_ERRORS),
    perClass: [],
    macroAverage: { precision: 0.95, recall: 0.95, f1: 0.95, support: 10000 },
    weightedAverage: { precision: 0.95, recall: 0.95, f1: 0.95, support: 10000 },
    mostConfused: [],
    examples: { correct: [], wrong: [] },
    predictions: new Uint8Array(0),
    confidence: new Float32Array(0),
  };
  const inputs = {
    train,
    reference: null,
    evaluate: { tfjs: evaluation, reference: null },
    gradcheck: {
      finiteDifference: {},
      tfjs: {},
      batchSize: 8,
      seed: 42,
      finiteDifferenceSamples: 0,
      finiteDifferenceSkipped: 0,
      step: 1e-5,
      backend: 'cpu',
    },
    visualize: { files: [] },
    experiments: null,
  };
  const config: Config = { ...DEFAULTS, epochs: 3, reference: false, out: path.join(scratch, 'stage-out') };

  test('a folder that is not a report fails before anything is written', async () => {
    const missing = path.join(scratch, 'not-there');
    await expect(writeReportFolder(inputs, config, { stageSeconds: {}, stageKeys: {}, compare: [missing] })).rejects.toThrow(
      `--compare ${missing}: expected a report folder of this pipeline (with metrics.json), found no such folder`,
    );
    expect(existsSync(config.out)).toBe(false);
  });

  test('publishes the section and its chart, logs the table, and leaves the compared folder as it was', async () => {
    const folder = reportFolder('stage-lr05', LR05);
    const before = snapshot(folder);
    const lines: string[] = [];
    const written = await writeReportFolder(inputs, config, { stageSeconds: {}, stageKeys: {}, compare: [folder] }, (line) =>
      lines.push(line),
    );
    expect(written).toEqual(expect.arrayContaining(['compare_1.png', 'specs/compare_1.vl.json']));
    expect(existsSync(path.join(config.out, 'compare_1.png'))).toBe(true);
    for (const file of ['report.md', 'index.html'])
      expect(readFileSync(path.join(config.out, file), 'utf8')).toContain(`Compared with ${folder}`);
    expect(lines).toContain(`${config.out} against ${folder}: --lr 0.01 → 0.05, --reference false → true`);
    expect(lines.find((line) => line.startsWith('tfjs.test_accuracy'))?.split(/ {2,}/)).toEqual([
      'tfjs.test_accuracy',
      '95.58%',
      '97.41%',
      '+1.83 pp',
    ]);
    expect(snapshot(folder)).toEqual(before);
  });
});
