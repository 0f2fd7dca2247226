// A budget of threads shared by the stages that run at once (--jobs). A stage asks for a
// range, at least `min` and at most `max` threads, and waits until its `min` fits:
//
//   - Of the stages waiting, the costliest starts first (longest first: the long trainings
//     do not end up alone at the end), and one that can grow (max > min) after all that
//     cannot: whenever it starts, it grows into the threads the others leave idle at the end.
//     Requests are looked at on the next turn of the event loop, so stages that become
//     ready together are ordered by cost, not by who asked first.
//   - Threads nobody waits for go to running stages below their `max` (the reference takes
//     what is left); a stage that fits only once those are taken back gets them at once.
//   - A stage that wants more than the whole budget starts once nothing else runs.
//   - A request may carry a gate, asked once its threads fit: false, and it keeps waiting while
//     later ones may start (the executor's gate is this process, which runs one stage at a time).

/** Thrown to stages still waiting when the budget closes (a failure or an abort): they never start. */
export class BudgetClosedError extends Error {
  override name = 'BudgetClosedError';
}

export interface ThreadRequest {
  min: number; // the stage cannot start with fewer
  max: number; // it can use no more; max > min: the stage follows changes while it runs
}

/** The threads a running stage holds; the budget may change them while it runs, between min and max. */
export interface ThreadLease {
  readonly threads: number;
  /** Calls listener with the count now, and again whenever the budget gives or takes back threads. */
  onChange(listener: (threads: number) => void): void;
  release(): void;
}

export interface ThreadBudget {
  /** Resolves once `request.min` fits and `gate` (if any) says yes (see above); rejects with BudgetClosedError after close(). */
  acquire(request: ThreadRequest, priority?: number, gate?: () => boolean): Promise<ThreadLease>;
  /** Starts nothing more: every waiting and later acquire rejects. */
  close(): void;
}

/** A thread count that tells its listeners when it changes, and a new listener at once. */
export function watchedCount(initial: number) {
  let value = initial;
  const listeners: ((count: number) => void)[] = [];
  return {
    get value() {
      return value;
    },
    set(count: number) {
      if (count === value) return;
      value = count;
      for (const listener of listeners) listener(count);
    },
    onChange(listener: (count: number) => void) {
      listeners.push(listener);
      listener(value);
    },
  };
}

interface Lease extends ThreadLease {
  readonly count: ReturnType<typeof watchedCount>;
  readonly request: ThreadRequest;
  readonly priority: number;
}

const grows = (request: ThreadRequest) => request.max > request.min;

interface Waiter {
  request: ThreadRequest;
  priority: number;
  gate?: () => boolean;
  resolve: (lease: Lease) => void;
  reject: (error: Error) => void;
}

export function createThreadBudget(total: number): ThreadBudget {
  if (!Number.isInteger(total) || total < 1) throw new Error(`thread budget: expected a whole number of at least 1, found ${total}`);
  const running = new Set<Lease>();
  const waiting: Waiter[] = []; // in the order they start: see before, first come first among equals
  let closed = false;
  let scheduled = false;

  const inUse = () => [...running].reduce((sum, lease) => sum + lease.threads, 0);
  const byPriority = (a: { priority: number }, b: { priority: number }) =>
    a.priority === b.priority ? 0 : a.priority > b.priority ? -1 : 1;

  const grant = () => {
    scheduled = false;
    for (let i = 0; i < waiting.length; ) {
      const { request, gate } = waiting[i]!;
      // Threads held above their min come back first, from the cheapest stage first.
      const lenders = [...running]
        .filter((lease) => lease.threads > lease.request.min)
        .sort(byPriority)
        .reverse();
      const lendable = lenders.reduce((sum, lease) => sum + lease.threads - lease.request.min, 0);
      const free = total - inUse();
      if ((request.min > free + lendable && running.size > 0) || (gate && !gate())) {
        i++; // a later, smaller (or ungated) request may still fit
        continue;
      }
      let missing = request.min - free;
      for (const lease of lenders) {
        if (missing <= 0) break;
        const back = Math.min(missing, lease.threads - lease.request.min);
        lease.count.set(lease.threads - back);
        missing -= back;
      }
      const waiter = waiting.splice(i, 1)[0]!;
      waiter.resolve(lend(request, waiter.priority));
    }
    // What nobody waits for goes to the running stages that can use more, the costliest first.
    for (const lease of [...running].sort(byPriority)) {
      const free = total - inUse();
      if (free <= 0) break;
      lease.count.set(Math.min(lease.request.max, lease.threads + free));
    }
  };

  const lend = (request: ThreadRequest, priority: number): Lease => {
    const count = watchedCount(request.min);
    const lease: Lease = {
      count,
      get threads() {
        return count.value;
      },
      request,
      priority,
      onChange: count.onChange,
      release: () => {
        if (!running.delete(lease)) throw new Error('thread budget: a lease was released twice');
        schedule();
      },
    };
    running.add(lease);
    return lease;
  };

  const check = (request: ThreadRequest) => {
    if (!(Number.isInteger(request.min) && request.min >= 1 && request.max >= request.min))
      throw new Error(`thread budget: expected 1 ≤ min ≤ max, found min ${request.min}, max ${request.max}`);
  };

  const schedule = () => {
    if (scheduled || closed) return;
    scheduled = true;
    setImmediate(grant);
  };

  return {
    acquire(request, priority = 0, gate) {
      if (closed) return Promise.reject(new BudgetClosedError('the run stopped before this stage started'));
      check(request);
      return new Promise((resolve, reject) => {
        const before = (waiter: Waiter) => (grows(waiter.request) === grows(request) ? waiter.priority >= priority : grows(request));
        const at = waiting.findIndex((waiter) => !before(waiter));
        waiting.splice(at === -1 ? waiting.length : at, 0, { request, priority, gate, resolve, reject });
        schedule();
      });
    },
    close() {
      closed = true;
      for (const waiter of waiting.splice(0)) waiter.reject(new BudgetClosedError('the run stopped before this stage started'));
    },
  };
}
