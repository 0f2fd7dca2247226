// --jobs N: independent stages side by side. The runner hands each stage to `slot` once its
// inputs are ready; it starts when the thread budget (budget.ts) has room for it, the costliest
// waiting stage first. A stage that declares threads runs in a process of its own (child.ts);
// the others run here, one at a time, since TF.js's backend is process-wide state. The budget
// lends threads nobody waits for to a stage that asked for a range (the reference), and takes
// them back when a stage needs them: on the full pipeline that is 1.45× faster than the best
// fixed count (bench/lending.ts, docs/performance.md).

import { createThreadBudget, type ThreadLease } from './budget.js';
import type { Executor, Grant, StageJob } from './runner.js';

/**
 * The executor of `jobs` threads; `isolate` runs a stage job in its own process. A stage whose
 * estimated cost is below `minProcessCost` runs here instead: a process costs more to start than it saves.
 */
export function createJobsExecutor(jobs: number, isolate: (job: StageJob, grant: Grant) => Promise<void>, minProcessCost = 0): Executor {
  const budget = createThreadBudget(jobs);
  const here = createThreadBudget(1); // this process: one stage at a time
  const one = { min: 1, max: 1 };
  return {
    async slot(request, cost, runsHere, work) {
      // A stage that runs here takes this process first (at once if it is free, so that it asks the budget
      // together with the stages that became ready with it), and while it waits for it, it holds no threads.
      const local = runsHere ? (here.tryAcquire(one) ?? (await here.acquire(one, cost))) : null;
      let lease: ThreadLease;
      try {
        lease = await budget.acquire(request, cost);
      } catch (error) {
        local?.release();
        throw error;
      }
      try {
        return await work(lease);
      } finally {
        local?.release();
        lease.release();
      }
    },
    isolate,
    worthAProcess: (cost) => cost >= minProcessCost,
    close() {
      budget.close();
      here.close();
    },
  };
}
