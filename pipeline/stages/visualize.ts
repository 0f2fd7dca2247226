// Stage visualize (after evaluate): every figure of the report, as files for reports/.
//
//   1. Vega-Lite charts (pipeline/render/charts.ts): training curves, confusion matrix,
//      per-class metrics, images per digit in each split; each saved as PNG and as its spec (data inlined).
//   2. Canvas grids (pipeline/render/grids.ts): training images per digit, first-layer weights,
//      sample predictions, misclassified pairs, hidden activations.
//
// Digit figures show the TF.js model; samples are chosen by fixed rules, never at random.

import type { TopLevelSpec } from 'vega-lite';
import {
  classCountsSpec,
  confusionMatrixSpec,
  perClassMetricsSpec,
  renderSpecToPng,
  trainingCurvesSpec,
  type ClassCount,
} from '../render/charts.js';
import { activationPatternsPng, misclassifiedPng, samplePredictionsPng, trainingImagesPng, weightGridPng } from '../render/grids.js';
import { textFile } from '../render/run-files.js';
import { K } from '../../reference/shapes.js';
import type { Dataset, Evaluation, Example, ModelEvaluation, ReportFile, Split, TrainedModel, Visuals } from '../types.js';

const SAMPLE_RIGHT = 10;
const SAMPLE_WRONG = 6;

/**
 * The sample-prediction digits: evaluate's examples first, topped up from the
 * predictions in test-index order when it picked fewer; right ones, then wrong ones.
 */
function pickSamples(evaluation: ModelEvaluation, test: Split): Example[] {
  const take = (candidates: Example[], wanted: number, right: boolean): Example[] => {
    const chosen = candidates.filter(
      (example) => example.index >= 0 && example.index < test.count && (example.label === example.predicted) === right,
    );
    const seen = new Set(chosen.map((example) => example.index));
    for (let index = 0; index < test.count && chosen.length < wanted; index++) {
      const label = test.labels[index]!;
      const predicted = evaluation.predictions[index]!;
      if ((label === predicted) !== right || seen.has(index)) continue;
      chosen.push({ index, label, predicted, probability: evaluation.confidence[index]! });
    }
    return chosen.slice(0, wanted);
  };
  return [...take(evaluation.examples.correct, SAMPLE_RIGHT, true), ...take(evaluation.examples.wrong, SAMPLE_WRONG, false)];
}

/** Images per digit in each split. */
function classCounts(dataset: Dataset): ClassCount[] {
  const splits = [
    ['training', dataset.train],
    ['validation', dataset.validation],
    ['test', dataset.test],
  ] as const;
  return splits.flatMap(([split, { labels }]) => {
    const counts = new Array<number>(K).fill(0);
    for (const label of labels) counts[label]!++;
    return counts.map((count, digit) => ({ split, digit, count }));
  });
}

function specFile(name: string, spec: TopLevelSpec): ReportFile {
  return textFile(`specs/${name}.vl.json`, `${JSON.stringify(spec, null, 2)}\n`);
}

/** Renders every figure; returns PNGs plus the Vega-Lite specs under specs/. */
export async function renderVisuals(
  dataset: Dataset,
  tfjs: TrainedModel,
  reference: TrainedModel | null,
  evaluation: Evaluation,
): Promise<Visuals> {
  const histories = [tfjs, ...(reference ? [reference] : [])].map((model) => ({
    implementation: model.implementation,
    history: model.history,
  }));
  const charts: [name: string, spec: TopLevelSpec][] = [
    ['training_curves', trainingCurvesSpec(histories)],
    ['confusion_matrix', confusionMatrixSpec(evaluation.tfjs.confusionMatrix, 'Confusion matrix: TF.js on the test set')],
    ['per_class_metrics', perClassMetricsSpec(evaluation.tfjs.perClass)],
    ['class_counts', classCountsSpec(classCounts(dataset))],
  ];
  const files: ReportFile[] = [];
  for (const [name, spec] of charts) {
    files.push({ path: `${name}.png`, data: await renderSpecToPng(spec) });
  }
  const test = dataset.test;
  files.push({ path: 'training_images.png', data: trainingImagesPng(dataset.train) });
  files.push({ path: 'weight_visualization.png', data: weightGridPng(tfjs.params.w1) });
  files.push({ path: 'sample_predictions.png', data: samplePredictionsPng(test.images, pickSamples(evaluation.tfjs, test)) });
  files.push({
    path: 'misclassified.png',
    data: misclassifiedPng(test, evaluation.tfjs.predictions, evaluation.tfjs.confidence, evaluation.tfjs.mostConfused),
  });
  files.push({ path: 'activation_patterns.png', data: activationPatternsPng(test, tfjs.params, evaluation.tfjs.predictions) });
  for (const [name, spec] of charts) files.push(specFile(name, spec));
  return { files };
}
