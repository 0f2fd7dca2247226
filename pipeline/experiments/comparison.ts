// The comparison of the experiment variants: the metrics.json block (the one
// place their snake_case names appear), experiments.md and the chart.

import type { TopLevelSpec } from 'vega-lite';
import { CHART_CONFIG, renderSpecToPng } from '../render/charts.js';
import { SPEC_SCHEMA, percent, thousands } from '../render/format.js';
import type { ExperimentsResult } from '../stages/experiments.js';
import { provenanceJson } from '../render/run-files.js';
import type { ProvenanceJson, ReportFile } from '../types.js';
import { BEST_MODEL_FOLDER, INGREDIENTS, findVariant, hasLongSchedule, type Ablation, type TrainingRecipe } from './variants.js';
import type { VariantResult } from '../stages/experiments.js';

/** The `experiments` block of metrics.json: no per-epoch history, which the chart shows. */
export interface ExperimentsMetrics {
  epochs: number;
  batch_size: number;
  seed: number;
  target_test_accuracy: number;
  best_combination: {
    name: string;
    recipe: string;
    chosen_by: 'validation accuracy';
    val_accuracy: number;
    test_accuracy: number; // of the saved model
    reaches_target: boolean; // test accuracy ≥ target_test_accuracy
    model: string; // the folder of its saved weights, relative to the report folder
    confusion_matrix: number[][]; // (K, K) on the test split, rows are the true digit
    trained_by?: ProvenanceJson; // the run that trained it; absent when its cache entry predates the record
  } | null; // null when no combination ran
  reached_target: string[];
  variants: Record<
    string,
    {
      description: string;
      kind: 'single' | 'combination';
      recipe: TrainingRecipe;
      backend: string;
      val_accuracy: number;
      val_loss: number;
      test_accuracy: number;
      test_loss: number;
      train_seconds: number;
      ablation?: Ablation; // --experiments extended: its place in the ablation table
      trained_by?: ProvenanceJson; // absent when its cache entry predates the record
    }
  >;
}

export function experimentsMetrics(result: ExperimentsResult): ExperimentsMetrics {
  const best = result.bestCombination;
  return {
    epochs: result.epochs,
    batch_size: result.batchSize,
    seed: result.seed,
    target_test_accuracy: result.targetTestAccuracy,
    best_combination: best && {
      name: best.name,
      recipe: best.description,
      chosen_by: 'validation accuracy',
      val_accuracy: best.valAccuracy,
      test_accuracy: best.testAccuracy,
      reaches_target: result.reachedTarget.includes(best.name),
      model: BEST_MODEL_FOLDER,
      confusion_matrix: best.testConfusionMatrix,
      ...(best.trainedBy ? { trained_by: provenanceJson(best.trainedBy) } : {}),
    },
    reached_target: result.reachedTarget,
    variants: Object.fromEntries(
      result.variants.map((variant) => {
        const { ablation } = findVariant(variant.name);
        return [
          variant.name,
          {
            description: variant.description,
            kind: variant.kind,
            recipe: variant.recipe,
            backend: variant.backend,
            val_accuracy: variant.valAccuracy,
            val_loss: variant.valLoss,
            test_accuracy: variant.testAccuracy,
            test_loss: variant.testLoss,
            train_seconds: variant.trainSeconds,
            ...(ablation ? { ablation } : {}),
            ...(variant.trainedBy ? { trained_by: provenanceJson(variant.trainedBy) } : {}),
          },
        ];
      }),
    ),
  };
}

