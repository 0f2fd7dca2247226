// The typed outputs of every stage. The runner caches these on disk, so they
// hold only JSON values and typed arrays.
// N = images in a split, D = 784, K = 10.

import type { EpochRecord } from '../reference/epochs.js';
import type { Params, Pixels } from '../reference/shapes.js';
import type { Config } from './config.js';
import type { ExperimentsMetrics } from './experiments/comparison.js';

/** One IDX file pair as read from disk. */
export interface RawSplit {
  images: Uint8Array; // (N, D) pixel bytes 0–255
  labels: Uint8Array; // (N) digits 0–9
  count: number;
  rows: number;
  cols: number;
  imageFile: string;
  labelFile: string;
}

/** Output of the load stage. */
export interface Mnist {
  train: RawSplit;
  test: RawSplit;
  dataDir: string;
}

/** One split after preprocessing. */
export interface Split {
  images: Pixels; // (N, D) bytes 0–255, as in the IDX file; scalePixels makes the network's floats per batch
  labels: Uint8Array; // (N)
  oneHot: Float32Array; // (N, K)
  count: number;
}

/** Output of the preprocess stage. */
export interface Dataset {
  train: Split; // first trainSize images of the training file
  validation: Split; // last valSize images of the training file
  test: Split; // first testSize images of the test file
  validationOffset: number; // index in the training file of validation[0]
}

/** Output of the init stage: the Glorot-uniform start both implementations share. */
export interface InitialWeights {
  params: Params;
  seed: number;
}

export type Implementation = 'tfjs' | 'reference';

export type { EpochRecord }; // one epoch of training, as the one epoch loop records it (reference/epochs.ts)

/** Output of the train stage (TF.js) and of the reference stage. */
export interface TrainedModel {
  implementation: Implementation;
  backend: string; // the TF.js backend that ran, or 'typescript' for the reference
  params: Params; // final weights
  history: EpochRecord[];
  trainSeconds: number; // training time, validation passes excluded
  samplesPerSecond: number; // training images per second over trainSeconds
  trainAccuracy: number; // accuracy on the whole training split after the last epoch
  threads?: number; // the reference's team of threads (reference/fast/threads.ts); under --jobs some may sleep while other stages run; TF.js leaves threading to its backend
  trainedBy?: Provenance; // the run that trained it; absent in cache entries made before it was recorded
}

export interface ClassMetrics {
  digit: number;
  precision: number;
  recall: number;
  f1: number;
  support: number;
}

export interface AverageMetrics {
  precision: number;
  recall: number;
  f1: number;
  support: number;
}

export interface ConfusedPair {
  true: number;
  predicted: number;
  count: number;
}

/** A test image picked as an example for the charts. */
export interface Example {
  index: number; // into the test split
  label: number;
  predicted: number;
  probability: number; // the probability given to `predicted`
}

/** Test-set evaluation of one model. */
export interface ModelEvaluation {
  implementation: Implementation;
  testAccuracy: number;
  testLoss: number; // mean cross-entropy over the test split
  confusionMatrix: number[][]; // (K, K), rows are the true digit
  perClass: ClassMetrics[];
  macroAverage: AverageMetrics;
  weightedAverage: AverageMetrics;
  mostConfused: ConfusedPair[]; // the five largest off-diagonal cells
  examples: { correct: Example[]; wrong: Example[] };
  predictions: Uint8Array; // (N) predicted digit per test image
  confidence: Float32Array; // (N) probability of the predicted digit
}

/** Output of the evaluate stage. */
export interface Evaluation {
  tfjs: ModelEvaluation;
  reference: ModelEvaluation | null; // null when --no-reference
}

/** One tensor's largest disagreement with an oracle; camelCase here, snake_case in metrics.json (TensorErrorJson). */
export interface TensorError {
  maxAbsError: number;
  maxRelError: number;
  maxRoundingRatio?: number; // TF.js only: max |a − b| / (u · rounding scale), pipeline/stages/gradcheck.ts roundingScale
}

