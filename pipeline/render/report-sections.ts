// report.md and index.html: what a run measured, results first, built as a
// list of sections (pipeline/render/document.ts renders them both).
//
//   metrics, histories, visuals ─► reportDocument ─► Section[] ─┬─► renderMarkdown ─► report.md
//                                                               └─► renderHtml     ─► index.html (+ extra HTML sections)
//
// --compare adds a "Compared with" section per other run folder after the results (pipeline/render/compare.ts).

import { FIELDS } from '../config.js';
import { FD_MAX_REL_ERROR, TFJS_MAX_ROUNDING_RATIO, gradientBoundViolations } from '../stages/gradcheck.js';
import type { EpochRecord, ImplementationMetrics, MetricsFile, ProvenanceJson, ReportFile, Visuals } from '../types.js';
import { renderHtml, renderMarkdown, type Block, type Inline, type Section } from './document.js';
import { gradientCheckFromJson, textFile } from './run-files.js';
import {
  counted,
  implementationLabel,
  percent,
  percentAndFraction,
  percentagePoints,
  scientific,
  seconds,
  shownPercent,
  signed,
  thousands,
} from './format.js';

// ---------------------------------------------------------------- blocks

/** A section under its level-2 heading. */
function section(id: string, title: string, blocks: Block[], options: { folded?: boolean } = {}): Section {
  return { id, ...options, blocks: [{ kind: 'heading', level: 2, text: title }, ...blocks] };
}

function paragraph(...content: Inline[]): Block {
  return { kind: 'paragraph', content };
}

// ---------------------------------------------------------------- the inputs of every section

type History = { implementation: string; history: EpochRecord[] };

interface Implementation {
  name: string;
  metrics: ImplementationMetrics;
}

/** The figures of the visualize stage; remembers which were placed, for the leftovers at the end. */
function figureShelf(visuals: Visuals) {
  const pngs = visuals.files.filter((file) => file.path.endsWith('.png'));
  const placed = new Set<string>();
  return {
    figure(path: string, caption: string): Block[] {
      const file = pngs.find((candidate) => candidate.path === path);
      if (!file) return [];
      placed.add(path);
      const specPath = `specs/${path.replace(/\.png$/, '.vl.json')}`;
      const hasSpec = visuals.files.some((candidate) => candidate.path === specPath);
      return [{ kind: 'figure', file, caption, specPath: hasSpec ? specPath : null }];
    },
    unplaced: (): ReportFile[] => pngs.filter((file) => !placed.has(file.path)),
  };
}
type Figures = ReturnType<typeof figureShelf>;

interface Report {
  metrics: MetricsFile;
  implementations: Implementation[]; // TF.js, then the reference when it ran
  histories: History[];
  figures: Figures;
  comparedWith: Section[]; // --compare: one section per other run folder
}

/** One row per quantity, one column per implementation, and reference − TF.js when both ran. */
function comparisonTable(
  implementations: Implementation[],
  rows: {
    name: string;
    value: (m: ImplementationMetrics) => number;
    format: (value: number) => string;
    difference: (d: number) => string;
  }[],
): Block {
  const both = implementations.length === 2;
  return {
    kind: 'table',
    header: ['', ...implementations.map((implementation) => implementation.name), ...(both ? ['Difference (reference − TF.js)'] : [])],
    numeric: [false, ...implementations.map(() => true), ...(both ? [true] : [])],
    rows: rows.map(({ name, value, format, difference }) => {
      const values = implementations.map((implementation) => value(implementation.metrics));
      return [name, ...values.map(format), ...(both ? [difference(values[1]! - values[0]!)] : [])];
    }),
  };
}

/** Accuracy differences in the percentage points of the printed percentages. */
const accuracyDifference = (fractionDifference: number) => percentagePoints(fractionDifference * 100);

// ---------------------------------------------------------------- the sections, in reading order

/** The report: a table of contents of section functions. */
function reportDocument(report: Report): Section[] {
  return [
    summary(report),
    results(report),
    ...report.comparedWith,
    trainingCurves(report),
    mistakes(report),
    perClass(report),
    theData(report),
    insideTheModel(report),
    gradientCheck(report),
    courseComparison(report),
    experiments(report),
    configuration(report),
    timings(report),
    trainingHistory(report),
    confusionCounts(report),
    otherFigures(report),
  ].filter((section) => section.blocks.length > 0);
}

