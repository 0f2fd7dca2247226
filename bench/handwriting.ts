// How well a saved model reads handwriting it was not trained on, through `npm run predict`'s
// preparation (pipeline/predict/prepare.ts), on two sets:
//
//   drawn   the first N MNIST test digits, drawn dark on white at 10× size (a clean drawing)
//   real    the UCI optical-recognition handwritten digits (1,797 of them, 8×8, written by 43 people
//           who are not MNIST's), which scikit-learn ships as digits.csv.gz; Debian's package
//           python3-sklearn holds it too. Each is drawn dark on white at 10× size, smoothed.
//
//   `npx tsx bench/handwriting.ts --model reports/model/tfjs [--digits PATH/digits.csv.gz] [--count 2000]`
//
// Pure TypeScript forward (the reference core) on the saved weights: the same answers as predict.

import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { createCanvas, createImageData } from 'canvas';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { argmax, forward } from '../reference/network.js';
import { D, K, PARAM_NAMES, TFJS_WEIGHT_NAMES, type Params } from '../reference/shapes.js';
import { prepareRgba } from '../pipeline/predict/prepare.js';
import { defaultDataDir, loadMnist } from '../pipeline/stages/load.js';

const DEBIAN_DIGITS = '/usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz';

/** The weights of a TF.js layers-format folder, by name (the same reading as pipeline/library.ts, kept here so it runs on older trees). */
function readParams(folder: string): Params {
  const json = JSON.parse(readFileSync(path.join(folder, 'model.json'), 'utf8')) as {
    weightsManifest: { paths: string[]; weights: { name: string; shape: number[] }[] }[];
  };
  const bytes = Buffer.concat(json.weightsManifest.flatMap((group) => group.paths.map((file) => readFileSync(path.join(folder, file)))));
  const byName = new Map<string, Float32Array>();
  let offset = 0;
  for (const spec of json.weightsManifest.flatMap((group) => group.weights)) {
    const count = spec.shape.reduce((a, b) => a * b, 1);
    byName.set(spec.name, new Float32Array(bytes.buffer.slice(bytes.byteOffset + offset, bytes.byteOffset + offset + 4 * count)));
    offset += 4 * count;
  }
  const [w1, b1, w2, b2, w3, b3] = PARAM_NAMES.map((name) => byName.get(TFJS_WEIGHT_NAMES[name])!) as Float32Array[];
  return { w1: w1!, b1: b1!, w2: w2!, b2: b2!, w3: w3!, b3: b3! };
}

/** A side × side image of `ink` in [0, 1] (row-major), drawn dark on white at `scale`× with smoothing, as RGBA. */
function drawnLarge(ink: Float32Array, side: number, scale: number): { rgba: Uint8ClampedArray; size: number } {
  const small = createCanvas(side, side);
  const rgba = new Uint8ClampedArray(side * side * 4);
  for (let p = 0; p < side * side; p++) {
    const level = 255 - Math.round(255 * ink[p]!);
    rgba.set([level, level, level, 255], p * 4);
  }
  small.getContext('2d').putImageData(createImageData(rgba, side, side), 0, 0);
  const size = side * scale;
  const large = createCanvas(size, size);
  const context = large.getContext('2d');
  context.imageSmoothingEnabled = true;
  context.drawImage(small, 0, 0, size, size);
  return { rgba: context.getImageData(0, 0, size, size).data, size };
}

/** Right answers of `params` on `digits`, each prepared as predict prepares a picture. */
function score(params: Params, digits: { ink: Float32Array; side: number; label: number }[]): number {
  let right = 0;
  for (const { ink, side, label } of digits) {
    const { rgba, size } = drawnLarge(ink, side, Math.round(80 / side) || 1);
    const { probs } = forward(params, prepareRgba(rgba, size, size).input, null, 1);
    if (argmax(probs, 0, K) === label) right++;
  }
  return right;
}

const args = yargs(hideBin(process.argv))
  .option('model', { type: 'string', default: 'reports/model/tfjs', describe: 'A saved model folder' })
  .option('digits', { type: 'string', default: DEBIAN_DIGITS, describe: "scikit-learn's digits.csv.gz (the UCI handwritten digits)" })
  .option('count', { type: 'number', default: 2000, describe: 'MNIST test digits drawn' })
  .strict()
  .parseSync();
const params = readParams(args.model);
const { test } = loadMnist(defaultDataDir());
const drawn = Array.from({ length: Math.min(args.count, test.count) }, (_, n) => ({
  ink: Float32Array.from(test.images.subarray(n * D, (n + 1) * D)),
  side: 28,
  label: test.labels[n]!,
}));
const drawnRight = score(params, drawn);
console.log(`drawn MNIST test digits: ${drawnRight} of ${drawn.length} right (${((100 * drawnRight) / drawn.length).toFixed(1)}%)`);
if (!existsSync(args.digits)) {
  console.log(`real handwriting: ${args.digits} not found (apt-get install python3-sklearn, or give --digits)`);
} else {
  const rows = gunzipSync(readFileSync(args.digits)).toString('utf8').trim().split('\n');
  const real = rows.map((row) => {
    const values = row.split(',').map(Number);
    return { ink: Float32Array.from(values.slice(0, 64), (v) => v / 16), side: 8, label: values[64]! };
  });
  const realRight = score(params, real);
  console.log(`real handwriting (UCI digits): ${realRight} of ${real.length} right (${((100 * realRight) / real.length).toFixed(1)}%)`);
}
