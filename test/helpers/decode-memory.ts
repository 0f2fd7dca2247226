// Decodes one image in a fresh process and prints what it cost: {error?, width?, maxRssMiB, seconds}.
// Run as: node --import tsx test/helpers/decode-memory.ts FILE

import { decodeImage } from '../../pipeline/predict/decode.js';

const file = process.argv[2]!;
const started = performance.now();
let outcome: { error?: string; width?: number; height?: number };
try {
  const image = await decodeImage(file);
  outcome = { width: image.width, height: image.height };
} catch (error) {
  outcome = { error: (error as Error).message };
}
const maxRssMiB = process.resourceUsage().maxRSS / 1024; // maxRSS is in KiB
console.log(JSON.stringify({ ...outcome, maxRssMiB, seconds: (performance.now() - started) / 1000 }));
