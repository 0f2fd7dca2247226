// report.md and index.html, rendered from one document model so that the two
// cannot disagree on a single number.
//
//   metrics, histories, visuals ─► reportDocument ─► Block[] ─┬─► renderMarkdown ─► report.md
//                                                             └─► renderHtml     ─► index.html (offline, PNGs inlined)

import { FIELDS } from '../config.js';
import type { ExperimentsMetrics } from '../experiments/comparison.js';
import { FD_MAX_REL_ERROR, TFJS_MAX_ABS_ERROR, gradientBoundViolations } from '../gradcheck.js';
import type { ClassMetrics, EpochRecord, ImplementationMetrics, MetricsFile, ReportFile, Visuals } from '../types.js';
import { implementationLabel, percent, thousands } from './format.js';

/** What the report reads of metrics.json's `experiments` block. */
type ExperimentsBlock = Pick<ExperimentsMetrics, 'epochs' | 'best_combination'>;


// ---------------------------------------------------------------- document model

type Inline = string | { strong: string } | { code: string } | { link: string; href: string };

type Block =
  | { kind: 'heading'; level: 1 | 2 | 3; text: string }
  | { kind: 'paragraph'; content: Inline[] }
  | { kind: 'list'; items: Inline[][] }
  | { kind: 'table'; header: string[]; rows: string[][]; numeric: boolean[] } // numeric columns align right
  | { kind: 'figure'; file: ReportFile; caption: string; specPath: string | null };

// ---------------------------------------------------------------- number formats

/** 0.97234 → "97.23% (0.9723)" */
function percentAndFraction(fraction: number): string {
  return `${percent(fraction)} (${fraction.toFixed(4)})`;
}

/** A signed difference in percentage points: "+0.35 pp", "-1.62 pp", "0.00 pp". */
function percentagePoints(difference: number): string {
  const rounded = difference.toFixed(2);
  if (Number(rounded) === 0) return '0.00 pp';
  return `${difference > 0 ? '+' : '-'}${Math.abs(difference).toFixed(2)} pp`;
}

/** A fraction as percent rounded to the 2 decimals shown, so differences match the printed numbers. */
function shownPercent(fraction: number): number {
  return Number((fraction * 100).toFixed(2));
}

function seconds(value: number): string {
  return value.toFixed(1);
}

function scientific(value: number): string {
  return value.toExponential(2);
}

// ---------------------------------------------------------------- the course document

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

// ---------------------------------------------------------------- building the document

interface Implementation {
  key: 'tfjs' | 'reference';
  name: string;
  metrics: ImplementationMetrics;
}

/** Where a measurement sits against a published range: inside it, or how far below or above. */
function rangeDifference(measured: number, [low, high]: readonly [number, number], unit: string, decimals: number): string {
  if (measured < low) return `${(low - measured).toFixed(decimals)}${unit} below the published ${low}–${high}`;
  if (measured > high) return `${(measured - high).toFixed(decimals)}${unit} above the published ${low}–${high}`;
  return `within the published ${low}–${high}`;
}

