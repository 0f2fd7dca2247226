// A small typed DAG runner. Each stage names its inputs (other stages) and the
// config fields it reads; its cache key hashes those values, its code version,
// its fingerprint (e.g. the data files' SHA-256) and its inputs' keys, and only
// those: a cached stage sees only the fields it declares, and reading any other
// throws. A stage whose key is unchanged is loaded, not run.
//
//   plan  = order the stages, mark each cached / stale / missing / damaged / disabled,
//           say why (the field that changed, old → new; the data file; the upstream stage),
//           choose which run (all stale, --stage, --from, --force)
//   run   = refuse to start an expensive stage (a training) that --stage / --from did not name,
//           then in order: load what a running stage needs, run it, cache it with what it read
//
// With a thread budget above 1 (--jobs), every stage starts as soon as its inputs are ready and
// the budget has room for its threads (the costliest waiting stage first, dag/budget.ts); a
// stage that declares `threads` then runs through
// `isolate` (a child process) as a StageJob: it reads its inputs from the cache and writes its
// entry there, by the same runStage as in process. A failure starts nothing new, lets running
// stages finish, and reports every failure; an abort starts nothing new and waits for the rest.

import { CacheCorruptError, hashKey, type Made, type StageCache } from './cache.js';
import { BudgetClosedError, createThreadBudget, type ThreadBudget, type ThreadLease, type ThreadRequest } from './budget.js';
import { createFileHashes, type FileHashes } from './file-hashes.js';
import { InterruptedError } from './interrupted.js';

/** What a stage's run function gets besides its inputs. */
export interface StageContext<C> {
  config: C;
  log: (line: string) => void;
  /** Wall time of every stage so far: this run's, or the cached entry's original. */
  stageSeconds: () => Record<string, number>;
  /** Threads this stage may use: what its `threads` asked for and the budget granted. */
  threads: number;
  /** For a stage that asked for a range: calls listener with its count now, and again when the budget changes it. */
  onThreads: (listener: (threads: number) => void) => void;
}

/**
 * One node. O maps every stage name to its output type; N is this stage,
 * I the stages it reads. `run` receives exactly its inputs, typed.
 */
export interface Stage<O, C, N extends keyof O = keyof O, I extends keyof O = keyof O> {
  name: N;
  inputs: readonly I[];
  reads: readonly (keyof C)[]; // config fields in the key: the stage's run sees these
  untracked?: readonly (keyof C)[]; // fields it may read that no value of changes the output (e.g. a thread count)
  version: number; // bump when the stage's code changes what it produces
  description: string;
  cache?: boolean; // false: run whenever selected, never stored, sees the whole config (sinks that write files)
  enabled?: (config: C) => boolean; // a disabled stage outputs null
  enabledBy?: string; // the flag that enables a disabled stage, for the log
  expensive?: boolean; // a training: --stage / --from stop rather than start it unasked
  fingerprint?: (config: C, files: FileHashes) => Record<string, string>; // outside state the key must see, e.g. data file hashes
  // Threads it uses: a count, or a range it follows while it runs (with --jobs 1 it gets the top of it).
  // Declare it for long stages only: with --jobs > 1 they run in a process of their own, which costs
  // about a second to start.
  threads?: (config: C) => number | ThreadRequest;
  // Rough relative work (e.g. images trained × a per-image factor), for ordering only: with --jobs > 1,
  // of the stages waiting for threads the costliest starts first; those without a cost (quick ones) before all.
  cost?: (config: C) => number;
  run(inputs: Pick<O, I>, context: StageContext<C>): Promise<O[N]> | O[N];
}

/** Ties a stage's input list to its run signature; use it to declare every stage. */
export function defineStage<O, C>() {
  return <N extends keyof O, I extends keyof O>(stage: Stage<O, C, N, I>): Stage<O, C> => stage as unknown as Stage<O, C>;
}

export type CycleCheck = { hasCycle: true; cycle: string[] } | { hasCycle: false };

/** Depth-first search for a cycle; the cycle is returned as a closed path. */
export function findCycle(stages: readonly { name: PropertyKey; inputs: readonly PropertyKey[] }[]): CycleCheck {
  const byName = new Map(stages.map((s) => [s.name, s]));
  const state = new Map<PropertyKey, 'visiting' | 'done'>();
  const path: PropertyKey[] = [];
  const visit = (name: PropertyKey): string[] | null => {
    if (state.get(name) === 'done') return null;
    if (state.get(name) === 'visiting') return [...path.slice(path.indexOf(name)), name].map(String);
    state.set(name, 'visiting');
    path.push(name);
    for (const input of byName.get(name)?.inputs ?? []) {
      const cycle = visit(input);
      if (cycle) return cycle;
    }
    path.pop();
    state.set(name, 'done');
    return null;
  };
  for (const stage of stages) {
    const cycle = visit(stage.name);
    if (cycle) return { hasCycle: true, cycle };
  }
  return { hasCycle: false };
}

