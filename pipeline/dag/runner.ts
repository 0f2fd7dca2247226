// The small DAG runner: plain stage functions chained by name, each output cached on disk.
//
//   graph.ts   the stages and their order (cycle check)
//   plan.ts    each stage's key, state and whether it runs, and why
//   runner.ts  runs the plan: in order, each stage loaded from the cache or run, then cached
//   executor   optional (--jobs, executor.ts): stages side by side, under a thread budget,
//              long ones in processes of their own
//
// A cached stage sees only the config fields it declares (reading another throws), so its key
// cannot miss what its output depends on. A failure starts nothing new, lets running stages
// finish, and reports every failure; an abort starts nothing new and waits for the rest.

import { BudgetClosedError, type ThreadRequest } from './budget.js';
import { CacheCorruptError, type Made, type StageCache } from './cache.js';
import { createFileHashes, type FileHashes } from './file-hashes.js';
import { type Stage, type StageContext, topologicalOrder } from './graph.js';
import { InterruptedError } from './interrupted.js';
import { createPlanner, type PlanEntry, type Planner, type Selection, UnaskedTrainingError, unaskedStages } from './plan.js';

export { defineStage, topologicalOrder, type Stage, type StageContext } from './graph.js';
export { UnaskedTrainingError, unaskedStages, type PlanEntry, type Selection } from './plan.js';

export interface StageReport {
  name: string;
  outcome: 'ran' | 'cached' | 'disabled' | 'skipped';
  seconds: number; // this run's time, or the cached entry's original time
}

/** A stage to run elsewhere: its inputs are cache entries (null: disabled), its output becomes one. */
export interface StageJob {
  stage: string;
  key: string;
  inputs: Record<string, string | null>; // input stage → its key, or null for a disabled one (its value is null)
  made: Made;
  threads: number;
}

/** Threads granted to a stage, which the executor may change while it runs (ThreadLease fits). */
export interface Grant {
  readonly threads: number;
  onChange(listener: (threads: number) => void): void;
}

/** How stages run side by side (executor.ts); without one, they run one at a time, in order, here. */
export interface Executor {
  /**
   * Runs `work` once `request.min` threads are free, the costliest waiting first. A `movable` stage may run in a
   * process of its own; the executor decides from its estimated cost (Stage.cost) and tells `work` by `elsewhere`.
   */
  slot<T>(request: ThreadRequest, cost: number, movable: boolean, work: (grant: Grant, elsewhere: boolean) => Promise<T>): Promise<T>;
  /** Runs a stage in a process of its own (a stage that declares threads, whose inputs are cached); none: all run here. */
  isolate?: (job: StageJob, grant: Grant) => Promise<void>;
  /** Starts nothing more; waiting stages reject with BudgetClosedError. */
  close(): void;
}

export interface RunnerOptions<C> {
  cache: StageCache;
  files?: FileHashes; // content hashes for fingerprints; default: in memory, rehashed each run
  log?: (line: string) => void;
  fieldName?: (field: keyof C) => string; // how a config field is named in reasons, e.g. its flag
  executor?: Executor;
  signal?: AbortSignal; // aborted: start no more stages; running ones see the signal themselves
  baseline?: C; // the config of the run in --out: stale stages are explained against it
}

export interface Runner<O> {
  plan(selection?: Selection<keyof O>): PlanEntry[];
  run(selection?: Selection<keyof O>, entries?: PlanEntry[]): Promise<{ outputs: Partial<O>; reports: StageReport[] }>;
}

/** Several stages failed in one run; each one's error is kept. */
export class StagesFailedError extends Error {
  override name = 'StagesFailedError';
  constructor(readonly failures: readonly { stage: string; error: Error }[]) {
    super(
      `${failures.length} stages failed:\n${failures.map(({ stage, error }) => `  ${stage}: ${error.message.replaceAll('\n', '\n    ')}`).join('\n')}`,
    );
  }
}

