// Phone photos of digits on paper (issue 22): a photo set scored against the same digits clean,
// the old failure (light falling off across the page and a shadow, read as ink), the notes of low
// confidence, and the time to prepare a phone-sized photo. The model is trained here, quickly, as in
// test/predict.test.ts; the photos are made here from MNIST's test digits (test/helpers/photos.ts).
//
// The photos are rendered, and the heavy reading done, in child processes, as `npm run predict` runs:
// jest's sandbox makes every global lookup (Math.floor, Math.imul, …) slow, 10–30× in per-pixel loops.

import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { createCanvas, loadImage } from 'canvas';
import type * as tf from '@tensorflow/tfjs';
import { mulberry32 } from '../reference/random.js';
import { D } from '../reference/shapes.js';
import { MAX_WORKING_SIDE, decodeImage } from '../pipeline/predict/decode.js';
import { formatResult, predictFiles, type FileResult } from '../pipeline/predict/classify.js';
import { FIELD_SIDE, prepareDigit } from '../pipeline/predict/prepare.js';
import { quickModel } from './helpers/quick-model.js';
import { ROOT } from './helpers/cli.js';
import { digitField, randomPhotoOptions, type PhotoOptions } from './helpers/photos.js';
import type { Dataset } from '../pipeline/types.js';

const run = promisify(execFile);
const PHOTOS = 200; // MNIST test digits 0–199, each as a phone photo and clean
const PHOTO_SEED = 2024; // draws every photo's size, paper, light, shadow, specks, table, grain, blur and JPEG quality
const CLEAN_SCALE = 8; // the clean digits: MNIST's 28×28 drawn up to 224×224, dark on white
const ALLOWED_DROP = 0.05; // issue 22: photos may score at most 5 percentage points under the same digits clean
const THREE = 18; // MNIST test digit 18, a 3: the digit of the photo

let work: string; // temporary folder: reports/, the pictures, seen/
let out: string; // the report folder holding model/tfjs
let dataset: Dataset;
let model: tf.LayersModel;

/** A phone photo of the issue: grey paper, portrait, the digit a little right of centre. */
const GREY_PAPER: PhotoOptions = {
  width: 1500,
  height: 2000,
  paper: [0.64, 0.62, 0.59],
  inkStrength: 0.55, // pencil
  digitHeight: 0.3,
  digitLeft: 0.55,
  digitTop: 0.4,
  gradient: { angle: 0, drop: 0 },
  shadow: null,
  specks: [],
  table: null,
  grain: 0.015,
  blur: 1.5,
  quality: 0.85,
};
/** The failure: light falling off by half from left to right, and a shadow across the page. */
const GRADIENT_AND_SHADOW: PhotoOptions = {
  ...GREY_PAPER,
  gradient: { angle: 0, drop: 0.5 },
  shadow: { angle: 0.35, offset: 0.12, width: 0.3, softness: 0.04, depth: 0.45 },
};

/** A picture to make: a photo of MNIST test digits side by side (none: a blank page), or one digit clean. */
type Picture = { name: string; digits: number[]; options: PhotoOptions; seed: number } | { name: string; clean: number };

/** A project file's absolute path, quoted for a child's script. */
const quotedPath = (file: string) => JSON.stringify(path.join(ROOT, file));

/** Runs an ES module `script` in a child Node with tsx, from the project's root; returns its stdout. */
async function inChild(script: string): Promise<string> {
  const { stdout } = await run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: ROOT,
    maxBuffer: 64 * 1024 * 1024,
  });
  return stdout;
}

