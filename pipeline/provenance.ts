// Where a result came from: the commit, versions and machine of the run that made it.
// A model keeps the provenance of the run that trained it (trainedBy), which a later
// rerun (--stage visualize) may publish at another commit; metrics.json shows both.

import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import os from 'node:os';
import { PROJECT_ROOT } from './config.js';
import { runMemoryPeak } from './memory.js';
import type { Provenance, RunMetadata } from './types.js';

/**
 * The run's start, set once by the CLI and inherited by the stage processes of --jobs, so that
 * every model a run trains names the same start. Without it (a test, the library), this process's start.
 */
export const RUN_STARTED_ENV = 'MNIST_PIPELINE_RUN_STARTED_AT';

export function runStartedAt(): string {
  return process.env[RUN_STARTED_ENV] ?? new Date(Date.now() - process.uptime() * 1000).toISOString();
}

/** The npm package behind each TF.js backend name, for its version. */
const BACKEND_PACKAGES: Record<string, string> = {
  wasm: '@tensorflow/tfjs-backend-wasm',
  cpu: '@tensorflow/tfjs-backend-cpu',
  webgl: '@tensorflow/tfjs-backend-webgl',
  tensorflow: '@tensorflow/tfjs-node',
};

function packageVersion(name: string | undefined): string {
  if (!name) return 'unknown';
  try {
    return (createRequire(import.meta.url)(`${name}/package.json`) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/** Output of `git args` in `directory`, or null without git or outside a repository. */
function git(directory: string, args: string[]): string | null {
  try {
    return execFileSync('git', args, { cwd: directory, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 10_000 }).trim();
  } catch {
    return null;
  }
}

/** The run's start, commit and versions, stamped on each model a training stage makes. */
export function trainedBy(backend: string, repository = PROJECT_ROOT): Provenance {
  const commit = git(repository, ['rev-parse', 'HEAD']);
  const status = commit === null ? null : git(repository, ['status', '--porcelain', '--untracked-files=no']);
  return {
    startedAt: runStartedAt(),
    gitCommit: commit ?? 'unknown',
    gitDirty: status === null ? 'unknown' : status.length > 0,
    nodeVersion: process.versions.node,
    tfjsVersion: packageVersion('@tensorflow/tfjs'),
    backend,
    backendVersion: packageVersion(BACKEND_PACKAGES[backend]),
  };
}

/**
 * Date, commit, versions, machine and memory of this run; "unknown" where git or a package cannot say.
 * The memory is the CLI's sampler's peak so far (pipeline/memory.ts), null when no sampler runs.
 */
export function runMetadata(backend: string, repository = PROJECT_ROOT): RunMetadata {
  const cpus = os.cpus();
  const memory = runMemoryPeak();
  return {
    ...trainedBy(backend, repository),
    os: `${os.platform()} ${os.release()} (${os.arch()})`,
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    cpuCores: cpus.length,
    wallSeconds: process.uptime(),
    peakMemoryMiB: memory ? Math.round((memory.bytes / 1024 ** 2) * 10) / 10 : null,
    peakMemoryProcesses: memory?.processes ?? null,
  };
}
