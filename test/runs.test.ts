// Runs you can list, compare and clean up: three small runs into three --out folders sharing one
// cache, then --runs, --compare, --gc and a rerun, through the real CLI.

import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { RunRow } from '../pipeline/runs.js';
import type { MetricsFile } from '../pipeline/types.js';
import { processStartTime } from '../pipeline/output/lock.js';
import { ROOT, runCli, startCli } from './helpers/cli.js';
import { snapshot } from './helpers/files.js';

const PIPELINE = 'pipeline/cli/pipeline.ts';
const SIZE = ['--train-size', '1000', '--val-size', '200', '--test-size', '300', '--backend', 'wasm', '--jobs', '1'];
const SIZE_CONFIG = { trainSize: 1000, valSize: 200, testSize: 300, epochs: 2 };

let work: string;
let cache: string;
const folder = (name: string) => path.join(work, name);
const metricsOf = (name: string) => JSON.parse(readFileSync(path.join(folder(name), 'metrics.json'), 'utf8')) as MetricsFile;

function pipeline(args: string[]) {
  const result = runCli(PIPELINE, [...args, '--cache-dir', cache]);
  if (result.status !== 0) throw new Error(`pipeline ${args.join(' ')} exited ${result.status}:\n${result.stderr}`);
  return result;
}
const runs = () => JSON.parse(pipeline(['--runs', '--json']).stdout) as RunRow[];

beforeAll(() => {
  work = mkdtempSync(path.join(os.tmpdir(), 'runs-'));
  cache = folder('cache');
  // "spec" lies in a git work tree, as a named run inside a user's repository would.
  mkdirSync(folder('repo'));
  expect(spawnSync('git', ['init', '-q', folder('repo')]).status).toBe(0);
  pipeline([...SIZE, '--epochs', '2', '--out', folder('repo/spec')]);
  pipeline([...SIZE, '--epochs', '2', '--lr', '0.05', '--no-reference', '--out', folder('lr05')]);
  pipeline([...SIZE, '--epochs', '3', '--no-reference', '--out', folder('e3')]);
}, 300_000);
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('--runs', () => {
  it('lists every training with its config against the defaults, its accuracies and the folder using it', () => {
    const rows = runs();
    const byFolder = (name: string, stage = 'train') => rows.filter((row) => row.stage === stage && row.usedBy.includes(folder(name)));
    expect(rows.map((row) => row.stage).sort()).toEqual(['reference', 'train', 'train', 'train']);
    const [spec, lr05, e3, reference] = [byFolder('repo/spec'), byFolder('lr05'), byFolder('e3'), byFolder('repo/spec', 'reference')];
    expect(spec).toHaveLength(1);
    expect(spec[0]!.config).toEqual({ ...SIZE_CONFIG, backend: 'wasm' });
    expect(lr05[0]!.config).toEqual({ ...SIZE_CONFIG, backend: 'wasm', lr: 0.05 });
    expect(e3[0]!.config).toEqual({ ...SIZE_CONFIG, backend: 'wasm', epochs: 3 });
    expect(reference[0]!.config).toEqual(SIZE_CONFIG); // the reference reads no backend
    for (const [rows, name] of [
      [spec, 'repo/spec'],
      [lr05, 'lr05'],
      [e3, 'e3'],
    ] as const) {
      const metrics = metricsOf(name);
      expect(rows[0]!.testAccuracy).toBe(metrics.tfjs.test_accuracy);
      expect(rows[0]!.valAccuracy).toBe(metrics.tfjs.val_accuracy);
      expect(rows[0]!.commit).toBe(metrics.tfjs.trained_by!.git_commit);
      expect(rows[0]!.key).toBe(metrics.stage_keys!.train);
    }
    expect(reference[0]!.testAccuracy).toBe(metricsOf('repo/spec').reference!.test_accuracy);
  });

  it('prints a table with a header, sorted by test accuracy on request', () => {
    const lines = pipeline(['--runs', '--sort', 'test']).stdout.trimEnd().split('\n');
    expect(lines[0]).toBe(`4 trainings in the cache ${cache}/:`);
    expect(lines[1]).toMatch(/^stage +config \(vs defaults\) +val +test +trained in +when +commit +used by$/);
    const tests = lines.slice(2).map((line) => Number(/ (\d+\.\d\d)% +\d/.exec(line)![1]));
    expect(tests).toEqual([...tests].sort((a, b) => b - a));
    const lr05 = lines.find((line) => line.includes(folder('lr05')))!;
    expect(lr05).toContain('--lr 0.05');
    expect(lr05).toContain(`${(metricsOf('lr05').tfjs.test_accuracy * 100).toFixed(2)}%`);
  });
});

