// The files of reports/ that are not pictures: metrics.json, the history CSV,
// config.json and the saved models. All are built in memory; publishFolder
// (pipeline/dag/publish.ts) switches the whole folder in at once.

import type { Config } from '../config.js';
import type {
  EpochRecord,
  GradientCheck,
  ImplementationMetrics,
  MetricsFile,
  ModelEvaluation,
  ReportFile,
  TrainedModel,
} from '../types.js';

export const HISTORY_COLUMNS = ['implementation', 'epoch', 'loss', 'accuracy', 'val_loss', 'val_accuracy', 'seconds'] as const;

export function implementationMetrics(trained: TrainedModel, evaluation: ModelEvaluation): ImplementationMetrics {
  const last = trained.history.at(-1);
  return {
    backend: trained.backend,
    ...(trained.threads === undefined ? {} : { threads: trained.threads }),
    epochs: trained.history.length,
    train_accuracy: trained.trainAccuracy,
    val_accuracy: last ? last.val_accuracy : evaluation.val_accuracy,
    test_accuracy: evaluation.test_accuracy,
    test_loss: evaluation.test_loss,
    train_seconds: trained.trainSeconds,
    train_samples_per_second: trained.samplesPerSecond,
    confusion_matrix: evaluation.confusion_matrix,
    per_class: evaluation.per_class,
    macro_avg: evaluation.macro_avg,
    weighted_avg: evaluation.weighted_avg,
    most_confused: evaluation.most_confused,
  };
}

export interface MetricsInputs {
  config: Config;
  tfjs: TrainedModel;
  tfjsEvaluation: ModelEvaluation;
  reference: TrainedModel | null;
  referenceEvaluation: ModelEvaluation | null;
  gradientCheck: GradientCheck | null;
  stageSeconds: Record<string, number>;
  experiments?: unknown;
}

export function metricsFile(inputs: MetricsInputs): MetricsFile {
  const metrics: MetricsFile = {
    config: inputs.config,
    backend: inputs.tfjs.backend,
    tfjs: implementationMetrics(inputs.tfjs, inputs.tfjsEvaluation),
    stage_seconds: inputs.stageSeconds,
  };
  if (inputs.reference && inputs.referenceEvaluation) {
    metrics.reference = implementationMetrics(inputs.reference, inputs.referenceEvaluation);
  }
  if (inputs.gradientCheck) metrics.gradient_check = inputs.gradientCheck;
  if (inputs.experiments !== undefined && inputs.experiments !== null) metrics.experiments = inputs.experiments;
  return metrics;
}

/** training_history.csv: one row per implementation and epoch. */
export function historyCsv(histories: { implementation: string; history: EpochRecord[] }[]): string {
  const rows = [HISTORY_COLUMNS.join(',')];
  for (const { implementation, history } of histories) {
    for (const r of history) {
      rows.push([implementation, r.epoch, r.loss, r.accuracy, r.val_loss, r.val_accuracy, r.seconds.toFixed(3)].join(','));
    }
  }
  return `${rows.join('\n')}\n`;
}

export function textFile(filePath: string, text: string): ReportFile {
  return { path: filePath, data: new TextEncoder().encode(text) };
}
