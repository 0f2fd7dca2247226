// Thread lending against fixed thread counts (issue 21): is the machinery that lends idle
// threads to the reference while stages run worth its weight? Whole pipelines from a cold
// cache at --jobs 2, the variants interleaved (each repetition rotates which runs first):
//
//   lending    the reference asks for 1–2 threads and grows into what the others leave idle
//   fixed 1    --reference-threads 1: one thread for the whole run
//   fixed 2    --reference-threads 2: two threads, waiting until both are free
//
//   `npx tsx bench/lending.ts [--cases full,experiments] [--reps 3] [--out bench/results]`

import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { summarise, timedRun, type Summary } from './jobs.js';

const VARIANTS = [
  { name: 'lending', flags: [] },
  { name: 'fixed 1', flags: ['--reference-threads', '1'] },
  { name: 'fixed 2', flags: ['--reference-threads', '2'] },
] as const;
const CASES = { full: [], experiments: ['--experiments'] } as Record<string, string[]>;

const parsed = yargs(hideBin(process.argv))
  .scriptName('npx tsx bench/lending.ts')
  .option('cases', { type: 'string', default: 'full,experiments', describe: 'Comma-separated: full, experiments' })
  .option('reps', { type: 'number', default: 3, describe: 'Interleaved repetitions of each case' })
  .option('out', { type: 'string', default: 'bench/results', describe: 'Folder for bench-lending.json and .md' })
  .strict()
  .help()
  .parseSync();

const span = (s: Summary) => `${s.median.toFixed(1)} s (${s.min.toFixed(1)}–${s.max.toFixed(1)})`;
const lines = [
  `### Thread lending against fixed thread counts, --jobs 2, cold cache (${parsed.reps} interleaved repetitions, ${os.availableParallelism()} cores, ${os.cpus()[0]?.model.trim()})`,
  '',
  '| case | variant | wall median (min–max) | vs lending | load avg at start |',
  '|---|---|---|---|---|',
];
const rows: unknown[] = [];
for (const name of String(parsed.cases).split(',')) {
  const loadAverage = os.loadavg();
  const times = new Map<string, number[]>(VARIANTS.map((v) => [v.name, []]));
  for (let rep = 0; rep < parsed.reps; rep++) {
    const order = VARIANTS.map((_, i) => VARIANTS[(i + rep) % VARIANTS.length]!);
    const accuracies = new Set<string>();
    for (const variant of order) {
      process.stderr.write(`  ${name}, repetition ${rep + 1}/${parsed.reps}: ${variant.name}\n`);
      const run = timedRun([...CASES[name]!, ...variant.flags], 2);
      times.get(variant.name)!.push(run.seconds);
      accuracies.add(run.accuracies);
    }
    if (accuracies.size !== 1) throw new Error(`${name}: the variants disagree on the accuracies: ${[...accuracies].join(' | ')}`);
  }
  const lending = summarise(times.get('lending')!).median;
  for (const variant of VARIANTS) {
    const summary = summarise(times.get(variant.name)!);
    rows.push({ case: name, variant: variant.name, summary, loadAverage });
    lines.push(
      `| ${name} | ${variant.name} | ${span(summary)} | ${(summary.median / lending).toFixed(2)}× | ${loadAverage.map((l) => l.toFixed(1)).join(' ')} |`,
    );
  }
}
mkdirSync(parsed.out, { recursive: true });
writeFileSync(
  path.join(parsed.out, 'bench-lending.json'),
  `${JSON.stringify({ date: new Date().toISOString(), reps: parsed.reps, rows }, null, 2)}\n`,
);
writeFileSync(path.join(parsed.out, 'bench-lending.md'), `${lines.join('\n')}\n`);
process.stdout.write(`${lines.join('\n')}\n`);
