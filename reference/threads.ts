// Layer 1 shared between threads. Its two products, z1 = x·w1 + b1 forward and
// dW1 = xᵀ·dZ1 backward, and w1's update are about two thirds of a training step
// (bench/profile-reference.ts). The threads split the rows of each product: the
// batch's images for z1, the pixels for dW1 and w1, in runs holding about equal
// numbers of nonzeros; and the images again for layer 2's z2. Worker 1 also takes
// layer 2's weight gradient while the main thread computes dZ1; the main thread does
// everything else. Each row is
// computed by exactly the operations of the single-threaded step (sparseMatmul's
// first/end), so the result is bit for bit the same with any number of threads; and
// each thread writes its own contiguous rows, so no two threads write the same cache
// line except at a run's edge. test/reference-threads.test.ts checks both.
//
// One SGD step, with the main thread as thread 0 and the phases counted in ctrl[PHASE],
// four per step:
//
//   main thread                                   | worker threads 1 … T−1
//   gather the batch into ws.xRows, split images  |
//   FORWARD1: z1 for its images                   | z1 for their images
//     wait for the workers; a1 = ReLU(z1), split  |
//   FORWARD2: z2 for its images                   | z2 for their images
//     wait for the workers                        | worker 1 then writes xCols = xᵀ and
//   ReLU 2 … loss, backward down to dZ2           |   splits the pixels, for BACKWARD1
//   BACKWARD2: dZ1 = (dZ2·w2ᵀ) ⊙ [z1 > 0], db1    | worker 1: dW2 = a1ᵀ·dZ2, db2
//     wait for worker 1; SGD update of all but w1 |
//   BACKWARD1: dW1 and w1's update, its pixels    | the same for their pixels
//     wait for the workers                        |
//
// Memory the workers touch lives in SharedArrayBuffers (createWorkspace(…, true),
// shareParams). The threads hand over with Atomics: every write made before an
// Atomics.store is seen by a thread once its Atomics.load sees that store. A waiter
// polls for up to 2 ms (a phase takes 0.2–1 ms, and waking a sleeping thread costs
// tens of µs), then sleeps in Atomics.wait; Atomics.notify, itself tens of µs, is
// only called when a thread sleeps (ctrl[SLEEPERS]).

import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import {
  backwardToZ2,
  countCorrect,
  forwardAfterLayer2,
  layer1Activation,
  layer1BiasGradient,
  layer1Forward,
  layer2Forward,
  layer1WeightGradient,
  layer2InputGradient,
  layer2WeightGradient,
  sgdUpdateAllButW1,
  sgdUpdateW1,
  transposeSparse,
  type StepResult,
  type Workspace,
} from './network.js';
import { D, K, PARAM_NAMES, type Params } from './shapes.js';

/** The most threads a team may have. */
export const MAX_THREADS = 8;

/** The default thread count: one per core, at most 2 (the most measured; see README, Performance). */
export function defaultThreads(): number {
  return Math.min(2, availableParallelism());
}

export function checkThreads(threads: number): void {
  if (!Number.isInteger(threads) || threads < 1 || threads > MAX_THREADS) {
    throw new Error(`reference threads: expected a whole number from 1 to ${MAX_THREADS}, found ${threads}`);
  }
}

// Slots of the shared control array (Int32Array).
const PHASE = 0; // phases begun; phase p is of kind p % 4, below
const STOP = 1; // 1 = the workers should return
const ROWS = 2; // images in the current batch
const FAILED = 3; // 1 = a worker threw; its message is in the message buffer
const READY = 4; // workers that have started
const TRANSPOSED = 5; // the phase A whose xᵀ and pixel split worker 1 has written
const SLEEPERS = 6; // threads asleep in Atomics.wait, or about to be
const DONE = 8; // DONE + t: the last phase worker t finished
const IMAGES = DONE + MAX_THREADS; // IMAGES + t: first image of thread t in FORWARD1 (t = 0 … T)
const HIDDEN = IMAGES + MAX_THREADS + 1; // HIDDEN + t: first image of thread t in FORWARD2
const PIXELS = HIDDEN + MAX_THREADS + 1; // PIXELS + t: first pixel of thread t in BACKWARD1
const CONTROL_SLOTS = PIXELS + MAX_THREADS + 1;

