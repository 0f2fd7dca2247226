// Reading your own digits: an image file becomes the 28×28 input MNIST itself
// would have made of it, and a trained model names its top three digits.
//
//   file ─► header checks (size, truncation) ─► decode, drawn down to ≤ 1000 px (node-canvas)
//        ─► prepareRgba (./prepare.ts, shared with the report's live panel) ─► model
//
// D = 784, K = 10.

import { closeSync, existsSync, mkdirSync, openSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createCanvas, createImageData } from 'canvas';
import { decodeImage } from './decode.js';
import type * as tf from '@tensorflow/tfjs';
import { D, K } from '../../reference/shapes.js';
import { DEFAULTS } from '../config.js';
import { PUBLISH_MANIFEST, verifyPublished } from '../output/publish.js';
import { MODEL_JSON, loadModel } from '../tfjs/model-io.js';
import { predictProbabilities } from '../tfjs/model.js';
import { percent } from '../render/format.js';
import type { ModelName } from './model-names.js';
import { FIELD_SIDE, PredictError, inputRgba, prepareDigit, topGuesses, type Guess } from './prepare.js';

/** There is no usable trained model to predict with. */
export class ModelError extends Error {
  override name = 'ModelError';
}

/** Below this probability the top answer is a guess, and the result says so. */
const UNSURE_PROBABILITY = 0.5;

export type FileResult =
  | {
      file: string;
      ok: true;
      guesses: Guess[];
      lowConfidence: string | null; // why the answer is doubtful ("little ink", "several separate marks", …); null: it is not
      inputImage?: string; // the --show-input PNG, a file we created
    }
  | { file: string; ok: false; error: string };

/** A 28×28 grayscale PNG of a (D) input, white ink on black as the network sees it. */
function inputPng(input: Float32Array): Uint8Array {
  const canvas = createCanvas(FIELD_SIDE, FIELD_SIDE);
  canvas.getContext('2d').putImageData(createImageData(inputRgba(input), FIELD_SIDE, FIELD_SIDE), 0, 0);
  return new Uint8Array(canvas.toBuffer('image/png'));
}

/** A report folder: the path this process opens, and the one messages show (as the user typed it, or would). */
export interface ReportFolder {
  path: string;
  shown: string;
  pipelineOut: string | null; // the --out with which `npm run pipeline` writes it; null: its default folder
}

/** A report folder named in messages just as given (for callers that resolve no paths themselves). */
export function reportFolder(out: string): ReportFolder {
  return { path: out, shown: out, pipelineOut: out === DEFAULTS.out ? null : out };
}

export interface TrainedModel {
  model: tf.LayersModel;
  folder: string; // <out>/model/<name>, as shown
  unchecked: string | null; // why its files could not be checked against the report's manifest; null when they were, and matched
}

/** Checks the files under `under` with verifyPublished, naming each damaged file under `report.shown`. */
function damagedFiles(report: ReportFolder, under: string): string[] {
  const absolute = path.resolve(report.path); // verifyPublished names files by path.join(out, name): a prefix without `./` or a trailing `/`
  const prefix = absolute.endsWith(path.sep) ? absolute : absolute + path.sep;
  return verifyPublished(absolute, under).map((problem) => {
    if (!problem.startsWith(prefix)) return problem;
    const rest = problem.slice(prefix.length); // "model/tfjs/weights.bin: expected …"
    const colon = rest.indexOf(': ');
    return colon < 0 ? problem : path.join(report.shown, rest.slice(0, colon)) + rest.slice(colon);
  });
}

/**
 * Checks <out>/model/<name> against the manifest the pipeline published with it: damage is a ModelError
 * naming the file. Returns why the folder could not be checked (a folder without a manifest, written by hand
 * or by an older version, or a model the manifest does not list), or null when every file matched.
 */
function checkModelFolder(report: ReportFolder, name: ModelName, rewrite: string): string | null {
  const under = `model/${name}`;
  if (!existsSync(path.join(report.path, PUBLISH_MANIFEST))) {
    return `${report.shown} has no ${PUBLISH_MANIFEST} (written by hand or by an older version)`;
  }
  const problems = damagedFiles(report, under);
  if (problems.length > 0) {
    const more = problems.length > 1 ? ` (and ${problems.length - 1} more files)` : '';
    throw new ModelError(`${problems[0]}${more}; the report folder is damaged: rerun ${rewrite} to write it again`);
  }
  const listed = Object.keys(
    (JSON.parse(readFileSync(path.join(report.path, PUBLISH_MANIFEST), 'utf8')) as { files?: object }).files ?? {},
  );
  if (listed.some((file) => file.startsWith(`${under}/`))) return null;
  return `${path.join(report.shown, PUBLISH_MANIFEST)} does not list it (copied in by hand?)`;
}

/**
 * Loads <out>/model/<name> after checking its files against the report's manifest. A missing model says
 * which pipeline command makes it; a damaged one names the file.
 */
