// The bench's whole-pipeline row: `npm run pipeline` in a child process from a cold cache, its wall time,
// its peak RSS, and the training rates its metrics.json recorded.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { MetricsFile } from '../pipeline/types.js';

export interface FullPipeline {
  command: string;
  exitCode: number | null;
  wallSeconds: number;
  peakRssMiB: number | null;
  measuredWith: string;
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

/**
 * The default pipeline in a child process with a fresh cache and report folder.
 * Peak RSS comes from GNU time when present, else each node process in the
 * tree records its own at exit and the largest is kept (bench/resource-usage.mjs).
 */
export function measureFullPipeline(log: (line: string) => void, useTime = existsSync('/usr/bin/time')): FullPipeline {
  const scratch = mkdtempSync(path.join(os.tmpdir(), 'mnist-bench-'));
  // exactly what `npm run pipeline` runs, with a fresh cache and report folder
  const pipelineArgs = [
    'run',
    '--silent',
    'pipeline',
    '--',
    '--cache-dir',
    path.join(scratch, 'cache'),
    '--out',
    path.join(scratch, 'reports'),
  ];
  const command = `npm ${pipelineArgs.join(' ')}`;
  const usageFile = path.join(scratch, 'resource-usage.json');
  const probe = `--import ${pathToFileURL(path.resolve('bench/resource-usage.mjs')).href}`;
  const env = useTime
    ? process.env
    : { ...process.env, NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} ${probe}`, BENCH_RESOURCE_FILE: usageFile };
  log(`  full pipeline: ${command} (takes minutes)`);
  try {
    const start = performance.now();
    const child = useTime
      ? spawnSync('/usr/bin/time', ['-v', 'npm', ...pipelineArgs], { env, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 })
      : spawnSync('npm', pipelineArgs, { env, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
    const wallSeconds = (performance.now() - start) / 1000;
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
    };
    if (child.status !== 0) result.outputTail = `${child.stdout ?? ''}${stderr}`.trimEnd().split('\n').slice(-15).join('\n');
    else result.trained = trainedRates(path.join(scratch, 'reports', 'metrics.json'));
    return result;
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}