/** Stages in dependency order; throws naming the cycle or the unknown input. */
export function topologicalOrder<S extends { name: PropertyKey; inputs: readonly PropertyKey[] }>(stages: readonly S[]): S[] {
  const names = new Set(stages.map((s) => s.name));
  for (const stage of stages) {
    for (const input of stage.inputs) {
      if (!names.has(input)) throw new Error(`stage ${String(stage.name)}: input ${String(input)} is not a stage`);
    }
  }
  const check = findCycle(stages);
  if (check.hasCycle) throw new Error(`the stages form a cycle: ${check.cycle.join(' → ')}`);
  const ordered: S[] = [];
  const placed = new Set<PropertyKey>();
  while (ordered.length < stages.length) {
    for (const stage of stages) {
      if (!placed.has(stage.name) && stage.inputs.every((input) => placed.has(input))) {
        ordered.push(stage);
        placed.add(stage.name);
      }
    }
  }
  return ordered;
}

export type StageState = 'cached' | 'stale' | 'missing' | 'damaged' | 'disabled' | 'uncached';

export interface PlanEntry {
  name: string;
  key: string;
  version: number;
  state: StageState;
  cause: string; // why the state: "lr 0.01 → 0.05", "data file x changed", "upstream train reruns", "not in the cache"
  run: boolean; // will this run execute the stage
  reason: string; // why it runs or not, for --dry-run
  expensive: boolean;
  unasked: boolean; // an expensive stage this run would start though --stage / --from did not name it
  previousSeconds: number | null; // what the closest cache entry of this stage took, if any
}

export interface Selection<N> {
  stages?: readonly N[]; // --stage: run these, plus upstream that is missing or stale
  from?: N; // --from: run this and everything downstream
  force?: boolean; // --force: ignore the cache for every selected stage
}

export interface StageReport {
  name: string;
  outcome: 'ran' | 'cached' | 'disabled' | 'skipped';
  seconds: number; // this run's time, or the cached entry's original time
}

export interface Runner<O> {
  plan(selection?: Selection<keyof O>): PlanEntry[];
  run(selection?: Selection<keyof O>, entries?: PlanEntry[]): Promise<{ outputs: Partial<O>; reports: StageReport[] }>;
}

/** A stage to run elsewhere: its inputs are cache entries (null: disabled), its output becomes one. */
export interface StageJob {
  stage: string;
  key: string;
  inputs: Record<string, string | null>; // input stage → its key, or null for a disabled one (its value is null)
  made: Made;
  threads: number;
}

