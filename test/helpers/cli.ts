// Runs the real CLI in a child process, as a user would.

import { spawn, spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

export const ROOT = path.resolve(import.meta.dirname, '..', '..');
// One process, as `npm run pipeline` starts it: a signal reaches the pipeline itself, not a wrapper.
// tsx by its full path, so that a test may start the CLI from a folder outside the project.
const NODE_ARGS = ['--import', pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href];

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `script` of the project with `args`, in `cwd` (the project by default), as a user would. The
 * INIT_CWD that `npm test` leaves is not passed on: a test that means it says so in `env`.
 */
export function runCli(script: string, args: string[], env: NodeJS.ProcessEnv = {}, cwd = ROOT): CliResult {
  const result = spawnSync(process.execPath, [...NODE_ARGS, path.join(ROOT, script), ...args], {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, INIT_CWD: undefined, CI: 'true', ...env },
    timeout: 300_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** Starts the CLI and returns the child, for tests that signal it mid-run. */
export function startCli(script: string, args: string[]) {
  return spawn(process.execPath, [...NODE_ARGS, path.join(ROOT, script), ...args], {
    cwd: ROOT,
    env: { ...process.env, INIT_CWD: undefined, CI: 'true' },
  });
}

/** A run's size: images per split and epochs. */
export interface RunSize {
  train: number;
  val: number;
  test: number;
  epochs: number;
}

/** The flags of a run of `size` on wasm that writes into `work`/reports and `work`/cache; `extra` after them. */
export function runFlags(work: string, size: RunSize, extra: string[] = []): string[] {
  const sizes = ['--train-size', `${size.train}`, '--val-size', `${size.val}`, '--test-size', `${size.test}`, '--epochs', `${size.epochs}`];
  const folders = ['--out', path.join(work, 'reports'), '--cache-dir', path.join(work, 'cache')];
  return [...sizes, '--backend', 'wasm', ...folders, ...extra];
}

/** A small run: 4,000 training images, two epochs at lr 0.05 (the spec's 0.01 barely moves in 125 steps), wasm. */
export function smallRunArgs(work: string, extra: string[] = []): string[] {
  return runFlags(work, { train: 4000, val: 500, test: 1000, epochs: 2 }, ['--lr', '0.05', ...extra]);
}
