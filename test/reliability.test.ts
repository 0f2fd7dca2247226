// Bad data, divergence, interruption and kills never lose a good result.
// Each case starts from a finished small run and checks reports/ and the
// cache byte for byte afterwards.

import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { defaultDataDir, MNIST_FILES } from '../pipeline/load.js';
import { labelFileBytes } from './helpers/idx.js';
import { runCli, startCli } from './helpers/cli.js';

let work: string;
const out = () => path.join(work, 'reports');
const cacheDir = () => path.join(work, 'cache');
/** The small run's flags; `overrides` replace a value (the CLI refuses a flag given twice). */
const args = (overrides: Record<string, string> = {}, base = work, flags: string[] = []) => {
  const options: Record<string, string> = {
    'train-size': '1000', 'val-size': '200', 'test-size': '500', epochs: '1', backend: 'wasm', 'gradcheck-batch': '4',
    out: path.join(base, 'reports'), 'cache-dir': path.join(base, 'cache'), ...overrides,
  };
  return [...Object.entries(options).flatMap(([flag, value]) => [`--${flag}`, value]), ...flags];
};

/** Every file under `dir` with its SHA-256. */
function snapshot(dir: string): Record<string, string> {
  const files: Record<string, string> = {};
  const walk = (folder: string) => {
    for (const name of readdirSync(folder)) {
      const full = path.join(folder, name);
      if (statSync(full).isDirectory()) walk(full);
      else files[path.relative(dir, full)] = createHash('sha256').update(readFileSync(full)).digest('hex');
    }
  };
  walk(dir);
  return files;
}
const state = () => ({ reports: snapshot(out()), cache: snapshot(cacheDir()) });

/** A data folder: a copy of the real files, with one changed by `damage`. */
function damagedData(damage: (dir: string) => void): string {
  const dir = mkdtempSync(path.join(work, 'data-'));
  for (const name of Object.values(MNIST_FILES)) copyFileSync(path.join(defaultDataDir(), name), path.join(dir, name));
  damage(dir);
  return dir;
}

beforeAll(() => {
  work = mkdtempSync(path.join(os.tmpdir(), 'reliability-'));
  const first = runCli('pipeline/cli/pipeline.ts', args());
  if (first.status !== 0) throw new Error(`the baseline run failed:\n${first.stdout}\n${first.stderr}`);
}, 300_000);
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('bad data files leave reports and cache unchanged', () => {
  const trainImages = MNIST_FILES.trainImages;
  const cases: [string, (dir: string) => void, RegExp][] = [
    ['a truncated image file', (dir) => {
      const file = path.join(dir, trainImages);
      writeFileSync(file, readFileSync(file).subarray(0, 1_000_000));
    }, /train-images-idx3-ubyte: header says 60000 images of 28×28, so expected 47040016 bytes, found 1000000 \(truncated\)/],
    ['a wrong magic number', (dir) => {
      const file = path.join(dir, trainImages);
      const bytes = readFileSync(file);
      bytes.writeUInt32BE(1234, 0);
      writeFileSync(file, bytes);
    }, /train-images-idx3-ubyte: expected image magic number 2051, found 1234/],
    ['an image/label count mismatch', (dir) => writeFileSync(path.join(dir, MNIST_FILES.testLabels), labelFileBytes([1, 2, 3])),
      /t10k-labels-idx1-ubyte: expected 10000 labels to match .*t10k-images-idx3-ubyte, found 3/],
    ['a label outside 0–9', (dir) => {
      const file = path.join(dir, MNIST_FILES.trainLabels);
      const bytes = readFileSync(file);
      bytes[8 + 17] = 11;
      writeFileSync(file, bytes);
    }, /train-labels-idx1-ubyte: expected labels 0–9, found 11 at index 17/],
    ['a corrupt .gz', (dir) => {
      const file = path.join(dir, MNIST_FILES.testImages);
      const gz = gzipSync(readFileSync(file));
      rmSync(file);
      writeFileSync(`${file}.gz`, gz.subarray(0, gz.length - 100));
    }, /t10k-images-idx3-ubyte\.gz: corrupt gzip data/],
    ['a missing file', (dir) => rmSync(path.join(dir, MNIST_FILES.testLabels)), /missing t10k-labels-idx1-ubyte\[\.gz\]/],
    ['a folder with only some of the files', (dir) => {
      rmSync(path.join(dir, MNIST_FILES.testImages));
      rmSync(path.join(dir, MNIST_FILES.trainLabels));
    }, /missing train-labels-idx1-ubyte\[\.gz\], t10k-images-idx3-ubyte\[\.gz\]/],
  ];

  it.each(cases)('%s', (_name, damage, message) => {
    const before = state();
    const dir = damagedData(damage);
    const result = runCli('pipeline/cli/pipeline.ts', args({ 'data-dir': dir }));
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(message);
    expect(result.stderr).toContain(`Reports in ${out()}/ were left as they were.`);
    expect(state()).toEqual(before);
    rmSync(dir, { recursive: true, force: true });
  }, 120_000);
});