// The kinds of phase, in the order a step runs them: phase p is of kind p % 4.
const FORWARD1 = 1; // z1 = x·w1 + b1, split by images
const FORWARD2 = 2; // z2 = a1·w2 + b2, split by images
const BACKWARD2 = 3; // worker 1: dW2, db2 (the main thread: dZ1)
const BACKWARD1 = 0; // dW1 and w1's update, split by pixels
const PHASES_PER_STEP = 4;
const PHASE_NAMES = ['BACKWARD1', 'FORWARD1', 'FORWARD2', 'BACKWARD2']; // by kind, for messages

const SPIN_MS = 2; // how long a waiter polls before it sleeps
const STALL_SECONDS = 120; // a phase that takes this long means a worker is gone
const START_SECONDS = 60; // a worker not running by then will not start

/** Worker threads could not be started; training on one thread gives the same weights. */
export class WorkerStartError extends Error {
  override name = 'WorkerStartError';
}

/**
 * Writes to ctrl[at + t], t = 0 … parts, where part t of the rows of a sparse matrix
 * starts: runs of whole rows with about equal numbers of nonzeros (row r holds
 * start[r] … start[r+1]−1), so that threads get about equal work.
 */
export function splitRows(start: Int32Array, rows: number, parts: number, ctrl: Int32Array, at: number): void {
  const total = start[rows]!;
  let r = 0;
  ctrl[at] = 0;
  for (let t = 1; t < parts; t++) {
    const target = (t * total) / parts;
    while (r < rows && start[r]! < target) r++;
    ctrl[at + t] = r;
  }
  ctrl[at + parts] = rows;
}

/** A copy of params in shared memory. */
export function shareParams(params: Params): Params {
  const shared = {} as Params;
  for (const name of PARAM_NAMES) {
    shared[name] = new Float32Array(new SharedArrayBuffer(params[name].byteLength));
    shared[name].set(params[name]);
  }
  return shared;
}

/** Everything a worker thread is started with (structured-cloned; the typed arrays stay shared). */
export interface WorkerSetup {
  index: number; // thread number t, 1 … T−1
  threads: number; // T
  lr: number;
  ctrl: Int32Array;
  message: Uint8Array; // UTF-8 error text of a failed worker
  params: Params;
  ws: Workspace<Float32Array>;
}

/** Layer 1 of one network, trained by T threads: the main thread and T − 1 workers. */
export class Layer1Team {
  private readonly ctrl = new Int32Array(new SharedArrayBuffer(CONTROL_SLOTS * 4));
  private readonly message = new Uint8Array(new SharedArrayBuffer(4096));
  private readonly workers: Worker[] = [];

  /** Use start(): a team is only usable once its workers run. */
  private constructor(
    readonly params: Params,
    readonly ws: Workspace<Float32Array>,
    private readonly lr: number,
    readonly threads: number,
  ) {}

  /**
   * Starts T − 1 workers on params and ws, which must be in shared memory (shareParams,
   * createWorkspace(…, true)), and resolves once all of them run. lr is fixed for the team.
   */
  static async start(
    params: Params,
    ws: Workspace<Float32Array>,
    lr: number,
    threads: number,
    workerModule = new URL('./layer1-worker.ts', import.meta.url), // tests point it elsewhere
  ): Promise<Layer1Team> {
    checkThreads(threads);
    for (const [name, array] of Object.entries({ ...params, z1: ws.z1, dZ1: ws.dZ1, dW1: ws.grads.w1, xRows: ws.xRows.value, xCols: ws.xCols.value })) {
      if (!(array.buffer instanceof SharedArrayBuffer)) throw new Error(`Layer1Team.start: ${name} is not in shared memory`);
    }
    const team = new Layer1Team(params, ws, lr, threads);
    try {
      await team.spawn(workerModule);
    } catch (error) {
      await team.stop();
      throw error;
    }
    return team;
  }

  private spawn(workerModule: URL): Promise<void> {
    const boot = new URL('./worker-boot.mjs', import.meta.url);
    const module = workerModule.href;
    return new Promise((resolve, reject) => {
      let settled = false;
      const fail = (t: number, why: string): void => {
        if (settled) return;
        settled = true;
        reject(new WorkerStartError(`reference worker thread ${t} (${module}) ${why}`));
      };
      for (let t = 1; t < this.threads; t++) {
        const setup: WorkerSetup = { index: t, threads: this.threads, lr: this.lr, ctrl: this.ctrl, message: this.message, params: this.params, ws: this.ws };
        // execArgv [] keeps the parent's flags (jest's, tsx's --import) out: the worker loads TypeScript itself.
        const worker = new Worker(boot, { workerData: { module, setup }, execArgv: [] });
        worker.unref(); // never keeps the process alive
        worker.on('error', (error) => fail(t, `failed to start: ${error.message}`));
        worker.on('exit', (code) => fail(t, `exited with code ${code} before it started`));
        this.workers.push(worker);
      }
      const deadline = performance.now() + START_SECONDS * 1000;
      const check = (): void => {
        if (settled) return;
        if (Atomics.load(this.ctrl, READY) === this.threads - 1) {
          settled = true;
          resolve();
        } else if (performance.now() > deadline) fail(1, `did not start within ${START_SECONDS} s`);
        else setTimeout(check, 2);
      };
      check();
    });
  }

