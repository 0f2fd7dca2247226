// --runs on a cache of many trainings (issue 23: under 1 s for 30). Builds the cache once from
// tiny real runs, one report folder each (seeds 1…N), then times the whole command as a user
// runs it (node, tsx, reading the cache) and cachedRuns alone, in process.
//
//   `npx tsx bench/runs.ts [--trainings 30] [--reps 7] [--out bench/results]`

import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { createCache } from '../pipeline/dag/cache.js';
import { cachedRuns } from '../pipeline/runs.js';
import { summarise } from './jobs.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const parsed = yargs(hideBin(process.argv))
  .scriptName('npx tsx bench/runs.ts')
  .option('trainings', { type: 'number', default: 30, describe: 'Trainings (report folders) in the cache' })
  .option('reps', { type: 'number', default: 7, describe: 'Timed repetitions of --runs' })
  .option('out', { type: 'string', default: 'bench/results', describe: 'Folder for bench-runs.json and .md' })
  .strict()
  .help()
  .parseSync();

function pipeline(args: string[]): number {
  const start = performance.now();
  const child = spawnSync(process.execPath, ['--import', 'tsx', 'pipeline/cli/pipeline.ts', ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { ...process.env, CI: 'true' },
    maxBuffer: 64 * 1024 * 1024,
  });
  if (child.status !== 0) throw new Error(`pipeline ${args.join(' ')} exited ${child.status}:\n${child.stderr}`);
  return (performance.now() - start) / 1000;
}

const scratch = mkdtempSync(path.join(os.tmpdir(), 'mnist-bench-runs-'));
const cacheDir = path.join(scratch, 'cache');
try {
  const tiny = ['--train-size', '500', '--val-size', '100', '--test-size', '100', '--epochs', '1', '--no-reference', '--jobs', '1'];
  for (let seed = 1; seed <= parsed.trainings; seed++) {
    process.stderr.write(`  training ${seed}/${parsed.trainings}\n`);
    pipeline([...tiny, '--seed', String(seed), '--out', path.join(scratch, `reports-${seed}`), '--cache-dir', cacheDir]);
  }
  const listed = cachedRuns(createCache(cacheDir));
  if (listed.length !== parsed.trainings) throw new Error(`expected ${parsed.trainings} trainings in the cache, found ${listed.length}`);

  const command: number[] = [];
  const inProcess: number[] = [];
  for (let rep = 0; rep < parsed.reps; rep++) {
    command.push(pipeline(['--runs', '--cache-dir', cacheDir]));
    const start = performance.now();
    cachedRuns(createCache(cacheDir));
    inProcess.push((performance.now() - start) / 1000);
  }
  const [whole, alone] = [summarise(command), summarise(inProcess)];
  const span = (s: typeof whole) => `${s.median.toFixed(3)} s (${s.min.toFixed(3)}–${s.max.toFixed(3)})`;
  const text = [
    `### --runs on a cache of ${parsed.trainings} trainings (${parsed.reps} repetitions, ${os.availableParallelism()} cores, ${os.cpus()[0]?.model.trim()})`,
    '',
    '| what | median (min–max) | target |',
    '|---|---|---|',
    `| \`npm run pipeline -- --runs\` (node + tsx start, the whole command) | ${span(whole)} | < 1 s |`,
    `| \`cachedRuns\` alone, in process | ${span(alone)} | |`,
    '',
  ].join('\n');
  mkdirSync(parsed.out, { recursive: true });
  writeFileSync(path.join(parsed.out, 'bench-runs.md'), text);
  writeFileSync(
    path.join(parsed.out, 'bench-runs.json'),
    `${JSON.stringify({ trainings: parsed.trainings, command, inProcess }, null, 2)}\n`,
  );
  process.stdout.write(text);
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
