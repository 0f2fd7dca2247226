// One training step shared between threads: a StepTeam. The step's big products are
// z1 = x·w1 + b1 and dW1 = xᵀ·dZ1 with w1's update (about two thirds of a step,
// bench/profile-reference.ts), then z2 = a1·w2 + b2 and dW2 = a1ᵀ·dZ2. The main thread
// runs the step; worker threads help where the work splits into rows: the batch's images
// for z1 and z2, the pixels for dW1 and w1's update. Rows go out in chunks that every
// thread claims from one shared counter, so a thread that gets less of the CPU (a busy
// core) simply claims fewer, and the main thread never waits for a worker that has not
// started. Two single pieces, the batch's transpose xᵀ and layer 2's weight gradient dW2,
// go to whichever thread claims them first, so a worker takes them while the main thread
// is busy elsewhere.
//
// Each row is computed by exactly the operations of the single-threaded step
// (sparseMatmul's first/end), whichever thread computes it, so the weights are bit
// for bit the same on any number of threads; test/reference-threads.test.ts checks it.
//
// One SGD step; the phases are counted in ctrl[PHASE], four per step:
//
//   main thread                                    | worker threads
//   gather the batch into ws.xRows; xᵀ claimable   |
//   FORWARD1: claim chunks of images for z1        | the same
//   a1 = ReLU(z1) as nonzeros                      |
//   FORWARD2: claim chunks of images for z2        | the same; then claim xᵀ
//   ReLU 2 … loss, backward down to dZ2            |
//   BACKWARD2: dW2 claimable; dZ1, db1, then dW2   | claim dW2
//     if still unclaimed; SGD update of all but w1 |
//   xᵀ if still unclaimed                          |
//   BACKWARD1: claim chunks of pixels for dW1 and  | the same
//     w1's update                                  |
//
// Memory the workers touch lives in SharedArrayBuffers (createWorkspace(…, true),
// shareParams). The threads hand over with Atomics: every write made before an
// Atomics store or add is seen by a thread once its Atomics load sees that value.
// A waiter polls for 50 µs, then sleeps in Atomics.wait, leaving the core to threads
// with work; Atomics.notify, itself tens of µs, is only called when a thread sleeps
// (ctrl[SLEEPERS]).

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
  type StepResult,
  type Workspace,
} from './network.js';
import { transposeSparse } from './kernels.js';
import { D, K, MAX_THREADS, PARAM_NAMES, type Params } from '../shapes.js';

export { MAX_THREADS }; // the most threads a team may have, defined in ../shapes.ts

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
const PHASE = 0; // phases begun; phase p is of kind p % PHASES_PER_STEP, below
const STOP = 1; // 1 = the workers should return
const ROWS = 2; // images in the current batch
const FAILED = 3; // 1 = a worker threw; its message is in the message buffer
const READY = 4; // workers that have started
const SLEEPERS = 5; // threads asleep in Atomics.wait, or about to be
const NEXT = 6; // (phase << CHUNK_BITS) + the next chunk of that phase to claim
const COMPLETED = 7; // chunks of the current phase finished
const TRANSPOSE = 8; // the batch's xᵀ: OPEN, CLAIMED or DONE
const LAYER2_GRADIENT = 9; // dW2 and db2: OPEN, CLAIMED or DONE
const ACTIVE = 10; // threads that work, the main thread included: worker t helps while t < ACTIVE
const CONTROL_SLOTS = 11;

// The kinds of phase, in the order a step runs them: phase p is of kind p % PHASES_PER_STEP.
const FORWARD1 = 1; // z1 = x·w1 + b1, chunks of images
const FORWARD2 = 2; // z2 = a1·w2 + b2, chunks of images
const BACKWARD2 = 3; // dW2 claimable (the main thread computes dZ1 meanwhile)
const BACKWARD1 = 0; // dW1 and w1's update, chunks of pixels
const PHASES_PER_STEP = 4;

const IMAGE_CHUNK = 4; // images per claim: 16 claims for a batch of 64
const PIXEL_CHUNK = 28; // pixels per claim, one image row: 28 claims
const CHUNK_BITS = 10; // a phase has fewer than 2^10 chunks
const PHASE_MASK = (1 << (31 - CHUNK_BITS)) - 1; // phase numbers wrap around in the 21 bits left