  /** One SGD step on the batch in ws.xRows (rows images) with labels oneHot (rows, K); as trainStepRows. */
  step(oneHot: Float32Array, rows: number): StepResult {
    const { params, ws, lr, ctrl } = this;
    Atomics.store(ctrl, ROWS, rows);
    splitRows(ws.xRows.start, rows, this.threads, ctrl, IMAGES);
    const forward1 = this.begin();
    layer1Forward(params, ws, 0, ctrl[IMAGES + 1]!);
    this.awaitWorkers(forward1);
    layer1Activation(rows, ws);
    splitRows(ws.a1Rows.start, rows, this.threads, ctrl, HIDDEN);
    const forward2 = this.begin();
    layer2Forward(params, ws, 0, ctrl[HIDDEN + 1]!);
    this.awaitWorkers(forward2);
    const { loss } = forwardAfterLayer2(params, rows, ws, oneHot);
    const correct = countCorrect(ws.logits, oneHot, rows, K);
    backwardToZ2(params, oneHot, rows, ws);
    const backward2 = this.begin();
    layer2InputGradient(params, rows, ws); // reads w2, so before its update
    layer1BiasGradient(ws, rows);
    this.awaitSlot(DONE + 1, backward2);
    sgdUpdateAllButW1(params, ws.grads, lr);
    const backward1 = this.begin();
    this.awaitSlot(TRANSPOSED, forward1);
    ws.xCols.rows = D; // xᵀ has a row per pixel; worker 1's transposeSparse set only its own copy's count
    const end = Atomics.load(ctrl, PIXELS + 1);
    layer1WeightGradient(ws, 0, end);
    sgdUpdateW1(params, ws.grads, lr, 0, end);
    this.awaitWorkers(backward1);
    return { loss, correct };
  }

  /** Stops and ends the workers. Safe to call more than once. */
  async stop(): Promise<void> {
    Atomics.store(this.ctrl, STOP, 1);
    Atomics.add(this.ctrl, PHASE, 1);
    Atomics.notify(this.ctrl, PHASE);
    const workers = this.workers.splice(0);
    for (const worker of workers) worker.removeAllListeners('exit').removeAllListeners('error').on('error', () => {});
    await Promise.all(workers.map((worker) => worker.terminate()));
  }

  /** Begins the next phase; returns its number. */
  private begin(): number {
    const phase = Atomics.add(this.ctrl, PHASE, 1) + 1;
    if (Atomics.load(this.ctrl, SLEEPERS) > 0) Atomics.notify(this.ctrl, PHASE);
    return phase;
  }

  private awaitWorkers(phase: number): void {
    for (let t = 1; t < this.threads; t++) this.awaitSlot(DONE + t, phase);
  }

  /** Waits until ctrl[slot] is phase; throws if a worker failed or stalled. */
  private awaitSlot(slot: number, phase: number): void {
    const { ctrl } = this;
    const started = performance.now();
    for (let now = Atomics.load(ctrl, slot); now !== phase; now = Atomics.load(ctrl, slot)) {
      if (poll(ctrl, slot, now) !== now) continue;
      if (Atomics.load(ctrl, FAILED) !== 0) {
        const text = new TextDecoder().decode(this.message.slice()).replace(/\0+$/, '');
        throw new Error(`a reference worker thread failed: ${text}`);
      }
      if (performance.now() - started > STALL_SECONDS * 1000) {
        const what = slot === TRANSPOSED ? 'transpose the batch' : `finish ${PHASE_NAMES[phase % PHASES_PER_STEP]}`;
        throw new Error(`reference worker thread ${slot === TRANSPOSED ? 1 : slot - DONE} did not ${what} within ${STALL_SECONDS} s; it may have been killed`);
      }
      sleep(ctrl, slot, now, 1000);
    }
  }
}

