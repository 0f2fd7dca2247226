// Builds small IDX files inside the tests: no binary fixtures are committed.

import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';

export function imageFileBytes(
  count: number,
  options: { magic?: number; rows?: number; cols?: number; fill?: (n: number, p: number) => number } = {},
): Buffer {
  const rows = options.rows ?? 28;
  const cols = options.cols ?? 28;
  const header = Buffer.alloc(16);
  header.writeUInt32BE(options.magic ?? 2051, 0);
  header.writeUInt32BE(count, 4);
  header.writeUInt32BE(rows, 8);
  header.writeUInt32BE(cols, 12);
  const pixels = Buffer.alloc(count * rows * cols);
  for (let n = 0; n < count; n++) {
    for (let p = 0; p < rows * cols; p++) pixels[n * rows * cols + p] = options.fill ? options.fill(n, p) : (n * 7 + p) % 256;
  }
  return Buffer.concat([header, pixels]);
}

export function labelFileBytes(labels: number[], magic = 2049): Buffer {
  const header = Buffer.alloc(8);
  header.writeUInt32BE(magic, 0);
  header.writeUInt32BE(labels.length, 4);
  return Buffer.concat([header, Buffer.from(labels)]);
}

export interface FakeMnistOptions {
  trainCount?: number;
  testCount?: number;
  gzip?: boolean;
}

/** A folder holding the four files; images are separable by label, so a network can learn them. */
export function writeFakeMnist(dir?: string, options: FakeMnistOptions = {}): string {
  const folder = dir ?? mkdtempSync(path.join(os.tmpdir(), 'mnist-'));
  const trainCount = options.trainCount ?? 60;
  const testCount = options.testCount ?? 20;
  const write = (name: string, bytes: Buffer) =>
    writeFileSync(path.join(folder, options.gzip ? `${name}.gz` : name), options.gzip ? gzipSync(bytes) : bytes);
  const labelsOf = (count: number) => Array.from({ length: count }, (_, n) => n % 10);
  // Digit d lights up row block d: trivially learnable, still 28×28 bytes.
  const fill = (labels: number[]) => (n: number, p: number) => (Math.floor(p / 28 / 3) === labels[n] ? 255 : 0);
  const trainLabels = labelsOf(trainCount);
  const testLabels = labelsOf(testCount);
  write('train-images-idx3-ubyte', imageFileBytes(trainCount, { fill: fill(trainLabels) }));
  write('train-labels-idx1-ubyte', labelFileBytes(trainLabels));
  write('t10k-images-idx3-ubyte', imageFileBytes(testCount, { fill: fill(testLabels) }));
  write('t10k-labels-idx1-ubyte', labelFileBytes(testLabels));
  return folder;
}