export async function loadTrainedModel(report: ReportFolder, name: ModelName): Promise<TrainedModel> {
  const out = report.pipelineOut === null ? [] : ['--out', report.pipelineOut];
  const pipeline = (...flags: string[]) => `npm run pipeline${flags.length > 0 ? ` -- ${flags.join(' ')}` : ''}`;
  const command = pipeline(...out, ...(name === 'best' ? ['--experiments'] : []));
  const unchecked = checkModelFolder(report, name, pipeline('--stage', 'report', ...out)); // the same run's config, from its cache
  const folder = path.join(report.path, 'model', name);
  const shownFolder = path.join(report.shown, 'model', name);
  if (!existsSync(path.join(folder, MODEL_JSON))) {
    const shownModel = path.join(shownFolder, MODEL_JSON);
    throw new ModelError(
      name === 'best'
        ? `no best model: ${shownModel} does not exist. The experiments save it: run ${command}.`
        : `no trained ${name} model: ${shownModel} does not exist. ` +
            `Run the pipeline first (${command})${name === 'reference' ? ', without --no-reference' : ''}.`,
    );
  }
  let model: tf.LayersModel;
  try {
    model = await loadModel(folder);
  } catch (error) {
    throw new ModelError(`${shownFolder}: could not load the model (${(error as Error).message}); rerun the pipeline to write it again`);
  }
  const inputShape = model.inputs[0]?.shape;
  const outputShape = model.outputs[0]?.shape;
  if (inputShape?.at(-1) !== D || outputShape?.at(-1) !== K) {
    model.dispose();
    throw new ModelError(`${shownFolder}: expected a model from ${D} inputs to ${K} digits, found [${inputShape}] → [${outputShape}]`);
  }
  return { model, folder: shownFolder, unchecked };
}

/** The name --show-input gives the 28×28 image of `file` when that name is free: its stem, as a PNG. */
export function inputImageName(file: string): string {
  return `${path.basename(file, path.extname(file)) || 'input'}.png`;
}

/**
 * Writes `data` as `name` in `folder`, or as name-2, name-3, … when taken. Each name is opened with O_EXCL
 * (flag wx), so an existing file (the user's picture, an earlier image, one made meanwhile) is never written over.
 */
function writeNewFile(folder: string, name: string, data: Uint8Array): string {
  const extension = path.extname(name);
  const stem = name.slice(0, name.length - extension.length);
  for (let n = 1; ; n++) {
    const file = path.join(folder, n === 1 ? name : `${stem}-${n}${extension}`);
    let descriptor: number;
    try {
      descriptor = openSync(file, 'wx');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') continue;
      throw error;
    }
    try {
      writeFileSync(descriptor, data);
    } catch (error) {
      closeSync(descriptor);
      unlinkSync(file); // ours: we created it just now
      throw error;
    }
    closeSync(descriptor);
    return file;
  }
}

/**
 * Prepares and classifies every file. A file that fails gets its error and the
 * others go on. With `showInput`, the 28×28 image each file became is written there,
 * under a new name (see writeNewFile): no existing file is written over.
 */
export async function predictFiles(
  files: readonly string[],
  model: tf.LayersModel,
  options: { showInput?: string } = {},
): Promise<FileResult[]> {
  const results: FileResult[] = [];
  const prepared: { slot: number; input: Float32Array; doubt: string | null }[] = [];
  if (options.showInput) mkdirSync(options.showInput, { recursive: true });
  for (const file of files) {
    try {
      const { input, lowConfidence: doubt } = prepareDigit(await decodeImage(file));
      let inputImage: string | undefined;
      if (options.showInput) inputImage = writeNewFile(options.showInput, inputImageName(file), inputPng(input));
      prepared.push({ slot: results.length, input, doubt });
      results.push({ file, ok: true, guesses: [], lowConfidence: null, ...(inputImage ? { inputImage } : {}) });
    } catch (error) {
      if (!(error instanceof PredictError)) throw error;
      results.push({ file, ok: false, error: error.message });
    }
  }
  const batch = new Float32Array(prepared.length * D); // (N, D)
  prepared.forEach(({ input }, n) => batch.set(input, n * D));
  const probabilities = predictProbabilities(model, batch, prepared.length); // (N, K)
  prepared.forEach(({ slot, doubt }, n) => {
    const result = results[slot]!;
    if (!result.ok) return;
    result.guesses = topGuesses(probabilities.subarray(n * K, (n + 1) * K));
    const unsure =
      result.guesses[0]!.probability < UNSURE_PROBABILITY ? `the top answer has under ${percent(UNSURE_PROBABILITY, 0)}` : null;
    result.lowConfidence = [doubt, unsure].filter((reason) => reason !== null).join('; ') || null;
  });
  return results;
}

/** One line per file: the guesses and any doubt about them, or the error. */
export function formatResult(result: FileResult): string {
  if (!result.ok) return `${result.file}: error: ${result.error}`;
  const guesses = result.guesses.map((guess) => `${guess.digit} (${percent(guess.probability, 1)})`).join(', ');
  const doubt = result.lowConfidence ? `  [low confidence: ${result.lowConfidence}]` : '';
  return `${result.file}: ${guesses}${doubt}${result.inputImage ? `  [input: ${result.inputImage}]` : ''}`;
}