/** A cached stage read a config field it did not declare: its key would miss that field. */
export class UndeclaredReadError extends Error {
  override name = 'UndeclaredReadError';
}

/** `config` with only `allowed` readable; any other field throws, naming the stage. */
function configView<C>(config: C, allowed: readonly (keyof C)[], stage: string): C {
  const view = {} as C;
  for (const field of Object.keys(config as object) as (keyof C)[]) {
    if (allowed.includes(field)) {
      Object.defineProperty(view, field, { value: config[field], enumerable: true });
      continue;
    }
    // Not enumerable: spreading or cloning the view copies the declared fields only.
    Object.defineProperty(view, field, {
      enumerable: false,
      get() {
        throw new UndeclaredReadError(
          `stage ${stage} read config.${String(field)}, which is not among its reads (${allowed.map(String).join(', ') || 'none'}): ` +
            'add it to reads, or to untracked if no value of it can change the output',
        );
      },
    });
  }
  return Object.freeze(view);
}

/** A stage's inputs, by name, from the values of its input stages (in `inputs` order). */
function inputsOf<O, C>(stage: Stage<O, C>, values: readonly O[keyof O][]): Pick<O, keyof O> {
  const inputs: Partial<O> = {};
  stage.inputs.forEach((input, i) => {
    inputs[input] = values[i];
  });
  return inputs as Pick<O, keyof O>; // every input is set above: Partial no more
}

/** Runs one stage on its inputs with the config it may see; the one way a stage runs, in process or in a child. */
async function runStage<O, C>(stage: Stage<O, C>, inputs: Pick<O, keyof O>, config: C, context: Omit<StageContext<C>, 'config'>) {
  const start = performance.now();
  const view = stage.cache === false ? config : configView(config, [...stage.reads, ...(stage.untracked ?? [])], String(stage.name));
  const value = await stage.run(inputs, { ...context, config: view });
  return { value, seconds: (performance.now() - start) / 1000 };
}

/** The threads a stage asks for, as a range (a count is a range of one). */
export function threadRequest<O, C>(stage: Stage<O, C>, config: C): ThreadRequest {
  const asked = stage.threads?.(config) ?? 1;
  return typeof asked === 'number' ? { min: asked, max: asked } : asked;
}

/** A StageJob, where it runs: read the inputs from the cache, run the stage, write its entry. Returns its seconds. */
export async function runStageJob<O, C>(
  stages: readonly Stage<O, C>[],
  config: C,
  cache: StageCache,
  job: StageJob,
  context: { log: (line: string) => void; onThreads?: (listener: (threads: number) => void) => void },
): Promise<number> {
  const stage = stages.find((s) => String(s.name) === job.stage);
  if (!stage) throw new Error(`stage job: unknown stage ${JSON.stringify(job.stage)}`);
  const values = stage.inputs.map((input) => {
    const key = job.inputs[String(input)];
    if (key === undefined) throw new Error(`stage job ${job.stage}: no key for its input ${String(input)}`);
    if (key === null) return null as O[keyof O];
    const entry = cache.read<O[keyof O]>(String(input), key);
    if (!entry) throw new Error(`stage job ${job.stage}: its input ${String(input)} is not in the cache (key ${key})`);
    return entry.value;
  });
  const { value, seconds } = await runStage(stage, inputsOf(stage, values), config, {
    log: context.log,
    stageSeconds: () => ({}),
    stageKeys: () => ({}),
    threads: job.threads,
    onThreads: context.onThreads ?? ((listener) => listener(job.threads)),
  });
  cache.write(job.stage, job.key, value, seconds, job.made);
  return seconds;
}

