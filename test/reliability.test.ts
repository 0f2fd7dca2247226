// Bad data, divergence, interruption, kills, full or read-only disks and
// concurrent runs never lose a good result. Each case starts from a finished
// small run and checks reports/ and the cache byte for byte afterwards.

import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { defaultDataDir, MNIST_FILES } from '../pipeline/stages/load.js';
import { labelFileBytes } from './helpers/idx.js';
import { ROOT, runCli, startCli } from './helpers/cli.js';
import { runProblems } from './helpers/consistency.js';
import { snapshot } from './helpers/files.js';

let work: string;
const out = () => path.join(work, 'reports');
const cacheDir = () => path.join(work, 'cache');
/** The small run's flags; `overrides` replace a value (the CLI refuses a flag given twice). */
const args = (overrides: Record<string, string> = {}, base = work, flags: string[] = []) => {
  const options: Record<string, string> = {
    'train-size': '1000',
    'val-size': '200',
    'test-size': '500',
    epochs: '1',
    backend: 'wasm',
    'gradcheck-batch': '4',
    out: path.join(base, 'reports'),
    'cache-dir': path.join(base, 'cache'),
    ...overrides,
  };
  return [...Object.entries(options).flatMap(([flag, value]) => [`--${flag}`, value]), ...flags];
};

const state = () => ({ reports: snapshot(out()), cache: snapshot(cacheDir()) });

/** A data folder: a copy of the real files, with one changed by `damage`. */
function damagedData(damage: (dir: string) => void): string {
  const dir = fs.mkdtempSync(path.join(work, 'data-'));
  for (const name of Object.values(MNIST_FILES)) fs.copyFileSync(path.join(defaultDataDir(), name), path.join(dir, name));
  damage(dir);
  return dir;
}

beforeAll(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'reliability-'));
  const first = runCli('pipeline/cli/pipeline.ts', args());
  if (first.status !== 0) throw new Error(`the baseline run failed:\n${first.stdout}\n${first.stderr}`);
}, 300_000);
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