function courseComparison(metrics: MetricsFile): Block[] {
  const ours = metrics.tfjs;
  const train = shownPercent(ours.train_accuracy);
  const validation = shownPercent(ours.val_accuracy);
  const test = shownPercent(ours.test_accuracy);
  const trainDifference = percentagePoints(train - COURSE_DOCUMENT.trainAccuracy);
  const validationDifference = percentagePoints(validation - COURSE_DOCUMENT.validationAccuracy);
  const testDifference = `${rangeDifference(test, COURSE_DOCUMENT.testAccuracy, ' pp', 2)}%`;
  const time = Number(seconds(ours.train_seconds));
  const timeDifference = `${rangeDifference(time, COURSE_DOCUMENT.cpuSeconds, ' s', 1)} s`;
  const [testLow, testHigh] = COURSE_DOCUMENT.testAccuracy;

  const blocks: Block[] = [
    { kind: 'heading', level: 2, text: 'Compared with the original course document' },
    {
      kind: 'paragraph',
      content: [
        `The course document published about ${COURSE_DOCUMENT.trainAccuracy}% train, ${COURSE_DOCUMENT.validationAccuracy}% validation ` +
          `and ${testLow}–${testHigh}% test accuracy in 2–3 minutes of CPU. ` +
          `This run measured ${percent(ours.train_accuracy)} train, ${percent(ours.val_accuracy)} validation and ` +
          `${percent(ours.test_accuracy)} test accuracy (TF.js) in ${seconds(ours.train_seconds)} s of training on the ` +
          `${ours.backend} backend: ${trainDifference} on train, ${validationDifference} on validation, and on test ${testDifference}.`,
      ],
    },
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
  ];
  const notes: string[] = [
    'Train accuracy here is measured on the whole training split after the last epoch; training time excludes the validation passes and depends on the machine.',
  ];
  if (test < testLow) {
    notes.push(
      `The published figures do not follow from the spec hyperparameters (lr ${SPEC_HYPERPARAMETERS.lr}, batch ${SPEC_HYPERPARAMETERS.batchSize}, ` +
        `${SPEC_HYPERPARAMETERS.epochs} epochs of plain SGD), which give about ${SPEC_TEST_ACCURACY[0]}–${SPEC_TEST_ACCURACY[1]}% test accuracy.`,
    );
  }
  const config = metrics.config;
  const usedSpec =
    config.lr === SPEC_HYPERPARAMETERS.lr &&
    config.batchSize === SPEC_HYPERPARAMETERS.batchSize &&
    config.epochs === SPEC_HYPERPARAMETERS.epochs;
  notes.push(
    usedSpec
      ? `This run used those hyperparameters (lr ${config.lr}, batch ${config.batchSize}, ${config.epochs} epochs).`
      : `This run did not use the spec hyperparameters: it used lr ${config.lr}, batch ${config.batchSize}, ${config.epochs} epochs, ` +
          'so its numbers are not a test of the published ones.',
  );
  blocks.push({ kind: 'paragraph', content: [notes.join(' ')] });
  return blocks;
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
    const difference = Math.abs(record.val_accuracy - other.val_accuracy);
    if (!largest || difference > largest.difference) {
      largest = { epoch: record.epoch, difference, first: record.val_accuracy, second: other.val_accuracy };
    }
  }
  return largest;
}

function perClassRows(perClass: ClassMetrics[], metrics: ImplementationMetrics): string[][] {
  const row = (name: string, m: { precision: number; recall: number; f1: number; support: number }) => [
    name,
    percentAndFraction(m.precision),
    percentAndFraction(m.recall),
    percentAndFraction(m.f1),
    thousands(m.support),
  ];
  return [
    ...perClass.map((m) => row(`${m.digit}`, m)),
    row('macro avg', metrics.macro_avg),
    row('weighted avg', metrics.weighted_avg),
  ];
}

function confusionTable(matrix: number[][]): Block {
  const digits = matrix.map((_, digit) => `${digit}`);
  return {
    kind: 'table',
    header: ['true ↓ predicted →', ...digits, 'total'],
    numeric: [false, ...digits.map(() => true), true],
    rows: matrix.map((row, digit) => [`${digit}`, ...row.map((count) => `${count}`), `${row.reduce((a, b) => a + b, 0)}`]),
  };
}