/** Builds a runner over `stages` for one resolved config. */
export function createRunner<O, C>(stages: readonly Stage<O, C>[], config: C, options: RunnerOptions<C>): Runner<O> {
  const ordered = topologicalOrder(stages);
  const { cache, executor } = options;
  const files = options.files ?? createFileHashes('');
  const planner = createPlanner(ordered, config, { cache, files, fieldName: options.fieldName ?? String, baseline: options.baseline });
  return { plan: planner.plan, run: (selection = {}, entries = planner.plan(selection)) => runPlan(selection, entries) };

  async function runPlan(selection: Selection<keyof O>, entries: PlanEntry[]) {
    const unasked = unaskedStages(entries);
    if (unasked.length > 0) throw new UnaskedTrainingError(unasked);
    const log = options.log ?? (() => {});
    const run = new PlanRun(ordered, config, { ...options, log, planner, entries, selection });
    const started: Promise<unknown>[] = [];
    const disabled = disabledLines(log);
    for (const entry of entries) {
      if (entry.state === 'disabled') {
        run.reports.push({ name: entry.name, outcome: 'disabled', seconds: 0 });
        disabled.add(entry.name, ordered.find((stage) => String(stage.name) === entry.name)!.enabledBy);
        continue;
      }
      disabled.flush();
      if (entry.run) {
        // Without an executor each stage runs before the next is looked at.
        if (executor)
          started.push(run.obtain(entry.name as keyof O).then(() => {})); // waited for, its value not held
        else await run.obtain(entry.name as keyof O);
      } else {
        const outcome = entry.state === 'cached' ? 'cached' : 'skipped';
        run.reports.push({ name: entry.name, outcome, seconds: 0 });
        log(outcome === 'cached' ? `✔ ${entry.name}: cached` : `- ${entry.name}: skipped (${entry.reason})`);
      }
    }
    disabled.flush();
    await Promise.allSettled(started);
    return run.finish(files);
  }
}

/** Consecutive stages disabled by the same flag are one line, named by the last (the one that gathers them). */
function disabledLines(log: (line: string) => void) {
  let group: { hint: string | undefined; names: string[] } | null = null;
  const flush = () => {
    if (group === null) return;
    const { hint, names } = group;
    const label = names.length === 1 ? names[0] : `${names.at(-1)} (${names.length} stages)`;
    log(`- ${label}: disabled${hint ? `, ${hint} enables ${names.length === 1 ? 'it' : 'them'}` : ''}`);
    group = null;
  };
  return {
    flush,
    add(name: string, hint: string | undefined) {
      if (group !== null && group.hint !== hint) flush();
      group ??= { hint, names: [] };
      group.names.push(name);
    },
  };
}

interface RunContext<O, C> extends RunnerOptions<C> {
  log: (line: string) => void;
  planner: Planner<O>;
  entries: PlanEntry[];
  selection: Selection<keyof O>;
}

/** The state of one run: each stage's output loaded or computed once, its time, and the failures. */
class PlanRun<O, C> {
  readonly reports: StageReport[] = [];
  private readonly outputs: Partial<O> = {};
  private readonly seconds = new Map<keyof O, number>();
  private readonly failures: { stage: string; error: Error }[] = [];
  private readonly pending = new Map<keyof O, Promise<O[keyof O]>>(); // one per stage: dependants share its run
  // Stages of this run yet to take each output; at zero it is let go, and a later reader rereads its cache entry.
  private readonly readers = new Map<keyof O, number>();
  private readonly released = new Set<keyof O>();
  private readonly byName: Map<keyof O, Stage<O, C>>;
  private readonly byEntry: Map<string, PlanEntry>;
  private readonly stop = () => this.context.executor?.close();

  constructor(
    ordered: readonly Stage<O, C>[],
    private readonly config: C,
    private readonly context: RunContext<O, C>,
  ) {
    this.byName = new Map(ordered.map((s) => [s.name, s]));
    this.byEntry = new Map(context.entries.map((entry) => [entry.name, entry]));
    for (const entry of context.entries.filter((e) => e.run)) {
      for (const input of this.byName.get(entry.name as keyof O)!.inputs) this.readers.set(input, (this.readers.get(input) ?? 0) + 1);
    }
    context.signal?.addEventListener('abort', this.stop, { once: true });
  }

