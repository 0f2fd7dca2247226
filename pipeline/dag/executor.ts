// --jobs N: independent stages side by side. The runner hands each stage to `slot` once its
// inputs are ready; it starts when the thread budget (budget.ts) has room for it, the costliest
// waiting stage first. A stage that declares threads may run in a process of its own (child.ts),
// as its estimated cost decides (ProcessCosts); the others run here, one at a time, since TF.js's
// backend is process-wide state. The budget lends threads nobody waits for to a stage that asked
// for a range (the reference), and takes them back when a stage needs them: on the full pipeline
// that is 1.45× faster than the best fixed count (bench/lending.ts, docs/performance.md).

import { createThreadBudget } from './budget.js';
import type { Executor, Grant, StageJob } from './runner.js';

/** What starting a process costs, in Stage.cost units: a stage below `worth` never repays one; one of at least `always` keeps this process free. */
export interface ProcessCosts {
  worth: number;
  always: number;
}

/**
 * The executor of `jobs` threads; `isolate` runs a stage job in its own process. Of the stages that may
 * run elsewhere, one whose estimated cost is at least `costs.always` does, so the stages that can only run here
 * never wait behind it; one below `costs.worth` runs here, since a process costs more to start than it saves;
 * one in between runs here if this process is free when its threads come, and else in a process of its own
 * rather than wait.
 */
export function createJobsExecutor(
  jobs: number,
  isolate: (job: StageJob, grant: Grant) => Promise<void>,
  costs: ProcessCosts = { worth: 0, always: 0 },
): Executor {
  const budget = createThreadBudget(jobs);
  let busy = false; // this process runs one stage at a time: TF.js's backend is process-wide state
  return {
    async slot(request, cost, movable, work) {
      const place = !movable || cost < costs.worth ? 'here' : cost >= costs.always ? 'elsewhere' : 'either';
      // Asked once the stage's threads fit, so that no stage holds this process while it waits for threads.
      let here = false;
      const gate = () => {
        if (busy) return place === 'either'; // its own process rather than wait
        busy = here = true;
        return true;
      };
      const lease = await budget.acquire(request, cost, place === 'elsewhere' ? undefined : gate);
      try {
        return await work(lease, !here);
      } finally {
        if (here) busy = false;
        lease.release(); // after this process is free: the budget looks again on its next turn
      }
    },
    isolate,
    close() {
      budget.close();
    },
  };
}