/** The markdown table and the chart spec of the comparison. */
export function experimentsReport(result: ExperimentsResult): { markdown: string; chartSpec: TopLevelSpec; timeSpec: TopLevelSpec } {
  const best = result.bestCombination;
  const rows = result.variants.map((variant) => {
    const marks = [
      best?.name === variant.name ? '**best combination**' : '',
      result.reachedTarget.includes(variant.name) ? `≥ ${percent(result.targetTestAccuracy, 1)} test` : '',
    ].filter((mark) => mark !== '');
    return (
      `| ${variant.name} | ${variant.description} | ${percent(variant.valAccuracy)} | ${percent(variant.testAccuracy)} | ` +
      `${variant.trainSeconds.toFixed(1)} s | ${marks.join(', ')} |`
    );
  });
  const backends = [...new Set(result.variants.map((variant) => variant.backend))].join(', ');
  const long = result.variants.find((variant) => hasLongSchedule(variant.recipe));
  const lines = [
    '# Experiments: how far the same network goes',
    '',
    `Every variant keeps the 784-128-64-10 dense network, starts from the same seeded initial weights (seed ${result.seed}), ` +
      `uses the same split (${thousands(result.trainSize)} train / ${thousands(result.valSize)} validation / ${thousands(result.testSize)} test), ` +
      `replays the same shuffled batches of ${result.batchSize} and trains ${result.epochs} epochs on TF.js (${backends})` +
      (long ? `; the long schedules train ${long.history.length}.` : '.'),
    '',
    '| Variant | Change from the spec | Validation accuracy | Test accuracy | Training time | Notes |',
    '|---|---|---:|---:|---:|---|',
    ...rows,
    '',
  ];
  if (best) {
    lines.push(
      `**Best combination: ${best.name}** (${best.description}): validation ${percent(best.valAccuracy)}, test ${percent(best.testAccuracy)}; ` +
        (result.reachedTarget.includes(best.name)
          ? `it reaches the ${percent(result.targetTestAccuracy, 1)} test target in ${best.history.length} epochs on the unchanged architecture.`
          : `it falls short of the ${percent(result.targetTestAccuracy, 1)} test target.`),
      '',
      `Its weights are saved in \`${BEST_MODEL_FOLDER}/\` as the plain 784-128-64-10 dense network (batch norm, where used, folded into the dense layers): ` +
        '`npm run predict -- --model best <image.png>` reads it.',
      '',
      'The best combination is chosen among the combinations by validation accuracy (the last ' +
        `${thousands(result.valSize)} images of the training file). Test accuracy is shown for every variant but never used to choose, ` +
        'so it stays an unbiased estimate.',
      '',
    );
  } else {
    lines.push('No combination was run, so no best combination was chosen.', '');
  }
  lines.push(
    result.reachedTarget.length > 0
      ? `Variants at or above ${percent(result.targetTestAccuracy, 1)} test accuracy: ${result.reachedTarget.join(', ')}.`
      : `No variant reached ${percent(result.targetTestAccuracy, 1)} test accuracy.`,
    '',
    'Training time excludes the validation pass after each epoch.',
    '',
    '![Validation accuracy per epoch and final accuracies](experiments.png)',
    '',
    ...ablationSection(result),
    '![Test error against training time](experiments-time.png)',
    '',
  );
  return { markdown: lines.join('\n'), chartSpec: experimentsChartSpec(result), timeSpec: errorTimeSpec(result) };
}

/** The variant that plays `role` for `ingredient` in the ablation (--experiments extended), if it ran. */
function ablationRow(result: ExperimentsResult, matches: (ablation: Ablation) => boolean): VariantResult | undefined {
  return result.variants.find((variant) => {
    const ablation = findVariant(variant.name).ablation;
    return ablation !== undefined && matches(ablation);
  });
}

/** Validation, test and training time of one variant, as the ablation table shows them. */
function scores(variant: VariantResult | undefined): string {
  return variant
    ? `${percent(variant.valAccuracy)} | ${percent(variant.testAccuracy)} | ${variant.trainSeconds.toFixed(0)} s`
    : 'not run | | ';
}