  private entry(name: keyof O): PlanEntry {
    return this.byEntry.get(String(name))!;
  }

  private stageSeconds = (): Record<string, number> => {
    const table: Record<string, number> = {};
    for (const entry of this.context.entries) {
      const known = this.seconds.get(entry.name as keyof O) ?? (entry.state === 'cached' ? entry.previousSeconds : null);
      if (known !== null && known !== undefined) table[entry.name] = known;
    }
    return table;
  };

  private stageKeys = (): Record<string, string> =>
    Object.fromEntries(this.context.entries.filter((e) => e.state !== 'disabled' && e.state !== 'uncached').map((e) => [e.name, e.key]));

  /** The output of `name`: loaded from the cache, or run; a failure is collected once and stops new starts. */
  obtain(name: keyof O): Promise<O[keyof O]> {
    let promise = this.pending.get(name);
    if (!promise) {
      promise = this.load(name).catch((error: Error) => {
        if (!(error instanceof BudgetClosedError) && !this.failures.some((failure) => failure.error === error)) {
          this.failures.push({ stage: String(name), error });
          this.stop(); // start nothing new; stages already running finish
        }
        throw error;
      });
      promise.catch(() => {}); // handled where awaited, or at the end through failures
      this.pending.set(name, promise);
    }
    return promise;
  }

  private async load(name: keyof O): Promise<O[keyof O]> {
    const { cache, planner, selection, log } = this.context;
    const stage = this.byName.get(name)!;
    const entry = this.entry(name);
    if (this.released.has(name)) {
      const reread = cache.read<O[keyof O]>(String(name), planner.keys.get(name)!);
      if (!reread) throw new Error(`stage ${String(name)}: its cache entry was removed during the run`);
      return reread.value;
    }
    if (entry.state === 'disabled') {
      this.outputs[name] = null as O[keyof O];
      return null as O[keyof O];
    }
    if (!entry.run) {
      try {
        const cached = cache.read<O[keyof O]>(String(name), planner.keys.get(name)!);
        if (cached) {
          this.seconds.set(name, cached.seconds);
          this.outputs[name] = cached.value;
          return cached.value;
        }
      } catch (error) {
        if (!(error instanceof CacheCorruptError)) throw error;
        const explicit = (selection.stages ?? []).length > 0 || selection.from !== undefined;
        if (stage.expensive && explicit && !selection.force) {
          throw new UnaskedTrainingError([{ ...entry, cause: `its cache entry is damaged: ${error.message}` }]);
        }
        log(`cache: ${error.message}; discarding the entry and recomputing ${String(name)}`);
        cache.remove(String(name), planner.keys.get(name)!);
      }
    }
    return this.execute(stage);
  }

  private async execute(stage: Stage<O, C>): Promise<O[keyof O]> {
    const { executor } = this.context;
    const inputs = inputsOf(stage, await Promise.all(stage.inputs.map((input) => this.obtain(input))));
    this.taken(stage.inputs);
    // Elsewhere, a stage sees only the cache: it and its inputs must be cached stages.
    const cachedInputs = stage.inputs.every((input) => this.byName.get(input)!.cache !== false);
    const cost = stage.cost?.(this.config) ?? Infinity;
    const movable = stage.threads !== undefined && stage.cache !== false && cachedInputs && executor?.isolate !== undefined;
    const request = threadRequest(stage, this.config);
    const work = (grant: Grant, elsewhere: boolean) =>
      this.runHereOrElsewhere(stage, inputs, grant, elsewhere ? executor?.isolate : undefined);
    if (!executor) return work({ threads: request.max, onChange: (listener) => listener(request.max) }, false);
    return executor.slot(request, cost, movable, work);
  }