/** Title, what was trained, the headline numbers, and where the run came from. */
function summary({ metrics, implementations }: Report): Section {
  const { config, run } = metrics;
  return {
    id: 'summary',
    blocks: [
      { kind: 'heading', level: 1, text: 'MNIST training report' },
      paragraph(
        `A 784 → 128 ReLU → 64 ReLU → 10 softmax network trained with SGD (learning rate ${config.lr}, batch ${config.batchSize}) ` +
          `on ${thousands(config.trainSize)} MNIST images for ${counted(config.epochs, 'epoch')}. TF.js ran on the `,
        { code: metrics.backend },
        ' backend.',
      ),
      {
        kind: 'list',
        items: implementations.map(({ name, metrics: m }) => [
          { strong: name },
          `: ${percent(m.test_accuracy)} test accuracy, test loss ${m.test_loss.toFixed(4)}, ${seconds(m.train_seconds)} s of training`,
        ]),
      },
      paragraph('Where this run came from:'),
      {
        kind: 'list',
        items: [
          [
            { strong: 'Run' },
            `: started ${run.started_at.replace('T', ' ').replace(/\.\d+Z$/, ' UTC')}, ${seconds(run.wall_seconds)} s wall time in all`,
            run.peak_memory_mib === null || run.peak_memory_processes === null
              ? ''
              : `, peak memory ${run.peak_memory_mib.toFixed(0)} MiB over ${run.peak_memory_processes} process${run.peak_memory_processes === 1 ? '' : 'es'} (all together, sampled every 0.1 s)`,
          ],
          [
            { strong: 'Code' },
            ': commit ',
            { code: run.git_commit === 'unknown' ? 'unknown' : run.git_commit.slice(0, 12) },
            run.git_dirty === 'unknown'
              ? ', working tree state unknown'
              : run.git_dirty
                ? ' with uncommitted changes'
                : ', no uncommitted changes',
          ],
          [{ strong: 'Software' }, `: Node ${run.node_version}, TF.js ${run.tfjs_version}, ${run.backend} backend ${run.backend_version}`],
          [{ strong: 'Machine' }, `: ${run.os}, ${run.cpu_model}, ${counted(run.cpu_cores, 'core')}`],
          ...implementations.flatMap(({ name, metrics: m }) => trainedByItem(name, m.trained_by, run)),
        ],
      },
    ],
  };
}

/** A model trained by another run than the one that published it (a rerun of later stages): that run's start, commit and versions. */
function trainedByItem(name: string, trainedBy: ProvenanceJson | undefined, run: ProvenanceJson): Inline[][] {
  if (!trainedBy) return [[{ strong: `${name} model` }, ': trained by an earlier run, which the cache entry does not record']];
  const same = trainedBy.started_at === run.started_at && trainedBy.git_commit === run.git_commit && trainedBy.git_dirty === run.git_dirty;
  if (same) return [];
  return [
    [
      { strong: `${name} model` },
      `: trained by the run started ${trainedBy.started_at.replace('T', ' ').replace(/\.\d+Z$/, ' UTC')}, commit `,
      { code: trainedBy.git_commit === 'unknown' ? 'unknown' : trainedBy.git_commit.slice(0, 12) },
      trainedBy.git_dirty === true ? ' with uncommitted changes' : '',
      `, Node ${trainedBy.node_version}, TF.js ${trainedBy.tfjs_version}, ${trainedBy.backend} backend ${trainedBy.backend_version}`,
    ],
  ];
}