describe('bad data files leave reports and cache unchanged', () => {
  const trainImages = MNIST_FILES.trainImages;
  const cases: [string, (dir: string) => void, RegExp][] = [
    [
      'a truncated image file',
      (dir) => {
        const file = path.join(dir, trainImages);
        fs.writeFileSync(file, fs.readFileSync(file).subarray(0, 1_000_000));
      },
      /train-images-idx3-ubyte: header says 60000 images of 28×28, so expected 47040016 bytes, found 1000000 \(truncated\)/,
    ],
    [
      'a wrong magic number',
      (dir) => {
        const file = path.join(dir, trainImages);
        const bytes = fs.readFileSync(file);
        bytes.writeUInt32BE(1234, 0);
        fs.writeFileSync(file, bytes);
      },
      /train-images-idx3-ubyte: expected image magic number 2051, found 1234/,
    ],
    [
      'an image/label count mismatch',
      (dir) => fs.writeFileSync(path.join(dir, MNIST_FILES.testLabels), labelFileBytes([1, 2, 3])),
      /t10k-labels-idx1-ubyte: expected 10000 labels to match .*t10k-images-idx3-ubyte, found 3/,
    ],
    [
      'a label outside 0–9',
      (dir) => {
        const file = path.join(dir, MNIST_FILES.trainLabels);
        const bytes = fs.readFileSync(file);
        bytes[8 + 17] = 11;
        fs.writeFileSync(file, bytes);
      },
      /train-labels-idx1-ubyte: expected labels 0–9, found 11 at index 17/,
    ],
    [
      'a corrupt .gz',
      (dir) => {
        const file = path.join(dir, MNIST_FILES.testImages);
        const gz = gzipSync(fs.readFileSync(file));
        fs.rmSync(file);
        fs.writeFileSync(`${file}.gz`, gz.subarray(0, gz.length - 100));
      },
      /t10k-images-idx3-ubyte\.gz: corrupt gzip data/,
    ],
    ['a missing file', (dir) => fs.rmSync(path.join(dir, MNIST_FILES.testLabels)), /missing t10k-labels-idx1-ubyte\[\.gz\]/],
    [
      'a folder with only some of the files',
      (dir) => {
        fs.rmSync(path.join(dir, MNIST_FILES.testImages));
        fs.rmSync(path.join(dir, MNIST_FILES.trainLabels));
      },
      /missing train-labels-idx1-ubyte\[\.gz\], t10k-images-idx3-ubyte\[\.gz\]/,
    ],
  ];

  it.each(cases)(
    '%s',
    (_name, damage, message) => {
      const before = state();
      const dir = damagedData(damage);
      const result = runCli('pipeline/cli/pipeline.ts', args({ 'data-dir': dir }));
      expect(result.status).toBe(1);
      expect(result.stderr).toMatch(message);
      expect(result.stderr).toContain(`Reports in ${out()}/ were left as they were.`);
      expect(state()).toEqual(before);
      fs.rmSync(dir, { recursive: true, force: true });
    },
    120_000,
  );
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
function interruptDuringTraining(
  signal: NodeJS.Signals,
  waitFor: RegExp,
): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string; stdout: string }> {
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
  it.each(['SIGINT', 'SIGTERM'] as const)(
    '%s during training stops cleanly and keeps reports and cache',
    async (signal) => {
      const before = state();
      const result = await interruptDuringTraining(signal, /tfjs epoch 1\//);
      expect(result.code).toBe(130);
      expect(result.stderr).toContain(`${signal} received: stopping after the current batch`);
      expect(result.stderr).toMatch(/interrupted: training interrupted in epoch \d+, batch \d+/);
      const after = state();
      expect(after.reports).toEqual(before.reports);
      // Stages that finished before the signal (e.g. gradcheck for the new seed) may be cached; nothing earlier changed.
      for (const [file, hash] of Object.entries(before.cache)) expect(after.cache[file]).toBe(hash);
    },
    180_000,
  );

  it('SIGKILL during epoch 2 leaves nothing half-written, and the next run succeeds', async () => {
    const before = state();
    const result = await interruptDuringTraining('SIGKILL', /tfjs epoch 1\/40: loss/);
    expect(result.signal).toBe('SIGKILL');
    expect(state().reports).toEqual(before.reports);
    const next = runCli('pipeline/cli/pipeline.ts', args());
    expect(next.status).toBe(0);
    expect(next.stdout).toMatch(/✔ train: cached/);
    const leftovers = fs
      .readdirSync(cacheDir(), { recursive: true })
      .map(String)
      .filter((name) => name.includes('.tmp-'));
    expect(leftovers).toEqual([]);
  }, 180_000);
});

describe('cache integrity and determinism', () => {
  it('detects a corrupted cache entry, reports it and recomputes', () => {
    const trainDir = path.join(cacheDir(), 'train');
    const entries = fs.readdirSync(trainDir).filter((name) => !name.startsWith('.'));
    for (const entry of entries) {
      const file = path.join(trainDir, entry, 'arrays.bin');
      const bytes = fs.readFileSync(file);
      bytes[100] = bytes[100]! ^ 0xff;
      fs.writeFileSync(file, bytes);
    }
    const result = runCli('pipeline/cli/pipeline.ts', args());
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(/arrays\.bin: expected SHA-256 .* found .*; discarding the entry and recomputing train/);
    expect(result.stdout).toMatch(/▶ train/);
  }, 180_000);

  it('gives identical metrics for the same seed, apart from timings', () => {
    const again = path.join(work, 'again');
    fs.mkdirSync(again);
    const rerun = runCli('pipeline/cli/pipeline.ts', args({}, again));
    expect(rerun.status).toBe(0);
    const strip = (file: string) => {
      const metrics = JSON.parse(fs.readFileSync(file, 'utf8'));
      delete metrics.stage_seconds;
      delete metrics.run.started_at; // the run block's date and wall time are timings too
      delete metrics.run.wall_seconds;
      delete metrics.run.peak_memory_mib; // memory is measured, like time
      delete metrics.run.peak_memory_processes;
      delete metrics.config.out;
      delete metrics.config.cacheDir;
      for (const block of [metrics.tfjs, metrics.reference]) {
        delete block.train_seconds;
        delete block.train_samples_per_second;
        delete block.trained_by.started_at; // when the run that trained it started
      }
      return metrics;
    };
    expect(strip(path.join(again, 'reports', 'metrics.json'))).toEqual(strip(path.join(out(), 'metrics.json')));
  }, 240_000);
});

/** Names beside reports/ that are neither reports/ itself, its current run folder nor its lock. */
function publishLeftovers(): string[] {
  const current = fs.readlinkSync(out());
  return fs.readdirSync(work).filter((name) => name.startsWith('.reports.') && name !== current && name !== '.reports.lock');
}

/** The first report file written since `since`, in reports/ or beside it (wherever a publish builds), or null. */
function newReportFile(since: number): string | null {
  for (const top of fs.readdirSync(work).filter((name) => name === 'reports' || name.startsWith('.reports.'))) {
    const folder = path.join(work, top);
    const stat = fs.statSync(folder, { throwIfNoEntry: false });
    if (!stat?.isDirectory()) continue;
    let names: string[];
    try {
      names = fs.readdirSync(folder, { recursive: true }).map(String);
    } catch {
      continue; // renamed while we looked (a finished build becoming a run folder)
    }
    for (const name of names) {
      const file = fs.statSync(path.join(folder, name), { throwIfNoEntry: false });
      if (file?.isFile() && file.mtimeMs >= since) return path.join(top, name);
    }
  }
  return null;
}

/** A stack trace line, which a refusal must not print. */
const STACK_LINE = /^\s+at /m;

describe('the report folder holds one whole run', () => {
  it('the finished run is consistent: metrics, config, history, models and report agree, and the model re-scores', async () => {
    expect(fs.lstatSync(out()).isSymbolicLink()).toBe(true);
    expect(await runProblems(out())).toEqual([]);
  }, 120_000);

  it('the consistency check fails on a folder that mixes two runs', async () => {
    const mixed = path.join(work, 'mixed');
    fs.cpSync(out(), mixed, { recursive: true, dereference: true });
    const metrics = JSON.parse(fs.readFileSync(path.join(mixed, 'metrics.json'), 'utf8'));
    metrics.config.seed = 7; // metrics.json of another run beside this run's files
    fs.writeFileSync(path.join(mixed, 'metrics.json'), JSON.stringify(metrics));
    const problems = await runProblems(mixed, { rescore: false });
    expect(problems).toContainEqual(expect.stringMatching(/metrics\.json: expected \d+ bytes with SHA-256/));
    expect(problems).toContainEqual(expect.stringMatching(/^metrics\.json config .* differs from config\.json/));
    fs.rmSync(mixed, { recursive: true, force: true });
  }, 60_000);

  it('SIGKILL the moment the first file of the new report appears leaves the previous run whole; the next run cleans up', async () => {
    const before = state().reports;
    const child = startCli('pipeline/cli/pipeline.ts', args({ seed: '7' }));
    child.stdout.resume();
    child.stderr.resume();
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('close', (_code, signal) => resolve(signal)));
    let killedWith: string | null = null;
    const start = Date.now();
    while (child.exitCode === null && child.signalCode === null) {
      killedWith = newReportFile(start);
      if (killedWith) {
        child.kill('SIGKILL');
        break;
      }
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(await exited).toBe('SIGKILL');
    expect(killedWith).not.toBeNull(); // killed as the report was being written, not after
    expect(state().reports).toEqual(before);
    expect(await runProblems(out(), { rescore: false })).toEqual([]);
    expect(publishLeftovers().length).toBeGreaterThan(0); // the killed run's half folder and locks…

    const next = runCli('pipeline/cli/pipeline.ts', args({ seed: '7' }));
    expect(next.status).toBe(0);
    expect(next.stdout).not.toMatch(/waiting/); // its locks were stale: its pid is dead
    expect(publishLeftovers()).toEqual([]); // …are gone after the next run
    expect(JSON.parse(fs.readFileSync(path.join(out(), 'config.json'), 'utf8')).seed).toBe(7);
    expect(await runProblems(out())).toEqual([]);
    expect(runCli('pipeline/cli/pipeline.ts', args()).status).toBe(0); // back to the baseline's seed for the other tests
  }, 240_000);

  it('a second run on the same folders waits for the first, then finishes; the folder holds one whole run', async () => {
    const first = startCli('pipeline/cli/pipeline.ts', args({ seed: '11' }));
    let firstOut = '';
    first.stdout.on('data', (chunk: Buffer) => (firstOut += chunk.toString()));
    first.stderr.resume();
    const firstDone = new Promise<number | null>((resolve) => first.on('close', (code) => resolve(code)));
    const lock = path.join(work, '.reports.lock');
    const holder = () => {
      try {
        return (JSON.parse(fs.readFileSync(lock, 'utf8')) as { pid: number }).pid; // the lock names its run's pid (and start time)
      } catch {
        return null; // not taken yet
      }
    };
    while (holder() !== first.pid) await new Promise((resolve) => setTimeout(resolve, 20));
    const second = startCli('pipeline/cli/pipeline.ts', args({ seed: '11' }));
    let secondOut = '';
    second.stdout.on('data', (chunk: Buffer) => (secondOut += chunk.toString()));
    second.stderr.resume();
    const secondDone = new Promise<number | null>((resolve) => second.on('close', (code) => resolve(code)));
    expect(await firstDone).toBe(0);
    expect(await secondDone).toBe(0);
    // it waits on whichever of the two locks (cache, report folder) comes first in their fixed order
    expect(secondOut).toMatch(new RegExp(`another run \\(pid ${first.pid}\\) is writing .*(reports/|cache/ \\(the cache\\)); waiting`));
    expect(firstOut).toMatch(/▶ train/);
    expect(secondOut).toMatch(/✔ train: cached/); // it waited, then found the first run's results
    expect(await runProblems(out())).toEqual([]);
    expect(runCli('pipeline/cli/pipeline.ts', args()).status).toBe(0);
  }, 240_000);
});

describe('refusals at start-up, before any training', () => {
  it("--out '' and --cache-dir '' are refused with exit 2 and write nothing", () => {
    const cwd = fs.mkdtempSync(path.join(work, 'cwd-'));
    const loader = path.join(ROOT, 'node_modules', 'tsx', 'dist', 'loader.mjs');
    for (const flag of ['out', 'cache-dir']) {
      const result = spawnSync(
        process.execPath,
        ['--import', loader, path.join(ROOT, 'pipeline/cli/pipeline.ts'), ...args({ [flag]: '' })],
        { cwd, encoding: 'utf8' },
      );
      expect(result.status).toBe(2);
      expect(result.stderr).toContain(`--${flag}: expected a folder path, found "" (an empty path would write into the current folder)`);
      expect(fs.readdirSync(cwd)).toEqual([]);
    }
  });

  it('--seed above 2^53 - 1 is refused, not rounded', () => {
    const result = runCli('pipeline/cli/pipeline.ts', args({ seed: '9007199254740993' }));
    expect(result.status).toBe(2);
    expect(result.stderr).toContain('--seed: expected at most 2^53 − 1 = 9007199254740991');
  });

  const plainFile = () => {
    const file = path.join(work, 'plain-file');
    fs.writeFileSync(file, 'not a folder');
    return file;
  };
  const unwritable: [string, () => Record<string, string>, (overrides: Record<string, string>) => string][] = [
    [
      'a cache dir that is a plain file',
      () => ({ 'cache-dir': plainFile() }),
      (o) => `--cache-dir ${o['cache-dir']}: cannot be written: expected a folder, found a file (ENOTDIR on mkdir)`,
    ],
    [
      'an --out under a plain file',
      () => ({ out: path.join(plainFile(), 'reports') }),
      (o) => `--out ${o.out}: cannot be written: ${path.dirname(o.out!)}: expected a folder, found a file (ENOTDIR on mkdir)`,
    ],
    [
      'an --out that is a plain file',
      () => ({ out: plainFile() }),
      (o) =>
        `--out ${o.out}: expected a new folder or a report folder of this pipeline, found a file, not a folder. ` +
        `Nothing there was changed; choose another folder, e.g. --out ${o.out}-reports`,
    ],
  ];
  it.each(unwritable)(
    '%s is refused with exit 2, one line, no stack',
    (_name, overrides, message) => {
      const before = state();
      const flags = overrides();
      const result = runCli('pipeline/cli/pipeline.ts', args(flags));
      expect(result.status).toBe(2);
      expect(result.stderr).toContain(`error: ${message(flags)}`);
      expect(result.stderr).not.toMatch(STACK_LINE);
      expect(result.stdout).not.toMatch(/▶/); // no stage started
      expect(state()).toEqual(before);
    },
    60_000,
  );

  it('a read-only --out or --cache-dir (EROFS, a read-only tmpfs) is refused with exit 2, no stack', () => {
    const readOnly = path.join(work, 'read-only');
    fs.mkdirSync(readOnly);
    const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'ro,size=64k', 'tmpfs', readOnly], { encoding: 'utf8' });
    if (mounted.status !== 0) {
      console.warn(`skipped: mounting a read-only tmpfs needs CAP_SYS_ADMIN (${mounted.stderr.trim()}); ENOTDIR above covers the refusal`);
      return;
    }
    try {
      for (const [flag, value, culprit] of [
        ['out', path.join(readOnly, 'reports'), readOnly],
        ['cache-dir', readOnly, ''],
      ] as const) {
        const result = runCli('pipeline/cli/pipeline.ts', args({ [flag]: value }));
        expect(result.status).toBe(2);
        expect(result.stderr).toContain(
          `error: --${flag} ${value}: cannot be written: ${culprit ? `${culprit}: ` : ''}the file system is read-only (EROFS on open)`,
        );
        expect(result.stderr).not.toMatch(STACK_LINE);
        expect(result.stdout).not.toMatch(/▶/);
      }
    } finally {
      spawnSync('umount', [readOnly]);
    }
  }, 60_000);
});

