// --jobs 1 against --jobs 2: wall time of whole pipeline runs from a cold cache.
//
//   `npx tsx bench/jobs.ts [--cases quick,quick-experiments,full,experiments] [--reps 3] [--out reports]`
//   (npm run bench runs it too: the quick cases with --quick, all four otherwise)
//
// Each repetition runs both job counts back to back, alternating which goes first, so load
// from other processes hits them alike; each run has a fresh cache and report folder. A row
// gives the median and min–max of each, the ratio of the medians, and the min–max of the
// ratio within a repetition. Both counts must exit 0 and agree on the test accuracies.

import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';

const ROOT = path.resolve(import.meta.dirname, '..');
const JOB_COUNTS = [1, 2] as const;

interface JobsCase {
  name: string;
  flags: string[];
  target: number | null; // the most --jobs 2 may take, as a fraction of --jobs 1 (issues 16 and 24)
}

export const JOBS_CASES: JobsCase[] = [
  { name: 'quick', flags: ['--train-size', '10000', '--epochs', '3'], target: 1.0 },
  { name: 'quick-experiments', flags: ['--train-size', '10000', '--epochs', '3', '--experiments'], target: 1.0 },
  { name: 'full', flags: [], target: 0.75 },
  { name: 'experiments', flags: ['--experiments'], target: 0.6 },
];

export interface Summary {
  median: number;
  min: number;
  max: number;
  runs: number[];
}

export interface JobsRow {
  case: string;
  command: string; // without --jobs, --cache-dir and --out
  seconds: Record<`jobs${(typeof JOB_COUNTS)[number]}`, Summary>;
  ratio: number; // median of --jobs 2 / median of --jobs 1
  ratioRange: [number, number]; // min and max of the per-repetition ratios
  target: number | null;
  loadAverage: number[]; // at the start of the case
}

export function summarise(runs: number[]): Summary {
  const sorted = [...runs].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  const median = sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
  return { median, min: sorted[0]!, max: sorted.at(-1)!, runs };
}