/** --experiments extended: each ingredient added alone to the base recipe and removed from all of them. Empty without it. */
function ablationSection(result: ExperimentsResult): string[] {
  const all = ablationRow(result, (ablation) => ablation.role === 'all');
  if (!all) return [];
  const base = result.variants.find((variant) => variant.name === 'adam+batchnorm+decay+augment');
  const best = result.bestCombination;
  const rows = INGREDIENTS.map((ingredient) => {
    const alone = ablationRow(result, (ablation) => ablation.role === 'alone' && ablation.ingredient === ingredient);
    const without = ablationRow(result, (ablation) => ablation.role === 'without' && ablation.ingredient === ingredient);
    return `| ${ingredient} | ${scores(alone)} | ${scores(without)} |`;
  });
  const teachers = result.variants.filter((variant) => findVariant(variant.name).ablation?.role === 'teacher');
  return [
    '## The extended recipes: what each ingredient buys',
    '',
    `Each ingredient added alone to adam+batchnorm+decay+augment (${base ? `validation ${percent(base.valAccuracy)}, test ${percent(base.testAccuracy)}` : 'not run'}), ` +
      `and removed from \`all\`, which has every one (validation ${percent(all.valAccuracy)}, test ${percent(all.testAccuracy)}, ${all.trainSeconds.toFixed(0)} s). ` +
      'Test accuracy is for reading only: every choice here is made on validation accuracy.',
    '',
    '| Ingredient | alone: validation | alone: test | alone: time | removed: validation | removed: test | removed: time |',
    '|---|---:|---:|---:|---:|---:|---:|',
    ...rows,
    '',
    `Distillation's teachers: ${[
      ablationRow(result, (ablation) => ablation.role === 'without' && ablation.ingredient === 'distillation'),
      ...teachers,
    ]
      .filter((teacher) => teacher !== undefined)
      .map((teacher) => `${teacher.name} (validation ${percent(teacher.valAccuracy)}, test ${percent(teacher.testAccuracy)})`)
      .join(', ')}. A student's time leaves out theirs.`,
    '',
    best
      ? `**Chosen by validation: ${best.name}**, validation ${percent(best.valAccuracy)}; its test accuracy, reported once: **${percent(best.testAccuracy)}**, ` +
        (best.testAccuracy >= result.targetTestAccuracy
          ? `at or above the ${percent(result.targetTestAccuracy, 1)} the extended recipes aim for.`
          : `short of the ${percent(result.targetTestAccuracy, 1)} the extended recipes aim for.`)
      : '',
    '',
  ];
}

/** Test error against training time, one point a variant: what each recipe costs for what it gives. */
function errorTimeSpec(result: ExperimentsResult): TopLevelSpec {
  const points = result.variants.map((variant) => ({
    variant: variant.name,
    seconds: variant.trainSeconds,
    test_error: 1 - variant.testAccuracy,
    chosen: variant.name === result.bestCombination?.name ? 'chosen by validation' : 'other',
  }));
  const x = {
    field: 'seconds',
    type: 'quantitative',
    title: 'Training time (s, validation passes excluded)',
    scale: { type: 'log' },
  } as const;
  const errors = points.map((point) => point.test_error);
  const domain = [Math.min(...errors, 1 - result.targetTestAccuracy) * 0.85, Math.max(...errors) * 1.15]; // the points and the target line, no more
  const y = {
    field: 'test_error',
    type: 'quantitative',
    title: 'Test error',
    scale: { type: 'log', domain },
    axis: { format: '.1%' },
  } as const;
  return {
    $schema: SPEC_SCHEMA,
    title: {
      text: 'Test error against training time, the 784-128-64-10 network',
      subtitle: 'Both axes logarithmic; each point one recipe',
    },
    data: { values: points },
    width: 560,
    height: 380,
    layer: [
      {
        mark: { type: 'point', filled: true, size: 70 },
        encoding: {
          x,
          y,
          color: {
            field: 'chosen',
            type: 'nominal',
            title: null,
            scale: { domain: ['chosen by validation', 'other'], range: ['#d62728', '#4c78a8'] },
          },
        },
      },
      { mark: { type: 'text', align: 'left', dx: 6, fontSize: 10 }, encoding: { x, y, text: { field: 'variant' } } },
      {
        data: {
          values: [{ test_error: 1 - result.targetTestAccuracy, label: `${percent(result.targetTestAccuracy, 0)} test accuracy` }],
        },
        layer: [
          { mark: { type: 'rule', strokeDash: [6, 4], color: '#d62728' }, encoding: { y } },
          {
            mark: { type: 'text', align: 'left', baseline: 'bottom', x: 4, dy: -3, color: '#d62728' },
            encoding: { y, text: { field: 'label' } },
          },
        ],
      },
    ],
    config: CHART_CONFIG,
  };
}

