// The whole run's memory (issue 24): the default pipeline from a cold cache, with the peak of
// the summed RSS of its process tree sampled every 0.1 s from outside (pipeline/memory.ts), at
// each --jobs value, interleaved over repetitions. `--checkout DIR` measures another checkout
// (a git worktree of an older commit, its node_modules linked) with this checkout's sampler.
//
//   `npx tsx bench/memory.ts [--jobs 2,1] [--reps 1] [--checkout .] [--out bench/results]`

import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { startMemorySampler } from '../pipeline/memory.js';

const parsed = yargs(hideBin(process.argv))
  .scriptName('npx tsx bench/memory.ts')
  .option('jobs', { type: 'string', default: '2,1', describe: 'Comma-separated --jobs values' })
  .option('reps', { type: 'number', default: 1, describe: 'Repetitions of each --jobs value, interleaved' })
  .option('checkout', { type: 'string', default: '.', describe: 'The checkout whose pipeline runs' })
  .option('out', { type: 'string', default: 'bench/results', describe: 'Folder for bench-memory.json and .md' })
  .strict()
  .help()
  .parseSync();

interface Measured {
  jobs: number;
  seconds: number;
  peakMiB: number | null;
  processes: number | null;
}

/** One cold-cache run of the default pipeline at `jobs`, its tree sampled while it runs. */
function measure(jobs: number): Promise<Measured> {
  const scratch = mkdtempSync(path.join(os.tmpdir(), 'mnist-bench-memory-'));
  const args = [
    'bin/mnist-pipeline.js',
    '--jobs',
    String(jobs),
    '--out',
    path.join(scratch, 'reports'),
    '--cache-dir',
    path.join(scratch, 'cache'),
  ];
  const start = performance.now();
  const child = spawn(process.execPath, args, { cwd: path.resolve(parsed.checkout), stdio: 'ignore', env: { ...process.env, CI: 'true' } });
  const sampler = startMemorySampler(child.pid!, 100);
  return new Promise((resolve, reject) =>
    child.on('exit', (code) => {
      const peak = sampler.stop();
      rmSync(scratch, { recursive: true, force: true });
      if (code !== 0) return reject(new Error(`--jobs ${jobs}: the pipeline exited ${code}`));
      const seconds = (performance.now() - start) / 1000;
      resolve({ jobs, seconds, peakMiB: peak && peak.bytes / 2 ** 20, processes: peak?.processes ?? null });
    }),
  );
}

const results: Measured[] = [];
const jobsValues = String(parsed.jobs).split(',').map(Number);
for (let rep = 0; rep < parsed.reps; rep++) {
  const order = rep % 2 === 0 ? jobsValues : [...jobsValues].reverse();
  for (const jobs of order) {
    process.stderr.write(`  repetition ${rep + 1}/${parsed.reps}: --jobs ${jobs}\n`);
    results.push(await measure(jobs));
  }
}
const lines = [
  `### Whole-run memory, default pipeline, cold cache (${path.resolve(parsed.checkout)}; ${os.availableParallelism()} cores, ${os.cpus()[0]?.model.trim()})`,
  '',
  '| --jobs | wall | peak memory, all processes together | processes at the peak |',
  '|---:|---:|---:|---:|',
  ...results.map(
    (r) =>
      `| ${r.jobs} | ${r.seconds.toFixed(1)} s | ${r.peakMiB === null ? 'n/a' : `${r.peakMiB.toFixed(0)} MiB`} | ${r.processes ?? 'n/a'} |`,
  ),
  '',
];
mkdirSync(parsed.out, { recursive: true });
writeFileSync(path.join(parsed.out, 'bench-memory.md'), lines.join('\n'));
writeFileSync(path.join(parsed.out, 'bench-memory.json'), `${JSON.stringify(results, null, 2)}\n`);
process.stdout.write(lines.join('\n'));
