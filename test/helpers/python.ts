// Runs python3 as a user would, for the tests of what numpy users get (weights.npz, the report's snippet, verify_model.py).

import { spawnSync } from 'node:child_process';
import type { CliResult } from './cli.js';
import { ROOT } from './cli.js';

/** `python3 args` in `cwd` (the project by default). */
export function runPython(args: string[], cwd = ROOT): CliResult {
  const result = spawnSync('python3', args, { cwd, encoding: 'utf8', timeout: 120_000 });
  if (result.error) throw new Error(`python3: could not start it (${result.error.message}); .ci/run installs python3-numpy`);
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** Runs the Python `code` with `args` and parses the JSON it prints; fails with its stderr when it exits non-zero. */
export function pythonJson<T>(code: string, args: string[] = [], cwd = ROOT): T {
  const result = runPython(['-c', code, ...args], cwd);
  if (result.status !== 0) throw new Error(`python3 exited ${result.status}:\n${result.stderr}`);
  return JSON.parse(result.stdout) as T;
}