/** The report as blocks; both renderers read only this. */
function reportDocument(
  metrics: MetricsFile,
  histories: { implementation: string; history: EpochRecord[] }[],
  visuals: Visuals,
): Block[] {
  const implementations: Implementation[] = [{ key: 'tfjs', name: implementationLabel('tfjs'), metrics: metrics.tfjs }];
  if (metrics.reference) {
    implementations.push({ key: 'reference', name: implementationLabel('reference'), metrics: metrics.reference });
  }
  const pngs = visuals.files.filter((file) => file.path.endsWith('.png'));
  const placed = new Set<string>();
  const figure = (path: string, caption: string): Block[] => {
    const file = pngs.find((candidate) => candidate.path === path);
    if (!file) return [];
    placed.add(path);
    const specPath = `specs/${path.replace(/\.png$/, '.vl.json')}`;
    const hasSpec = visuals.files.some((candidate) => candidate.path === specPath);
    return [{ kind: 'figure', file, caption, specPath: hasSpec ? specPath : null }];
  };
  const config = metrics.config;
  const blocks: Block[] = [];

  blocks.push({ kind: 'heading', level: 1, text: 'MNIST training report' });
  blocks.push({
    kind: 'paragraph',
    content: [
      `A 784 → 128 ReLU → 64 ReLU → 10 softmax network trained with SGD on ${thousands(config.trainSize)} MNIST images ` +
        `for ${config.epochs} epochs. TF.js ran on the `,
      { code: metrics.backend },
      ' backend.',
    ],
  });
  blocks.push({
    kind: 'list',
    items: implementations.map((implementation) => [
      { strong: implementation.name },
      `: ${percent(implementation.metrics.test_accuracy)} test accuracy, test loss ${implementation.metrics.test_loss.toFixed(4)}, ` +
        `${seconds(implementation.metrics.train_seconds)} s of training`,
    ]),
  });

  // Configuration
  blocks.push({ kind: 'heading', level: 2, text: 'Configuration' });
  blocks.push({ kind: 'paragraph', content: ['TF.js backend that ran: ', { code: metrics.backend }, '.'] });
  blocks.push({
    kind: 'table',
    header: ['Option', 'Value', 'Meaning'],
    numeric: [false, false, false],
    rows: (Object.keys(config) as (keyof typeof config)[]).map((key) => [
      key,
      JSON.stringify(config[key]),
      FIELDS[key]?.description ?? '',
    ]),
  });

  // Timings
  blocks.push({ kind: 'heading', level: 2, text: 'Timings' });
  const stages = Object.entries(metrics.stage_seconds);
  const totalStageSeconds = stages.reduce((sum, [, value]) => sum + value, 0);
  blocks.push({
    kind: 'table',
    header: ['Stage', 'Seconds'],
    numeric: [false, true],
    rows: [...stages.map(([stage, value]) => [stage, seconds(value)]), ['total', seconds(totalStageSeconds)]],
  });
  blocks.push({
    kind: 'paragraph',
    content: ['Stages read from the cache keep the time of the run that computed them. Training time excludes the validation passes.'],
  });
  blocks.push({
    kind: 'table',
    header: ['Implementation', 'Backend', 'Training seconds', 'Samples/s'],
    numeric: [false, false, true, true],
    rows: implementations.map(({ name, metrics: m }) => [name, backendLabel(m), seconds(m.train_seconds), thousands(m.train_samples_per_second)]),
  });

  // Metrics
  blocks.push({ kind: 'heading', level: 2, text: 'Metrics' });
  blocks.push({
    kind: 'table',
    header: ['Implementation', 'Train accuracy', 'Validation accuracy', 'Test accuracy', 'Test loss'],
    numeric: [false, true, true, true, true],
    rows: implementations.map(({ name, metrics: m }) => [
      name,
      percentAndFraction(m.train_accuracy),
      percentAndFraction(m.val_accuracy),
      percentAndFraction(m.test_accuracy),
      m.test_loss.toFixed(4),
    ]),
  });

  blocks.push({
    kind: 'heading',
    level: 3,
    text: metrics.reference ? 'TF.js and the TypeScript reference' : 'Implementation summary',
  });
  blocks.push({
    kind: 'table',
    header: ['Implementation', 'Backend', 'Epochs', 'Train acc', 'Val acc', 'Test acc', 'Training seconds', 'Samples/s'],
    numeric: [false, false, true, true, true, true, true, true],
    rows: implementations.map(({ name, metrics: m }) => [
      name,
      backendLabel(m),
      `${m.epochs}`,
      percent(m.train_accuracy),
      percent(m.val_accuracy),
      percent(m.test_accuracy),
      seconds(m.train_seconds),
      thousands(m.train_samples_per_second),
    ]),
  });
  const tfjsHistory = histories.find((h) => h.implementation === 'tfjs');
  const referenceHistory = histories.find((h) => h.implementation === 'reference');
  const gap = tfjsHistory && referenceHistory ? largestValidationGap(tfjsHistory.history, referenceHistory.history) : null;
  if (gap) {
    const images = Math.round(gap.difference * config.valSize);
    blocks.push({
      kind: 'paragraph',
      content: [
        'Largest per-epoch |val_accuracy| difference between the two: ',
        { strong: `${(gap.difference * 100).toFixed(2)} pp (${gap.difference.toFixed(4)})` },
        ` at epoch ${gap.epoch} (TF.js ${percent(gap.first)}, reference ${percent(gap.second)}; ` +
          `about ${thousands(images)} of ${thousands(config.valSize)} validation images).`,
      ],
    });
  } else {
    blocks.push({
      kind: 'paragraph',
      content: ['Only TF.js ran (no reference history), so there is no per-epoch difference to report.'],
    });
  }

  blocks.push(...courseComparison(metrics));

  // Training history
  blocks.push({ kind: 'heading', level: 2, text: 'Training history' });
  for (const { implementation, history } of histories) {
    blocks.push({ kind: 'heading', level: 3, text: implementationLabel(implementation) });
    blocks.push({
      kind: 'table',
      header: ['Epoch', 'loss', 'accuracy', 'val_loss', 'val_accuracy', 'Seconds'],
      numeric: [true, true, true, true, true, true],
      rows: history.map((record) => [
        `${record.epoch}`,
        record.loss.toFixed(4),
        percentAndFraction(record.accuracy),
        record.val_loss.toFixed(4),
        percentAndFraction(record.val_accuracy),
        seconds(record.seconds),
      ]),
    });
  }
  blocks.push(...figure('training_curves.png', 'Loss and accuracy per epoch, training and validation.'));

  // Per class
  blocks.push({ kind: 'heading', level: 2, text: 'Per-class metrics (test set)' });
  for (const { name, metrics: m } of implementations) {
    blocks.push({ kind: 'heading', level: 3, text: name });
    blocks.push({
      kind: 'table',
      header: ['Digit', 'Precision', 'Recall', 'F1', 'Support'],
      numeric: [false, true, true, true, true],
      rows: perClassRows(m.per_class, m),
    });
  }
  blocks.push(...figure('per_class_metrics.png', 'Precision, recall and F1 per digit (TF.js).'));

  // Confusion
  blocks.push({ kind: 'heading', level: 2, text: 'Confusion matrix (test set)' });
  for (const { name, metrics: m } of implementations) {
    blocks.push({ kind: 'heading', level: 3, text: name });
    blocks.push({ kind: 'paragraph', content: ['Rows are the true digit, columns the predicted digit.'] });
    blocks.push(confusionTable(m.confusion_matrix));
  }
  blocks.push(...figure('confusion_matrix.png', 'Confusion matrix of the TF.js model on the test set.'));

  blocks.push({ kind: 'heading', level: 2, text: 'Most confused pairs' });
  for (const { name, metrics: m } of implementations) {
    blocks.push({ kind: 'heading', level: 3, text: name });
    blocks.push({
      kind: 'table',
      header: ['True digit', 'Predicted digit', 'Test images'],
      numeric: [true, true, true],
      rows: m.most_confused.map((pair) => [`${pair.true}`, `${pair.predicted}`, `${pair.count}`]),
    });
  }
  blocks.push(...figure('misclassified.png', 'The test images behind the most confused pairs (TF.js).'));
  blocks.push(...figure('sample_predictions.png', 'Sample test predictions, right and wrong (TF.js).'));

  // Gradient check
  const check = metrics.gradient_check;
  if (check) {
    blocks.push({ kind: 'heading', level: 2, text: 'Gradient check' });
    blocks.push({
      kind: 'paragraph',
      content: [
        `The reference's analytic gradients against central finite differences in float64 (FD) and against TF.js's own gradients, ` +
          `on one batch of ${check.batch_size} images (seed ${check.seed}, ${check.backend} backend). ` +
          `FD sampled ${check.finite_difference_samples} parameters per tensor with step h = ${scientific(check.step)}; ` +
          `${check.finite_difference_skipped} samples were skipped because a ReLU input sat within h of 0. ` +
          `Bounds: FD max rel < ${scientific(FD_MAX_REL_ERROR)}, TF.js max abs < ${scientific(TFJS_MAX_ABS_ERROR)}; ` +
          `${gradientBoundViolations(check).length === 0 ? 'both hold' : 'VIOLATED, see the table'}.`,
      ],
    });
    const tensors = [...new Set([...Object.keys(check.finite_difference), ...Object.keys(check.tfjs)])];
    const cell = (value: number | undefined) => (value === undefined ? '–' : scientific(value));
    blocks.push({
      kind: 'table',
      header: ['Tensor', 'FD max abs', 'FD max rel', 'TF.js max abs', 'TF.js max rel'],
      numeric: [false, true, true, true, true],
      rows: tensors.map((tensor) => [
        tensor,
        cell(check.finite_difference[tensor]?.max_abs_error),
        cell(check.finite_difference[tensor]?.max_rel_error),
        cell(check.tfjs[tensor]?.max_abs_error),
        cell(check.tfjs[tensor]?.max_rel_error),
      ]),
    });
  }

  const experiments = metrics.experiments as ExperimentsBlock | undefined;
  if (experiments?.best_combination) {
    const best = experiments.best_combination;
    blocks.push({ kind: 'heading', level: 2, text: 'Experiments' });
    blocks.push({
      kind: 'paragraph',
      content: [
        `The same 784-128-64-10 network under other training recipes, ${experiments.epochs} epochs each: see `,
        { code: 'experiments.md' },
        `. The best combination by validation accuracy, ${best.name} (${best.recipe}), reached ` +
          `${percent(best.val_accuracy)} validation and ${percent(best.test_accuracy)} test accuracy.`,
      ],
    });
  }

  // Inside the model
  blocks.push({ kind: 'heading', level: 2, text: 'Inside the model' });
  blocks.push(...figure('weight_visualization.png', 'First-layer weights of the TF.js model, one 28×28 tile per hidden unit.'));
  blocks.push(...figure('activation_patterns.png', 'Hidden-layer activations of the TF.js model for one test image of each digit.'));

  const unplaced = pngs.filter((file) => !placed.has(file.path));
  if (unplaced.length > 0) {
    blocks.push({ kind: 'heading', level: 2, text: 'Other figures' });
    for (const file of unplaced) blocks.push(...figure(file.path, file.path));
  }
  return blocks;
}

