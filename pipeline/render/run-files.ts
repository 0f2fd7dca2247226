// The files of reports/ that are not pictures: metrics.json, the history CSV,
// config.json and the saved models. All are built in memory; publishFolder
// (pipeline/output/publish.ts) switches the whole folder in at once.

import type { Config } from '../config.js';
import type { ExperimentsMetrics } from '../experiments/comparison.js';
import type {
  EpochRecord,
  GradientCheck,
  GradientCheckJson,
  ImplementationMetrics,
  MetricsFile,
  ModelEvaluation,
  Provenance,
  ProvenanceJson,
  ReportFile,
  RunMetadata,
  RunMetadataJson,
  TensorError,
  TensorErrorJson,
  TrainedModel,
} from '../types.js';

const HISTORY_COLUMNS = ['implementation', 'epoch', 'loss', 'accuracy', 'val_loss', 'val_accuracy', 'seconds'] as const;

/** One implementation's metrics.json block: the in-memory camelCase names become the file's snake_case. */
function implementationMetrics(trained: TrainedModel, evaluation: ModelEvaluation): ImplementationMetrics {
  const last = trained.history.at(-1);
  if (!last) throw new Error(`metrics.json: the ${trained.implementation} model has no training history (epochs must be ≥ 1)`);
  return {
    backend: trained.backend,
    ...(trained.threads === undefined ? {} : { threads: trained.threads }),
    epochs: trained.history.length,
    train_accuracy: trained.trainAccuracy,
    val_accuracy: last.valAccuracy,
    test_accuracy: evaluation.testAccuracy,
    test_loss: evaluation.testLoss,
    train_seconds: trained.trainSeconds,
    train_samples_per_second: trained.samplesPerSecond,
    confusion_matrix: evaluation.confusionMatrix,
    per_class: evaluation.perClass,
    macro_avg: evaluation.macroAverage,
    weighted_avg: evaluation.weightedAverage,
    most_confused: evaluation.mostConfused,
    ...(trained.trainedBy ? { trained_by: provenanceJson(trained.trainedBy) } : {}),
  };
}

/** A model's `trained_by` block, and the first fields of the `run` block. */
export function provenanceJson(provenance: Provenance): ProvenanceJson {
  return {
    started_at: provenance.startedAt,
    git_commit: provenance.gitCommit,
    git_dirty: provenance.gitDirty,
    node_version: provenance.nodeVersion,
    tfjs_version: provenance.tfjsVersion,
    backend: provenance.backend,
    backend_version: provenance.backendVersion,
  };
}

/** The `run` block of metrics.json. */
export function runMetadataJson(run: RunMetadata): RunMetadataJson {
  return {
    ...provenanceJson(run),
    os: run.os,
    cpu_model: run.cpuModel,
    cpu_cores: run.cpuCores,
    wall_seconds: run.wallSeconds,
    peak_memory_mib: run.peakMemoryMiB,
    peak_memory_processes: run.peakMemoryProcesses,
  };
}

/** Applies `f` to every tensor of an oracle's table, keeping the tensors' order. */
function mapTensors<A, B>(table: Record<string, A>, f: (error: A) => B): Record<string, B> {
  return Object.fromEntries(Object.entries(table).map(([tensor, error]) => [tensor, f(error)]));
}

function tensorErrorJson(error: TensorError): TensorErrorJson {
  return {
    max_abs_error: error.maxAbsError,
    max_rel_error: error.maxRelError,
    ...(error.maxRoundingRatio === undefined ? {} : { max_rounding_ratio: error.maxRoundingRatio }),
  };
}

function tensorErrorFromJson(error: TensorErrorJson): TensorError {
  return {
    maxAbsError: error.max_abs_error,
    maxRelError: error.max_rel_error,
    ...(error.max_rounding_ratio === undefined ? {} : { maxRoundingRatio: error.max_rounding_ratio }),
  };
}

/** The `gradient_check` block of metrics.json: the in-memory camelCase names become the file's snake_case. */
export function gradientCheckJson(check: GradientCheck): GradientCheckJson {
  return {
    finite_difference: mapTensors(check.finiteDifference, tensorErrorJson),
    tfjs: mapTensors(check.tfjs, tensorErrorJson),
    batch_size: check.batchSize,
    seed: check.seed,
    finite_difference_samples: check.finiteDifferenceSamples,
    finite_difference_skipped: check.finiteDifferenceSkipped,
    step: check.step,
    backend: check.backend,
  };
}

/** A `gradient_check` block read back from metrics.json (the report re-renders from the file). */
export function gradientCheckFromJson(check: GradientCheckJson): GradientCheck {
  return {
    finiteDifference: mapTensors(check.finite_difference, tensorErrorFromJson),
    tfjs: mapTensors(check.tfjs, tensorErrorFromJson),
    batchSize: check.batch_size,
    seed: check.seed,
    finiteDifferenceSamples: check.finite_difference_samples,
    finiteDifferenceSkipped: check.finite_difference_skipped,
    step: check.step,
    backend: check.backend,
  };
}

export interface MetricsInputs {
  run: RunMetadata;
  config: Config;
  tfjs: TrainedModel;
  tfjsEvaluation: ModelEvaluation;
  reference: TrainedModel | null;
  referenceEvaluation: ModelEvaluation | null;
  gradientCheck: GradientCheck | null;
  stageSeconds: Record<string, number>;
  stageKeys?: Record<string, string>;
  experiments: ExperimentsMetrics | null;
}

export function metricsFile(inputs: MetricsInputs): MetricsFile {
  const metrics: MetricsFile = {
    run: runMetadataJson(inputs.run),
    config: inputs.config,
    backend: inputs.tfjs.backend,
    tfjs: implementationMetrics(inputs.tfjs, inputs.tfjsEvaluation),
    stage_seconds: inputs.stageSeconds,
    ...(inputs.stageKeys ? { stage_keys: inputs.stageKeys } : {}),
  };
  if (inputs.reference && inputs.referenceEvaluation) {
    metrics.reference = implementationMetrics(inputs.reference, inputs.referenceEvaluation);
  }
  if (inputs.gradientCheck) metrics.gradient_check = gradientCheckJson(inputs.gradientCheck);
  if (inputs.experiments) metrics.experiments = inputs.experiments;
  return metrics;
}

/** training_history.csv: one row per implementation and epoch. */
export function historyCsv(histories: { implementation: string; history: EpochRecord[] }[]): string {
  const rows = [HISTORY_COLUMNS.join(',')];
  for (const { implementation, history } of histories) {
    for (const r of history) {
      rows.push([implementation, r.epoch, r.loss, r.accuracy, r.valLoss, r.valAccuracy, r.seconds.toFixed(3)].join(','));
    }
  }
  return `${rows.join('\n')}\n`;
}

export function textFile(filePath: string, text: string): ReportFile {
  return { path: filePath, data: new TextEncoder().encode(text) };
}