/** One table of both implementations with their difference; the place for extra HTML sections after it. */
function results({ metrics, implementations, histories }: Report): Section {
  const blocks: Block[] = [
    comparisonTable(implementations, [
      { name: 'Test accuracy', value: (m) => m.test_accuracy, format: percentAndFraction, difference: accuracyDifference },
      { name: 'Test loss', value: (m) => m.test_loss, format: (v) => v.toFixed(4), difference: (d) => signed(d, 4) },
      {
        name: 'Validation accuracy (last epoch)',
        value: (m) => m.val_accuracy,
        format: percentAndFraction,
        difference: accuracyDifference,
      },
      {
        name: 'Train accuracy (after training)',
        value: (m) => m.train_accuracy,
        format: percentAndFraction,
        difference: accuracyDifference,
      },
      { name: 'Training seconds', value: (m) => m.train_seconds, format: seconds, difference: (d) => signed(d, 1, ' s') },
      { name: 'Training images/s', value: (m) => m.train_samples_per_second, format: thousands, difference: (d) => signed(d, 0) },
    ]),
  ];
  const [tfjs, reference] = [histories.find((h) => h.implementation === 'tfjs'), histories.find((h) => h.implementation === 'reference')];
  const gap = tfjs && reference ? largestValidationGap(tfjs.history, reference.history) : null;
  if (gap) {
    const images = Math.round(gap.difference * metrics.config.valSize);
    blocks.push(
      paragraph(
        `Both trained from the same initial weights over the same batches${threadsNote(implementations[1]!.metrics)}. ` +
          'Largest per-epoch |val_accuracy| difference between the two: ',
        { strong: `${(gap.difference * 100).toFixed(2)} pp (${gap.difference.toFixed(4)})` },
        ` at epoch ${gap.epoch} (TF.js ${percent(gap.first)}, reference ${percent(gap.second)}; ` +
          `about ${thousands(images)} of ${thousands(metrics.config.valSize)} validation images).`,
      ),
    );
  } else {
    blocks.push(paragraph('Only TF.js ran (no reference history), so there is no per-epoch difference to report.'));
  }
  return section('results', 'Results', blocks);
}

/** Largest |val_accuracy| difference between two histories at the same epoch. */
function largestValidationGap(
  first: EpochRecord[],
  second: EpochRecord[],
): { epoch: number; difference: number; first: number; second: number } | null {
  let largest: { epoch: number; difference: number; first: number; second: number } | null = null;
  for (const record of first) {
    const other = second.find((candidate) => candidate.epoch === record.epoch);
    if (!other) continue;
    const difference = Math.abs(record.valAccuracy - other.valAccuracy);
    if (!largest || difference > largest.difference)
      largest = { epoch: record.epoch, difference, first: record.valAccuracy, second: other.valAccuracy };
  }
  return largest;
}

function trainingCurves({ implementations, figures }: Report): Section {
  const dashes =
    implementations.length === 2 ? ' TF.js solid, the reference dashed beneath it: where only a solid line shows, the two coincide.' : '';
  return section('training-curves', 'Training curves', [
    ...figures.figure('training_curves.png', `Loss and accuracy per epoch, on the training batches and on the validation split.${dashes}`),
  ]);
}

