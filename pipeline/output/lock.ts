// One writer at a time on a folder: a lock file, created in one step with its
// content, naming the writer by pid and process start time. A second run waits
// for the first (and then finds its results in the cache); a lock whose writer is
// gone is stale and is taken over, even when its pid now belongs to another process.

import { randomBytes } from 'node:crypto';
import { linkSync, lstatSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { InterruptedError } from '../dag/interrupted.js';

/** Whether process `pid` still runs: the test for a stale lock or a dead writer's leftovers. */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'; // alive, owned by someone else
  }
}

/**
 * When process `pid` started, in clock ticks since boot (field 22 of /proc/<pid>/stat), or null where
 * /proc cannot tell. A pid is reused; a pid with its start time names one process.
 */
export function processStartTime(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null; // fields after "(comm)" start at field 3
  } catch {
    return null;
  }
}

/** Who holds a lock: what the lock file says. */
interface Holder {
  pid: number;
  started: string | null; // processStartTime(pid) when the lock was taken
}

export class LockError extends Error {
  override name = 'LockError';
}

export interface LockOptions {
  what: string; // how messages name the folder, e.g. "reports/"
  log: (line: string) => void;
  signal?: AbortSignal; // stops the waiting
  pollMs?: number;
}

const self = (): Holder => ({ pid: process.pid, started: processStartTime(process.pid) });

/** The holder written in `lockFile`; null when it is absent; LockError when it is not a lock of ours. */
function holder(lockFile: string): Holder | null {
  let text: string;
  try {
    if (!lstatSync(lockFile).isFile()) {
      throw new LockError(`${lockFile}: expected the lock file of a run of this pipeline, found a folder or a link; move it away`);
    }
    text = readFileSync(lockFile, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
  if (/^\d+\n?$/.test(text)) return { pid: Number.parseInt(text, 10), started: null }; // an older version's lock: the pid alone
  try {
    const parsed = JSON.parse(text) as Partial<Holder>;
    if (Number.isInteger(parsed.pid) && (parsed.pid ?? 0) > 0 && (typeof parsed.started === 'string' || parsed.started === null)) {
      return { pid: parsed.pid!, started: parsed.started! };
    }
  } catch {
    // not JSON: said below
  }
  throw new LockError(
    `${lockFile}: expected the lock file of a run of this pipeline, found other content; if it is not yours and no run is writing, delete it`,
  );
}

/** Whether the process that wrote `lock` still runs: same pid and, where /proc tells, the same start time. */
function holderAlive(lock: Holder): boolean {
  if (!processAlive(lock.pid)) return false;
  if (lock.started === null) return true;
  const started = processStartTime(lock.pid);
  return started === null || started === lock.started;
}

const sameHolder = (a: Holder | null, b: Holder) => a !== null && a.pid === b.pid && a.started === b.started;

/** Creates `lockFile` holding `content` in one step (a hard link of a finished file), or returns false when it exists. */
function createWhole(lockFile: string, content: string): boolean {
  const draft = `${lockFile}.new-${process.pid}-${randomBytes(4).toString('hex')}`;
  writeFileSync(draft, content, { flag: 'wx' });
  try {
    linkSync(draft, lockFile);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  } finally {
    rmSync(draft, { force: true });
  }
}

/** Takes `lockFile`, waiting while a live process holds it. Returns the function that releases it. */
export async function acquireLock(lockFile: string, options: LockOptions): Promise<() => void> {
  const me = self();
  let announced: number | null = null;
  for (;;) {
    const current = holder(lockFile);
    if (current === null) {
      if (!createWhole(lockFile, `${JSON.stringify(me)}\n`)) continue; // another run took it first: look again
      const release = () => {
        if (sameHolder(holder(lockFile), me)) rmSync(lockFile, { force: true });
      };
      const onExit = () => {
        try {
          release();
        } catch {
          // exiting anyway: a lock that cannot be read is not ours to remove
        }
      };
      process.once('exit', onExit); // also when a second Ctrl-C exits at once
      return () => {
        process.removeListener('exit', onExit);
        release();
      };
    }
    if (sameHolder(current, me)) {
      throw new LockError(`${lockFile}: this run already holds it for ${options.what}; a run never waits for itself`);
    }
    if (!holderAlive(current)) {
      breakStaleLock(lockFile, current);
      continue;
    }
    const stopped = () =>
      new InterruptedError(`stopped while waiting for pid ${current.pid} to finish writing ${options.what} (lock file ${lockFile})`);
    if (announced !== current.pid) {
      options.log(
        `another run (pid ${current.pid}) is writing ${options.what}; waiting (Ctrl-C to stop). ` +
          `If no such run exists, delete its lock file: rm ${lockFile}`,
      );
      announced = current.pid;
    }
    if (options.signal?.aborted) throw stopped();
    try {
      await sleep(options.pollMs ?? 250, undefined, { signal: options.signal });
    } catch {
      throw stopped();
    }
  }
}

/**
 * Removes a lock left by a process that is gone. The rename makes it one step: of two runs breaking
 * the same stale lock, one renames it away; if what it renamed turns out live, it is put back.
 */
function breakStaleLock(lockFile: string, stale: Holder): void {
  const aside = `${lockFile}.stale-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    renameSync(lockFile, aside);
  } catch {
    return; // someone else broke it first
  }
  let renamed: Holder | null = null;
  try {
    renamed = holder(aside);
  } catch {
    // unreadable now: it was the stale one
  }
  if (renamed !== null && !sameHolder(renamed, stale) && holderAlive(renamed)) {
    // A fresh lock taken in between: give it back. If yet another run holds it now, the fresh holder
    // keeps running unaware, as a process killed mid-run would.
    createWhole(lockFile, `${JSON.stringify(renamed)}\n`);
  }
  rmSync(aside, { force: true });
}
