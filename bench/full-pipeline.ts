// The bench's whole-pipeline row: `npm run pipeline` in a child process from a cold cache, its wall time,
// its peak memory (the largest process, and all its processes together), and the training rates its
// metrics.json recorded.
//
//   bench.ts ──spawnSync──► node bench/full-pipeline.ts RESULT_FILE [/usr/bin/time -v] npm run pipeline …
//                           └─ spawn, and sample the command's process tree every 0.1 s (pipeline/memory.ts)
//
// The sampler needs a process of its own: spawnSync, which keeps measureFullPipeline synchronous for
// bench.ts, blocks every timer of the process that calls it.

import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { startMemorySampler, type TreeMemory } from '../pipeline/memory.js';
import type { MetricsFile } from '../pipeline/types.js';

export interface FullPipeline {
  command: string;
  exitCode: number | null;
  wallSeconds: number;
  peakRssMiB: number | null; // the largest single process
  measuredWith: string; // how peakRssMiB was measured
  peakAllProcessesMiB: number | null; // all the run's processes together (npm, the pipeline, its stage processes), sampled every 0.1 s; null without /proc
  processesAtPeak: number | null; // how many processes were alive at that peak
  outputTail?: string; // the last lines of output when the run failed
  trained?: TrainedRates; // from the run's metrics.json
}

/** Training throughput the pipeline itself recorded, over all its epochs (validation excluded). */
interface TrainedRates {
  epochs: number;
  tfjs: { backend: string; imagesPerSecond: number };
  reference?: { threads: number; imagesPerSecond: number };
}

/** The training rates in a metrics.json written by the pipeline, or undefined if it cannot be read. */
function trainedRates(metricsFile: string): TrainedRates | undefined {
  if (!existsSync(metricsFile)) return undefined;
  const metrics = JSON.parse(readFileSync(metricsFile, 'utf8')) as MetricsFile;
  const rates: TrainedRates = {
    epochs: metrics.config.epochs,
    tfjs: { backend: metrics.tfjs.backend, imagesPerSecond: metrics.tfjs.train_samples_per_second },
  };
  if (metrics.reference)
    rates.reference = { threads: metrics.reference.threads ?? 1, imagesPerSecond: metrics.reference.train_samples_per_second };
  return rates;
}

/** What the sampling process writes: the command's wall time, and the peak of its whole tree. */
interface TreeSample {
  wallSeconds: number;
  peak: TreeMemory | null;
}

/**
 * Runs `command` with this process's stdio, sampling its process tree meanwhile; writes a TreeSample
 * to `resultFile` and exits as the command did.
 */
function sampleWhileRunning([resultFile, command, ...args]: string[]): void {
  if (!resultFile || !command) throw new Error('usage: node --import tsx bench/full-pipeline.ts RESULT_FILE COMMAND [ARGS…]');
  const start = performance.now();
  const child = spawn(command, args, { stdio: 'inherit' });
  const sampler = child.pid === undefined ? null : startMemorySampler(child.pid);
  child.on('error', (error) => {
    console.error(`full pipeline: cannot run ${command}: ${error.message}`);
    process.exitCode = 127;
  });
  child.on('exit', (code, signal) => {
    const sample: TreeSample = { wallSeconds: (performance.now() - start) / 1000, peak: sampler?.stop() ?? null };
    writeFileSync(resultFile, JSON.stringify(sample));
    if (signal) process.kill(process.pid, signal);
    else process.exitCode = code ?? 1;
  });
}

/**
 * The default pipeline, with `flags` (say --jobs 1), in a child process with a fresh cache and report folder.
 * Peak RSS of the largest process comes from GNU time when present, else each node process in the
 * tree records its own at exit and the largest is kept (bench/resource-usage.mjs). The peak of all
 * processes together comes from sampling the tree (sampleWhileRunning).
 */
export function measureFullPipeline(
  log: (line: string) => void,
  flags: string[] = [],
  useTime = existsSync('/usr/bin/time'),
): FullPipeline {
  const scratch = mkdtempSync(path.join(os.tmpdir(), 'mnist-bench-'));
  // exactly what `npm run pipeline` runs, with a fresh cache and report folder
  const [cacheDir, out] = [path.join(scratch, 'cache'), path.join(scratch, 'reports')];
  const pipelineArgs = ['run', '--silent', 'pipeline', '--', ...flags, '--cache-dir', cacheDir, '--out', out];
  const command = `npm ${pipelineArgs.join(' ')}`;
  const usageFile = path.join(scratch, 'resource-usage.json');
  const treeFile = path.join(scratch, 'tree-memory.json');
  const probe = `--import ${pathToFileURL(path.resolve('bench/resource-usage.mjs')).href}`;
  const env = useTime
    ? process.env
    : { ...process.env, NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} ${probe}`, BENCH_RESOURCE_FILE: usageFile };
  log(`  full pipeline: ${command} (takes minutes)`);
  try {
    const start = performance.now();
    const timed = useTime ? ['/usr/bin/time', '-v', 'npm', ...pipelineArgs] : ['npm', ...pipelineArgs];
    const child = spawnSync(process.execPath, ['--import', 'tsx', import.meta.filename, treeFile, ...timed], {
      env,
      encoding: 'utf8',
      maxBuffer: 64 * 1024 * 1024,
    });
    const tree = existsSync(treeFile) ? (JSON.parse(readFileSync(treeFile, 'utf8')) as TreeSample) : null;
    const wallSeconds = tree?.wallSeconds ?? (performance.now() - start) / 1000; // the command's own, without the sampler's start
    let stderr = child.stderr ?? '';
    let peakRssMiB: number | null = null;
    if (useTime) {
      const stats = stderr.lastIndexOf('\tCommand being timed:');
      const match = /Maximum resident set size \(kbytes\): (\d+)/.exec(stderr.slice(Math.max(stats, 0)));
      if (match) peakRssMiB = Number(match[1]) / 1024;
      if (stats >= 0) stderr = stderr.slice(0, stats);
    } else if (existsSync(usageFile)) {
      peakRssMiB = (JSON.parse(readFileSync(usageFile, 'utf8')) as { maxRSS: number }).maxRSS / 1024;
    }
    const result: FullPipeline = {
      command,
      exitCode: child.status,
      wallSeconds,
      peakRssMiB,
      measuredWith: useTime
        ? '/usr/bin/time -v (peak RSS of the largest process in the tree)'
        : 'process.resourceUsage() of each node process in the tree, largest kept',
      peakAllProcessesMiB: tree?.peak ? tree.peak.bytes / 1024 ** 2 : null,
      processesAtPeak: tree?.peak?.processes ?? null,
    };
    const mib = (value: number | null) => (value === null ? 'unknown' : `${value.toFixed(0)} MiB`);
    log(
      `  full pipeline: peak memory ${mib(result.peakAllProcessesMiB)}, all ${result.processesAtPeak ?? '?'} processes together ` +
        `(sampled every 0.1 s); largest single process ${mib(peakRssMiB)}`,
    );
    if (child.status !== 0) result.outputTail = `${child.stdout ?? ''}${stderr}`.trimEnd().split('\n').slice(-15).join('\n');
    else result.trained = trainedRates(path.join(scratch, 'reports', 'metrics.json'));
    return result;
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(import.meta.filename)) {
  sampleWhileRunning(process.argv.slice(2));
}
