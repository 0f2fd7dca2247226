// Saving and loading the TF.js layers format (model.json + weights.bin) on the
// local disk. tfjs-node brings a file:// handler; without it there is none,
// so these small handlers do the same job on any backend. Beside them, weights.npz
// gives numpy users the same weights as w1…b3 (x @ w1 + b1, rows = inputs).

import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { PARAM_NAMES, PARAM_SHAPES } from '../../reference/shapes.js';
import { npzBytes } from '../output/npz.js';
import { modelWithParams } from './model.js';
import type { Params, ReportFile } from '../types.js';

export const MODEL_JSON = 'model.json';
const WEIGHTS_BIN = 'weights.bin';
const WEIGHTS_NPZ = 'weights.npz';

function concatWeights(data: tf.io.WeightData): Uint8Array {
  const buffers = Array.isArray(data) ? data : [data];
  return new Uint8Array(tf.io.concatenateArrayBuffers(buffers));
}

/** model.json, weights.bin and weights.npz for `params`, as files relative to `folder`. */
export async function modelFiles(params: Params, folder: string): Promise<ReportFile[]> {
  const model = modelWithParams(params);
  let files: ReportFile[] = [];
  try {
    await model.save(
      tf.io.withSaveHandler(async (artifacts) => {
        const modelJson = {
          modelTopology: artifacts.modelTopology,
          format: artifacts.format ?? 'layers-model',
          generatedBy: artifacts.generatedBy,
          convertedBy: artifacts.convertedBy ?? null,
          weightsManifest: [{ paths: [`./${WEIGHTS_BIN}`], weights: artifacts.weightSpecs ?? [] }],
        };
        files = [
          { path: path.posix.join(folder, MODEL_JSON), data: new TextEncoder().encode(JSON.stringify(modelJson, null, 1)) },
          { path: path.posix.join(folder, WEIGHTS_BIN), data: concatWeights(artifacts.weightData!) },
          // Params and a TF.js dense kernel share one layout, (IN, OUT) row-major: the arrays go in as they are
          {
            path: path.posix.join(folder, WEIGHTS_NPZ),
            data: npzBytes(PARAM_NAMES.map((name) => ({ name, shape: PARAM_SHAPES[name], data: params[name] }))),
          },
        ];
        return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
      }),
    );
  } finally {
    model.dispose();
  }
  return files;
}

/** A load handler for a folder holding model.json and the weight files it names. */
function fileLoadHandler(folder: string): tf.io.IOHandler {
  return {
    load: async () => {
      const jsonFile = path.join(folder, MODEL_JSON);
      if (!existsSync(jsonFile)) throw new Error(`${jsonFile}: expected a TF.js model.json, found no file`);
      const modelJson = JSON.parse(readFileSync(jsonFile, 'utf8')) as tf.io.ModelJSON;
      const weightSpecs: tf.io.WeightsManifestEntry[] = [];
      const buffers: ArrayBuffer[] = [];
      for (const group of modelJson.weightsManifest) {
        weightSpecs.push(...group.weights);
        for (const relative of group.paths) {
          const bytes = readFileSync(path.join(folder, relative));
          buffers.push(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer);
        }
      }
      return {
        modelTopology: modelJson.modelTopology,
        format: modelJson.format,
        generatedBy: modelJson.generatedBy,
        convertedBy: modelJson.convertedBy,
        weightSpecs,
        weightData: tf.io.concatenateArrayBuffers(buffers),
      };
    },
  };
}

/** Loads a saved model folder. */
export function loadModel(folder: string): Promise<tf.LayersModel> {
  return tf.loadLayersModel(fileLoadHandler(folder));
}
