// Timing for the bench: wall and process CPU time over spans of work, and a progress
// factory that times only each epoch's training batches.

import type { ProgressFactory } from '../pipeline/progress.js';

/** Wall and process CPU time over a span of work; a trainer's span covers its training steps only. */
export interface Span {
  wallSeconds: number;
  cpuSeconds: number;
}

export function startSpan(): () => Span {
  const wall = performance.now();
  const cpu = process.cpuUsage();
  return () => {
    const used = process.cpuUsage(cpu);
    return { wallSeconds: (performance.now() - wall) / 1000, cpuSeconds: (used.user + used.system) / 1e6 };
  };
}

export function addSpans(a: Span, b: Span): Span {
  return { wallSeconds: a.wallSeconds + b.wallSeconds, cpuSeconds: a.cpuSeconds + b.cpuSeconds };
}

/** A ProgressFactory that times each epoch from its bar's creation to its last batch, so validation is left out. */
export function timingProgress(): { progress: ProgressFactory; total: () => Span } {
  let total: Span = { wallSeconds: 0, cpuSeconds: 0 };
  const progress: ProgressFactory = {
    log: () => {},
    epoch: (_label, batches) => {
      const stop = startSpan();
      return {
        batch: (done) => {
          if (done === batches) total = addSpans(total, stop());
        },
        end: () => {},
      };
    },
  };
  return { progress, total: () => total };
}