/** Makes `pictures` under the work folder, from MNIST's test file; returns their paths. */
async function makePictures(pictures: Picture[]): Promise<string[]> {
  const list = path.join(work, `pictures-${pictures[0]!.name.replaceAll('/', '-')}.json`);
  writeFileSync(list, JSON.stringify(pictures.map((picture) => ({ ...picture, file: path.join(work, picture.name) }))));
  await inChild(`
    import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
    import path from 'node:path';
    const { defaultDataDir, loadMnist } = await import(${quotedPath('pipeline/stages/load.ts')});
    const { cleanPng, photoJpeg } = await import(${quotedPath('test/helpers/photos.ts')});
    const { images } = loadMnist(defaultDataDir(${JSON.stringify(ROOT)})).test;
    const ink = (index) => Float32Array.from(images.subarray(index * ${D}, (index + 1) * ${D}), (value) => value / 255);
    for (const picture of JSON.parse(readFileSync(${JSON.stringify(list)}, 'utf8'))) {
      mkdirSync(path.dirname(picture.file), { recursive: true });
      const blank = new Float32Array(${D});
      writeFileSync(
        picture.file,
        'clean' in picture
          ? cleanPng(ink(picture.clean), ${CLEAN_SCALE})
          : photoJpeg(picture.digits.length > 0 ? picture.digits.map(ink) : blank, picture.options, picture.seed),
      );
    }`);
  return pictures.map((picture) => path.join(work, picture.name));
}

/** `npm run predict -- FILE… --json` on the quick model: one result per file (it exits 1 when a file failed: counted, not thrown). */
async function predictJson(files: string[], ...flags: string[]): Promise<FileResult[]> {
  const args = ['--import', 'tsx', 'pipeline/cli/predict.ts', '--backend', 'wasm', '--out', out, '--json', ...flags, ...files];
  let stdout: string;
  try {
    ({ stdout } = await run(process.execPath, args, { cwd: ROOT, maxBuffer: 64 * 1024 * 1024 }));
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    if (failed.code !== 1 || !failed.stdout) throw new Error(`npm run predict failed (${failed.code}): ${failed.stderr}`);
    stdout = failed.stdout;
  }
  return (JSON.parse(stdout) as { results: FileResult[] }).results;
}

const topDigit = (result: FileResult) => (result.ok ? result.guesses[0]!.digit : -1);
/** The reasons for doubt that come from the picture, not from the model's own probabilities. */
const pictureDoubts = (result: FileResult) =>
  result.ok ? (result.lowConfidence ?? '').split('; ').filter((reason) => reason !== '' && !reason.startsWith('the top answer')) : [];

beforeAll(async () => {
  work = mkdtempSync(path.join(os.tmpdir(), 'photos-'));
  out = path.join(work, 'reports');
  ({ dataset, model } = await quickModel(out, PHOTOS));
}, 120_000);