// States of a claimable task.
const OPEN = 0;
const CLAIMED = 1;
const DONE = 2;

const SPIN_MS = 0.05; // how long a waiter polls before it sleeps: with another busy process on 2 cores, 2 ms halved the speed
const STALL_SECONDS = 120; // waiting this long for a claimed piece means its thread is gone
const START_SECONDS = 60; // a worker not running by then will not start

/** Worker threads could not be started; training on one thread gives the same weights. */
export class WorkerStartError extends Error {
  override name = 'WorkerStartError';
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
  index: number; // thread number, 1 … T−1
  lr: number;
  ctrl: Int32Array;
  message: Uint8Array; // UTF-8 error text of a failed worker
  params: Params;
  ws: Workspace<Float32Array>;
}

/** How many chunks a phase of this kind has, for a batch of `rows` images. */
function chunkCount(kind: number, rows: number): number {
  return kind === BACKWARD1 ? Math.ceil(D / PIXEL_CHUNK) : kind === BACKWARD2 ? 0 : Math.ceil(rows / IMAGE_CHUNK);
}

/** Computes chunk `chunk` of a phase of this kind: rows of z1, of z2, or of dW1 and w1. */
function runChunk(kind: number, chunk: number, rows: number, params: Params, ws: Workspace<Float32Array>, lr: number): void {
  if (kind === BACKWARD1) {
    const first = chunk * PIXEL_CHUNK;
    const end = Math.min(first + PIXEL_CHUNK, D);
    layer1WeightGradient(ws, first, end);
    sgdUpdateW1(params, ws.grads, lr, first, end);
    return;
  }
  const first = chunk * IMAGE_CHUNK;
  const end = Math.min(first + IMAGE_CHUNK, rows);
  if (kind === FORWARD1) layer1Forward(params, ws, first, end);
  else layer2Forward(params, ws, first, end);
}

/** Claims and computes chunks of phase `phase` until none is left (or the phase is over). */
function workOnChunks(ctrl: Int32Array, phase: number, rows: number, params: Params, ws: Workspace<Float32Array>, lr: number): void {
  const kind = phase % PHASES_PER_STEP;
  const total = chunkCount(kind, rows);
  for (;;) {
    // Compare-and-swap, not add: a late thread's claim must not use up a chunk of a later phase.
    const next = Atomics.load(ctrl, NEXT);
    const chunk = next & ((1 << CHUNK_BITS) - 1);
    if (next >>> CHUNK_BITS !== (phase & PHASE_MASK) || chunk >= total) return;
    if (Atomics.compareExchange(ctrl, NEXT, next, next + 1) !== next) continue; // another thread took it
    runChunk(kind, chunk, rows, params, ws, lr);
    Atomics.add(ctrl, COMPLETED, 1);
    if (Atomics.load(ctrl, SLEEPERS) > 0) Atomics.notify(ctrl, COMPLETED);
  }
}

/** Claims task `slot` if it is open; returns whether this thread now owns it. */
function claim(ctrl: Int32Array, slot: number): boolean {
  return Atomics.compareExchange(ctrl, slot, OPEN, CLAIMED) === OPEN;
}

/** The SGD steps of one network, shared by T threads: the main thread and T − 1 workers. */
export class StepTeam {
  private readonly ctrl = new Int32Array(new SharedArrayBuffer(CONTROL_SLOTS * 4));
  private readonly message = new Uint8Array(new SharedArrayBuffer(4096));
  private readonly workers: Worker[] = [];
  private phase = 0;

  /** Use start(): a team is only usable once its workers run. */
  private constructor(
    readonly params: Params,
    readonly ws: Workspace<Float32Array>,
    private readonly lr: number,
    readonly threads: number,
  ) {
    Atomics.store(this.ctrl, TRANSPOSE, DONE); // no batch yet: nothing to claim
    Atomics.store(this.ctrl, LAYER2_GRADIENT, DONE);
    Atomics.store(this.ctrl, ACTIVE, threads);
  }