// ---------------------------------------------------------------- Markdown

/** Escapes what Markdown would read as markup; an underscore inside a word (val_accuracy) is left alone. */
function markdownText(text: string): string {
  return text.replace(/([\\*`<[\]])/g, '\\$1').replace(/(?<!\w)_|_(?!\w)/g, '\\_');
}

function markdownInline(content: Inline[]): string {
  return content
    .map((part) => {
      if (typeof part === 'string') return markdownText(part);
      if ('strong' in part) return `**${markdownText(part.strong)}**`;
      if ('code' in part) return `\`${part.code}\``;
      return `[${markdownText(part.link)}](${part.href})`;
    })
    .join('');
}

function markdownCell(text: string): string {
  return markdownText(text).replace(/\|/g, '\\|');
}

function renderMarkdown(blocks: Block[]): string {
  const out: string[] = [];
  for (const block of blocks) {
    switch (block.kind) {
      case 'heading':
        out.push(`${'#'.repeat(block.level)} ${markdownText(block.text)}`);
        break;
      case 'paragraph':
        out.push(markdownInline(block.content));
        break;
      case 'list':
        out.push(block.items.map((item) => `- ${markdownInline(item)}`).join('\n'));
        break;
      case 'table':
        out.push(
          [
            `| ${block.header.map(markdownCell).join(' | ')} |`,
            `| ${block.numeric.map((numeric) => (numeric ? '---:' : '---')).join(' | ')} |`,
            ...block.rows.map((row) => `| ${row.map(markdownCell).join(' | ')} |`),
          ].join('\n'),
        );
        break;
      case 'figure': {
        const spec = block.specPath ? ` ([Vega-Lite spec](${block.specPath}))` : '';
        out.push(`![${markdownText(block.caption)}](${block.file.path})\n\n*${markdownText(block.caption)}*${spec}`);
        break;
      }
    }
  }
  return `${out.join('\n\n')}\n`;
}

// ---------------------------------------------------------------- HTML

function escapeHtml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function htmlInline(content: Inline[]): string {
  return content
    .map((part) => {
      if (typeof part === 'string') return escapeHtml(part);
      if ('strong' in part) return `<strong>${escapeHtml(part.strong)}</strong>`;
      if ('code' in part) return `<code>${escapeHtml(part.code)}</code>`;
      return `<a href="${escapeHtml(part.href)}">${escapeHtml(part.link)}</a>`;
    })
    .join('');
}

/** Width in pixels from a PNG's IHDR chunk, or null if the bytes are not a PNG. */
function pngWidth(data: Uint8Array): number | null {
  const signature = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
  if (data.length < 24 || signature.some((byte, i) => data[i] !== byte)) return null;
  return ((data[16]! << 24) | (data[17]! << 16) | (data[18]! << 8) | data[19]!) >>> 0;
}

const HTML_STYLE = `
  :root { color-scheme: light; }
  body { margin: 0; background: #f6f7f9; color: #1f2328; font: 15px/1.5 "DejaVu Sans", "Segoe UI", Helvetica, Arial, sans-serif; }
  main { max-width: 1180px; margin: 0 auto; padding: 24px 32px 64px; background: white; }
  h1 { font-size: 28px; margin: 8px 0 12px; }
  h2 { font-size: 21px; margin: 36px 0 10px; padding-bottom: 4px; border-bottom: 1px solid #d8dee4; }
  h3 { font-size: 16px; margin: 22px 0 8px; }
  .table-wrap { overflow-x: auto; margin: 8px 0 16px; }
  table { border-collapse: collapse; font-size: 13.5px; }
  th, td { border: 1px solid #d0d7de; padding: 4px 10px; text-align: left; white-space: nowrap; }
  th { background: #f0f3f6; }
  td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
  tbody tr:nth-child(even) { background: #fafbfc; }
  code { font: 13px "DejaVu Sans Mono", Menlo, Consolas, monospace; background: #f0f3f6; padding: 1px 4px; border-radius: 3px; }
  figure { margin: 16px 0 28px; }
  figure img { max-width: 100%; height: auto; border: 1px solid #e5e7eb; }
  figcaption { color: #57606a; font-size: 13.5px; margin-top: 6px; }
`;

function renderHtml(blocks: Block[], title: string): string {
  const out: string[] = [];
  for (const block of blocks) {
    switch (block.kind) {
      case 'heading':
        out.push(`<h${block.level}>${escapeHtml(block.text)}</h${block.level}>`);
        break;
      case 'paragraph':
        out.push(`<p>${htmlInline(block.content)}</p>`);
        break;
      case 'list':
        out.push(`<ul>\n${block.items.map((item) => `  <li>${htmlInline(item)}</li>`).join('\n')}\n</ul>`);
        break;
      case 'table': {
        const cellClass = (i: number) => (block.numeric[i] ? ' class="num"' : '');
        const head = block.header.map((cell, i) => `<th${cellClass(i)}>${escapeHtml(cell)}</th>`).join('');
        const body = block.rows
          .map((row) => `    <tr>${row.map((cell, i) => `<td${cellClass(i)}>${escapeHtml(cell)}</td>`).join('')}</tr>`)
          .join('\n');
        out.push(`<div class="table-wrap"><table>\n  <thead><tr>${head}</tr></thead>\n  <tbody>\n${body}\n  </tbody>\n</table></div>`);
        break;
      }
      case 'figure': {
        const width = pngWidth(block.file.data);
        // The PNGs are drawn at 2×; showing them at half width keeps text at its intended size.
        const size = width ? ` width="${Math.round(width / 2)}"` : '';
        const source = `data:image/png;base64,${Buffer.from(block.file.data).toString('base64')}`;
        const spec = block.specPath ? ` · <a href="${escapeHtml(block.specPath)}">Vega-Lite spec</a>` : '';
        out.push(
          `<figure>\n  <img src="${source}" alt="${escapeHtml(block.caption)}"${size}>\n` +
            `  <figcaption>${escapeHtml(block.caption)} · <a href="${escapeHtml(block.file.path)}">${escapeHtml(block.file.path)}</a>${spec}</figcaption>\n</figure>`,
        );
        break;
      }
    }
  }
  return [
    '<!DOCTYPE html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${escapeHtml(title)}</title>`,
    `<style>${HTML_STYLE}</style>`,
    '</head>',
    '<body>',
    '<main>',
    ...out,
    '</main>',
    '</body>',
    '</html>',
    '',
  ].join('\n');
}

// ---------------------------------------------------------------- the stage

/** report.md and a self-contained index.html with the same content. */
export function buildReport(
  metrics: MetricsFile,
  histories: { implementation: string; history: EpochRecord[] }[],
  visuals: Visuals,
): ReportFile[] {
  const blocks = reportDocument(metrics, histories, visuals);
  const encoder = new TextEncoder();
  return [
    { path: 'report.md', data: encoder.encode(renderMarkdown(blocks)) },
    { path: 'index.html', data: encoder.encode(renderHtml(blocks, 'MNIST training report')) },
  ];
}

/** The backend, and for the reference how many threads trained it: "typescript, 2 threads". */
function backendLabel(m: ImplementationMetrics): string {
  return m.threads === undefined ? m.backend : `${m.backend}, ${m.threads} thread${m.threads === 1 ? '' : 's'}`;
}