/** Validation accuracy per epoch for each variant, beside the final validation and test accuracies. */
function experimentsChartSpec(result: ExperimentsResult): TopLevelSpec {
  const curves = result.variants.flatMap((variant) =>
    variant.history.map((record) => ({ variant: variant.name, epoch: record.epoch, val_accuracy: record.valAccuracy })),
  );
  const finals = result.variants.flatMap((variant) => [
    { variant: variant.name, split: 'validation', accuracy: variant.valAccuracy },
    { variant: variant.name, split: 'test', accuracy: variant.testAccuracy },
  ]);
  const names = result.variants.map((variant) => variant.name);
  // Start the axes a little under the worst final accuracy so differences of tenths of a percent show.
  const finalMin = Math.min(result.targetTestAccuracy, ...finals.map((bar) => bar.accuracy));
  const yMin = Math.max(0, Math.floor((finalMin - 0.01) * 100) / 100);
  const curveMin = Math.max(0, yMin - 0.02); // early epochs below this are left out of the curves
  const colour = {
    field: 'variant',
    type: 'nominal',
    title: 'Variant',
    scale: { domain: names, scheme: names.length > 10 ? 'tableau20' : 'tableau10' }, // 20 colours for the extended set
    legend: { labelLimit: 320 },
  } as const;
  const barY = { field: 'variant', type: 'nominal', title: null, sort: names, axis: { labelLimit: 320 } } as const;
  const barOffset = { field: 'split', type: 'nominal', sort: ['validation', 'test'] } as const;
  const height = Math.max(320, 36 * names.length); // room for two labelled bars per variant
  return {
    $schema: SPEC_SCHEMA,
    title: {
      text: `Experiments: the 784-128-64-10 network, ${result.epochs} epochs, different recipes`,
      subtitle: result.bestCombination
        ? `Best combination by validation accuracy: ${result.bestCombination.name}; dashed line: ${percent(result.targetTestAccuracy, 0)} target`
        : `Dashed line: ${percent(result.targetTestAccuracy, 0)} target`,
    },
    hconcat: [
      {
        title: { text: `Validation accuracy per epoch (from ${percent(curveMin, 0)})`, fontSize: 14, anchor: 'middle' },
        data: { values: curves },
        width: 380,
        height,
        transform: [{ filter: `datum.val_accuracy >= ${curveMin}` }],
        mark: { type: 'line', point: true, strokeWidth: 2 },
        encoding: {
          x: { field: 'epoch', type: 'quantitative', title: 'Epoch', axis: { tickMinStep: 1, format: 'd' } },
          y: {
            field: 'val_accuracy',
            type: 'quantitative',
            title: 'Validation accuracy',
            scale: { domain: [curveMin, 1], zero: false },
            axis: { format: '.1%' },
          },
          color: colour,
        },
      },
      {
        title: { text: 'After the last epoch', fontSize: 14, anchor: 'middle' },
        width: 340,
        height,
        layer: [
          {
            data: { values: finals },
            mark: { type: 'bar' },
            encoding: {
              y: barY,
              yOffset: barOffset,
              x: {
                field: 'accuracy',
                type: 'quantitative',
                title: 'Accuracy',
                scale: { domain: [yMin, 1], zero: false, clamp: true, nice: false },
                axis: { format: '.1%' },
              },
              color: {
                field: 'split',
                type: 'nominal',
                title: 'Split',
                scale: { domain: ['validation', 'test'], range: ['#9ecae1', '#08519c'] },
              },
            },
          },
          {
            data: { values: finals },
            mark: { type: 'text', align: 'left', dx: 4, fontSize: 11 },
            encoding: {
              y: barY,
              yOffset: barOffset,
              x: { field: 'accuracy', type: 'quantitative' },
              text: { field: 'accuracy', type: 'quantitative', format: '.2%' },
            },
          },
          {
            data: { values: [{ target: result.targetTestAccuracy }] },
            mark: { type: 'rule', strokeDash: [6, 4], color: '#d62728', strokeWidth: 2 },
            encoding: { x: { field: 'target', type: 'quantitative' } },
          },
        ],
      },
    ],
    resolve: { scale: { color: 'independent' } },
    config: CHART_CONFIG,
  };
}

/** experiments.md, experiments.png, experiments-time.png and their specs/, relative to the report folder. */
export async function experimentsFiles(result: ExperimentsResult): Promise<ReportFile[]> {
  const { markdown, chartSpec, timeSpec } = experimentsReport(result);
  const encode = (text: string) => new TextEncoder().encode(text);
  return [
    { path: 'experiments.md', data: encode(markdown) },
    { path: 'experiments.png', data: await renderSpecToPng(chartSpec) },
    { path: 'specs/experiments.vl.json', data: encode(`${JSON.stringify(chartSpec, null, 2)}\n`) },
    { path: 'experiments-time.png', data: await renderSpecToPng(timeSpec) },
    { path: 'specs/experiments-time.vl.json', data: encode(`${JSON.stringify(timeSpec, null, 2)}\n`) },
  ];
}
