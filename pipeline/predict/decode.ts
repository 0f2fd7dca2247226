// Reading a picture: a PNG or JPEG file becomes brightness, at most MAX_WORKING_SIDE on its longer side.
// Only node-canvas, no TF.js: `npm run predict`, the library (pipeline/library.ts) and the tests share it.

import { existsSync, readFileSync, statSync } from 'node:fs';
import { createCanvas, loadImage, type Image } from 'canvas';
import { PredictError, grayscale, type GrayImage } from './prepare.js';

/** A decoded picture is drawn down to at most this side before preparation, bounding all later work. */
export const MAX_WORKING_SIDE = 1000;
/** Larger pictures are refused before decoding: decoding takes 4 bytes a pixel (40 MP = 160 MB). */
const MAX_PIXELS = 40_000_000;
const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const JPEG_SIGNATURE = [0xff, 0xd8, 0xff];

function startsWith(bytes: Uint8Array, signature: readonly number[]): boolean {
  return bytes.length >= signature.length && signature.every((byte, i) => bytes[i] === byte);
}

interface Dimensions {
  width: number;
  height: number;
}

/** The size from IHDR, after checking that every chunk up to IEND is whole: a cut file is named as cut. */
function pngDimensions(bytes: Uint8Array): Dimensions {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let size: Dimensions | null = null;
  for (let offset = PNG_SIGNATURE.length; ; ) {
    if (offset + 8 > bytes.length) throw new PredictError(`truncated PNG: the file ends at byte ${bytes.length}, before its IEND chunk`);
    const length = view.getUint32(offset);
    const type = String.fromCharCode(...bytes.subarray(offset + 4, offset + 8));
    if (!/^[A-Za-z]{4}$/.test(type))
      throw new PredictError(`corrupt PNG: expected a chunk type at byte ${offset + 4}, found bytes that are not one`);
    const end = offset + 12 + length; // length, type, data, CRC
    if (end > bytes.length) throw new PredictError(`truncated PNG: its ${type} chunk needs ${end} bytes, the file has ${bytes.length}`);
    if (size === null) {
      if (type !== 'IHDR' || length !== 13)
        throw new PredictError(`corrupt PNG: expected the 13-byte IHDR chunk first, found ${type} of ${length} bytes`);
      size = { width: view.getUint32(offset + 8), height: view.getUint32(offset + 12) };
    }
    if (type === 'IEND') return size;
    offset = end;
  }
}

const JPEG_EOI = 0xd9;
const JPEG_SOS = 0xda;
/** Start-of-frame markers, which carry the size: C0–CF except DHT (C4), JPG (C8) and DAC (CC). */
const isJpegFrame = (marker: number) => marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;

/** The size from the frame header, after checking that the image data ends with its end-of-image marker. */
function jpegDimensions(bytes: Uint8Array): Dimensions {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let size: Dimensions | null = null;
  let offset = 2;
  for (;;) {
    while (offset < bytes.length && bytes[offset] === 0xff) offset++; // markers may be padded with 0xFF
    if (offset + 3 > bytes.length) throw new PredictError(`truncated JPEG: the file ends at byte ${bytes.length}, before its image data`);
    const marker = bytes[offset]!;
    const length = view.getUint16(offset + 1); // counts itself, not the marker
    if (offset + 1 + length > bytes.length)
      throw new PredictError(`truncated JPEG: a header segment needs ${offset + 1 + length} bytes, the file has ${bytes.length}`);
    if (isJpegFrame(marker)) size = { width: view.getUint16(offset + 6), height: view.getUint16(offset + 4) };
    if (marker === JPEG_SOS) break;
    offset += 1 + length;
    if (bytes[offset] !== 0xff) throw new PredictError(`corrupt JPEG: expected a marker at byte ${offset}`);
    offset++;
  }
  if (size === null) throw new PredictError('corrupt JPEG: no frame header before the image data');
  // Inside entropy-coded data 0xFF is always followed by 0x00 or a restart marker, so FF D9 is the end.
  for (let i = bytes.length - 1; i > offset; i--) if (bytes[i] === JPEG_EOI && bytes[i - 1] === 0xff) return size;
  throw new PredictError(`truncated JPEG: the image data has no end-of-image marker (the file has ${bytes.length} bytes)`);
}

/**
 * Reads a PNG or JPEG file into brightness, at most MAX_WORKING_SIDE on its
 * longer side. Every failure is a PredictError naming what was wrong, and a
 * picture larger than MAX_PIXELS is refused from its header, before decoding.
 */
export async function decodeImage(file: string): Promise<GrayImage> {
  if (!existsSync(file)) throw new PredictError('no such file');
  if (statSync(file).isDirectory()) throw new PredictError('is a folder, expected a PNG or JPEG file');
  const bytes = readFileSync(file);
  if (bytes.length === 0) throw new PredictError('empty file (0 bytes), expected a PNG or JPEG image');
  const kind = startsWith(bytes, PNG_SIGNATURE) ? 'PNG' : startsWith(bytes, JPEG_SIGNATURE) ? 'JPEG' : null;
  if (!kind) {
    const head = [...bytes.subarray(0, 4)].map((byte) => byte.toString(16).padStart(2, '0')).join(' ');
    throw new PredictError(`not a PNG or JPEG image (it starts with bytes ${head})`);
  }
  const { width, height } = kind === 'PNG' ? pngDimensions(bytes) : jpegDimensions(bytes);
  if (width === 0 || height === 0) throw new PredictError(`the ${kind} is ${width}×${height} pixels`);
  if (width * height > MAX_PIXELS) {
    throw new PredictError(
      `the ${kind} is ${width}×${height} pixels (${((width * height) / 1e6).toFixed(0)} megapixels); ` +
        `predict reads up to ${MAX_PIXELS / 1e6} megapixels: scale it down first`,
    );
  }
  let image: Image;
  try {
    image = await loadImage(bytes);
  } catch (error) {
    // cairo names any libpng failure "out of memory", which misleads: the data is what is wrong.
    const reason = (error as Error).message;
    throw new PredictError(`corrupt ${kind}: could not decode its image data${/out of memory/i.test(reason) ? '' : ` (${reason})`}`);
  }
  const scale = Math.min(1, MAX_WORKING_SIDE / Math.max(width, height));
  const workingWidth = Math.max(1, Math.round(width * scale));
  const workingHeight = Math.max(1, Math.round(height * scale));
  const canvas = createCanvas(workingWidth, workingHeight);
  const context = canvas.getContext('2d');
  context.drawImage(image, 0, 0, workingWidth, workingHeight);
  return grayscale(context.getImageData(0, 0, workingWidth, workingHeight).data, workingWidth, workingHeight);
}

// ---------------------------------------------------------------------------
// Prediction.