/** One pipeline run from a cold cache; returns its wall time and the test accuracies it reports. */
export function timedRun(flags: string[], jobs: number): { seconds: number; accuracies: string } {
  const scratch = mkdtempSync(path.join(os.tmpdir(), 'mnist-bench-jobs-'));
  const reports = path.join(scratch, 'reports');
  try {
    const args = [
      '--import',
      'tsx',
      'pipeline/cli/pipeline.ts',
      ...flags,
      '--jobs',
      String(jobs),
      '--cache-dir',
      path.join(scratch, 'cache'),
      '--out',
      reports,
    ];
    const start = performance.now();
    const child = spawnSync(process.execPath, args, {
      cwd: ROOT,
      encoding: 'utf8',
      env: { ...process.env, CI: 'true' },
      maxBuffer: 64 * 1024 * 1024,
    });
    const seconds = (performance.now() - start) / 1000;
    if (child.status !== 0)
      throw new Error(
        `--jobs ${jobs} ${flags.join(' ')}: exit ${child.status}\n${`${child.stdout}${child.stderr}`.trimEnd().split('\n').slice(-15).join('\n')}`,
      );
    const metrics = JSON.parse(readFileSync(path.join(reports, 'metrics.json'), 'utf8'));
    const variants = Object.entries(metrics.experiments?.variants ?? {}).map(
      ([name, v]) => `${name} ${(v as { test_accuracy: number }).test_accuracy}`,
    );
    return { seconds, accuracies: [metrics.tfjs.test_accuracy, metrics.reference?.test_accuracy, ...variants].join(', ') };
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

export function measureJobs(cases: readonly JobsCase[], reps: number, log: (line: string) => void): JobsRow[] {
  return cases.map((benchCase) => {
    const loadAverage = os.loadavg();
    const times: Record<number, number[]> = { 1: [], 2: [] };
    const ratios: number[] = [];
    for (let rep = 0; rep < reps; rep++) {
      const order = rep % 2 === 0 ? [...JOB_COUNTS] : [...JOB_COUNTS].reverse();
      const seen: Record<number, { seconds: number; accuracies: string }> = {};
      for (const jobs of order) {
        log(`  ${benchCase.name}, repetition ${rep + 1}/${reps}: --jobs ${jobs}`);
        seen[jobs] = timedRun(benchCase.flags, jobs);
        times[jobs]!.push(seen[jobs]!.seconds);
      }
      if (seen[1]!.accuracies !== seen[2]!.accuracies)
        throw new Error(`${benchCase.name}: --jobs 1 and --jobs 2 disagree: ${seen[1]!.accuracies} vs ${seen[2]!.accuracies}`);
      ratios.push(seen[2]!.seconds / seen[1]!.seconds);
    }
    const jobs1 = summarise(times[1]!);
    const jobs2 = summarise(times[2]!);
    return {
      case: benchCase.name,
      command: `npm run pipeline -- ${benchCase.flags.join(' ')}`.trimEnd(),
      seconds: { jobs1, jobs2 },
      ratio: jobs2.median / jobs1.median,
      ratioRange: [Math.min(...ratios), Math.max(...ratios)],
      target: benchCase.target,
      loadAverage,
    };
  });
}

const span = (s: Summary) => `${s.median.toFixed(1)} s (${s.min.toFixed(1)}–${s.max.toFixed(1)})`;

export function jobsMarkdown(rows: readonly JobsRow[], reps: number): string {
  const lines = [
    `### --jobs 1 vs --jobs 2, whole pipeline from a cold cache (${reps} interleaved repetitions, ${os.availableParallelism()} cores)`,
    '',
    '| case | command | --jobs 1 median (min–max) | --jobs 2 median (min–max) | ratio (min–max) | target | load avg at start |',
    '|---|---|---|---|---|---|---|',
    ...rows.map((row) => {
      const target = row.target === null ? '—' : `≤ ${row.target} ${row.ratio <= row.target ? 'met' : '**not met**'}`;
      const ratio = `${row.ratio.toFixed(2)} (${row.ratioRange[0].toFixed(2)}–${row.ratioRange[1].toFixed(2)})`;
      return `| ${row.case} | \`${row.command}\` | ${span(row.seconds.jobs1)} | ${span(row.seconds.jobs2)} | ${ratio} | ${target} | ${row.loadAverage.map((l) => l.toFixed(1)).join(' ')} |`;
    }),
    '',
  ];
  return `${lines.join('\n')}\n`;
}

/** For npm run bench: the quick cases with --quick, all of them otherwise. */
export function jobsSection(options: { quick: boolean; out: string; log: (line: string) => void }): string {
  const cases = options.quick ? JOBS_CASES.filter((c) => c.name.startsWith('quick')) : JOBS_CASES;
  const reps = options.quick ? 2 : 3;
  options.log(`--jobs 1 vs 2: ${cases.map((c) => c.name).join(', ')}, ${reps} repetitions each`);
  const rows = measureJobs(cases, reps, options.log);
  mkdirSync(options.out, { recursive: true });
  writeFileSync(path.join(options.out, 'bench-jobs.json'), `${JSON.stringify({ date: new Date().toISOString(), reps, rows }, null, 2)}\n`);
  return jobsMarkdown(rows, reps);
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(import.meta.filename)) {
  const names = JOBS_CASES.map((c) => c.name);
  const parsed = yargs(hideBin(process.argv))
    .scriptName('npx tsx bench/jobs.ts')
    .option('cases', { type: 'string', default: names.join(','), describe: `Comma-separated: ${names.join(', ')}` })
    .option('reps', { type: 'number', default: 3, describe: 'Interleaved repetitions of each case' })
    .option('out', { type: 'string', default: 'reports', describe: 'Folder for bench-jobs.json and bench-jobs.md' })
    .check((args) => {
      const unknown = String(args.cases)
        .split(',')
        .filter((name) => !names.includes(name));
      if (unknown.length > 0) throw new Error(`--cases: unknown ${unknown.join(', ')}; expected e.g. --cases quick,experiments`);
      if (!Number.isInteger(args.reps) || args.reps < 1)
        throw new Error(`--reps: expected a whole number of at least 1, found ${args.reps}`);
      return true;
    })
    .strict()
    .help()
    .parseSync();
  const cases = JOBS_CASES.filter((c) => String(parsed.cases).split(',').includes(c.name));
  const rows = measureJobs(cases, parsed.reps, (line) => process.stderr.write(`${line}\n`));
  const text = jobsMarkdown(rows, parsed.reps);
  mkdirSync(parsed.out, { recursive: true });
  writeFileSync(
    path.join(parsed.out, 'bench-jobs.json'),
    `${JSON.stringify({ date: new Date().toISOString(), reps: parsed.reps, rows }, null, 2)}\n`,
  );
  writeFileSync(path.join(parsed.out, 'bench-jobs.md'), text);
  process.stdout.write(text);
}
