// Runs StageJobs in child processes, one process per stage: TF.js's backend is process-wide
// state, so two trainings in one process would share it. The parent sends the config and the
// job; the child reads its inputs from the cache, writes its entry, and reports back:
//
//   parent ──{config, job}──► child           child ──log / epoch / batch / end──► parent's progress
//   parent ◄──done | failed── child           SIGINT / SIGTERM to the parent ──► SIGINT to every child
//   parent ──{threads}──────► child           (a stage that asked for a range: the budget changed its share)
//
// A child never writes reports and never takes the --out lock; a child whose parent dies exits.

import { fork, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import type { EpochProgress, ProgressFactory } from '../progress.js';
import type { Grant, StageJob } from './runner.js';
import { InterruptedError } from './interrupted.js';

/** Child to parent. */
export type ChildMessage =
  | { kind: 'log'; line: string }
  | { kind: 'epoch'; id: number; label: string; batches: number }
  | { kind: 'batch'; id: number; done: number; loss: number; accuracy: number }
  | { kind: 'end'; id: number; summary: string }
  | { kind: 'done' }
  | { kind: 'failed'; error: SerializedError };

/** An error as it crosses the process boundary: its class name, message and stack, and its own fields (an errno's code, path, syscall). */
export interface SerializedError {
  name: string;
  message: string;
  stack?: string;
  fields: Record<string, unknown>;
}

/** A class an error may be rebuilt as; matched by its name, which is the `name` its instances carry. */
export type ErrorClass = abstract new (...args: never[]) => Error;

export function serializeError(error: unknown): SerializedError {
  const err = error instanceof Error ? error : new Error(String(error));
  const fields: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(err)) {
    if (key !== 'name' && (value === null || ['string', 'number', 'boolean'].includes(typeof value))) fields[key] = value;
  }
  return { name: err.name, message: err.message, stack: err.stack, fields };
}

/** The same error on this side: an instance of the class of that name among `classes` (else Error), with its message, stack and fields. */
export function deserializeError(serialized: SerializedError, classes: readonly ErrorClass[] = []): Error {
  const known = classes.find((errorClass) => errorClass.name === serialized.name);
  const error: Error = known ? Object.create(known.prototype) : new Error(serialized.message);
  Object.assign(error, serialized.fields, { name: serialized.name, message: serialized.message });
  if (serialized.stack) error.stack = serialized.stack;
  return error;
}

/** A stage's process ended without saying how (killed by a signal, or out of memory): not a bug of ours, so no stack. */
export class StageProcessError extends Error {
  override name = 'StageProcessError';
}

/** Parent to child: first the job, then any changes to its threads. */
export interface JobMessage<C> {
  config: C;
  job: StageJob;
}
export interface ThreadsMessage {
  threads: number;
}

/**
 * Node flags that let a child run TypeScript, as `npm run pipeline` does. tsx is resolved from this
 * package, not from the folder the user runs in (`npx mnist-pipeline` from anywhere).
 */
const TYPESCRIPT_EXEC_ARGV = ['--import', pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href];

// Every live child of this process; one exit hook for all of them, however many runs started them.
const live = new Set<ChildProcess>();
let exitHook = false;
function track(child: ChildProcess): void {
  live.add(child);
  child.once('exit', () => live.delete(child));
  if (exitHook) return;
  exitHook = true;
  // A parent that exits early (a second Ctrl-C, a crash) takes its children with it.
  process.once('exit', () => {
    for (const orphan of live) orphan.kill('SIGKILL');
  });
}

/** An `isolate` for the executor (executor.ts): each job runs in a fresh `node entry` (with tsx for a .ts entry). */
export function childProcessJobs<C>(options: {
  entry: string;
  config: C;
  progress: ProgressFactory;
  signal?: AbortSignal;
  errorClasses?: readonly ErrorClass[]; // a child's error is rebuilt as the class of its name
}): (job: StageJob, grant: Grant) => Promise<void> {
  const running = new Set<ChildProcess>();
  const interrupt = () => {
    for (const child of running) child.kill('SIGINT');
  };
  options.signal?.addEventListener('abort', interrupt, { once: true });

  return (job, grant) =>
    new Promise<void>((resolve, reject) => {
      const child = fork(options.entry, [], {
        execArgv: options.entry.endsWith('.ts') ? TYPESCRIPT_EXEC_ARGV : [],
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
        serialization: 'advanced',
      });
      running.add(child);
      track(child);
      const bars = new Map<number, EpochProgress>();
      let outcome: { done: true } | { done: false; error: Error } | null = null;
      child.on('message', (message: ChildMessage) => {
        switch (message.kind) {
          case 'log':
            return options.progress.log(message.line);
          case 'epoch':
            return void bars.set(message.id, options.progress.epoch(message.label, message.batches));
          case 'batch':
            return bars.get(message.id)?.batch(message.done, message.loss, message.accuracy);
          case 'end':
            bars.get(message.id)?.end(message.summary);
            return void bars.delete(message.id);
          case 'done':
            outcome = { done: true };
            return;
          case 'failed':
            outcome = { done: false, error: deserializeError(message.error, options.errorClasses) };
            return;
        }
      });
      child.once('error', (error) => {
        outcome ??= { done: false, error: new Error(`stage ${job.stage}: could not start its process (${error.message})`) };
      });
      child.once('exit', (code, signal) => {
        running.delete(child);
        for (const bar of bars.values()) bar.end(`${job.stage}: stopped`);
        if (outcome?.done && code === 0) return resolve();
        if (outcome && !outcome.done) return reject(outcome.error);
        const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
        const message = `stage ${job.stage}: its process ${how} before it finished`;
        const hint = signal === 'SIGKILL' ? ' (the system may have run short of memory)' : '';
        reject(
          options.signal?.aborted
            ? new InterruptedError(message)
            : new StageProcessError(`${message}${hint}; nothing of it was cached, rerun to try again`),
        );
      });
      child.send({ config: options.config, job } satisfies JobMessage<C>);
      grant.onChange((threads) => {
        if (child.connected) child.send({ threads } satisfies ThreadsMessage);
      });
    });
}
