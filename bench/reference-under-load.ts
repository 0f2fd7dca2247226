// The reference on 1 and 2 threads, on a quiet machine and beside another busy process
// (a child spinning on one core): does sharing the step still pay when a core is taken?
// Each row trains 3 epochs over all 50,000 images; rows are interleaved, median of --reps.
// npx tsx bench/reference-under-load.ts [--reps 3]

import { spawn, type ChildProcess } from 'node:child_process';
import { defaultDataDir, loadMnist } from '../pipeline/stages/load.js';
import { preprocessDataset } from '../pipeline/stages/preprocess.js';
import { initialWeights } from '../pipeline/stages/init.js';
import { trainReferenceAsync } from '../reference/sgd.js';

const at = process.argv.indexOf('--reps');
const reps = at >= 0 ? Number(process.argv[at + 1]) : 3;
if (!Number.isInteger(reps) || reps < 1) throw new Error(`--reps: expected a positive whole number, found ${process.argv[at + 1]}`);

const dataset = preprocessDataset(loadMnist(defaultDataDir()), 50_000, 10_000, 10_000);
const init = initialWeights(42).params;

/** A child process that keeps one core busy until killed. */
function busyProcess(): ChildProcess {
  return spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' });
}

const rows = [
  { threads: 1, busy: false },
  { threads: 2, busy: false },
  { threads: 1, busy: true },
  { threads: 2, busy: true },
];
const rates = rows.map(() => [] as number[]);
for (let rep = 0; rep < reps; rep++) {
  for (const [i, row] of rows.entries()) {
    const busy = row.busy ? busyProcess() : null;
    try {
      const trained = await trainReferenceAsync(dataset, init, { epochs: 3, batchSize: 64, lr: 0.01, seed: 42, threads: row.threads });
      rates[i]!.push(trained.samplesPerSecond);
      console.error(
        `${row.threads} thread(s), ${row.busy ? 'beside a busy process' : 'quiet'}: ${Math.round(trained.samplesPerSecond)} images/s`,
      );
    } finally {
      busy?.kill();
    }
  }
}
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const number = (value: number) => Math.round(value).toLocaleString('en-US');
console.log(`| threads | machine | median images/s | min–max |\n|---:|---|---:|---:|`);
rows.forEach((row, i) => {
  const r = rates[i]!;
  console.log(
    `| ${row.threads} | ${row.busy ? 'beside a busy process' : 'quiet'} | **${number(median(r))}** | ${number(Math.min(...r))}–${number(Math.max(...r))} |`,
  );
});
