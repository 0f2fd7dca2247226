// A saved model on the photo-like pictures of test/photos.test.ts: the first N MNIST test digits as phone
// photos (paper, light gradient, shadow, specks, grain, blur, JPEG), and the same digits clean, each read
// through predict's preparation by the library (pipeline/library.ts).
//
//   `npx tsx bench/photos.ts --model reports/model/tfjs [--count 200]`

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { mulberry32 } from '../reference/random.js';
import { D } from '../reference/shapes.js';
import { loadModel } from '../pipeline/library.js';
import { defaultDataDir, loadMnist } from '../pipeline/stages/load.js';
import { cleanPng, photoJpeg, randomPhotoOptions } from '../test/helpers/photos.js';

const PHOTO_SEED = 2024; // as test/photos.test.ts: the same photos
const args = yargs(hideBin(process.argv))
  .option('model', { type: 'string', default: 'reports/model/tfjs', describe: 'A saved model folder' })
  .option('count', { type: 'number', default: 200, describe: 'MNIST test digits, each as a photo and clean' })
  .strict()
  .parseSync();
const model = await loadModel(args.model);
const { test } = loadMnist(defaultDataDir());
const random = mulberry32(PHOTO_SEED);
const scratch = mkdtempSync(path.join(os.tmpdir(), 'bench-photos-'));
let photosRight = 0;
let cleanRight = 0;
try {
  for (let index = 0; index < args.count; index++) {
    const ink = Float32Array.from(test.images.subarray(index * D, (index + 1) * D));
    const photo = path.join(scratch, `${index}.jpg`);
    const clean = path.join(scratch, `${index}.png`);
    writeFileSync(photo, photoJpeg(ink, randomPhotoOptions(random), PHOTO_SEED + index));
    writeFileSync(clean, cleanPng(ink, 8));
    const label = test.labels[index];
    if ((await model.classify(photo, 1))[0]!.digit === label) photosRight++;
    if ((await model.classify(clean, 1))[0]!.digit === label) cleanRight++;
  }
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
console.log(`${args.model}: photos ${photosRight}/${args.count} right, the same digits clean ${cleanRight}/${args.count}`);
