// The package's API: a trained model, loaded from a report folder, that names the digit in a
// picture. Plain Node, no TF.js: the saved weights (model.json + weights.bin, TF.js's layers
// format) are read by hand and run through the reference core's dense forward pass, which is
// exactly the network these models are (batch norm, where a recipe used it, is folded away).
//
//   import { loadModel } from 'mnist-pipeline';
//   const model = await loadModel('reports/model/tfjs');
//   const top3 = await model.classify('my-digit.png'); // [{ digit, probability }, …]
//
// D = 784, K = 10.

import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { forward } from '../reference/network.js';
import { D, PARAM_NAMES, PARAM_SHAPES, TFJS_WEIGHT_NAMES, paramSize, type ParamName, type Params } from '../reference/shapes.js';
import { PUBLISH_MANIFEST, verifyPublished } from './output/publish.js';
import { decodeImage } from './predict/decode.js';
import { PredictError, TOP_K, prepareDigit, topGuesses, type Guess } from './predict/prepare.js';

export type { Guess } from './predict/prepare.js';
export { PredictError } from './predict/prepare.js';

/** A trained model, ready to classify. */
export interface DigitModel {
  folder: string; // the model folder it was loaded from
  params: Params; // its weights: w1 (784, 128), b1, w2 (128, 64), b2, w3 (64, 10), b3, row-major float32
  /**
   * The most likely digits, best first: for a PNG or JPEG file (prepared the way MNIST was made, as
   * `npm run predict` does), or for 784 prepared pixels in [0, 1], white ink on black, row by row.
   */
  classify(input: string | Float32Array, top?: number): Promise<Guess[]>;
}

/** A model folder that cannot be used: the message names the file and what is wrong with it. */
export class ModelLoadError extends Error {
  override name = 'ModelLoadError';
}

interface WeightSpec {
  name: string;
  shape: number[];
  dtype: string;
}

/** The weights of a TF.js layers-format model folder, as Params, with every name, shape and byte checked. */
function readWeights(folder: string): Params {
  const modelJson = path.join(folder, 'model.json');
  if (!existsSync(modelJson)) throw new ModelLoadError(`${modelJson}: expected a saved model (model.json), found no such file`);
  let manifest: { paths: string[]; weights: WeightSpec[] }[];
  try {
    manifest = (JSON.parse(readFileSync(modelJson, 'utf8')) as { weightsManifest: typeof manifest }).weightsManifest;
    if (!Array.isArray(manifest)) throw new Error('no weightsManifest');
  } catch (error) {
    throw new ModelLoadError(`${modelJson}: expected TF.js's layers format with a weightsManifest, found ${(error as Error).message}`);
  }
  const bytes = Buffer.concat(manifest.flatMap((group) => group.paths.map((file) => readFileSync(path.join(folder, file)))));
  const specs = manifest.flatMap((group) => group.weights);
  const byName = new Map<string, Float32Array>();
  let offset = 0;
  for (const spec of specs) {
    const count = spec.shape.reduce((a, b) => a * b, 1);
    if (spec.dtype !== 'float32') throw new ModelLoadError(`${modelJson}: expected float32 weights, found ${spec.name} as ${spec.dtype}`);
    if (offset + count * 4 > bytes.length) {
      throw new ModelLoadError(`${folder}: expected ${offset + count * 4} bytes of weights, found ${bytes.length} (a cut weights file)`);
    }
    byName.set(spec.name, new Float32Array(bytes.buffer.slice(bytes.byteOffset + offset, bytes.byteOffset + offset + count * 4)));
    offset += count * 4;
  }
  const tensor = (name: ParamName): Float32Array => {
    const found = byName.get(TFJS_WEIGHT_NAMES[name]);
    if (!found || found.length !== paramSize(name)) {
      const expected = `${TFJS_WEIGHT_NAMES[name]} of shape [${PARAM_SHAPES[name]}]`;
      throw new ModelLoadError(
        `${modelJson}: expected ${expected} (a 784-128-64-10 network), found ${found ? `${found.length} values` : 'none'}`,
      );
    }
    return found;
  };
  const [w1, b1, w2, b2, w3, b3] = PARAM_NAMES.map(tensor) as [
    Float32Array,
    Float32Array,
    Float32Array,
    Float32Array,
    Float32Array,
    Float32Array,
  ];
  return { w1, b1, w2, b2, w3, b3 };
}

/** The 784 pixels a picture file becomes; a PredictError names the file. */
async function preparedFile(file: string): Promise<Float32Array> {
  try {
    return prepareDigit(await decodeImage(file)).input;
  } catch (error) {
    if (error instanceof PredictError) throw new PredictError(`${file}: ${error.message}`);
    throw error;
  }
}

/**
 * Loads the model saved in `folder` (e.g. 'reports/model/tfjs'). When the folder lies in a report folder
 * of the pipeline, its files are first checked against that report's manifest (size and SHA-256).
 */
export async function loadModel(folder: string): Promise<DigitModel> {
  const report = path.dirname(path.dirname(path.resolve(folder)));
  if (existsSync(path.join(report, PUBLISH_MANIFEST))) {
    const problems = verifyPublished(report, path.relative(report, path.resolve(folder)));
    if (problems.length > 0) throw new ModelLoadError(`${problems[0]}; the model folder is damaged: run the pipeline again to rewrite it`);
  }
  const params = readWeights(folder);
  return {
    folder,
    params,
    async classify(input, top = TOP_K) {
      const pixels = typeof input === 'string' ? await preparedFile(input) : input;
      if (pixels.length !== D) throw new ModelLoadError(`classify: expected ${D} prepared pixels (28×28), found ${pixels.length}`);
      const { probs } = forward(params, pixels, null, 1); // (1, K)
      return topGuesses(probs, top);
    },
  };
}