describe('a disk that fills while the report is written', () => {
  it('leaves the previous run byte-identical and says so in one line naming the path (a 16 MiB tmpfs)', () => {
    const disk = path.join(work, 'small-disk');
    fs.mkdirSync(disk);
    const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=16m', 'tmpfs', disk], { encoding: 'utf8' });
    if (mounted.status !== 0) {
      console.warn(
        `skipped: mounting a tmpfs needs CAP_SYS_ADMIN (${mounted.stderr.trim()}); test/publish.test.ts covers a write that throws`,
      );
      return;
    }
    try {
      const reports = path.join(disk, 'reports');
      expect(runCli('pipeline/cli/pipeline.ts', args({ out: reports })).status).toBe(0);
      const before = snapshot(reports);
      const free = Number(spawnSync('df', ['-B1', '--output=avail', disk], { encoding: 'utf8' }).stdout.trim().split('\n')[1]);
      fs.writeFileSync(path.join(disk, 'filler'), Buffer.alloc(free - 512 * 1024)); // room for a quarter of a report
      const result = runCli('pipeline/cli/pipeline.ts', args({ out: reports, seed: '7' }));
      expect(result.status).toBe(1);
      expect(result.stderr).toMatch(
        new RegExp(`^error: ${disk}/\\.reports\\.tmp-\\d+-[0-9a-f]+/\\S+: no space left on the device \\(ENOSPC on write\\)$`, 'm'),
      );
      expect(result.stderr).toContain(`Reports in ${reports}/ were left as they were.`);
      expect(result.stderr).not.toMatch(STACK_LINE);
      expect(snapshot(reports)).toEqual(before);
      expect(fs.readdirSync(disk).sort()).toEqual(['filler', 'reports', fs.readlinkSync(reports)].sort()); // no half-built folder left
    } finally {
      spawnSync('umount', [disk]);
    }
  }, 240_000);
});