/** Output of the gradcheck stage; written to metrics.json as `gradient_check` (GradientCheckJson). */
export interface GradientCheck {
  finiteDifference: Record<string, TensorError>; // keyed by TF.js weight name, e.g. 'dense1/kernel'
  tfjs: Record<string, TensorError>;
  batchSize: number;
  seed: number;
  finiteDifferenceSamples: number; // parameters sampled per tensor
  finiteDifferenceSkipped: number; // samples skipped because a ReLU input sat within h of 0
  step: number; // h of the central difference
  backend: string;
}

/** A TensorError as metrics.json records it. */
export interface TensorErrorJson {
  max_abs_error: number;
  max_rel_error: number;
  max_rounding_ratio?: number; // absent from the finite differences, and from a metrics.json written before the ratio existed
}

/** The `gradient_check` block of metrics.json. */
export interface GradientCheckJson {
  finite_difference: Record<string, TensorErrorJson>;
  tfjs: Record<string, TensorErrorJson>;
  batch_size: number;
  seed: number;
  finite_difference_samples: number;
  finite_difference_skipped: number;
  step: number;
  backend: string;
}

/** A file produced for reports/, relative to the report folder. */
export interface ReportFile {
  path: string; // e.g. 'training_curves.png' or 'specs/training_curves.vl.json'
  data: Uint8Array;
}

/** Output of the visualize stage. */
export interface Visuals {
  files: ReportFile[];
}

export type { Config, Params };

/** One implementation's block in metrics.json (`tfjs` or `reference`). */
export interface ImplementationMetrics {
  backend: string;
  threads?: number; // the reference's team of threads (at most this many worked at once)
  epochs: number;
  train_accuracy: number;
  val_accuracy: number;
  test_accuracy: number;
  test_loss: number;
  train_seconds: number;
  train_samples_per_second: number;
  confusion_matrix: number[][]; // (K, K), rows are the true digit
  per_class: ClassMetrics[];
  macro_avg: AverageMetrics;
  weighted_avg: AverageMetrics;
  most_confused: ConfusedPair[];
  trained_by?: ProvenanceJson; // the run that trained it (a rerun may publish it later); absent when the cache entry predates the record
}

/** The run a result came from: its start, commit and versions (pipeline/provenance.ts). */
export interface Provenance {
  startedAt: string; // ISO 8601, UTC: when the run (the pipeline command) started
  gitCommit: string; // 'unknown' without git or .git
  gitDirty: boolean | 'unknown'; // uncommitted changes to tracked files
  nodeVersion: string;
  tfjsVersion: string;
  backend: string; // the TF.js backend that ran
  backendVersion: string;
}

/** Where and how a run happened, for reproducibility; camelCase here, snake_case in metrics.json. */
export interface RunMetadata extends Provenance {
  os: string; // e.g. 'linux 6.1.0 (x64)'
  cpuModel: string;
  cpuCores: number;
  wallSeconds: number; // process start to the report stage
  peakMemoryMiB: number | null; // peak resident memory of all the run's processes together, sampled every 0.1 s, up to the report stage; null where it cannot be measured
  peakMemoryProcesses: number | null; // how many processes were alive at that peak
}

/** A model's `trained_by` block in metrics.json, and the start of the `run` block. */
export interface ProvenanceJson {
  started_at: string;
  git_commit: string;
  git_dirty: boolean | 'unknown';
  node_version: string;
  tfjs_version: string;
  backend: string;
  backend_version: string;
}

/** The `run` block of metrics.json: the invocation that published the folder. */
export interface RunMetadataJson extends ProvenanceJson {
  os: string;
  cpu_model: string;
  cpu_cores: number;
  wall_seconds: number;
  peak_memory_mib: number | null; // all the run's processes together, sampled every 0.1 s; null where it cannot be measured
  peak_memory_processes: number | null;
}

/** The contract of reports/metrics.json. */
export interface MetricsFile {
  run: RunMetadataJson;
  config: Config;
  backend: string; // the TF.js backend that ran
  tfjs: ImplementationMetrics;
  reference?: ImplementationMetrics;
  gradient_check?: GradientCheckJson;
  stage_seconds: Record<string, number>; // wall time of each stage in the run that produced it (cached stages keep their original time)
  stage_keys?: Record<string, string>; // the cache key of each stage's output this folder was made from (--runs, --gc); absent before it was recorded
  experiments?: ExperimentsMetrics; // only with --experiments
}