describe('divergence', () => {
  it('stops at the first non-finite loss, names epoch and batch, and keeps the previous results', () => {
    const before = state();
    const result = runCli('pipeline/cli/pipeline.ts', args({ lr: '1e4' }));
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/training diverged: the batch loss became (NaN|Infinity|-Infinity) in epoch 1, batch \d+ of 16/);
    expect(state().reports).toEqual(before.reports);
  }, 120_000);
});

/** Starts a long run and signals it once its first epoch has begun. */
function interruptDuringTraining(signal: NodeJS.Signals, waitFor: RegExp): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string; stdout: string }> {
  const child = startCli('pipeline/cli/pipeline.ts', args({ epochs: '40', seed: '99' }, work, ['--no-reference']));
  let stdout = '';
  let stderr = '';
  let sent = false;
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
    if (!sent && waitFor.test(stdout)) {
      sent = true;
      child.kill(signal);
    }
  });
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve) => child.on('close', (code, sig) => resolve({ code, signal: sig, stderr, stdout })));
}

describe('interruption', () => {
  it.each(['SIGINT', 'SIGTERM'] as const)('%s during training stops cleanly and keeps reports and cache', async (signal) => {
    const before = state();
    const result = await interruptDuringTraining(signal, /tfjs epoch 1\//);
    expect(result.code).toBe(130);
    expect(result.stderr).toContain(`${signal} received: stopping after the current batch`);
    expect(result.stderr).toMatch(/interrupted: training interrupted in epoch \d+, batch \d+/);
    const after = state();
    expect(after.reports).toEqual(before.reports);
    // Stages that finished before the signal (e.g. gradcheck for the new seed) may be cached; nothing earlier changed.
    for (const [file, hash] of Object.entries(before.cache)) expect(after.cache[file]).toBe(hash);
  }, 180_000);

  it('SIGKILL during epoch 2 leaves nothing half-written, and the next run succeeds', async () => {
    const before = state();
    const result = await interruptDuringTraining('SIGKILL', /tfjs epoch 1\/40: loss/);
    expect(result.signal).toBe('SIGKILL');
    expect(state().reports).toEqual(before.reports);
    const next = runCli('pipeline/cli/pipeline.ts', args());
    expect(next.status).toBe(0);
    expect(next.stdout).toMatch(/✔ train: cached/);
    const leftovers = readdirSync(cacheDir(), { recursive: true }).map(String).filter((name) => name.includes('.tmp-'));
    expect(leftovers).toEqual([]);
  }, 180_000);
});

describe('cache integrity and determinism', () => {
  it('detects a corrupted cache entry, reports it and recomputes', () => {
    const trainDir = path.join(cacheDir(), 'train');
    const entries = readdirSync(trainDir).filter((name) => !name.startsWith('.'));
    for (const entry of entries) {
      const file = path.join(trainDir, entry, 'arrays.bin');
      const bytes = readFileSync(file);
      bytes[100] = bytes[100]! ^ 0xff;
      writeFileSync(file, bytes);
    }
    const result = runCli('pipeline/cli/pipeline.ts', args());
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(/arrays\.bin: expected SHA-256 .* found .*; discarding the entry and recomputing train/);
    expect(result.stdout).toMatch(/▶ train/);
  }, 180_000);

  it('gives identical metrics for the same seed, apart from timings', () => {
    const again = path.join(work, 'again');
    mkdirSync(again);
    const rerun = runCli('pipeline/cli/pipeline.ts', args({}, again));
    expect(rerun.status).toBe(0);
    const strip = (file: string) => {
      const metrics = JSON.parse(readFileSync(file, 'utf8'));
      delete metrics.stage_seconds;
      delete metrics.run.started_at; // the run block's date and wall time are timings too
      delete metrics.run.wall_seconds;
      delete metrics.config.out;
      delete metrics.config.cacheDir;
      for (const block of [metrics.tfjs, metrics.reference]) {
        delete block.train_seconds;
        delete block.train_samples_per_second;
      }
      return metrics;
    };
    expect(strip(path.join(again, 'reports', 'metrics.json'))).toEqual(strip(path.join(out(), 'metrics.json')));
  }, 240_000);
});