export interface RunnerOptions<C> {
  cache: StageCache;
  files?: FileHashes; // content hashes for fingerprints; default: in memory, rehashed each run
  log?: (line: string) => void;
  fieldName?: (field: keyof C) => string; // how a config field is named in reasons, e.g. its flag
  jobs?: number; // threads stages may use at once; 1 (default) runs one stage at a time, in order
  // Runs a stage that declares threads elsewhere (a child process), when jobs > 1; onThreads tells it of changes to its threads.
  isolate?: (job: StageJob, onThreads: (listener: (threads: number) => void) => void) => Promise<void>;
  signal?: AbortSignal; // aborted: start no more stages; running ones see the signal themselves
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

/** A run would start an expensive stage nobody asked for; thrown before any work. */
export class UnaskedTrainingError extends Error {
  override name = 'UnaskedTrainingError';
  constructor(
    readonly stages: readonly PlanEntry[],
    message = `${stages.map((s) => `${s.name} (${s.cause})`).join(', ')} would have to run first; name ${stages.length === 1 ? 'it' : 'them'} with --stage or --from`,
  ) {
    super(message);
  }
}

/** A cached stage read a config field it did not declare: its key would miss that field. */
export class UndeclaredReadError extends Error {
  override name = 'UndeclaredReadError';
}

/** The expensive stages a plan would start unasked. */
export function unaskedStages(entries: readonly PlanEntry[]): PlanEntry[] {
  return entries.filter((entry) => entry.unasked);
}

/** `config` with only `allowed` readable; any other field throws, naming the stage. */
function configView<C>(config: C, allowed: readonly (keyof C)[], stage: string): C {
  const view = {} as C;
  for (const field of Object.keys(config as object) as (keyof C)[]) {
    if (allowed.includes(field)) {
      Object.defineProperty(view, field, { value: config[field], enumerable: true });
    } else {
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
  }
  return Object.freeze(view);
}

const ONE = { min: 1, max: 1 };

const formatValue = (value: unknown) => (typeof value === 'string' ? JSON.stringify(value) : String(value));

/** Runs one stage on its inputs with the config it may see; the one way a stage runs, in process or in a child. */
async function runStage<O, C>(stage: Stage<O, C>, inputs: Pick<O, keyof O>, config: C, context: Omit<StageContext<C>, 'config'>) {
  const start = performance.now();
  const view = stage.cache === false ? config : configView(config, [...stage.reads, ...(stage.untracked ?? [])], String(stage.name));
  const value = await stage.run(inputs, { ...context, config: view });
  return { value, seconds: (performance.now() - start) / 1000 };
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
  const inputs = {} as Pick<O, keyof O>;
  for (const input of stage.inputs) {
    const key = job.inputs[String(input)];
    if (key === undefined) throw new Error(`stage job ${job.stage}: no key for its input ${String(input)}`);
    if (key === null) {
      inputs[input] = null as O[keyof O];
      continue;
    }
    const entry = cache.read<O[keyof O]>(String(input), key);
    if (!entry) throw new Error(`stage job ${job.stage}: its input ${String(input)} is not in the cache (key ${key})`);
    inputs[input] = entry.value;
  }
  const { value, seconds } = await runStage(stage, inputs, config, {
    log: context.log,
    stageSeconds: () => ({}),
    threads: job.threads,
    onThreads: context.onThreads ?? ((listener) => listener(job.threads)),
  });
  cache.write(job.stage, job.key, value, seconds, job.made);
  return seconds;
}

/** Builds a runner over `stages` for one resolved config. */
export function createRunner<O, C>(stages: readonly Stage<O, C>[], config: C, options: RunnerOptions<C>): Runner<O> {
  const ordered = topologicalOrder(stages);
  const byName = new Map(ordered.map((s) => [s.name, s]));
  const log = options.log ?? (() => {});
  const fieldName = options.fieldName ?? String;
  const files = options.files ?? createFileHashes('');
  const { cache } = options;

  const isEnabled = (stage: Stage<O, C>) => stage.enabled?.(config) ?? true;

  const keys = new Map<keyof O, string>();
  const made = new Map<keyof O, Made>();
  for (const stage of ordered) {
    // A disabled stage outputs null whatever the config: it reads nothing, so its key is constant.
    const enabled = isEnabled(stage);
    const record: Made = {
      version: stage.version,
      reads: enabled ? Object.fromEntries(stage.reads.map((field) => [field, config[field]])) : {},
      fingerprint: enabled ? (stage.fingerprint?.(config, files) ?? {}) : {},
      inputs: enabled ? Object.fromEntries(stage.inputs.map((input) => [input, keys.get(input)!])) : {},
    };
    made.set(stage.name, record);
    keys.set(stage.name, hashKey({ stage: stage.name, ...(enabled ? record : { disabled: true }) }));
  }

  /** What differs between this run's inputs and an entry's; `runs` words an upstream change. */
  const differences = (stage: Stage<O, C>, previous: Made | null, runs: Set<keyof O>): string[] => {
    if (previous === null) return ['the cached entry does not record what it read'];
    const current = made.get(stage.name)!;
    const found: string[] = [];
    if (previous.version !== current.version) found.push(`version ${previous.version} → ${current.version}`);
    for (const [field, value] of Object.entries(current.reads)) {
      const before = previous.reads[field];
      if (JSON.stringify(before) !== JSON.stringify(value))
        found.push(`${fieldName(field as keyof C)} ${formatValue(before)} → ${formatValue(value)}`);
    }
    for (const [label, value] of Object.entries(current.fingerprint)) {
      if (previous.fingerprint[label] !== value) found.push(`${label} changed`);
    }
    for (const [input, key] of Object.entries(current.inputs)) {
      if (previous.inputs[input] !== key) found.push(`upstream ${input} ${runs.has(input as keyof O) ? 'reruns' : 'changed'}`);
    }
    return found.length > 0 ? found : ['cached under another key'];
  };

  /** The state of a stage, why, and what the closest earlier entry of it took. */
  const status = (stage: Stage<O, C>, runs: Set<keyof O>): { state: StageState; cause: string; previousSeconds: number | null } => {
    if (!isEnabled(stage))
      return {
        state: 'disabled',
        cause: stage.enabledBy ? `${stage.enabledBy} enables it` : 'disabled by the config',
        previousSeconds: null,
      };
    if (stage.cache === false) return { state: 'uncached', cause: 'never cached: runs whenever selected', previousSeconds: null };
    const name = String(stage.name);
    const found = cache.state(name, keys.get(stage.name)!);
    if (found.state === 'cached') return { state: 'cached', cause: 'cached', previousSeconds: found.seconds };
    if (found.state === 'missing') return { state: 'missing', cause: 'not in the cache', previousSeconds: null };
    // The closest earlier entry explains best what changed; ties go to the newest.
    const earlier = cache.entries(name).filter((entry) => entry.key !== keys.get(stage.name));
    let best: { diffs: string[]; seconds: number } | null = null;
    for (const entry of earlier) {
      const diffs = differences(stage, entry.made, runs);
      if (best === null || diffs.length < best.diffs.length) best = { diffs, seconds: entry.seconds };
    }
    if (found.state === 'damaged')
      return { state: 'damaged', cause: `damaged cache entry: ${found.problem}`, previousSeconds: best?.seconds ?? null };
    return {
      state: 'stale',
      cause: best ? best.diffs.join(', ') : 'only damaged entries in the cache',
      previousSeconds: best?.seconds ?? null,
    };
  };

  const downstreamOf = (root: keyof O): Set<keyof O> => {
    const found = new Set<keyof O>([root]);
    for (const stage of ordered) if (stage.inputs.some((input) => found.has(input))) found.add(stage.name);
    return found;
  };
  const upstreamOf = (roots: Iterable<keyof O>): Set<keyof O> => {
    const found = new Set<keyof O>();
    const visit = (name: keyof O) => {
      if (found.has(name)) return;
      found.add(name);
      for (const input of byName.get(name)!.inputs) visit(input);
    };
    for (const root of roots) visit(root);
    return found;
  };

  const plan = (selection: Selection<keyof O> = {}): PlanEntry[] => {
    for (const name of [...(selection.stages ?? []), ...(selection.from === undefined ? [] : [selection.from])]) {
      if (!byName.has(name)) {
        throw new Error(`unknown stage ${JSON.stringify(name)}: expected one of ${ordered.map((s) => String(s.name)).join(', ')}`);
      }
    }
    // Stages this run must execute whatever the cache says.
    const named = new Set<keyof O>(selection.stages ?? []);
    if (selection.from !== undefined) for (const name of downstreamOf(selection.from)) named.add(name);
    const explicit = named.size > 0;
    const scope = explicit ? upstreamOf(named) : new Set(ordered.map((s) => s.name));

    const runs = new Set<keyof O>();
    const states = new Map<keyof O, StageState>();
    const entries: PlanEntry[] = [];
    for (const stage of ordered) {
      const { state, cause, previousSeconds } = status(stage, runs);
      states.set(stage.name, state);
      let run = false;
      let reason: string;
      if (state === 'disabled') reason = cause;
      else if (!scope.has(stage.name)) {
        // A sink (uncached) outside the selection still runs when all it reads is fresh, so reports follow.
        const inputsFresh = stage.inputs.every((input) => runs.has(input) || ['cached', 'disabled'].includes(states.get(input)!));
        run = stage.cache === false && inputsFresh;
        reason = run ? 'its inputs are fresh' : state === 'cached' ? 'cached' : `not selected; ${cause}`;
      } else if (named.has(stage.name)) {
        run = true;
        reason =
          selection.from !== undefined && !(selection.stages ?? []).includes(stage.name)
            ? `downstream of --from ${String(selection.from)}`
            : 'selected';
        if (state !== 'cached' && state !== 'uncached') reason += `; ${cause}`;
      } else if (selection.force) {
        run = true;
        reason = '--force';
      } else {
        run = state !== 'cached';
        reason = cause;
      }
      if (run) runs.add(stage.name);
      const expensive = stage.expensive ?? false;
      const unasked = run && expensive && explicit && !named.has(stage.name) && !selection.force;
      entries.push({
        name: String(stage.name),
        key: keys.get(stage.name)!,
        version: stage.version,
        state,
        cause,
        run,
        reason,
        expensive,
        unasked,
        previousSeconds,
      });
    }
    return entries;
  };

  const jobs = options.jobs ?? 1;
  const parallel = jobs > 1;

  /** Runs `selection`; a caller that has already planned it passes that plan, so the cache is read once. */
  const run = async (selection: Selection<keyof O> = {}, entries: PlanEntry[] = plan(selection)) => {
    const unasked = unaskedStages(entries);
    if (unasked.length > 0) throw new UnaskedTrainingError(unasked);
    const byEntry = new Map(entries.map((entry) => [entry.name, entry]));
    const willRun = new Set(entries.filter((e) => e.run).map((e) => e.name));
    const explicit = (selection.stages ?? []).length > 0 || selection.from !== undefined;
    const outputs: Partial<O> = {};
    const seconds = new Map<keyof O, number>();
    const reports: StageReport[] = [];
    const failures: { stage: string; error: Error }[] = [];
    const budget: ThreadBudget | null = parallel ? createThreadBudget(jobs) : null;
    const inProcess = parallel ? createThreadBudget(1) : null; // one stage at a time in this process: TF.js state is process-wide
    const stop = () => {
      budget?.close();
      inProcess?.close();
    };
    options.signal?.addEventListener('abort', stop, { once: true });

    // One promise per stage, so stages that share an input wait for the same run of it.
    const pending = new Map<keyof O, Promise<O[keyof O]>>();
    const obtain = (name: keyof O): Promise<O[keyof O]> => {
      let promise = pending.get(name);
      if (!promise) {
        promise = load(name).catch((error: Error) => {
          // A stage's dependants reject with its very error: it is collected once.
          if (!(error instanceof BudgetClosedError) && !failures.some((failure) => failure.error === error)) {
            failures.push({ stage: String(name), error });
            stop(); // start nothing new; stages already running finish (a failed load has no threads to release)
          }
          throw error;
        });
        promise.catch(() => {}); // handled where awaited, or at the end through failures
        pending.set(name, promise);
      }
      return promise;
    };

    const load = async (name: keyof O): Promise<O[keyof O]> => {
      const stage = byName.get(name)!;
      if (!isEnabled(stage)) {
        outputs[name] = null as O[keyof O];
        return outputs[name] as O[keyof O];
      }
      if (!willRun.has(String(name))) {
        try {
          const entry = cache.read<O[keyof O]>(String(name), keys.get(name)!);
          if (entry) {
            outputs[name] = entry.value;
            seconds.set(name, entry.seconds);
            return entry.value;
          }
        } catch (error) {
          if (!(error instanceof CacheCorruptError)) throw error;
          if (stage.expensive && explicit && !selection.force) {
            const entry = { ...byEntry.get(String(name))!, cause: `its cache entry is damaged: ${error.message}` };
            throw new UnaskedTrainingError([entry]);
          }
          log(`cache: ${error.message}; discarding the entry and recomputing ${String(name)}`);
          cache.remove(String(name), keys.get(name)!);
        }
      }
      return execute(stage);
    };

    const stageSeconds = (): Record<string, number> => {
      const table: Record<string, number> = {};
      for (const entry of entries) {
        const known = seconds.get(entry.name as keyof O) ?? (entry.state === 'cached' ? entry.previousSeconds : null);
        if (known !== null && known !== undefined) table[entry.name] = known;
      }
      return table;
    };

    const execute = async (stage: Stage<O, C>): Promise<O[keyof O]> => {
      const name = String(stage.name);
      const inputs = {} as Pick<O, keyof O>;
      const values = await Promise.all(stage.inputs.map(obtain));
      stage.inputs.forEach((input, i) => {
        inputs[input] = values[i]!;
      });
      // Elsewhere, a stage sees only the cache: it and its inputs must be cached stages.
      const cachedInputs = stage.inputs.every((input) => byName.get(input)!.cache !== false);
      const isolated = parallel && stage.threads !== undefined && stage.cache !== false && cachedInputs && options.isolate !== undefined;
      const asked = stage.threads?.(config) ?? 1;
      const request = typeof asked === 'number' ? { min: asked, max: asked } : asked;
      const priority = stage.cost?.(config) ?? Infinity; // a stage without a cost is quick: it goes first
      // A stage that must run here takes this process first (at once if it is free, so that it asks the budget
      // together with the stages that became ready with it), and while it waits for it, it holds no threads.
      const local = isolated || !inProcess ? null : (inProcess.tryAcquire(ONE) ?? (await inProcess.acquire(ONE, priority)));
      // Outside the budget (--jobs 1) a stage gets the most it asks for.
      const lease: ThreadLease | null = budget
        ? await budget.acquire(request, priority).catch((error: unknown) => {
            local?.release();
            throw error;
          })
        : null;
      const grant = lease?.threads ?? request.max;
      const onThreads = (listener: (threads: number) => void) => (lease ? lease.onChange(listener) : listener(grant));
      try {
        const planned = byEntry.get(name)!;
        if (planned.state === 'damaged') log(`cache: ${planned.cause}; recomputing ${name}`);
        log(`▶ ${name}: ${stage.description}${parallel && stage.threads ? ` (${grant} thread${grant === 1 ? '' : 's'})` : ''}`);
        let value: O[keyof O];
        let elapsed: number;
        if (isolated) {
          const job: StageJob = {
            stage: name,
            key: keys.get(stage.name)!,
            inputs: Object.fromEntries(
              stage.inputs.map((input) => [String(input), isEnabled(byName.get(input)!) ? keys.get(input)! : null]),
            ),
            made: made.get(stage.name)!,
            threads: grant,
          };
          await options.isolate!(job, onThreads);
          const entry = cache.read<O[keyof O]>(name, job.key);
          if (!entry) throw new Error(`stage ${name} finished in its process without writing its cache entry`);
          ({ value, seconds: elapsed } = entry);
        } else {
          ({ value, seconds: elapsed } = await runStage(stage, inputs, config, { log, stageSeconds, threads: grant, onThreads }));
          if (stage.cache !== false) cache.write(name, keys.get(stage.name)!, value, elapsed, made.get(stage.name));
        }
        outputs[stage.name] = value;
        seconds.set(stage.name, elapsed);
        reports.push({ name, outcome: 'ran', seconds: elapsed });
        log(`✔ ${name} done in ${elapsed.toFixed(1)} s`);
        return value;
      } catch (error) {
        stop(); // before its threads are released below, which would start the next stage
        throw error;
      } finally {
        local?.release();
        lease?.release();
      }
    };

    // Consecutive stages disabled by the same flag are one line, named by the last (the one that gathers them).
    let disabled: { hint: string | undefined; names: string[] } | null = null;
    const flushDisabled = () => {
      if (disabled === null) return;
      const { hint, names } = disabled;
      const label = names.length === 1 ? names[0] : `${names.at(-1)} (${names.length} stages)`;
      log(`- ${label}: disabled${hint ? `, ${hint} enables ${names.length === 1 ? 'it' : 'them'}` : ''}`);
      disabled = null;
    };
    const started: Promise<unknown>[] = [];
    for (const entry of entries) {
      const stage = byName.get(entry.name as keyof O)!;
      if (entry.state === 'disabled') {
        reports.push({ name: entry.name, outcome: 'disabled', seconds: 0 });
        if (disabled !== null && disabled.hint !== stage.enabledBy) flushDisabled();
        disabled ??= { hint: stage.enabledBy, names: [] };
        disabled.names.push(entry.name);
        continue;
      }
      flushDisabled();
      if (entry.run) {
        // --jobs 1 runs each stage before the next is looked at, as it always did.
        if (parallel) started.push(obtain(stage.name));
        else if (!(stage.name in outputs)) await obtain(stage.name);
      } else if (entry.state === 'cached') {
        reports.push({ name: entry.name, outcome: 'cached', seconds: 0 });
        log(`✔ ${entry.name}: cached`);
      } else {
        reports.push({ name: entry.name, outcome: 'skipped', seconds: 0 });
        log(`- ${entry.name}: skipped (${entry.reason})`);
      }
    }
    flushDisabled();
    await Promise.allSettled(started);
    options.signal?.removeEventListener('abort', stop);
    if (failures.length > 0) {
      const interrupted = failures.find(({ error }) => error.name === 'InterruptedError');
      if (interrupted && options.signal?.aborted) throw interrupted.error;
      if (failures.length === 1) throw failures[0]!.error;
      throw new StagesFailedError(failures);
    }
    const unfinished = entries.filter((entry) => entry.run && !(entry.name in outputs)).map((entry) => entry.name);
    if (unfinished.length > 0) throw new InterruptedError(`the run was interrupted before ${unfinished.join(', ')} ran`);
    files.save(); // only after a whole run: one that stops, fails or is interrupted leaves the cache folder as it was
    const order = new Map(entries.map((entry, i) => [entry.name, i]));
    reports.sort((a, b) => order.get(a.name)! - order.get(b.name)!);
    return { outputs, reports };
  };

  return { plan, run };
}