describe('staleness and provenance', () => {
  it('--dry-run explains a stale training against the run in --out, not the last one trained', () => {
    // The closest cache entries are spec's (lr 0.01) and lr05's (lr 0.05, newer): only --out decides.
    const planned = pipeline(['--out', folder('repo/spec'), '--lr', '0.02', '--dry-run']).stdout.split('\n');
    expect(planned).toContain('  stage                                    state      code  run  why');
    expect(planned.find((line) => line.startsWith('  train '))).toMatch(/^ {2}train +stale +v\d+ +run {2}lr 0\.01 → 0\.02$/);
    const other = pipeline(['--out', folder('lr05'), '--lr', '0.02', '--dry-run']).stdout.split('\n');
    expect(other.find((line) => line.startsWith('  train '))).toMatch(/^ {2}train +stale +v\d+ +run {2}lr 0\.05 → 0\.02$/);
  });

  it('the run link in a git work tree that does not ignore it gets a note; the project ignores what a run makes at its top, and hidden run folders anywhere', () => {
    const made = [
      'reports-lr05',
      'results',
      '.reports-lr05.run-20261207T170000Z-1-ab12/',
      '.results.lock',
      'reports',
      'docs/.x.run-1-2-ab/',
    ];
    const ignored = spawnSync('git', ['check-ignore', '--no-index', ...made], { cwd: ROOT, encoding: 'utf8' });
    expect(ignored.stdout.split('\n').filter(Boolean)).toEqual(made);
    const ours = ['pipeline/runs.ts', 'README.md', 'test/runs.test.ts', '.ci/run', 'package.json'];
    expect(spawnSync('git', ['check-ignore', '--no-index', ...ours], { cwd: ROOT, encoding: 'utf8' }).stdout).toBe('');
    const rerun = pipeline(['--out', folder('repo/spec'), '--stage', 'report']);
    expect(rerun.stdout.split('\n')).toContain(
      `git status will show ${folder('repo/spec')} (a link to this run); add it to that repository's .gitignore`,
    );
  });
});

describe('--compare', () => {
  it('sets the other two runs beside spec in report.md and index.html, from the cache, training nothing', () => {
    const [spec, lr05, e3] = [metricsOf('repo/spec'), metricsOf('lr05'), metricsOf('e3')];
    const compared = pipeline(['--out', folder('repo/spec'), '--compare', folder('lr05'), folder('e3')]).stdout;
    expect(compared).toContain('✔ train: cached');
    expect(compared).not.toMatch(/▶ (train|reference|evaluate)/);
    const pct = (fraction: number) => `${(fraction * 100).toFixed(2)}%`;
    const pp = (a: number, b: number) => {
      const change = Number((fraction(b) - fraction(a)).toFixed(2));
      return `${change >= 0 ? '+' : ''}${change.toFixed(2)} pp`;
    };
    const fraction = (value: number) => Number((value * 100).toFixed(2));
    const markdown = readFileSync(path.join(folder('repo/spec'), 'report.md'), 'utf8').split('\n');
    expect(markdown).toContain(`## Compared with ${folder('lr05')}`);
    expect(markdown).toContain('- `--lr 0.01 → 0.05`');
    expect(markdown).toContain(
      `| TF.js test accuracy | ${pct(spec.tfjs.test_accuracy)} | ${pct(lr05.tfjs.test_accuracy)} | ${pp(spec.tfjs.test_accuracy, lr05.tfjs.test_accuracy)} |`,
    );
    expect(markdown).toContain(`## Compared with ${folder('e3')}`);
    expect(markdown).toContain('- `--epochs 2 → 3`');
    expect(markdown).toContain(
      `| TF.js test accuracy | ${pct(spec.tfjs.test_accuracy)} | ${pct(e3.tfjs.test_accuracy)} | ${pp(spec.tfjs.test_accuracy, e3.tfjs.test_accuracy)} |`,
    );
    const html = readFileSync(path.join(folder('repo/spec'), 'index.html'), 'utf8');
    for (const accuracy of [spec, lr05, e3].map((m) => pct(m.tfjs.test_accuracy))) expect(html).toContain(`>${accuracy}<`);
    expect(html).toContain('<code>--lr 0.01 → 0.05</code>');
    expect(compared.split('\n')).toContain(`${folder('repo/spec')} against ${folder('lr05')}: --lr 0.01 → 0.05, --reference true → false`);
  });
});