/** The confusion matrix, the most confused pairs with their images, and sample predictions. */
function mistakes({ implementations, figures }: Report): Section {
  const [tfjs, reference] = implementations;
  const blocks: Block[] = [
    ...figures.figure(
      'confusion_matrix.png',
      'Confusion matrix of the TF.js model on the test set: right answers in blue, errors in orange on their own scale.',
    ),
  ];
  if (reference) {
    const cells = tfjs!.metrics.confusion_matrix.flatMap((row, t) =>
      row.map((count, p) => reference.metrics.confusion_matrix[t]![p]! - count),
    );
    const differing = cells.filter((difference) => difference !== 0).length;
    blocks.push(
      paragraph(
        `The reference's confusion matrix differs from TF.js's in ${differing} of ${cells.length} cells ` +
          `(so at least ${counted(cells.reduce((sum, difference) => sum + Math.abs(difference), 0) / 2, 'image')} predicted differently).`,
      ),
    );
  }
  // The pairs either model confuses most, counted in both matrices.
  const pairs = implementations.flatMap(({ metrics }) => metrics.most_confused.map((pair) => `${pair.true}→${pair.predicted}`));
  const shown = [...new Set(pairs)].map((key) => key.split('→').map(Number) as [number, number]);
  shown.sort(
    ([t1, p1], [t2, p2]) => tfjs!.metrics.confusion_matrix[t2]![p2]! - tfjs!.metrics.confusion_matrix[t1]![p1]! || t1 - t2 || p1 - p2,
  );
  blocks.push({ kind: 'heading', level: 3, text: 'Most confused pairs' });
  blocks.push({
    kind: 'table',
    header: [
      'True digit',
      'Predicted digit',
      ...implementations.map(({ name }) => `${name} (images)`),
      ...(reference ? ['Difference'] : []),
    ],
    numeric: [true, true, ...implementations.map(() => true), ...(reference ? [true] : [])],
    rows: shown.map(([t, p]) => {
      const counts = implementations.map(({ metrics }) => metrics.confusion_matrix[t]![p]!);
      return [`${t}`, `${p}`, ...counts.map((count) => `${count}`), ...(reference ? [signed(counts[1]! - counts[0]!, 0)] : [])];
    }),
  });
  blocks.push(...figures.figure('misclassified.png', 'The test images behind the most confused pairs (TF.js).'));
  blocks.push(
    ...figures.figure(
      'sample_predictions.png',
      `Sample test predictions (TF.js): the first right and the first wrong ones in test order. The wrong ones are picked on purpose; ` +
        `the model's error rate is ${percent(1 - tfjs!.metrics.test_accuracy)}.`,
    ),
  );
  return section('mistakes', 'Mistakes (test set)', blocks);
}

function perClass({ implementations, figures }: Report): Section {
  const [tfjs, reference] = implementations;
  const row = (name: string, m: { precision: number; recall: number; f1: number; support: number }, referenceF1: number | undefined) => [
    name,
    thousands(m.support),
    percentAndFraction(m.precision),
    percentAndFraction(m.recall),
    percentAndFraction(m.f1),
    ...(referenceF1 === undefined ? [] : [percentAndFraction(referenceF1), accuracyDifference(referenceF1 - m.f1)]),
  ];
  const t = tfjs!.metrics;
  const r = reference?.metrics;
  return section('per-class', 'Per-class metrics (test set)', [
    {
      kind: 'table',
      header: ['Digit', 'Support', 'Precision (TF.js)', 'Recall (TF.js)', 'F1 (TF.js)', ...(r ? ['F1 (reference)', 'F1 difference'] : [])],
      numeric: [false, true, true, true, true, ...(r ? [true, true] : [])],
      rows: [
        ...t.per_class.map((m, digit) => row(`${m.digit}`, m, r?.per_class[digit]?.f1)),
        row('macro avg', t.macro_avg, r?.macro_avg.f1),
        row('weighted avg', t.weighted_avg, r?.weighted_avg.f1),
      ],
    },
    ...figures.figure('per_class_metrics.png', 'Precision, recall and F1 per digit (TF.js).'),
  ]);
}

function theData({ metrics, figures }: Report): Section {
  const { config } = metrics;
  return section('data', 'The data', [
    paragraph(
      `Training: the first ${thousands(config.trainSize)} images of the MNIST training file; validation: its last ${thousands(config.valSize)}; ` +
        `test: the first ${thousands(config.testSize)} of the test file. Pixels are scaled to [0, 1].`,
    ),
    ...figures.figure('class_counts.png', 'Images per digit in each split.'),
    ...figures.figure('training_images.png', 'The first training images of each digit.'),
  ]);
}

function insideTheModel({ figures }: Report): Section {
  return section('inside', 'Inside the model', [
    ...figures.figure('weight_visualization.png', 'First-layer weights of the TF.js model, one 28×28 tile per hidden unit.'),
    ...figures.figure('activation_patterns.png', 'Hidden-layer activations of the TF.js model for one test image of each digit.'),
  ]);
}

