// One writer at a time on a folder: a lock file created with O_EXCL holding the
// writer's pid. A second run waits for the first (and then finds its results in
// the cache); a lock whose pid is dead is stale and is taken over.

import { readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { InterruptedError } from './interrupted.js';

/** Whether process `pid` still runs: the test for a stale lock or a dead writer's leftovers. */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'; // alive, owned by someone else
  }
}

export interface LockOptions {
  what: string; // how messages name the folder, e.g. "reports/"
  log: (line: string) => void;
  signal?: AbortSignal; // stops the waiting
  pollMs?: number;
}

/** The pid written in `lockFile`, or null when it is absent or unreadable. */
function holder(lockFile: string): number | null {
  try {
    const pid = Number.parseInt(readFileSync(lockFile, 'utf8'), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

/** An empty lock is being written right now, unless it has been empty for a while (its writer was killed). */
function olderThan(file: string, ms: number): boolean {
  try {
    return Date.now() - statSync(file).mtimeMs > ms;
  } catch {
    return true;
  }
}

/** Takes `lockFile`, waiting while a live process holds it. Returns the function that releases it. */
export async function acquireLock(lockFile: string, options: LockOptions): Promise<() => void> {
  let announced: number | null = null;
  for (;;) {
    try {
      writeFileSync(lockFile, `${process.pid}\n`, { flag: 'wx' });
      const release = () => {
        if (holder(lockFile) === process.pid) rmSync(lockFile, { force: true });
      };
      process.once('exit', release); // also when a second Ctrl-C exits at once
      return () => {
        process.removeListener('exit', release);
        release();
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const pid = holder(lockFile);
    if (pid === null ? olderThan(lockFile, 2000) : !processAlive(pid)) {
      breakStaleLock(lockFile, pid);
      continue;
    }
    if (pid !== null && announced !== pid) {
      options.log(`another run (pid ${pid}) is writing ${options.what}; waiting (Ctrl-C to stop)`);
      announced = pid;
    }
    if (options.signal?.aborted)
      throw new InterruptedError(`stopped while waiting for pid ${pid ?? '?'} to finish writing ${options.what}`);
    try {
      await sleep(options.pollMs ?? 250, undefined, { signal: options.signal });
    } catch {
      throw new InterruptedError(`stopped while waiting for pid ${pid ?? '?'} to finish writing ${options.what}`);
    }
  }
}

/**
 * Removes a lock left by a dead process. The rename makes it one step: of two runs breaking the
 * same stale lock, one renames it away; if what it renamed turns out live, it is put back.
 */
function breakStaleLock(lockFile: string, stalePid: number | null): void {
  const aside = `${lockFile}.stale-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    renameSync(lockFile, aside);
  } catch {
    return; // someone else broke it first
  }
  const renamed = holder(aside);
  if (renamed !== null && renamed !== stalePid && processAlive(renamed)) {
    try {
      writeFileSync(lockFile, `${renamed}\n`, { flag: 'wx' }); // a fresh lock taken in between: give it back
    } catch {
      // yet another run holds it now; the fresh holder keeps running unaware, as a process killed mid-run would
    }
  }
  rmSync(aside, { force: true });
}