/** The body of a worker thread (reference/layer1-worker.ts runs it): serves phases until told to stop. */
export function serveLayer1(setup: WorkerSetup): void {
  const { ctrl, params, ws, lr, index: t } = setup;
  try {
    Atomics.add(ctrl, READY, 1);
    let phase = 0;
    for (;;) {
      // Workers other than 1 may miss a BACKWARD2, which is not theirs: the count they read says which phase is on.
      phase = waitWhile(ctrl, PHASE, phase);
      if (Atomics.load(ctrl, STOP) !== 0) return;
      const rows = Atomics.load(ctrl, ROWS);
      switch (phase % PHASES_PER_STEP) {
        case FORWARD1:
          ws.xRows.rows = rows;
          layer1Forward(params, ws, ctrl[IMAGES + t]!, ctrl[IMAGES + t + 1]!);
          finish(ctrl, DONE + t, phase);
          break;
        case FORWARD2:
          ws.a1Rows.rows = rows;
          layer2Forward(params, ws, ctrl[HIDDEN + t]!, ctrl[HIDDEN + t + 1]!);
          finish(ctrl, DONE + t, phase);
          if (t === 1) {
            transposeSparse(ws.xCols, ws.xRows, D);
            splitRows(ws.xCols.start, D, setup.threads, ctrl, PIXELS);
            finish(ctrl, TRANSPOSED, phase - 1); // the step's FORWARD1
          }
          break;
        case BACKWARD2:
          if (t === 1) {
            layer2WeightGradient(ws, rows);
            finish(ctrl, DONE + t, phase);
          }
          break;
        case BACKWARD1: {
          // needs xᵀ and the pixel split of this step's batch, from worker 1
          const forward1 = phase - 3;
          for (let seen = Atomics.load(ctrl, TRANSPOSED); seen !== forward1; seen = Atomics.load(ctrl, TRANSPOSED)) {
            if (Atomics.load(ctrl, STOP) !== 0 || Atomics.load(ctrl, FAILED) !== 0) return;
            if (poll(ctrl, TRANSPOSED, seen) === seen) sleep(ctrl, TRANSPOSED, seen, 1000);
          }
          ws.xCols.rows = D;
          const first = Atomics.load(ctrl, PIXELS + t);
          const end = Atomics.load(ctrl, PIXELS + t + 1);
          layer1WeightGradient(ws, first, end);
          sgdUpdateW1(params, ws.grads, lr, first, end);
          finish(ctrl, DONE + t, phase);
          break;
        }
      }
    }
  } catch (error) {
    const text = `worker ${t}: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`;
    setup.message.set(new TextEncoder().encode(text).subarray(0, setup.message.length));
    Atomics.store(ctrl, FAILED, 1);
    for (let slot = 0; slot < CONTROL_SLOTS; slot++) Atomics.notify(ctrl, slot);
  }
}

/** Waits until ctrl[slot] differs from value; returns the new value. For workers, which may sleep for good. */
function waitWhile(ctrl: Int32Array, slot: number, value: number): number {
  for (;;) {
    const now = poll(ctrl, slot, value);
    if (now !== value) return now;
    sleep(ctrl, slot, value);
  }
}

/** Reads ctrl[slot] until it differs from value or SPIN_MS pass; returns what it read last. */
function poll(ctrl: Int32Array, slot: number, value: number): number {
  const until = performance.now() + SPIN_MS;
  for (;;) {
    for (let i = 0; i < 256; i++) {
      const now = Atomics.load(ctrl, slot);
      if (now !== value) return now;
    }
    if (performance.now() > until) return value;
  }
}

/**
 * Sleeps while ctrl[slot] is value (at most timeoutMs), counted in ctrl[SLEEPERS] so that
 * finish and begin know to wake it. Either a waker's load sees the count, or this wait
 * sees the waker's store: both are sequentially consistent.
 */
function sleep(ctrl: Int32Array, slot: number, value: number, timeoutMs = Infinity): void {
  Atomics.add(ctrl, SLEEPERS, 1);
  Atomics.wait(ctrl, slot, value, timeoutMs);
  Atomics.sub(ctrl, SLEEPERS, 1);
}

function finish(ctrl: Int32Array, slot: number, phase: number): void {
  Atomics.store(ctrl, slot, phase);
  if (Atomics.load(ctrl, SLEEPERS) > 0) Atomics.notify(ctrl, slot);
}