function gradientCheck({ metrics }: Report): Section {
  if (!metrics.gradient_check) return { id: 'gradient-check', blocks: [] };
  const check = gradientCheckFromJson(metrics.gradient_check);
  const tensors = [...new Set([...Object.keys(check.finiteDifference), ...Object.keys(check.tfjs)])];
  const cell = (value: number | undefined) => (value === undefined ? '–' : scientific(value));
  return section('gradient-check', 'Gradient check', [
    paragraph(
      `The reference's analytic gradients against central finite differences in float64 (FD) and against TF.js's own gradients, ` +
        `on one batch of ${check.batchSize} images (seed ${check.seed}, ${check.backend} backend). ` +
        `FD sampled ${check.finiteDifferenceSamples} parameters per tensor with step h = ${scientific(check.step)}; ` +
        `${check.finiteDifferenceSkipped} samples were skipped because a ReLU input sat within h of 0. ` +
        `Bounds: FD max rel < ${scientific(FD_MAX_REL_ERROR)}; TF.js within ${TFJS_MAX_ROUNDING_RATIO} u of float32 rounding ` +
        `(u = 2⁻²⁴, times each entry's sum of absolute terms: the rounding ratio); ` +
        `${gradientBoundViolations(check).length === 0 ? 'both hold' : 'VIOLATED, see the table'}.`,
    ),
    {
      kind: 'table',
      header: ['Tensor', 'FD max abs', 'FD max rel', 'TF.js max abs', 'TF.js max rel', 'TF.js rounding ratio'],
      numeric: [false, true, true, true, true, true],
      rows: tensors.map((tensor) => [
        tensor,
        cell(check.finiteDifference[tensor]?.maxAbsError),
        cell(check.finiteDifference[tensor]?.maxRelError),
        cell(check.tfjs[tensor]?.maxAbsError),
        cell(check.tfjs[tensor]?.maxRelError),
        check.tfjs[tensor]?.maxRoundingRatio?.toFixed(3) ?? '–',
      ]),
    },
  ]);
}

/** What the original course document published for this network. */
const COURSE_DOCUMENT = {
  trainAccuracy: 98.5, // percent
  validationAccuracy: 97.8,
  testAccuracy: [97.2, 97.9] as const,
  cpuSeconds: [120, 180] as const, // "2–3 minutes of CPU"
};

/** The spec's hyperparameters, and the test accuracy they actually give. */
const SPEC_HYPERPARAMETERS = { lr: 0.01, batchSize: 64, epochs: 15 };
const SPEC_TEST_ACCURACY = [95.5, 95.7] as const; // percent

/** Where a measurement sits against a published range: inside it, or how far below or above. */
function rangeDifference(measured: number, [low, high]: readonly [number, number], unit: string, decimals: number): string {
  if (measured < low) return `${(low - measured).toFixed(decimals)}${unit} below the published ${low}–${high}`;
  if (measured > high) return `${(measured - high).toFixed(decimals)}${unit} above the published ${low}–${high}`;
  return `within the published ${low}–${high}`;
}