afterAll(() => {
  model?.dispose();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('a photo set against the same digits clean', () => {
  it(`npm run predict scores ${PHOTOS} photos 1000–3000 px long within ${ALLOWED_DROP * 100} points of the same digits clean`, async () => {
    const random = mulberry32(PHOTO_SEED);
    const pictures: Picture[] = [];
    for (let index = 0; index < PHOTOS; index++) {
      pictures.push({ name: `set/${index}.jpg`, digits: [index], options: randomPhotoOptions(random), seed: PHOTO_SEED + index });
    }
    for (let index = 0; index < PHOTOS; index++) pictures.push({ name: `set/${index}-clean.png`, clean: index });
    const files = await makePictures(pictures);
    const results = await predictJson(files);
    const [photos, cleans] = [results.slice(0, PHOTOS), results.slice(PHOTOS)];
    const right = (read: FileResult[]) => read.filter((result, index) => topDigit(result) === dataset.test.labels[index]).length;
    const [photoCorrect, cleanCorrect] = [right(photos), right(cleans)];
    const missedAsPhotos = photos
      .map((result, index) => ({ index, label: dataset.test.labels[index]!, read: result.ok ? topDigit(result) : result.error }))
      .filter(({ index, label }) => topDigit(photos[index]!) !== label && topDigit(cleans[index]!) === label);
    console.log(
      `photos: ${photoCorrect}/${PHOTOS} right; the same digits clean: ${cleanCorrect}/${PHOTOS}. ` +
        `Missed only as photos: ${JSON.stringify(missedAsPhotos)}`,
    );
    expect(cleanCorrect).toBeGreaterThanOrEqual(0.85 * PHOTOS); // the quick model is good enough for the comparison to mean something
    expect(photoCorrect).toBeGreaterThanOrEqual(cleanCorrect - ALLOWED_DROP * PHOTOS); // 200 photos: at most 10 fewer right
    expect(cleans.flatMap((result, index) => pictureDoubts(result).map((doubt) => `clean digit ${index}: ${doubt}`))).toEqual([]);
  }, 300_000);
});

describe('the old failure: a pencil 3 on grey paper, light falling off by half from left to right, a shadow across it', () => {
  /** The 28×28 image --show-input wrote, back in [0, 1]. */
  const seenInput = async (file: string): Promise<Float32Array> => {
    const image = await loadImage(file);
    const canvas = createCanvas(image.width, image.height);
    canvas.getContext('2d').drawImage(image, 0, 0);
    const rgba = canvas.getContext('2d').getImageData(0, 0, image.width, image.height).data;
    return Float32Array.from({ length: image.width * image.height }, (_, p) => rgba[4 * p]! / 255);
  };
  const meanDifference = (a: Float32Array, b: Float32Array) => a.reduce((sum, value, p) => sum + Math.abs(value - b[p]!), 0) / a.length;

  it('reads 3 as on flat paper, and --show-input shows the digit alone: the clean digit’s input, no wedge of shadow', async () => {
    expect(dataset.test.labels[THREE]).toBe(3);
    const [clean, flat, shaded] = await makePictures([
      { name: 'issue/three-clean.png', clean: THREE },
      { name: 'issue/three-flat.jpg', digits: [THREE], options: GREY_PAPER, seed: 1 },
      { name: 'issue/three-shaded.jpg', digits: [THREE], options: GRADIENT_AND_SHADOW, seed: 1 },
    ]);
    const seen = path.join(work, 'seen');
    const results = await predictJson([clean!, flat!, shaded!], '--show-input', seen);
    expect(results.map(topDigit)).toEqual([3, 3, 3]);
    expect(results.map((result) => result.ok && result.lowConfidence)).toEqual([null, null, null]);

    // The old preparation cropped to the shadow and the dim side of the page: the network saw that wedge,
    // with the 3 a speck in it (a mean difference of 0.165 from the clean digit's input). Now the crop is
    // the digit's own field …
    const { box, flattened } = prepareDigit(await decodeImage(shaded!));
    expect([flattened, prepareDigit(await decodeImage(clean!)).flattened]).toEqual([true, false]); // the photo's paper was divided out
    const field = digitField(GRADIENT_AND_SHADOW);
    const scale = MAX_WORKING_SIDE / Math.max(GRADIENT_AND_SHADOW.width, GRADIENT_AND_SHADOW.height); // decoding draws it down
    expect(box.x).toBeGreaterThanOrEqual(Math.floor(field.left * scale));
    expect(box.y).toBeGreaterThanOrEqual(Math.floor(field.top * scale));
    expect(box.x + box.width).toBeLessThanOrEqual(Math.ceil((field.left + field.side) * scale));
    expect(box.y + box.height).toBeLessThanOrEqual(Math.ceil((field.top + field.side) * scale));
    // … and --show-input shows what the clean digit gives, to a few grey levels, with an empty outer ring.
    const cleanSeen = await seenInput(path.join(seen, 'three-clean.png'));
    const shadedSeen = await seenInput(path.join(seen, 'three-shaded.png'));
    expect(meanDifference(shadedSeen, cleanSeen)).toBeLessThan(0.05);
    const ring = Array.from({ length: FIELD_SIDE }, (_, i) => [
      i,
      FIELD_SIDE * (FIELD_SIDE - 1) + i,
      i * FIELD_SIDE,
      i * FIELD_SIDE + FIELD_SIDE - 1,
    ]);
    expect(ring.flat().filter((p) => shadedSeen[p]! > 0)).toEqual([]);
  }, 120_000);
});

describe('low confidence, said in the answer', () => {
  it('a blank page, a dusty one, a tiny digit and two digits side by side get a note; a clean digit and a shaded photo do not', async () => {
    const dust = [
      { x: 0.4, y: 0.6, radius: 0.003, depth: 0.4 },
      { x: 0.7, y: 0.2, radius: 0.002, depth: 0.3 },
    ];
    const cases: { picture: Picture; note: string | null }[] = [
      { picture: { name: 'notes/blank.jpg', digits: [], options: GRADIENT_AND_SHADOW, seed: 2 }, note: '' }, // any reason the picture gives
      { picture: { name: 'notes/dusty.jpg', digits: [], options: { ...GRADIENT_AND_SHADOW, specks: dust }, seed: 2 }, note: 'little ink' },
      {
        picture: {
          name: 'notes/tiny.jpg',
          digits: [THREE],
          options: { ...GRADIENT_AND_SHADOW, digitHeight: 0.05, inkStrength: 0.4 },
          seed: 2,
        },
        note: 'little ink',
      },
      {
        picture: {
          name: 'notes/two.jpg',
          digits: [THREE, 3],
          options: { ...GRADIENT_AND_SHADOW, digitHeight: 0.25, digitLeft: 0.3 },
          seed: 2,
        },
        note: 'several separate marks',
      },
      { picture: { name: 'notes/clean.png', clean: THREE }, note: null },
      { picture: { name: 'notes/shaded.jpg', digits: [THREE], options: GRADIENT_AND_SHADOW, seed: 2 }, note: null },
    ];
    const files = await makePictures(cases.map(({ picture }) => picture));
    const results = await predictFiles(files, model);
    results.forEach((result, i) => {
      const { picture, note } = cases[i]!;
      if (!result.ok) throw new Error(`${picture.name}: ${result.error}`);
      const line = formatResult(result);
      if (note === null) {
        expect([picture.name, result.lowConfidence, line]).toEqual([picture.name, null, expect.not.stringContaining('low confidence')]);
      } else {
        expect([picture.name, pictureDoubts(result).length > 0, result.lowConfidence]).toEqual([
          picture.name,
          true,
          expect.stringContaining(note),
        ]);
        expect(line).toContain(`  [low confidence: ${result.lowConfidence}]`);
      }
    });
    // The same field in npm run predict's JSON.
    const fromCli = await predictJson([files[3]!, files[4]!]);
    expect(fromCli.map((result) => result.ok && result.lowConfidence)).toEqual([results[3]!.ok && results[3]!.lowConfidence, null]);
  }, 120_000);
});

describe('speed', () => {
  it('reads a 3000×4000 photo drawn down to 1000 px on its longer side (its time is printed; timings belong in bench/photos.ts)', async () => {
    const [file] = await makePictures([
      { name: 'speed/big.jpg', digits: [THREE], options: { ...GRADIENT_AND_SHADOW, width: 3000, height: 4000 }, seed: 3 },
    ]);
    const timing = JSON.parse(
      await inChild(`
        const { decodeImage } = await import(${quotedPath('pipeline/predict/decode.ts')});
        const { prepareDigit } = await import(${quotedPath('pipeline/predict/prepare.ts')});
        const start = performance.now();
        const image = await decodeImage(${JSON.stringify(file)});
        const decodeMs = performance.now() - start;
        const prepareMs = [];
        for (let round = 0; round < 3; round++) {
          const begin = performance.now();
          prepareDigit(image);
          prepareMs.push(performance.now() - begin);
        }
        const ink = prepareDigit(image).input.filter((value) => value > 0.5).length;
        console.log(JSON.stringify({ width: image.width, height: image.height, decodeMs, prepareMs, ink }));`),
    ) as { width: number; height: number; decodeMs: number; prepareMs: number[]; ink: number };
    console.log(
      `3000×4000 JPEG: decoded to ${timing.width}×${timing.height} in ${timing.decodeMs.toFixed(0)} ms, ` +
        `prepared in ${timing.prepareMs.map((ms) => ms.toFixed(0)).join(', ')} ms`,
    );
    expect([timing.width, timing.height]).toEqual([750, MAX_WORKING_SIDE]);
    expect(timing.ink).toBeGreaterThan(40); // the 3 is found: MNIST's digits have about 100 of 784 pixels above 0.5
  });
});
