// Reruns you can trust (issue 12): data is identified by its bytes, a rerun
// starts from the config of the run in --out, --stage never trains unasked,
// and the cache key holds what each stage reads, and only that.

import { createHash } from 'node:crypto';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { configNote, parseArgs, UsageError } from '../pipeline/cli/args.js';
import { CONFIG_KEYS, DEFAULTS, type Config } from '../pipeline/config.js';
import { createCache } from '../pipeline/dag/cache.js';
import { createFileHashes } from '../pipeline/dag/file-hashes.js';
import { createRunner } from '../pipeline/dag/runner.js';
import { findVariant } from '../pipeline/experiments/variants.js';
import { EXPERIMENT_STAGE_NAMES, pipelineStages, type StageName } from '../pipeline/stages.js';
import { runCli, runFlags } from './helpers/cli.js';
import { writeFakeMnist } from './helpers/idx.js';
import { snapshot } from './helpers/files.js';

const PIPELINE = 'pipeline/cli/pipeline.ts';

let work: string;
let data: string;
beforeAll(() => {
  work = mkdtempSync(path.join(os.tmpdir(), 'rerun-'));
  data = writeFakeMnist(mkdirOnce(path.join(work, 'data')), { trainCount: 2500, testCount: 500 });
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

function mkdirOnce(dir: string): string {
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** A small run's flags: 2,000 training images of the fake data, one epoch unless `epochs` says otherwise. */
const small = (name: string, extra: string[] = [], epochs = 1) =>
  runFlags(path.join(work, name), { train: 2000, val: 500, test: 500, epochs }, ['--data-dir', data, ...extra]);
const outOf = (name: string) => path.join(work, name, 'reports');
const cacheOf = (name: string) => path.join(work, name, 'cache');

function mustRun(args: string[]) {
  const result = runCli(PIPELINE, args);
  if (result.status !== 0) throw new Error(`pipeline ${args.join(' ')} failed (${result.status}):\n${result.stdout}\n${result.stderr}`);
  return result;
}

const TRAININGS = /▶ (train|reference|experiment-)/;

describe('the three reruns of issue 12', () => {
  beforeAll(() => {
    mustRun(small('spec')); // reference on, lr 0.01
    mustRun(small('custom', ['--no-reference'], 2));
  }, 300_000);

  it('after the data files are touched, --stage visualize trains nothing', () => {
    const later = new Date(Date.now() + 3_600_000);
    for (const name of readdirSync(data)) utimesSync(path.join(data, name), later, later);
    const result = mustRun(['--stage', 'visualize', '--out', outOf('spec')]);
    expect(result.stdout).toContain(`using the config of ${outOf('spec')}/ (`);
    for (const stage of ['load', 'preprocess', 'train', 'reference', 'evaluate']) expect(result.stdout).toContain(`✔ ${stage}: cached`);
    expect(result.stdout).not.toMatch(TRAININGS);
    expect(result.stdout).toMatch(/▶ visualize/);

    // A copy of the folder holds the same bytes: still nothing to train.
    const copy = path.join(work, 'data-copy');
    cpSync(data, copy, { recursive: true });
    const copied = mustRun(['--stage', 'visualize', '--out', outOf('spec'), '--data-dir', copy]);
    expect(copied.stdout).toContain(`overridden by: data-dir ${copy}`);
    expect(copied.stdout).toContain('✔ load: cached');
    expect(copied.stdout).not.toMatch(TRAININGS);
  }, 120_000);

  it('after a non-default run, --stage visualize trains nothing and config.json keeps that run', () => {
    const result = mustRun(['--stage', 'visualize', '--out', outOf('custom')]);
    expect(result.stdout).toMatch(/using the config of .*custom\/reports\/ \(.*epochs 2, .*reference false.*\), overridden by: none/);
    expect(result.stdout).not.toMatch(TRAININGS);
    expect(result.stdout).toContain('✔ train: cached');
    const config = JSON.parse(readFileSync(path.join(outOf('custom'), 'config.json'), 'utf8')) as Config;
    expect(config).toMatchObject({ epochs: 2, reference: false, trainSize: 2000, cacheDir: cacheOf('custom') });
  }, 120_000);

  it('--lr 0.05 --dry-run names lr and both values on the train line, and writes nothing', () => {
    const before = { out: snapshot(outOf('spec')), cache: snapshot(cacheOf('spec')) };
    const result = mustRun(['--lr', '0.05', '--dry-run', '--out', outOf('spec')]);
    expect(result.stdout).toMatch(/^ {2}train\s+stale\s+v\d+ +run {2}lr 0\.01 → 0\.05$/m);
    expect(result.stdout).toMatch(/^ {2}reference\s+stale\s+v\d+ +run {2}lr 0\.01 → 0\.05$/m);
    expect(result.stdout).toMatch(/^ {2}evaluate\s+stale\s+v\d+ +run {2}upstream train reruns, upstream reference reruns$/m);
    expect(result.stdout).toMatch(/^ {2}gradcheck\s+cached\s+v\d+ +- {4}cached$/m);
    expect({ out: snapshot(outOf('spec')), cache: snapshot(cacheOf('spec')) }).toEqual(before);
  }, 60_000);

  it('--stage stops for a stale training, saying why and how long, leaving cache and reports byte-identical; its command trains', () => {
    const before = { out: snapshot(outOf('custom')), cache: snapshot(cacheOf('custom')) };
    const stopped = runCli(PIPELINE, ['--lr', '0.05', '--stage', 'visualize', '--out', outOf('custom')]);
    expect(stopped.status).toBe(1);
    expect(stopped.stderr).toContain('error: --stage visualize needs a training that --stage does not start unasked:');
    expect(stopped.stderr).toMatch(/ {2}train: stale \(lr 0\.01 → 0\.05\); took about \d+ s last time/);
    const command = `npm run pipeline -- --lr 0.05 --out ${outOf('custom')} --from train`;
    expect(stopped.stderr).toContain(`to train it and redo what follows: ${command}`);
    expect(stopped.stderr).not.toMatch(/^\s+at /m); // no stack trace
    expect(stopped.stdout).not.toContain('▶');
    expect({ out: snapshot(outOf('custom')), cache: snapshot(cacheOf('custom')) }).toEqual(before);

    // The command it names does the training.
    const trained = mustRun(command.replace('npm run pipeline -- ', '').split(' '));
    expect(trained.stdout).toMatch(/▶ train/);
    expect(JSON.parse(readFileSync(path.join(outOf('custom'), 'config.json'), 'utf8'))).toMatchObject({
      lr: 0.05,
      epochs: 2,
      reference: false,
    });
  }, 120_000);

  it('--stage stops for a training missing from the cache, and creates no cache folder', () => {
    const empty = path.join(work, 'no-cache');
    const before = snapshot(outOf('spec'));
    const stopped = runCli(PIPELINE, ['--stage', 'evaluate', '--out', outOf('spec'), '--cache-dir', empty]);
    expect(stopped.status).toBe(1);
    expect(stopped.stderr).toContain('  train: missing (not in the cache); no earlier run of it in the cache');
    expect(stopped.stderr).toContain('  reference: missing (not in the cache); no earlier run of it in the cache');
    expect(stopped.stderr).toMatch(/the full run: npm run pipeline -- --data-dir .* --cache-dir .*no-cache --out .*spec\/reports/);
    expect(stopped.stderr).toContain(
      `to train them, then --stage evaluate: npm run pipeline -- --cache-dir ${empty} --out ${outOf('spec')} --stage train --stage reference --stage evaluate`,
    );
    expect(existsSync(empty)).toBe(false);
    expect(snapshot(outOf('spec'))).toEqual(before);
  }, 60_000);
});

describe('which config a run starts from', () => {
  let runDir: string;
  beforeAll(() => {
    runDir = path.join(work, 'parse');
    mkdirSync(runDir, { recursive: true });
    writeFileSync(path.join(runDir, 'config.json'), JSON.stringify({ ...DEFAULTS, epochs: 3, out: 'somewhere-else' }));
  });
  const parse = (...argv: string[]) => parseArgs(argv, () => {});

  it.each([['--stage', 'visualize'], ['--from', 'evaluate'], ['--list'], ['--dry-run']])(
    '%s starts from config.json of the run in --out',
    async (...selection) => {
      const invocation = (await parse(...selection, '--out', runDir))!;
      expect(invocation.config).toEqual({ ...DEFAULTS, epochs: 3, out: runDir });
      expect(configNote(invocation)).toBe(`using the config of ${runDir}/ (epochs 3), overridden by: none`);
    },
  );

  it('flags, then --config, override it', async () => {
    const file = path.join(work, 'options.json');
    writeFileSync(file, JSON.stringify({ lr: 0.02, batchSize: 32 }));
    const invocation = (await parse('--stage', 'visualize', '--out', runDir, '--config', file, '--lr', '0.05'))!;
    expect(invocation.config).toMatchObject({ epochs: 3, lr: 0.05, batchSize: 32 });
    expect(configNote(invocation)).toBe(`using the config of ${runDir}/ (epochs 3), overridden by: batch-size 32, lr 0.05`);
  });

  it('a full run with no selection flags is still the spec defaults', async () => {
    const invocation = (await parse('--out', runDir))!;
    expect(invocation.config).toEqual({ ...DEFAULTS, out: runDir });
    expect(configNote(invocation)).toBe('using the defaults, overridden by: none');
  });

  it('an --out that holds no run falls back to the defaults and says so', async () => {
    const empty = path.join(work, 'empty-out');
    const invocation = (await parse('--stage', 'visualize', '--out', empty, '--epochs', '2'))!;
    expect(invocation.config).toEqual({ ...DEFAULTS, epochs: 2, out: empty });
    expect(configNote(invocation)).toBe(`${empty}/ holds no run (no config.json): using the defaults, overridden by: epochs 2`);
  });

  it.each([
    ['a syntax error', '{"epochs": ', /config\.json: expected the JSON config of the run in --out .*, found a syntax error/],
    ['null', 'null', /config\.json: expected a JSON object of options, found null/],
    ['an unknown key', JSON.stringify({ epoch: 3 }), /config\.json: unknown option "epoch"/],
    ['a wrong type', JSON.stringify({ epochs: 'three' }), /config\.json: epochs: expected a number, found "three"/],
  ])('a config.json holding %s is a usage error naming the file', async (label, text, message) => {
    const folder = path.join(work, `bad-${label.replaceAll(' ', '-')}`);
    mkdirSync(folder, { recursive: true });
    writeFileSync(path.join(folder, 'config.json'), text);
    await expect(parse('--stage', 'visualize', '--out', folder)).rejects.toThrow(UsageError);
    await expect(parse('--stage', 'visualize', '--out', folder)).rejects.toThrow(message);
    await expect(parse('--out', folder)).resolves.toBeTruthy(); // a full run does not read it
  });

  it('a bad config.json exits 2 without a stack trace and without running anything', () => {
    const folder = path.join(work, 'bad-cli');
    mkdirSync(folder, { recursive: true });
    writeFileSync(path.join(folder, 'config.json'), '{"epochs": 3, "colour": "red"}');
    const result = runCli(PIPELINE, ['--stage', 'visualize', '--out', folder, '--cache-dir', path.join(folder, 'cache')]);
    expect(result.status).toBe(2);
    expect(result.stderr).toContain(`error: ${path.join(folder, 'config.json')}: unknown option "colour"`);
    expect(result.stderr).not.toMatch(/^\s+at /m);
    expect(readdirSync(folder)).toEqual(['config.json']);
  }, 60_000);
});

describe('the cache key holds what each stage reads, and only that', () => {
  const SGD_VARIANTS = EXPERIMENT_STAGE_NAMES.filter(
    (name) => findVariant(name.slice('experiment-'.length)).recipe.optimizer.kind !== 'adam',
  );
  const TRAININGS_AND_AFTER: StageName[] = ['train', 'reference', 'evaluate', 'visualize', ...EXPERIMENT_STAGE_NAMES, 'experiments'];
  // Hand-written from what each stage function reads; a new field or read must be added here.
  const EXPECTED: Record<keyof Config | 'dataDir (other bytes)', StageName[]> = {
    dataDir: [], // a byte-identical copy of the data
    'dataDir (other bytes)': ['load', 'preprocess', 'gradcheck', ...TRAININGS_AND_AFTER],
    trainSize: ['preprocess', 'gradcheck', ...TRAININGS_AND_AFTER],
    valSize: ['preprocess', 'gradcheck', ...TRAININGS_AND_AFTER],
    testSize: ['preprocess', 'gradcheck', ...TRAININGS_AND_AFTER],
    epochs: TRAININGS_AND_AFTER,
    batchSize: TRAININGS_AND_AFTER,
    lr: ['train', 'reference', 'evaluate', 'visualize', ...SGD_VARIANTS, 'experiments'],
    seed: ['init', 'gradcheck', ...TRAININGS_AND_AFTER],
    backend: ['gradcheck', 'train', 'evaluate', 'visualize', ...EXPERIMENT_STAGE_NAMES, 'experiments'],
    reference: ['reference', 'evaluate', 'visualize'],
    referenceThreads: [],
    gradcheckBatch: ['gradcheck'],
    experiments: [...EXPERIMENT_STAGE_NAMES, 'experiments'],
    // the seven long schedules, and the two short students of long teachers
    longEpochs: [
      ...['base+long', 'all', 'all-but-elastic', 'all-but-ema', 'all-but-smoothing', 'all-but-distillation', 'teacher-2'],
      ...['base+distillation', 'all-but-long'],
    ]
      .map((name) => `experiment-${name}` as StageName)
      .concat('experiments'),
    jobs: [],
    cacheDir: [],
    out: [],
  };

  it('changing each config field in turn makes exactly the expected stages stale', () => {
    const base: Config = { ...DEFAULTS, dataDir: data, backend: 'wasm', experiments: 'extended', cacheDir: path.join(work, 'keys') };
    const copy = path.join(work, 'keys-data-copy');
    cpSync(data, copy, { recursive: true });
    const other = writeFakeMnist(mkdirOnce(path.join(work, 'keys-data-other')), { trainCount: 2501, testCount: 500 });
    const changed: Record<keyof typeof EXPECTED, Partial<Config>> = {
      dataDir: { dataDir: copy },
      'dataDir (other bytes)': { dataDir: other },
      trainSize: { trainSize: 1999 },
      valSize: { valSize: 499 },
      testSize: { testSize: 499 },
      epochs: { epochs: 2 },
      batchSize: { batchSize: 32 },
      lr: { lr: 0.05 },
      seed: { seed: 7 },
      backend: { backend: 'cpu' },
      reference: { reference: false },
      referenceThreads: { referenceThreads: 1 },
      gradcheckBatch: { gradcheckBatch: 4 },
      experiments: { experiments: false },
      longEpochs: { longEpochs: 7 },
      jobs: { jobs: 1 },
      cacheDir: { cacheDir: path.join(work, 'keys-other') },
      out: { out: path.join(work, 'keys-out') },
    };
    expect(
      Object.keys(changed)
        .filter((key) => key in DEFAULTS)
        .sort(),
    ).toEqual([...CONFIG_KEYS].sort());
    const stages = pipelineStages({ progress: { log: () => {}, epoch: () => ({ batch() {}, end() {} }) } });
    const plan = (config: Config) => createRunner(stages, config, { cache: createCache(config.cacheDir) }).plan();
    const before = new Map(plan(base).map((entry) => [entry.name, entry]));
    const stale: Record<string, string[]> = {};
    for (const [field, change] of Object.entries(changed)) {
      stale[field] = plan({ ...base, ...change })
        .filter((entry) => entry.name !== 'report') // never cached: runs whenever selected
        .filter(
          (entry) =>
            entry.key !== before.get(entry.name)!.key || (entry.state === 'disabled') !== (before.get(entry.name)!.state === 'disabled'),
        )
        .map((entry) => entry.name);
    }
    // A disabled stage reads nothing: with the reference off, lr reaches only what really reads it.
    const withoutReference = { ...base, reference: false };
    const offBefore = new Map(plan(withoutReference).map((entry) => [entry.name, entry.key]));
    const offStale = plan({ ...withoutReference, lr: 0.05 })
      .filter((entry) => entry.name !== 'report' && entry.key !== offBefore.get(entry.name))
      .map((entry) => entry.name);
    expect(offStale).toEqual(['train', 'evaluate', 'visualize', ...SGD_VARIANTS, 'experiments']);
    const order = [...before.keys()];
    const sorted = (names: string[]) => [...names].sort((a, b) => order.indexOf(a) - order.indexOf(b));
    expect(stale).toEqual(Object.fromEntries(Object.entries(EXPECTED).map(([field, names]) => [field, sorted(names)])));
  });
});

describe('file hashes', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(path.join(work, 'hashes-'))));
  const sha = (text: string) => createHash('sha256').update(text).digest('hex');
  const anHourAgo = () => new Date(Date.now() - 3_600_000);

  it('hashes the bytes; touch leaves the hash unchanged', () => {
    const file = path.join(dir, 'x');
    writeFileSync(file, 'same bytes');
    const hashes = createFileHashes(path.join(dir, 'state.json'));
    expect(hashes.hash(file)).toBe(sha('same bytes'));
    utimesSync(file, new Date(), new Date(Date.now() + 60_000));
    expect(hashes.hash(file)).toBe(sha('same bytes'));
  });

  it('remembers a hash under path, size, mtime, ctime and inode, so an unchanged file is not read again', () => {
    const file = path.join(dir, 'x');
    const stateFile = path.join(dir, 'state.json');
    writeFileSync(file, 'first');
    utimesSync(file, anHourAgo(), anHourAgo());
    const { mtime } = statSync(file);
    const first = createFileHashes(stateFile);
    expect(first.hash(file)).toBe(sha('first'));
    first.save();
    // Same size, mtime, ctime and inode: the remembered hash is trusted (as git and DVC do). A sentinel in its
    // place proves the file was not reread.
    const state = JSON.parse(readFileSync(stateFile, 'utf8'));
    state.files[path.resolve(file)].sha256 = 'remembered';
    state.files[path.resolve(file)].hashedAtMs += 3_600_000; // hashed long after its ctime: not racily clean
    writeFileSync(stateFile, JSON.stringify(state));
    expect(createFileHashes(stateFile).hash(file)).toBe('remembered');
    // A new mtime makes it read again.
    utimesSync(file, mtime, new Date());
    expect(createFileHashes(stateFile).hash(file)).toBe(sha('first'));
  });

  it("rereads a file rewritten in place with its size and mtime put back: ctime is in the key, as in git's index", () => {
    const file = path.join(dir, 'x');
    const stateFile = path.join(dir, 'state.json');
    writeFileSync(file, 'first');
    utimesSync(file, anHourAgo(), anHourAgo());
    const first = createFileHashes(stateFile);
    expect(first.hash(file)).toBe(sha('first'));
    first.save();
    // Hashed "long ago", so neither mtime nor ctime is racy: only the key decides.
    const state = JSON.parse(readFileSync(stateFile, 'utf8'));
    state.files[path.resolve(file)].hashedAtMs += 3_600_000;
    writeFileSync(stateFile, JSON.stringify(state));
    expect(createFileHashes(stateFile).hash(file)).toBe(sha('first')); // unchanged: trusted, not reread
    const { ino, mtime } = statSync(file);
    writeFileSync(file, 'fifth'); // same inode, same size
    utimesSync(file, mtime, mtime);
    expect(statSync(file).ino).toBe(ino);
    expect(createFileHashes(stateFile).hash(file)).toBe(sha('fifth'));
  });

  it("rereads a file changed within two seconds of being hashed (git's racily clean case)", () => {
    const file = path.join(dir, 'x');
    const stateFile = path.join(dir, 'state.json');
    writeFileSync(file, 'first');
    const first = createFileHashes(stateFile);
    first.hash(file);
    first.save();
    const { mtime } = statSync(file);
    writeFileSync(file, 'fifth');
    utimesSync(file, mtime, mtime);
    expect(createFileHashes(stateFile).hash(file)).toBe(sha('fifth'));
  });

  it('ignores a damaged state file', () => {
    const file = path.join(dir, 'x');
    const stateFile = path.join(dir, 'state.json');
    writeFileSync(file, 'bytes');
    for (const text of ['null', '{"version": 1, "files": null}', '{"garbage', `{"version": 1, "files": {"${file}": {"sha256": 3}}}`]) {
      writeFileSync(stateFile, text);
      const hashes = createFileHashes(stateFile);
      expect(hashes.hash(file)).toBe(sha('bytes'));
      hashes.save();
      expect(JSON.parse(readFileSync(stateFile, 'utf8')).files[file].sha256).toBe(sha('bytes'));
    }
  });
});