/** The published figures against this run; only a run of the spec hyperparameters is a test of them. */
function courseComparison({ metrics }: Report): Section {
  const config = metrics.config;
  const usedSpec =
    config.lr === SPEC_HYPERPARAMETERS.lr &&
    config.batchSize === SPEC_HYPERPARAMETERS.batchSize &&
    config.epochs === SPEC_HYPERPARAMETERS.epochs;
  if (!usedSpec) return { id: 'course', blocks: [] };
  const ours = metrics.tfjs;
  const test = shownPercent(ours.test_accuracy);
  const trainDifference = percentagePoints(shownPercent(ours.train_accuracy) - COURSE_DOCUMENT.trainAccuracy);
  const validationDifference = percentagePoints(shownPercent(ours.val_accuracy) - COURSE_DOCUMENT.validationAccuracy);
  const testDifference = `${rangeDifference(test, COURSE_DOCUMENT.testAccuracy, ' pp', 2)}%`;
  const timeDifference = `${rangeDifference(Number(seconds(ours.train_seconds)), COURSE_DOCUMENT.cpuSeconds, ' s', 1)} s`;
  const [testLow, testHigh] = COURSE_DOCUMENT.testAccuracy;
  const notes = [
    'Train accuracy here is measured on the whole training split after the last epoch; training time excludes the validation passes and depends on the machine.',
  ];
  if (test < testLow) {
    notes.push(
      `The published figures do not follow from the spec hyperparameters (lr ${SPEC_HYPERPARAMETERS.lr}, batch ${SPEC_HYPERPARAMETERS.batchSize}, ` +
        `${SPEC_HYPERPARAMETERS.epochs} epochs of plain SGD), which give about ${SPEC_TEST_ACCURACY[0]}–${SPEC_TEST_ACCURACY[1]}% test accuracy.`,
    );
  }
  notes.push(`This run used those hyperparameters (lr ${config.lr}, batch ${config.batchSize}, ${config.epochs} epochs).`);
  return section('course', 'Compared with the original course document', [
    paragraph(
      `The course document published about ${COURSE_DOCUMENT.trainAccuracy}% train, ${COURSE_DOCUMENT.validationAccuracy}% validation ` +
        `and ${testLow}–${testHigh}% test accuracy in 2–3 minutes of CPU. ` +
        `This run measured ${percent(ours.train_accuracy)} train, ${percent(ours.val_accuracy)} validation and ` +
        `${percent(ours.test_accuracy)} test accuracy (TF.js) in ${seconds(ours.train_seconds)} s of training on the ` +
        `${ours.backend} backend: ${trainDifference} on train, ${validationDifference} on validation, and on test ${testDifference}.`,
    ),
    {
      kind: 'table',
      header: ['Quantity', 'Course document', 'This run (TF.js)', 'Difference'],
      numeric: [false, true, true, false],
      rows: [
        ['Train accuracy', `${COURSE_DOCUMENT.trainAccuracy}%`, percent(ours.train_accuracy), trainDifference],
        ['Validation accuracy', `${COURSE_DOCUMENT.validationAccuracy}%`, percent(ours.val_accuracy), validationDifference],
        ['Test accuracy', `${testLow}–${testHigh}%`, percent(ours.test_accuracy), testDifference],
        ['Training time', '2–3 min of CPU', `${seconds(ours.train_seconds)} s (${ours.backend})`, timeDifference],
      ],
    },
    paragraph(notes.join(' ')),
  ]);
}

/** The best recipe when --experiments ran; otherwise how to run them. */
function experiments({ metrics }: Report): Section {
  const block = metrics.experiments;
  const best = block?.best_combination;
  const content: Inline[] = block
    ? best
      ? [
          `The same 784-128-64-10 network under other training recipes, ${counted(block.epochs, 'epoch')} each: see `,
          { code: 'experiments.md' },
          `. The best combination by validation accuracy, ${best.name} (${best.recipe}), reached ` +
            `${percent(best.val_accuracy)} validation and ${percent(best.test_accuracy)} test accuracy.`,
        ]
      : ['The experiments ran, but no combination of recipes did; see ', { code: 'experiments.md' }, '.']
    : [
        'This run tried no other training recipes. ',
        { code: 'npm run pipeline -- --experiments' },
        ' trains the same network under other optimizers, learning-rate schedules, dropout, batch normalisation and ' +
          'augmentation, each as long as the model above, and compares them in experiments.md.',
      ];
  return section('experiments', 'Experiments', [paragraph(...content)]);
}

function configuration({ metrics }: Report): Section {
  const config = metrics.config;
  return section(
    'configuration',
    'Configuration',
    [
      {
        kind: 'table',
        header: ['Option', 'Value', 'Meaning'],
        numeric: [false, false, false],
        rows: (Object.keys(config) as (keyof typeof config)[]).map((key) => [
          key,
          JSON.stringify(config[key]),
          FIELDS[key]?.description ?? '',
        ]),
      },
    ],
    { folded: true },
  );
}

function timings({ metrics }: Report): Section {
  const stages = Object.entries(metrics.stage_seconds);
  const total = stages.reduce((sum, [, value]) => sum + value, 0);
  return section(
    'timings',
    'Timings',
    [
      paragraph(
        `This run took ${seconds(metrics.run.wall_seconds)} s of wall time. Stages read from the cache keep the time of the run that ` +
          'computed them, so their total can exceed it. Training time excludes the validation passes.',
      ),
      {
        kind: 'table',
        header: ['Stage', 'Seconds'],
        numeric: [false, true],
        rows: [...stages.map(([stage, value]) => [stage, seconds(value)]), ['total', seconds(total)]],
      },
    ],
    { folded: true },
  );
}

