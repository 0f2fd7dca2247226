// A budget of threads shared by the stages that run at once (--jobs). A stage asks with a
// function of the free count (the reference takes what is left), and waits until it fits;
// a stage that wants more than the whole budget starts once nothing else runs.

/** Thrown to stages still waiting when the budget closes (a failure or an abort): they never start. */
export class BudgetClosedError extends Error {
  override name = 'BudgetClosedError';
}

export interface ThreadBudget {
  /** Resolves with the threads granted once `want(free)` fits; rejects with BudgetClosedError after close(). */
  acquire(want: (free: number) => number): Promise<number>;
  release(threads: number): void;
  /** Starts nothing more: every waiting and later acquire rejects. */
  close(): void;
}

export function createThreadBudget(total: number): ThreadBudget {
  if (!Number.isInteger(total) || total < 1) throw new Error(`thread budget: expected a whole number of at least 1, found ${total}`);
  let inUse = 0;
  let closed = false;
  const waiting: { want: (free: number) => number; resolve: (threads: number) => void; reject: (error: Error) => void }[] = [];

  // First come, first served, but a later stage that fits may pass one that does not yet.
  const grant = () => {
    for (let i = 0; i < waiting.length; ) {
      const free = total - inUse;
      const threads = Math.max(1, waiting[i]!.want(free));
      if (threads <= free || inUse === 0) {
        inUse += threads;
        waiting.splice(i, 1)[0]!.resolve(threads);
      } else i++;
    }
  };

  return {
    acquire(want) {
      if (closed) return Promise.reject(new BudgetClosedError('the run stopped before this stage started'));
      return new Promise((resolve, reject) => {
        waiting.push({ want, resolve, reject });
        grant();
      });
    },
    release(threads) {
      inUse -= threads;
      if (inUse < 0) throw new Error(`thread budget: released ${threads} threads, more than were in use`);
      grant();
    },
    close() {
      closed = true;
      for (const waiter of waiting.splice(0)) waiter.reject(new BudgetClosedError('the run stopped before this stage started'));
    },
  };
}
