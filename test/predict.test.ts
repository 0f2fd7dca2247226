// predict: MNIST-style preparation of any image, per-file errors, and the CLI.
// The model is trained here, quickly; the digit images are written here from the test set.

import { execFile, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  closeSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { createCanvas, loadImage, type Canvas } from 'canvas';
import type * as tf from '@tensorflow/tfjs';
import { argmax } from '../reference/network.js';
import { mulberry32 } from '../reference/random.js';
import { D, K, scalePixels } from '../reference/shapes.js';
import { predictProbabilities } from '../pipeline/tfjs/model.js';
import { MAX_WORKING_SIDE, decodeImage } from '../pipeline/predict/decode.js';
import { ModelError, formatResult, loadTrainedModel, predictFiles, reportFolder, type FileResult } from '../pipeline/predict/classify.js';
import {
  BOX_SIDE,
  FIELD_SIDE,
  PredictError,
  grayscale,
  prepareDigit,
  prepareRgba,
  strokeWidth,
  topGuesses,
  type GrayImage,
} from '../pipeline/predict/prepare.js';
import { quickModel } from './helpers/quick-model.js';
import { ROOT, runCli } from './helpers/cli.js';
import { grayPng } from './helpers/png.js';
import { publishFolder, type PublishFile } from '../pipeline/output/publish.js';
import type { Dataset } from '../pipeline/types.js';

const run = promisify(execFile);
const DIGITS = 200; // the first 200 test-set digits, written as PNGs four ways
const GROUP = DIGITS / 4;

let work: string; // temporary folder: reports/, images/, seen/
let out: string; // the report folder holding model/tfjs
let dataset: Dataset;
let model: tf.LayersModel;

/** A width × height canvas filled with one colour, and its context to draw on. */
function filledCanvas(width: number, height: number, fill: string) {
  const canvas = createCanvas(width, height);
  const context = canvas.getContext('2d');
  context.fillStyle = fill;
  context.fillRect(0, 0, width, height);
  return { canvas, context };
}

/** A canvas holding (D) ink values in [0, 1], white on black or black on white, scaled by `scale` at (left, top). */
function digitCanvas(
  ink: Float32Array,
  options: { scale?: number; invert?: boolean; width?: number; height?: number; left?: number; top?: number } = {},
): Canvas {
  const scale = options.scale ?? 1;
  const small = createCanvas(FIELD_SIDE, FIELD_SIDE);
  const smallContext = small.getContext('2d');
  const pixels = smallContext.createImageData(FIELD_SIDE, FIELD_SIDE);
  for (let p = 0; p < D; p++) {
    const level = Math.round((options.invert ? 1 - ink[p]! : ink[p]!) * 255);
    pixels.data.set([level, level, level, 255], p * 4);
  }
  smallContext.putImageData(pixels, 0, 0);
  const { canvas, context } = filledCanvas(
    options.width ?? FIELD_SIDE * scale,
    options.height ?? FIELD_SIDE * scale,
    options.invert ? 'white' : 'black',
  );
  context.drawImage(small, options.left ?? 0, options.top ?? 0, FIELD_SIDE * scale, FIELD_SIDE * scale);
  return canvas;
}

function testDigit(index: number): Float32Array {
  return scalePixels(dataset.test.images.subarray(index * D, (index + 1) * D));
}

function gray(canvas: Canvas): GrayImage {
  const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  const pixels = new Float32Array(canvas.width * canvas.height);
  for (let p = 0; p < pixels.length; p++) pixels[p] = data[p * 4]! / 255;
  return { pixels, width: canvas.width, height: canvas.height };
}

function maxDifference(a: Float32Array, b: Float32Array): { index: number; a: number; b: number; difference: number } {
  let worst = { index: -1, a: 0, b: 0, difference: 0 };
  for (let i = 0; i < a.length; i++) {
    const difference = Math.abs(a[i]! - b[i]!);
    if (difference > worst.difference) worst = { index: i, a: a[i]!, b: b[i]!, difference };
  }
  return worst;
}

beforeAll(async () => {
  work = mkdtempSync(path.join(os.tmpdir(), 'predict-'));
  out = path.join(work, 'reports');
  ({ dataset, model } = await quickModel(out, DIGITS));
});

afterAll(() => {
  model?.dispose();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('prepareDigit', () => {
  it('fits the ink in 20×20 and puts its centre of mass on pixel (14, 14), as in MNIST', () => {
    const prepared = prepareDigit(gray(digitCanvas(testDigit(0), { scale: 5 })));
    let mass = 0;
    let sumX = 0;
    let sumY = 0;
    let [x0, y0, x1, y1] = [FIELD_SIDE, FIELD_SIDE, -1, -1];
    for (let y = 0; y < FIELD_SIDE; y++) {
      for (let x = 0; x < FIELD_SIDE; x++) {
        const value = prepared.input[y * FIELD_SIDE + x]!;
        if (value === 0) continue;
        mass += value;
        sumX += value * x;
        sumY += value * y;
        [x0, y0, x1, y1] = [Math.min(x0, x), Math.min(y0, y), Math.max(x1, x), Math.max(y1, y)];
      }
    }
    expect(Math.max(x1 - x0 + 1, y1 - y0 + 1)).toBe(BOX_SIDE);
    expect(Math.abs(sumX / mass - FIELD_SIDE / 2)).toBeLessThanOrEqual(0.5);
    expect(Math.abs(sumY / mass - FIELD_SIDE / 2)).toBeLessThanOrEqual(0.5);
    expect(Math.max(...prepared.input)).toBeCloseTo(1, 5);
  });

  it('inverts dark-on-light images: black on white gives the same input as white on black', () => {
    for (const index of [0, 1, 2]) {
      const light = prepareDigit(gray(digitCanvas(testDigit(index), { invert: true })));
      const dark = prepareDigit(gray(digitCanvas(testDigit(index))));
      expect(light.inverted).toBe(true);
      expect(dark.inverted).toBe(false);
      const worst = maxDifference(light.input, dark.input);
      if (worst.difference > 1e-5) throw new Error(`digit ${index}: pixel ${worst.index} differs: ${worst.a} vs ${worst.b}`);
    }
  });

  it('crops: a digit anywhere on a larger canvas gives the same input as the digit alone', () => {
    const alone = prepareDigit(gray(digitCanvas(testDigit(3))));
    const placed = prepareDigit(gray(digitCanvas(testDigit(3), { width: 150, height: 90, left: 101, top: 7 })));
    expect(placed.box).toMatchObject({ width: alone.box.width, height: alone.box.height });
    expect(maxDifference(alone.input, placed.input).difference).toBeLessThan(1e-6);
  });

  it('keeps the aspect ratio: a 200×50 bar becomes 20×5', () => {
    const { canvas, context } = filledCanvas(300, 200, 'white');
    context.fillStyle = 'black';
    context.fillRect(40, 60, 200, 50);
    const input = prepareDigit(gray(canvas)).input;
    const rows = new Set<number>();
    const cols = new Set<number>();
    input.forEach((value, p) => {
      if (value > 0.5) {
        rows.add(Math.floor(p / FIELD_SIDE));
        cols.add(p % FIELD_SIDE);
      }
    });
    expect([cols.size, rows.size]).toEqual([20, 5]);
  });

  it('thickens a thin pen line to an MNIST-like stroke and leaves MNIST strokes alone', () => {
    const { canvas, context } = filledCanvas(400, 300, 'white');
    context.strokeStyle = 'black';
    context.lineWidth = 2;
    context.beginPath();
    context.moveTo(60, 40);
    context.lineTo(200, 40);
    context.lineTo(110, 260);
    context.stroke();
    const thin = prepareDigit(gray(canvas));
    expect(thin.thickenedBy).toBeGreaterThan(0);
    const width = strokeWidth(thin.input, FIELD_SIDE, FIELD_SIDE);
    expect(width).toBeGreaterThan(1.5); // MNIST's median stroke is about 2.7 px at 20 px
    expect(width).toBeLessThan(4);
    let thickened = 0;
    for (let index = 0; index < 100; index++) if (prepareDigit(gray(digitCanvas(testDigit(index)))).thickenedBy > 0) thickened++;
    expect(thickened).toBeLessThanOrEqual(1);
  });

  it('refuses an image without ink', () => {
    for (const fill of ['white', 'black', '#808080']) {
      const { canvas } = filledCanvas(64, 48, fill);
      expect(() => prepareDigit(gray(canvas))).toThrow(PredictError);
      expect(() => prepareDigit(gray(canvas))).toThrow('no ink');
    }
  });
});

describe('topGuesses', () => {
  it('returns the three most probable digits, most probable first', () => {
    expect(topGuesses([0.05, 0.6, 0, 0.1, 0, 0, 0.25, 0, 0, 0])).toEqual([
      { digit: 1, probability: 0.6 },
      { digit: 6, probability: 0.25 },
      { digit: 3, probability: 0.1 },
    ]);
  });
});

describe('predict on 200 test digits written as PNGs', () => {
  it('scores within 2 percentage points of the model on the raw 28×28 digits', async () => {
    const folder = path.join(work, 'images');
    mkdirSync(folder, { recursive: true });
    const random = mulberry32(7);
    const files: string[] = [];
    for (let index = 0; index < DIGITS; index++) {
      const ink = testDigit(index);
      const group = Math.floor(index / GROUP);
      const canvas =
        group === 0
          ? digitCanvas(ink) // as it is
          : group === 1
            ? digitCanvas(ink, { scale: 8 }) // 224×224
            : group === 2
              ? digitCanvas(ink, { invert: true }) // black on white
              : digitCanvas(ink, { width: 160, height: 120, left: Math.floor(random() * 130), top: Math.floor(random() * 90) });
      const file = path.join(folder, `${index}-group${group}.png`);
      writeFileSync(file, canvas.toBuffer('image/png'));
      files.push(file);
    }

    const results = await predictFiles(files, model);
    const predicted = results.map((result) => (result.ok ? result.guesses[0]!.digit : -1));
    const rawProbabilities = predictProbabilities(model, dataset.test.images, DIGITS); // (N, K)
    let predictCorrect = 0;
    let rawCorrect = 0;
    const groupCorrect = [0, 0, 0, 0];
    for (let index = 0; index < DIGITS; index++) {
      const label = dataset.test.labels[index]!;
      if (predicted[index] === label) {
        predictCorrect++;
        groupCorrect[Math.floor(index / GROUP)]!++;
      }
      if (argmax(rawProbabilities.subarray(index * K, (index + 1) * K)) === label) rawCorrect++;
    }
    const predictAccuracy = predictCorrect / DIGITS;
    const rawAccuracy = rawCorrect / DIGITS;
    const failed = results.filter((result) => !result.ok);
    if (failed.length > 0) throw new Error(`files failed: ${JSON.stringify(failed.slice(0, 3))}`);
    if (Math.abs(predictAccuracy - rawAccuracy) > 0.02) {
      throw new Error(
        `predict scored ${predictAccuracy} (per group of ${GROUP}: ${groupCorrect.join(', ')} right), ` +
          `the model on raw digits ${rawAccuracy}: more than 2 points apart`,
      );
    }
    expect(rawAccuracy).toBeGreaterThan(0.85); // the quick model is good enough for the comparison to mean something
  });
});

describe('per-file errors', () => {
  it('reports a missing file, a non-image, an empty file and an image without ink, and still reads the others', async () => {
    const folder = path.join(work, 'errors');
    mkdirSync(folder, { recursive: true });
    const good = path.join(folder, 'good.png');
    writeFileSync(good, digitCanvas(testDigit(0), { scale: 3, invert: true }).toBuffer('image/png'));
    const text = path.join(folder, 'notes.png');
    writeFileSync(text, 'not an image at all');
    const empty = path.join(folder, 'empty.png');
    writeFileSync(empty, '');
    const blank = path.join(folder, 'blank.jpg');
    writeFileSync(blank, filledCanvas(120, 80, 'white').canvas.toBuffer('image/jpeg'));
    const missing = path.join(folder, 'missing.png');

    const results = await predictFiles([missing, text, good, empty, blank], model);
    expect(results.map((result) => result.ok)).toEqual([false, false, true, false, false]);
    const errors = results.map((result) => (result.ok ? '' : result.error));
    expect(errors[0]).toBe('no such file');
    expect(errors[1]).toBe('not a PNG or JPEG image (it starts with bytes 6e 6f 74 20)');
    expect(errors[3]).toBe('empty file (0 bytes), expected a PNG or JPEG image');
    expect(errors[4]).toMatch(/^no ink: the image is a single tone \(120×80/);
    expect((results[2] as Extract<FileResult, { ok: true }>).guesses[0]!.digit).toBe(dataset.test.labels[0]);
    await expect(decodeImage(text)).rejects.toThrow(PredictError);
  });

  it('says to run the pipeline first when there is no trained model', async () => {
    const empty = path.join(work, 'no-reports');
    await expect(loadTrainedModel(reportFolder(empty), 'tfjs')).rejects.toThrow(ModelError);
    await expect(loadTrainedModel(reportFolder(empty), 'tfjs')).rejects.toThrow(
      `no trained tfjs model: ${path.join(empty, 'model', 'tfjs', 'model.json')} does not exist. ` +
        `Run the pipeline first (npm run pipeline -- --out ${empty}).`,
    );
  });
});

describe('the CLI', () => {
  const cli = async (args: string[]) => {
    try {
      const { stdout, stderr } = await run('npx', ['tsx', 'pipeline/cli/predict.ts', ...args], { cwd: process.cwd() });
      return { code: 0, stdout, stderr };
    } catch (error) {
      const failure = error as { code: number; stdout: string; stderr: string };
      return { code: failure.code, stdout: failure.stdout, stderr: failure.stderr };
    }
  };

  it('prints JSON matching predictFiles, writes --show-input, and exits non-zero when a file failed', async () => {
    const good = path.join(work, 'images', '5-group0.png');
    const scaled = path.join(work, 'images', '60-group1.png');
    const seen = path.join(work, 'seen');
    const { code, stdout } = await cli(['--out', out, '--json', '--show-input', seen, good, path.join(work, 'nope.png'), scaled]);
    expect(code).toBe(1);
    const document = JSON.parse(stdout) as { model: string; results: FileResult[] };
    expect(document.model).toBe('tfjs');
    expect(document.results.map((result) => result.ok)).toEqual([true, false, true]);
    const direct = await predictFiles([good, scaled], model);
    for (const [fromCli, fromCall] of [
      [document.results[0]!, direct[0]!],
      [document.results[2]!, direct[1]!],
    ] as const) {
      if (!fromCli.ok || !fromCall.ok) throw new Error('expected both to succeed');
      expect(fromCli.guesses.map((guess) => guess.digit)).toEqual(fromCall.guesses.map((guess) => guess.digit));
      fromCli.guesses.forEach((guess, i) => expect(guess.probability).toBeCloseTo(fromCall.guesses[i]!.probability, 4));
    }
    const seenFile = path.join(seen, '5-group0.png');
    expect(existsSync(seenFile)).toBe(true);
    const image = await loadImage(seenFile);
    expect([image.width, image.height]).toEqual([FIELD_SIDE, FIELD_SIDE]);
  });

  it('tells the user to run the pipeline first, and refuses unknown flags', async () => {
    const missing = await cli(['--out', path.join(work, 'no-reports'), path.join(work, 'images', '0-group0.png')]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('Run the pipeline first');
    const usage = await cli(['--modle', 'tfjs', 'x.png']);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('Unknown argument: --modle. Did you mean --model?');
  });
});

/** RGBA of `canvas` with its ink (white on black, as digitCanvas draws it) moved into alpha: `colour` strokes on transparency. */
function onTransparency(canvas: Canvas, colour: number): Uint8ClampedArray {
  const rgba = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  const out = new Uint8ClampedArray(rgba.length);
  for (let p = 0; p < rgba.length / 4; p++) out.set([colour, colour, colour, rgba[p * 4]!], p * 4);
  return out;
}

describe('transparency', () => {
  it('reads white strokes on a transparent background as ink, and black ones too, the same as on paper', () => {
    for (const index of [0, 1, 2]) {
      const canvas = digitCanvas(testDigit(index), { scale: 4 });
      const opaque = prepareDigit(gray(canvas)).input;
      for (const colour of [255, 0]) {
        const prepared = prepareRgba(onTransparency(canvas, colour), canvas.width, canvas.height);
        const worst = maxDifference(opaque, prepared.input);
        if (worst.difference > 1 / 255)
          throw new Error(`digit ${index} in colour ${colour} on transparency: pixel ${worst.index} is ${worst.b}, on paper ${worst.a}`);
      }
    }
  });

  it('keeps a sheet of white paper with transparent margins as paper', () => {
    const canvas = createCanvas(200, 200); // transparent
    const context = canvas.getContext('2d');
    context.fillStyle = 'white';
    context.fillRect(40, 40, 120, 120);
    context.drawImage(digitCanvas(testDigit(1), { scale: 3, invert: true }), 58, 58);
    const rgba = context.getImageData(0, 0, 200, 200).data;
    const paper = prepareRgba(rgba, 200, 200).input;
    const plain = prepareDigit(gray(digitCanvas(testDigit(1), { scale: 3, invert: true }))).input;
    expect(maxDifference(paper, plain).difference).toBeLessThan(1e-6);
    expect(grayscale(rgba, 200, 200).pixels[0]).toBe(1); // the margin became white paper
  });
});

describe('files that promise more than they hold', () => {
  it('names a truncated PNG or JPEG as truncated, not "out of memory"', async () => {
    const folder = path.join(work, 'cut');
    mkdirSync(folder, { recursive: true });
    const png = digitCanvas(testDigit(0), { scale: 4, invert: true }).toBuffer('image/png');
    const jpeg = digitCanvas(testDigit(0), { scale: 4, invert: true }).toBuffer('image/jpeg');
    const cases = [
      {
        name: 'half.png',
        bytes: png.subarray(0, Math.floor(png.length / 2)),
        message: /^truncated PNG: its IDAT chunk needs \d+ bytes, the file has \d+$/,
      },
      {
        name: 'no-end.png',
        bytes: png.subarray(0, png.length - 12),
        message: /^truncated PNG: the file ends at byte \d+, before its IEND chunk$/,
      },
      { name: 'header.png', bytes: png.subarray(0, 20), message: /^truncated PNG: its IHDR chunk needs 33 bytes, the file has 20$/ },
      {
        name: 'half.jpg',
        bytes: jpeg.subarray(0, Math.floor(jpeg.length / 2)),
        message: /^truncated JPEG: the image data has no end-of-image marker/,
      },
    ];
    for (const { name, bytes } of cases) writeFileSync(path.join(folder, name), bytes);
    const results = await predictFiles(
      cases.map(({ name }) => path.join(folder, name)),
      model,
    );
    results.forEach((result, i) => {
      if (result.ok) throw new Error(`${cases[i]!.name} was read as a digit`);
      expect(result.error).toMatch(cases[i]!.message);
      expect(result.error).not.toContain('out of memory');
    });
  });

  const decodeInChild = async (file: string) => {
    const { stdout } = await run(process.execPath, ['--import', 'tsx', path.join(ROOT, 'test/helpers/decode-memory.ts'), file], {
      cwd: ROOT,
    });
    return JSON.parse(stdout) as { error?: string; width?: number; height?: number; maxRssMiB: number; seconds: number };
  };

  let baselineMiB: number; // a process that decodes a 28×28 PNG: Node, tsx, TF.js and canvas loaded
  beforeAll(async () => {
    const small = path.join(work, 'small.png');
    writeFileSync(small, digitCanvas(testDigit(0)).toBuffer('image/png'));
    baselineMiB = (await decodeInChild(small)).maxRssMiB;
  });

  it('refuses a 12000×12000 PNG from its header, in bounded memory', async () => {
    const file = path.join(work, 'huge.png');
    const zeros = new Uint8Array(12_000);
    writeFileSync(
      file,
      grayPng(12_000, 12_000, () => zeros),
    );
    const outcome = await decodeInChild(file);
    expect(outcome.error).toBe('the PNG is 12000×12000 pixels (144 megapixels); predict reads up to 40 megapixels: scale it down first');
    expect(outcome.maxRssMiB - baselineMiB).toBeLessThan(200); // decoding it takes 550 MiB for the pixels alone (2.7 GB seen)
    console.log(
      `12000×12000 PNG refused: ${outcome.seconds.toFixed(2)} s, peak RSS ${outcome.maxRssMiB.toFixed(0)} MiB (a 28×28 PNG: ${baselineMiB.toFixed(0)} MiB)`,
    );
  });

  it('draws a 4000×3000 photo-sized picture down to 1000 px while decoding, and still reads the digit', async () => {
    const file = path.join(work, 'photo.png');
    const ink = testDigit(3); // white on black (28×28), drawn black on white, 100 px per MNIST pixel, off-centre
    const rows = new Map<number, Uint8Array>();
    writeFileSync(
      file,
      grayPng(4000, 3000, (y) => {
        const source = Math.floor((y - 200) / 100);
        if (!rows.has(source)) {
          const row = new Uint8Array(4000).fill(255);
          if (source >= 0 && source < FIELD_SIDE)
            for (let x = 0; x < 2800; x++) row[600 + x] = 255 - Math.round(255 * ink[source * FIELD_SIDE + Math.floor(x / 100)]!);
          rows.set(source, row);
        }
        return rows.get(source)!;
      }),
    );
    const outcome = await decodeInChild(file);
    expect([outcome.width, outcome.height]).toEqual([MAX_WORKING_SIDE, 750]);
    expect(outcome.maxRssMiB - baselineMiB).toBeLessThan(200); // the 12-megapixel decode itself is 46 MiB
    console.log(
      `4000×3000 PNG decoded: ${outcome.seconds.toFixed(2)} s, peak RSS ${outcome.maxRssMiB.toFixed(0)} MiB (a 28×28 PNG: ${baselineMiB.toFixed(0)} MiB)`,
    );
    const [result] = await predictFiles([file], model);
    if (!result!.ok) throw new Error(result!.error);
    expect(result!.guesses[0]!.digit).toBe(dataset.test.labels[3]);
  });
});

describe('the CLI: flags and the best model', () => {
  const cli = async (args: string[]) => {
    try {
      const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', 'pipeline/cli/predict.ts', ...args], { cwd: ROOT });
      return { code: 0, stdout, stderr };
    } catch (error) {
      const failure = error as { code: number; stdout: string; stderr: string };
      return { code: failure.code, stdout: failure.stdout, stderr: failure.stderr };
    }
  };
  const image = () => path.join(work, 'images', '5-group0.png');

  it('refuses a repeated flag with exit 2, naming it, instead of crashing', async () => {
    const cases: [string[], string][] = [
      [['--out', 'A', '--out', 'B'], '--out was given 2 times; give it once, e.g. --out reports'],
      [['--model', 'tfjs', '--model', 'best'], '--model was given 2 times; give it once, e.g. --model best'],
      [['--out=A', '--out', 'B', '--out', 'C'], '--out was given 3 times; give it once, e.g. --out reports'],
      [['--show-input', 'a', '--showInput', 'b'], '--show-input was given 2 times; give it once, e.g. --show-input seen/'],
    ];
    for (const [flags, message] of cases) {
      const result = await cli([...flags, image()]);
      expect(result.code).toBe(2);
      expect(result.stderr).toContain(`error: ${message}`);
      expect(result.stderr).not.toMatch(/TypeError|\n\s+at /);
    }
  });

  it('--model best says how to make it when there is none, and reads <out>/model/best when there is', async () => {
    const missing = await cli(['--out', out, '--model', 'best', image()]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain(
      `error: no best model: ${path.join(out, 'model', 'best', 'model.json')} does not exist. The experiments save it: run npm run pipeline -- --out ${out} --experiments.`,
    );
    cpSync(path.join(out, 'model', 'tfjs'), path.join(out, 'model', 'best'), { recursive: true }); // a plain dense model, like the folded best
    try {
      const best = await cli(['--out', out, '--model', 'best', '--json', image()]);
      const spec = await cli(['--out', out, '--json', image()]);
      expect([best.code, spec.code]).toEqual([0, 0]);
      const bestDocument = JSON.parse(best.stdout) as { model: string; results: FileResult[] };
      expect(bestDocument.model).toBe('best');
      expect(bestDocument.results).toEqual((JSON.parse(spec.stdout) as { results: FileResult[] }).results);
    } finally {
      rmSync(path.join(out, 'model', 'best'), { recursive: true, force: true });
    }
    expect(readFileSync(path.join(out, 'model', 'tfjs', 'model.json'), 'utf8')).toContain('dense1');
  });
});

// ---------------------------------------------------------------------------
// The user's files and folders, through the real CLI.

/** The env of a shell: runCli's without the npm_* variables of the `npm test` that may run us (undefined drops a variable). */
const withoutNpm = (env: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({
  ...Object.fromEntries(
    Object.keys(process.env)
      .filter((key) => key.startsWith('npm_'))
      .map((key) => [key, undefined]),
  ),
  ...env,
});
const predictCli = (args: string[], env: NodeJS.ProcessEnv = {}) =>
  runCli('pipeline/cli/predict.ts', [...args, '--backend', 'wasm'], withoutNpm(env));

/** Writes test digit `index` as a black-on-white PNG at `file`. */
function writeDigit(file: string, index: number): void {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, digitCanvas(testDigit(index), { scale: 4, invert: true }).toBuffer('image/png'));
}

/** The result line the CLI prints for `file` (read from `readFrom`), with its --show-input image. */
async function expectedLine(file: string, readFrom: string, inputImage?: string): Promise<string> {
  const [result] = await predictFiles([readFrom], model);
  return formatResult({ ...result!, file, ...(inputImage && result!.ok ? { inputImage } : {}) });
}

/** The files of <from>/model/tfjs, to publish elsewhere. */
function tfjsModelFiles(from: string): PublishFile[] {
  const folder = path.join(from, 'model', 'tfjs');
  return readdirSync(folder).map((name) => ({ path: `model/tfjs/${name}`, data: readFileSync(path.join(folder, name)) }));
}

const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');

describe('the CLI: --show-input writes over nothing', () => {
  it("keeps the input picture and the user's three.png byte for byte, and writes the images under free names", async () => {
    const folder = mkdtempSync(path.join(work, 'show-input-'));
    const picture = path.join(folder, 'my-digit.png'); // the input itself, in the --show-input folder
    const three = path.join(folder, 'three.png'); // the user's own file, with the stem of the second input
    const otherThree = path.join(work, 'pictures', 'three.png');
    writeDigit(picture, 5);
    writeDigit(three, 18);
    writeDigit(otherThree, 7);
    const before = [readFileSync(picture), readFileSync(three)];

    const first = predictCli(['--out', out, '--show-input', folder, picture, otherThree]);
    const second = predictCli(['--out', out, '--show-input', folder, picture, otherThree]);

    const written = (name: string) => path.join(folder, name);
    expect(first).toEqual({
      status: 0,
      stdout:
        `${await expectedLine(picture, picture, written('my-digit-2.png'))}\n` +
        `${await expectedLine(otherThree, otherThree, written('three-2.png'))}\n`,
      stderr:
        `model: ${path.join(out, 'model', 'tfjs')}\n` +
        `${picture} exists; wrote ${written('my-digit-2.png')}\n` +
        `${three} exists; wrote ${written('three-2.png')}\n`,
    });
    expect(second.status).toBe(0);
    expect(second.stderr).toBe(
      `model: ${path.join(out, 'model', 'tfjs')}\n` +
        `${picture} exists; wrote ${written('my-digit-3.png')}\n` +
        `${three} exists; wrote ${written('three-3.png')}\n`,
    );
    expect(readFileSync(picture).equals(before[0]!)).toBe(true);
    expect(readFileSync(three).equals(before[1]!)).toBe(true);
    expect(readdirSync(folder).sort()).toEqual([
      'my-digit-2.png',
      'my-digit-3.png',
      'my-digit.png',
      'three-2.png',
      'three-3.png',
      'three.png',
    ]);
    for (const name of ['my-digit-2.png', 'three-3.png']) {
      const image = await loadImage(written(name));
      expect([image.width, image.height]).toEqual([FIELD_SIDE, FIELD_SIDE]);
    }
  });

  it('does not write through a symlink in the folder, even one whose target does not exist (open with O_EXCL)', async () => {
    const folder = mkdtempSync(path.join(work, 'show-input-link-'));
    const target = path.join(work, 'link-target.png'); // absent: a check-then-write would create it through the link
    symlinkSync(target, path.join(folder, 'seven.png'));
    const seven = path.join(work, 'pictures', 'seven.png');
    writeDigit(seven, 0);
    const result = predictCli(['--out', out, '--show-input', folder, seven]);
    expect(result.status).toBe(0);
    expect(result.stderr).toBe(
      `model: ${path.join(out, 'model', 'tfjs')}\n${path.join(folder, 'seven.png')} exists; wrote ${path.join(folder, 'seven-2.png')}\n`,
    );
    expect(existsSync(target)).toBe(false);
    expect(readdirSync(folder).sort()).toEqual(['seven-2.png', 'seven.png']);
  });
});

describe("the CLI: the report's checksums", () => {
  it('reads an intact published folder silently, and refuses one with 4 KB of weights.bin overwritten in one line, exit 1', async () => {
    const reports = path.join(work, 'damaged-reports');
    await publishFolder(reports, tfjsModelFiles(out));
    const digit = path.join(work, 'pictures', 'checksum.png');
    writeDigit(digit, 5);
    const intact = predictCli(['--out', reports, digit]);
    expect(intact).toEqual({
      status: 0,
      stdout: `${await expectedLine(digit, digit)}\n`,
      stderr: `model: ${path.join(reports, 'model', 'tfjs')}\n`,
    });

    const weights = path.join(reports, 'model', 'tfjs', 'weights.bin');
    const recorded = sha256(readFileSync(weights));
    const descriptor = openSync(weights, 'r+');
    writeSync(descriptor, new Uint8Array(4096).fill(0xab), 0, 4096, 8192);
    closeSync(descriptor);
    const found = sha256(readFileSync(weights));
    expect(predictCli(['--out', reports, digit])).toEqual({
      status: 1,
      stdout: '',
      stderr:
        `error: ${weights}: expected SHA-256 ${recorded.slice(0, 12)}…, found ${found.slice(0, 12)}…; ` +
        `the report folder is damaged: rerun npm run pipeline -- --stage report --out ${reports} to write it again\n`,
    });
  });

  it('loads a folder without manifest.json (written by hand) and says on stderr that it could not check it', async () => {
    const handMade = path.join(work, 'hand-made');
    cpSync(path.join(out, 'model', 'tfjs'), path.join(handMade, 'model', 'tfjs'), { recursive: true });
    const digit = path.join(work, 'pictures', 'hand-made.png');
    writeDigit(digit, 5);
    expect(predictCli(['--out', handMade, digit])).toEqual({
      status: 0,
      stdout: `${await expectedLine(digit, digit)}\n`,
      stderr:
        `model: ${path.join(handMade, 'model', 'tfjs')}\n` +
        `note: could not check ${path.join(handMade, 'model', 'tfjs')}: ${handMade} has no manifest.json ` +
        `(written by hand or by an older version); loading it as it is\n`,
    });
  });
});

describe('the CLI: paths from the folder the user typed them in', () => {
  let scratch: string; // the user's folder: seven.png and a report folder of its own
  beforeAll(async () => {
    scratch = mkdtempSync(path.join(work, 'scratch-'));
    writeDigit(path.join(scratch, 'seven.png'), 0);
    await publishFolder(path.join(scratch, 'reports'), tfjsModelFiles(out));
  });

  it('cd scratch && npm run predict -- seven.png nope.png --show-input seen: reads ./seven.png and ./reports, writes ./seen', async () => {
    const text = predictCli(['seven.png', 'nope.png', '--show-input', 'seen'], { INIT_CWD: scratch });
    expect(text).toEqual({
      status: 1,
      stdout: `${await expectedLine('seven.png', path.join(scratch, 'seven.png'), path.join('seen', 'seven.png'))}\n`,
      stderr: 'model: reports/model/tfjs\nnope.png: error: no such file\n1 of 2 files failed\n',
    });
    expect(existsSync(path.join(scratch, 'seen', 'seven.png'))).toBe(true);

    const json = predictCli(['seven.png', '--show-input', 'seen', '--out', 'reports', '--json'], { INIT_CWD: scratch });
    expect([json.status, json.stderr]).toEqual([0, 'seen/seven.png exists; wrote seen/seven-2.png\n']);
    const document = JSON.parse(json.stdout) as { out: string; modelFolder: string; results: FileResult[] };
    expect([document.out, document.modelFolder]).toEqual(['reports', 'reports/model/tfjs']);
    expect(document.results.map((result) => [result.file, result.ok && result.inputImage])).toEqual([['seven.png', 'seen/seven-2.png']]);
    expect(existsSync(path.join(scratch, 'seen', 'seven-2.png'))).toBe(true);
  });

  it("without ./reports holding model/, reads the project's reports, and names it", async () => {
    const elsewhere = mkdtempSync(path.join(work, 'elsewhere-'));
    mkdirSync(path.join(elsewhere, 'reports')); // a reports folder without model/ is not a report folder
    writeDigit(path.join(elsewhere, 'seven.png'), 0);
    const result = predictCli(['seven.png'], { INIT_CWD: elsewhere });
    const projectModel = path.join(ROOT, 'reports', 'model', 'tfjs');
    if (existsSync(path.join(projectModel, 'model.json'))) {
      expect(result.stderr.split('\n')[0]).toBe(`model: ${projectModel}`); // a pipeline run has written the project's reports
    } else {
      expect(result).toEqual({
        status: 1,
        stdout: '',
        stderr: `error: no trained tfjs model: ${path.join(projectModel, 'model.json')} does not exist. Run the pipeline first (npm run pipeline).\n`,
      });
    }
  });

  it('through npm itself: npm run -s predict -- seven.png --json prints only the JSON on stdout', async () => {
    const npm = (args: string[]) => {
      const result = spawnSync('npm', ['--prefix', ROOT, ...args], {
        cwd: scratch,
        encoding: 'utf8',
        env: { ...withoutNpm(), CI: 'true' },
      });
      return { status: result.status, stdout: result.stdout, stderr: result.stderr };
    };
    const silent = npm(['run', '-s', 'predict', '--', 'seven.png', '--json', '--backend', 'wasm']);
    expect([silent.status, silent.stderr]).toEqual([0, '']);
    const document = JSON.parse(silent.stdout) as { modelFolder: string; results: FileResult[] };
    expect([document.modelFolder, document.results[0]!.file]).toEqual(['reports/model/tfjs', 'seven.png']);

    const plain = npm(['run', 'predict', '--', 'seven.png', '--json', '--backend', 'wasm']); // npm prints its banner on stdout
    expect(plain.status).toBe(0);
    expect(plain.stdout.startsWith('\n> ')).toBe(true);
    expect(plain.stderr).toBe(
      'note: npm printed its banner on stdout above the JSON; npm run -s predict -- seven.png --json --backend wasm prints the JSON alone\n',
    );
  });
});

describe('the CLI: stdout holds only results', () => {
  it('npm run predict x.png --json (no --): the hint goes to stderr, nothing to stdout, exit 2', () => {
    // What npm leaves us when it takes --json for itself: argv without it, and npm_config_json=true.
    const result = runCli('pipeline/cli/predict.ts', ['x.png'], withoutNpm({ npm_lifecycle_event: 'predict', npm_config_json: 'true' }));
    expect(result).toEqual({
      status: 2,
      stdout: '',
      stderr:
        'error: npm took --json for itself: flags for us go after "--".\n' +
        'did you mean: npm run predict -- x.png --json\n' +
        'Run "npm run predict -- --help" for every flag.\n',
    });
  });
});