/** Per-epoch numbers of both implementations side by side. */
function trainingHistory({ histories }: Report): Section {
  const [tfjs, reference] = histories;
  const names = histories.map(({ implementation }) => (implementation === 'tfjs' ? 'TF.js' : implementation));
  const columns = [
    { title: 'loss', cell: (record: EpochRecord) => record.loss.toFixed(4) },
    { title: 'val_accuracy', cell: (record: EpochRecord) => percentAndFraction(record.valAccuracy) },
    { title: 'seconds', cell: (record: EpochRecord) => seconds(record.seconds) },
  ];
  return section(
    'history',
    'Training history',
    [
      paragraph(
        "Per epoch: mean training loss over the batches, validation accuracy after the epoch, and the epoch's seconds; every column is in training_history.csv.",
      ),
      {
        kind: 'table',
        header: [
          'Epoch',
          ...columns.flatMap(({ title }) => [
            ...names.map((name) => `${title} (${name})`),
            ...(title === 'val_accuracy' && reference ? ['difference'] : []),
          ]),
        ],
        numeric: [
          true,
          ...columns.flatMap(({ title }) => [...names.map(() => true), ...(title === 'val_accuracy' && reference ? [true] : [])]),
        ],
        rows: (tfjs?.history ?? []).map((record, i) => {
          const other = reference?.history[i];
          return [
            `${record.epoch}`,
            ...columns.flatMap(({ title, cell }) => [
              cell(record),
              ...(reference ? [other ? cell(other) : '–'] : []),
              ...(title === 'val_accuracy' && reference ? [other ? accuracyDifference(other.valAccuracy - record.valAccuracy) : '–'] : []),
            ]),
          ];
        }),
      },
    ],
    { folded: true },
  );
}

function confusionCounts({ implementations }: Report): Section {
  const matrix = implementations[0]!.metrics.confusion_matrix;
  const digits = matrix.map((_, digit) => `${digit}`);
  return section(
    'confusion-counts',
    'Confusion matrix counts (TF.js)',
    [
      paragraph('Rows are the true digit, columns the predicted digit.'),
      {
        kind: 'table',
        header: ['true ↓ predicted →', ...digits, 'total'],
        numeric: [false, ...digits.map(() => true), true],
        rows: matrix.map((row, digit) => [`${digit}`, ...row.map((count) => `${count}`), `${row.reduce((a, b) => a + b, 0)}`]),
      },
    ],
    { folded: true },
  );
}

function otherFigures({ figures }: Report): Section {
  const unplaced = figures.unplaced();
  if (unplaced.length === 0) return { id: 'other-figures', blocks: [] };
  return section(
    'other-figures',
    'Other figures',
    unplaced.flatMap((file) => figures.figure(file.path, file.path)),
  );
}

/** ", the reference on 2 threads", or nothing when the thread count is not recorded. */
function threadsNote(m: ImplementationMetrics): string {
  return m.threads === undefined ? '' : `, the reference on ${counted(m.threads, 'thread')}`;
}

// ---------------------------------------------------------------- the files

export interface ReportOptions {
  /** Extra HTML blocks for index.html, placed after the headline results (e.g. a live panel). */
  htmlAfterResults?: string[];
  /** Sections that set this run beside others (--compare), placed after the results in both files. */
  comparedWith?: Section[];
}

/** report.md and a self-contained index.html with the same content. */
export function buildReport(metrics: MetricsFile, histories: History[], visuals: Visuals, options: ReportOptions = {}): ReportFile[] {
  const implementations: Implementation[] = [{ name: implementationLabel('tfjs'), metrics: metrics.tfjs }];
  if (metrics.reference) implementations.push({ name: implementationLabel('reference'), metrics: metrics.reference });
  const sections = reportDocument({
    metrics,
    implementations,
    histories,
    figures: figureShelf(visuals),
    comparedWith: options.comparedWith ?? [],
  });
  return [
    textFile('report.md', renderMarkdown(sections)),
    textFile('index.html', renderHtml(sections, 'MNIST training report', { results: options.htmlAfterResults ?? [] })),
  ];
}