  /**
   * Lets only `active` of the team's threads work from the next phase on (1 = the main thread
   * alone); the others sleep until they are let back. Any count gives the same weights.
   */
  setActive(active: number): void {
    const count = Math.max(1, Math.min(this.threads, active));
    if (Atomics.exchange(this.ctrl, ACTIVE, count) !== count) Atomics.notify(this.ctrl, ACTIVE);
  }

  /**
   * Starts T − 1 workers on params and ws, which must be in shared memory (shareParams,
   * createWorkspace(…, true)), and resolves once all of them run. lr is fixed for the team.
   */
  static async start(
    params: Params,
    ws: Workspace<Float32Array>,
    lr: number,
    threads: number,
    workerModule = new URL(`./step-worker.${import.meta.url.endsWith('.js') ? 'js' : 'ts'}`, import.meta.url), // tests point it elsewhere
  ): Promise<StepTeam> {
    checkThreads(threads);
    for (const [name, array] of Object.entries({
      ...params,
      z1: ws.z1,
      dZ1: ws.dZ1,
      dW1: ws.grads.w1,
      xRows: ws.xRows.value,
      xCols: ws.xCols.value,
    })) {
      if (!(array.buffer instanceof SharedArrayBuffer)) throw new Error(`StepTeam.start: ${name} is not in shared memory`);
    }
    const team = new StepTeam(params, ws, lr, threads);
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
        const setup: WorkerSetup = { index: t, lr: this.lr, ctrl: this.ctrl, message: this.message, params: this.params, ws: this.ws };
        // execArgv [] keeps the parent's flags (jest's, tsx's --import) out: the worker loads TypeScript itself,
        // through the boot script, or starts on the compiled module (dist/, npm run build) directly.
        const entry = module.endsWith('.js') ? new URL(module) : boot;
        const worker = new Worker(entry, { workerData: { module, setup }, execArgv: [] });
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
    Atomics.store(ctrl, TRANSPOSE, OPEN); // ws.xRows holds this step's batch
    this.runPhase(rows); // FORWARD1: z1
    layer1Activation(rows, ws);
    this.runPhase(rows); // FORWARD2: z2
    const { loss } = forwardAfterLayer2(params, rows, ws, oneHot);
    const correct = countCorrect(ws.logits, oneHot, rows, K);
    backwardToZ2(params, oneHot, rows, ws);
    Atomics.store(ctrl, LAYER2_GRADIENT, OPEN); // ws.dZ2 holds this step's gradient
    this.begin(); // BACKWARD2: a worker may take dW2
    layer2InputGradient(params, rows, ws); // dZ1 reads w2, so before its update
    layer1BiasGradient(ws, rows);
    if (claim(ctrl, LAYER2_GRADIENT)) {
      layer2WeightGradient(ws, rows);
      Atomics.store(ctrl, LAYER2_GRADIENT, DONE);
    } else {
      this.awaitValue(LAYER2_GRADIENT, DONE);
    }
    sgdUpdateAllButW1(params, ws.grads, lr);
    if (claim(ctrl, TRANSPOSE)) {
      transposeSparse(ws.xCols, ws.xRows, D);
      Atomics.store(ctrl, TRANSPOSE, DONE);
    } else {
      this.awaitValue(TRANSPOSE, DONE);
      ws.xCols.rows = D; // the worker's transposeSparse set only its own copy's count
    }
    this.runPhase(rows); // BACKWARD1: dW1 and w1's update
    return { loss, correct };
  }

  /** Stops and ends the workers. Safe to call more than once. */
  async stop(): Promise<void> {
    Atomics.store(this.ctrl, STOP, 1);
    Atomics.add(this.ctrl, PHASE, 1);
    Atomics.notify(this.ctrl, PHASE);
    Atomics.notify(this.ctrl, ACTIVE);
    const workers = this.workers.splice(0);
    for (const worker of workers)
      worker
        .removeAllListeners('exit')
        .removeAllListeners('error')
        .on('error', () => {});
    await Promise.all(workers.map((worker) => worker.terminate()));
  }

