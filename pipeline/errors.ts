// The errors raised on purpose: each names the file or flag, what was expected and what was
// found, so the CLI prints its message alone (a stack is for our own bugs). Errors cross from a
// stage's process to the pipeline's by class name (dag/child.ts), and are rebuilt as these classes.

import { CacheCorruptError } from './dag/cache.js';
import { StageProcessError } from './dag/child.js';
import { UnaskedTrainingError } from './dag/plan.js';
import { StagesFailedError } from './dag/runner.js';
import { ConfigError } from './config.js';
import { UsageError } from './cli/conventions.js';
import { StartupError } from './cli/startup.js';
import { LockError } from './output/lock.js';
import { PublishError } from './output/publish.js';
import { DataError } from './stages/load.js';
import { DivergenceError, InterruptedError } from '../reference/epochs.js';

/** A function, not a list: read at call time, after every module in an import cycle has its classes. */
export function expectedErrors(): readonly (abstract new (...args: never[]) => Error)[] {
  return [
    DataError,
    DivergenceError,
    InterruptedError,
    ConfigError,
    UsageError,
    CacheCorruptError,
    PublishError,
    StartupError,
    UnaskedTrainingError,
    StagesFailedError,
    LockError,
    StageProcessError,
  ];
}

/** Whether `error` is one we raise on purpose, whose message says everything. */
export function isExpected(error: unknown): boolean {
  return expectedErrors().some((known) => error instanceof known);
}