describe('--gc', () => {
  it('waits for a run that holds the cache lock, removing nothing meanwhile', async () => {
    const lock = path.join(work, '.cache.lock'); // beside --cache-dir <work>/cache
    writeFileSync(lock, `${JSON.stringify({ pid: process.pid, started: processStartTime(process.pid) })}\n`);
    const before = snapshot(cache);
    const child = startCli(PIPELINE, ['--gc', folder('e3'), '--cache-dir', cache]);
    let output = '';
    await new Promise<void>((resolve) => {
      const seen = (chunk: Buffer) => {
        output += chunk.toString();
        if (output.includes('waiting')) resolve();
      };
      child.stdout.on('data', seen);
      child.stderr.on('data', seen);
    });
    child.kill('SIGTERM');
    await new Promise((resolve) => child.on('exit', resolve));
    rmSync(lock);
    expect(output).toContain(`another run (pid ${process.pid}) is writing ${cache}/ (the cache); waiting`);
    expect(snapshot(cache)).toEqual(before);
  }, 60_000);

  it('keeps what one folder was made from and frees the others, touching no report folder; a rerun there trains nothing', () => {
    const keys = (name: string) => metricsOf(name).stage_keys!;
    const before = { lr05: readFileSync(path.join(folder('lr05'), 'metrics.json')) };
    const trainedAt = metricsOf('e3').tfjs.trained_by!;
    const collected = pipeline(['--gc', folder('e3')]).stdout.split('\n');
    for (const name of ['repo/spec', 'lr05'])
      expect(collected).toContainEqual(expect.stringMatching(new RegExp(`^removed train/${keys(name).train} \\(`)));
    expect(collected).toContainEqual(expect.stringMatching(new RegExp(`^removed reference/${keys('repo/spec').reference} \\(`)));
    expect(collected.filter((line) => line.includes(`/${keys('e3').train} `))).toEqual([]);
    expect(collected.at(-2)).toMatch(/^--gc: removed \d+ cache entries, freed [\d.]+ (kB|MB); kept the entries .* was made from$/);
    expect(runs().map((row) => row.key)).toEqual([keys('e3').train]);
    const listed = pipeline(['--list', '--out', folder('e3')]).stdout.split('\n');
    expect(listed).toContainEqual(expect.stringMatching(new RegExp(`^cache ${cache}: \\d+ entries, [\\d.]+ (kB|MB)$`)));
    expect(readFileSync(path.join(folder('lr05'), 'metrics.json'))).toEqual(before.lr05);

    const rerun = pipeline(['--out', folder('e3'), '--stage', 'visualize']).stdout;
    expect(rerun).toContain('✔ train: cached');
    expect(rerun).not.toContain('▶ train');
    const after = metricsOf('e3');
    expect(after.tfjs.trained_by).toEqual(trainedAt); // the training's own run, not the rerun's
    expect(after.run.started_at).not.toBe(trainedAt.started_at);
    expect(readFileSync(path.join(folder('e3'), 'report.md'), 'utf8')).toContain(
      `**TF.js model**: trained by the run started ${trainedAt.started_at.replace('T', ' ').replace(/\.\d+Z$/, ' UTC')}, commit`,
    );
  });

  it('refuses a folder without stage keys, and a cache of user files, before removing anything', () => {
    const old = folder('old-report');
    mkdirSync(old);
    writeFileSync(path.join(old, 'metrics.json'), '{"tfjs": {}}');
    const refused = runCli(PIPELINE, ['--gc', old, '--cache-dir', cache]);
    expect(refused.status).toBe(2);
    expect(refused.stderr.trim()).toBe(
      `error: --gc ${old}: ${old}/metrics.json: expected stage_keys (written since runs record their cache entries), found none; rerun npm run pipeline -- --stage report --out ${old} to record them`,
    );
    const music = folder('music');
    mkdirSync(music);
    writeFileSync(path.join(music, 'song.mp3'), 'mp3');
    const notOurs = runCli(PIPELINE, ['--gc', '--cache-dir', music]);
    expect(notOurs.status).toBe(2);
    expect(notOurs.stderr).toContain(`error: --cache-dir ${music}: expected a cache folder of this pipeline`);
    expect(readFileSync(path.join(music, 'song.mp3'), 'utf8')).toBe('mp3');
  });
});
