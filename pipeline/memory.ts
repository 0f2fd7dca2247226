// A run's memory: the resident set of a process and of all its descendants, added up. With --jobs 2
// the threaded stages run in forked processes (pipeline/dag/child.ts), so the largest single process
// understates what the machine must hold; the sum over the tree, sampled every 0.1 s, does not.
// Worker threads share their process's memory, so they count once, in it.
//
//   /proc                     one folder per process (threads are not listed)
//   /proc/<pid>/stat          "pid (comm) state ppid …": each process's parent, to find the tree
//   /proc/<pid>/status        "VmRSS:  <n> kB": a member's resident set
//
// Linux only: where /proc is missing every figure is null.

import { readFileSync, readdirSync } from 'node:fs';

const PROC = '/proc';

/** Resident memory of a process tree at one moment, or at its peak. */
export interface TreeMemory {
  bytes: number; // VmRSS summed over the tree
  processes: number; // how many processes were alive in it
}

export interface MemorySampler {
  peak(): TreeMemory | null; // the largest sum so far; null where /proc is missing
  stop(): TreeMemory | null; // takes a last sample, stops the timer, and returns the peak
}

/** The pid, state and parent pid of a /proc/<pid>/stat line. comm may hold spaces and ')', so the fields are read after the last ')'. */
export function parseProcStat(line: string): { pid: number; state: string; ppid: number } {
  const open = line.indexOf(' (');
  const close = line.lastIndexOf(') ');
  const [state, ppid] = close < 0 ? [] : line.slice(close + 2).split(' ');
  const pid = Number(line.slice(0, open));
  if (open < 1 || close < open || !state || !Number.isInteger(pid) || !Number.isInteger(Number(ppid))) {
    throw new Error(`/proc stat line: expected "pid (comm) state ppid …", found ${JSON.stringify(line.slice(0, 100))}`);
  }
  return { pid, state, ppid: Number(ppid) };
}

/** A /proc file's text, or null when it cannot be read: its process exited since /proc was listed. */
function readProcFile(file: string): string | null {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return null;
  }
}

/** VmRSS summed over rootPid and every descendant alive now; processes that vanish mid-walk are skipped. Null without /proc. */
export function processTreeRss(rootPid: number): TreeMemory | null {
  let entries: string[];
  try {
    entries = readdirSync(PROC);
  } catch {
    return null;
  }
  const children = new Map<number, number[]>();
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    const line = readProcFile(`${PROC}/${entry}/stat`);
    if (line === null) continue;
    const { pid, state, ppid } = parseProcStat(line);
    if (state === 'Z') continue; // exited, not yet reaped: it holds no memory
    const siblings = children.get(ppid);
    if (siblings) siblings.push(pid);
    else children.set(ppid, [pid]);
  }
  let bytes = 0;
  let processes = 0;
  const seen = new Set<number>(); // a pid reused while we read could otherwise close a loop
  const queue = [rootPid];
  for (let next = queue.pop(); next !== undefined; next = queue.pop()) {
    if (seen.has(next)) continue;
    seen.add(next);
    const rss = /^VmRSS:\s+(\d+) kB$/m.exec(readProcFile(`${PROC}/${next}/status`) ?? '');
    if (!rss) continue; // gone, or a zombie: no memory of its own
    bytes += Number(rss[1]) * 1024;
    processes += 1;
    queue.push(...(children.get(next) ?? []));
  }
  return { bytes, processes };
}

/**
 * Samples processTreeRss(rootPid) every intervalMs and keeps the peak sum. The first sample is taken at
 * once, so a sampler started over a running tree has its figure before the first tick. The timer is
 * unref()ed: it never keeps the process alive.
 */
export function startMemorySampler(rootPid = process.pid, intervalMs = 100): MemorySampler {
  let peak: TreeMemory | null = null;
  const sample = (): TreeMemory | null => {
    const now = processTreeRss(rootPid);
    if (now && (peak === null || now.bytes > peak.bytes)) peak = now;
    return now;
  };
  let timer = sample() === null ? undefined : setInterval(sample, intervalMs); // no /proc: nothing to sample
  timer?.unref();
  return {
    peak: () => peak,
    stop: () => {
      if (timer) {
        clearInterval(timer);
        timer = undefined;
        sample();
      }
      return peak;
    },
  };
}

let runSampler: MemorySampler | null = null;

/** Starts sampling this process's tree for the run's figures (the CLI, for a real run), replacing any earlier sampler. */
export function startRunMemorySampler(): MemorySampler {
  runSampler?.stop();
  runSampler = startMemorySampler();
  return runSampler;
}

/** The run sampler's peak so far: null when none was started (a test, the library) or /proc is missing. */
export function runMemoryPeak(): TreeMemory | null {
  return runSampler?.peak() ?? null;
}