  /** A stage took `inputs`: an output no other stage of this run reads is let go, so the process holds only what is still ahead. */
  private taken(inputs: readonly (keyof O)[]) {
    for (const input of inputs) {
      const left = this.readers.get(input)! - 1;
      this.readers.set(input, left);
      if (left > 0 || this.byName.get(input)!.cache === false || this.entry(input).state === 'disabled') continue;
      this.released.add(input);
      this.pending.delete(input);
      delete this.outputs[input];
    }
  }

  private async runHereOrElsewhere(stage: Stage<O, C>, inputs: Pick<O, keyof O>, grant: Grant, isolate: Executor['isolate']) {
    const { cache, planner, log, executor } = this.context;
    const name = String(stage.name);
    const key = planner.keys.get(stage.name)!;
    const planned = this.entry(stage.name);
    if (planned.state === 'damaged') log(`cache: ${planned.cause}; recomputing ${name}`);
    const where = isolate ? ', own process' : executor?.isolate ? ', in this process' : '';
    const threads = executor && (stage.threads || stage.cost) ? ` (${grant.threads} thread${grant.threads === 1 ? '' : 's'}${where})` : '';
    log(`▶ ${name}: ${stage.description}${threads}`);
    let value: O[keyof O];
    let elapsed: number;
    try {
      if (isolate) {
        const inputKeys = stage.inputs.map((input) => [
          String(input),
          this.entry(input).state === 'disabled' ? null : planner.keys.get(input)!,
        ]);
        const job: StageJob = {
          stage: name,
          key,
          inputs: Object.fromEntries(inputKeys),
          made: planner.made.get(stage.name)!,
          threads: grant.threads,
        };
        await isolate(job, grant);
        const entry = cache.read<O[keyof O]>(name, key);
        if (!entry) throw new Error(`stage ${name} finished in its process without writing its cache entry`);
        ({ value, seconds: elapsed } = entry);
      } else {
        const context = {
          log,
          stageSeconds: this.stageSeconds,
          stageKeys: this.stageKeys,
          threads: grant.threads,
          onThreads: grant.onChange,
        };
        ({ value, seconds: elapsed } = await runStage(stage, inputs, this.config, context));
        if (stage.cache !== false) cache.write(name, key, value, elapsed, planner.made.get(stage.name));
      }
    } catch (error) {
      this.stop(); // before its threads are released, which would start the next stage
      throw error;
    }
    this.outputs[stage.name] = value;
    this.seconds.set(stage.name, elapsed);
    this.reports.push({ name, outcome: 'ran', seconds: elapsed });
    log(`✔ ${name} done in ${elapsed.toFixed(1)} s`);
    return value;
  }

  /** The run's result (the outputs still held: those no stage of it read), or its failures as one error; the file hashes are saved only after a whole run. */
  finish(files: FileHashes): { outputs: Partial<O>; reports: StageReport[] } {
    const { signal, entries } = this.context;
    signal?.removeEventListener('abort', this.stop);
    if (this.failures.length > 0) {
      const interrupted = this.failures.find(({ error }) => error instanceof InterruptedError);
      if (interrupted && signal?.aborted) throw interrupted.error;
      if (this.failures.length === 1) throw this.failures[0]!.error;
      throw new StagesFailedError(this.failures);
    }
    const unfinished = entries.filter((entry) => entry.run && !this.seconds.has(entry.name as keyof O)).map((entry) => entry.name);
    if (unfinished.length > 0) throw new InterruptedError(`the run was interrupted before ${unfinished.join(', ')} ran`);
    files.save(); // a run that stops, fails or is interrupted leaves the cache folder as it was
    const order = new Map(entries.map((entry, i) => [entry.name, i]));
    this.reports.sort((a, b) => order.get(a.name)! - order.get(b.name)!);
    return { outputs: this.outputs, reports: this.reports };
  }
}