  /** Begins the next phase: opens its chunks to claims and wakes sleeping workers. Returns its number. */
  private begin(): number {
    const { ctrl } = this;
    const phase = ++this.phase;
    Atomics.store(ctrl, COMPLETED, 0);
    Atomics.store(ctrl, NEXT, (phase & PHASE_MASK) << CHUNK_BITS);
    Atomics.store(ctrl, PHASE, phase);
    if (Atomics.load(ctrl, SLEEPERS) > 0) Atomics.notify(ctrl, PHASE);
    return phase;
  }

  /** Begins the next phase, works on its chunks too, and returns once all of them are done. */
  private runPhase(rows: number): void {
    const phase = this.begin();
    workOnChunks(this.ctrl, phase, rows, this.params, this.ws, this.lr);
    this.awaitValue(COMPLETED, chunkCount(phase % PHASES_PER_STEP, rows));
  }

  /** Waits until ctrl[slot] is value; throws if a worker failed or stalled. */
  private awaitValue(slot: number, value: number): void {
    const { ctrl } = this;
    const started = performance.now();
    for (let now = Atomics.load(ctrl, slot); now !== value; now = Atomics.load(ctrl, slot)) {
      if (poll(ctrl, slot, now) !== now) continue;
      if (Atomics.load(ctrl, FAILED) !== 0) {
        const text = new TextDecoder().decode(this.message.slice()).replace(/\0+$/, '');
        throw new Error(`a reference worker thread failed: ${text}`);
      }
      if (performance.now() - started > STALL_SECONDS * 1000) {
        throw new Error(`a reference worker thread claimed work and did not finish it within ${STALL_SECONDS} s; it may have been killed`);
      }
      sleep(ctrl, slot, now, 1000);
    }
  }
}

/** The body of a worker thread (reference/fast/step-worker.ts runs it): helps with each phase until told to stop. */
export function serveStep(setup: WorkerSetup): void {
  const { ctrl, params, ws, lr, index } = setup;
  try {
    Atomics.add(ctrl, READY, 1);
    let phase = 0;
    for (;;) {
      const active = Atomics.load(ctrl, ACTIVE);
      if (index >= active) {
        sleep(ctrl, ACTIVE, active, 1000); // not needed now: wait to be let back (or stopped)
        if (Atomics.load(ctrl, STOP) !== 0) return;
        continue;
      }
      // A worker that wakes late may find a later phase on, or no work left: the claims tell.
      phase = waitWhile(ctrl, PHASE, phase);
      if (Atomics.load(ctrl, STOP) !== 0) return;
      const kind = phase % PHASES_PER_STEP;
      // Chunks are claimed for this very phase, so the batch size read now is theirs.
      if (kind !== BACKWARD2) workOnChunks(ctrl, phase, Atomics.load(ctrl, ROWS), params, ws, lr);
      // A task is open only while its inputs are this step's, so read the batch size after claiming it;
      // this copy of ws keeps its own row counts.
      if (kind === FORWARD2 && claim(ctrl, TRANSPOSE)) {
        ws.xRows.rows = Atomics.load(ctrl, ROWS);
        transposeSparse(ws.xCols, ws.xRows, D);
        finish(ctrl, TRANSPOSE);
      }
      if (kind === BACKWARD2 && claim(ctrl, LAYER2_GRADIENT)) {
        ws.a1Rows.rows = Atomics.load(ctrl, ROWS);
        layer2WeightGradient(ws, ws.a1Rows.rows);
        finish(ctrl, LAYER2_GRADIENT);
      }
    }
  } catch (error) {
    const text = `worker ${index}: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`;
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
 * wakers know to notify. Either a waker's load sees the count, or this wait sees the
 * waker's store: both are sequentially consistent.
 */
function sleep(ctrl: Int32Array, slot: number, value: number, timeoutMs = Infinity): void {
  Atomics.add(ctrl, SLEEPERS, 1);
  Atomics.wait(ctrl, slot, value, timeoutMs);
  Atomics.sub(ctrl, SLEEPERS, 1);
}

/** Marks task `slot` done, waking the main thread if it sleeps. */
function finish(ctrl: Int32Array, slot: number): void {
  Atomics.store(ctrl, slot, DONE);
  if (Atomics.load(ctrl, SLEEPERS) > 0) Atomics.notify(ctrl, slot);
}
