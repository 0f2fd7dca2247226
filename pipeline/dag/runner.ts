// A small typed DAG runner. Each stage names its inputs (other stages) and the
// config fields it reads; its cache key hashes those values, its code version
// and its inputs' keys. A stage whose key is unchanged is loaded, not run.
//
//   plan  = order the stages, mark each cached / stale / missing / disabled,
//           choose which run (all stale, --stage, --from, --force)
//   run   = in order: load what a running stage needs, run it, cache it

import { CacheCorruptError, hashKey, type StageCache } from './cache.js';

/** What a stage's run function gets besides its inputs. */
export interface StageContext<C> {
  config: C;
  log: (line: string) => void;
  /** Wall time of every stage so far: this run's, or the cached entry's original. */
  stageSeconds: () => Record<string, number>;
}

/**
 * One node. O maps every stage name to its output type; N is this stage,
 * I the stages it reads. `run` receives exactly its inputs, typed.
 */
export interface Stage<O, C, N extends keyof O = keyof O, I extends keyof O = keyof O> {
  name: N;
  inputs: readonly I[];
  reads: readonly (keyof C)[];
  version: number; // bump when the stage's code changes what it produces
  description: string;
  cache?: boolean; // false: run whenever selected, never stored (sinks that write files)
  enabled?: (config: C) => boolean; // a disabled stage outputs null
  fingerprint?: (config: C) => string; // outside state the key must see, e.g. data file sizes
  run(inputs: Pick<O, I>, context: StageContext<C>): Promise<O[N]> | O[N];
}

/** Ties a stage's input list to its run signature; use it to declare every stage. */
export function defineStage<O, C>() {
  return <N extends keyof O, I extends keyof O>(stage: Stage<O, C, N, I>): Stage<O, C> =>
    stage as unknown as Stage<O, C>;
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

export type StageState = 'cached' | 'stale' | 'missing' | 'disabled' | 'uncached';

export interface PlanEntry {
  name: string;
  key: string;
  state: StageState;
  run: boolean; // will this run execute the stage
  reason: string; // why it runs or not, for --dry-run and --list
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
  run(selection?: Selection<keyof O>): Promise<{ outputs: Partial<O>; reports: StageReport[] }>;
}

export interface RunnerOptions {
  cache: StageCache;
  log?: (line: string) => void;
}

/** Builds a runner over `stages` for one resolved config. */
export function createRunner<O, C>(stages: readonly Stage<O, C>[], config: C, options: RunnerOptions): Runner<O> {
  const ordered = topologicalOrder(stages);
  const byName = new Map(ordered.map((s) => [s.name, s]));
  const log = options.log ?? (() => {});
  const { cache } = options;

  const keys = new Map<keyof O, string>();
  for (const stage of ordered) {
    keys.set(
      stage.name,
      hashKey({
        stage: stage.name,
        version: stage.version,
        reads: Object.fromEntries(stage.reads.map((field) => [field, config[field]])),
        inputs: stage.inputs.map((input) => [input, keys.get(input)]),
        fingerprint: stage.fingerprint?.(config) ?? null,
      }),
    );
  }

  const isEnabled = (stage: Stage<O, C>) => stage.enabled?.(config) ?? true;
  const stateOf = (stage: Stage<O, C>): StageState => {
    if (!isEnabled(stage)) return 'disabled';
    if (stage.cache === false) return 'uncached';
    return cache.state(String(stage.name), keys.get(stage.name)!);
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
    const forced = new Set<keyof O>(selection.stages ?? []);
    if (selection.from !== undefined) for (const name of downstreamOf(selection.from)) forced.add(name);
    const explicit = forced.size > 0;
    const scope = explicit ? upstreamOf(forced) : new Set(ordered.map((s) => s.name));

    const runs = new Set<keyof O>();
    const entries: PlanEntry[] = [];
    for (const stage of ordered) {
      const state = stateOf(stage);
      const entry = { name: String(stage.name), key: keys.get(stage.name)!, state };
      const inputRuns = stage.inputs.filter((input) => runs.has(input));
      let run = false;
      let reason: string;
      if (state === 'disabled') reason = 'disabled by the config';
      else if (!scope.has(stage.name)) {
        // A sink (uncached) outside the selection still runs when all it reads is fresh, so reports follow.
        const inputsFresh = stage.inputs.every((input) => runs.has(input) || ['cached', 'disabled'].includes(stateOf(byName.get(input)!)));
        if (stage.cache === false && inputsFresh) {
          run = true;
          reason = 'its inputs are fresh';
        } else {
          reason = stage.cache === false ? 'an input is stale: not selected' : 'not selected';
        }
      } else if (forced.has(stage.name)) {
        run = true;
        reason = selection.from !== undefined && !(selection.stages ?? []).includes(stage.name) ? `downstream of --from ${String(selection.from)}` : 'selected';
      } else if (selection.force) {
        run = true;
        reason = '--force';
      } else if (state !== 'cached') {
        run = true;
        reason = state === 'uncached' ? 'never cached' : state;
      } else {
        reason = 'cached';
      }
      if (run && inputRuns.length > 0 && reason === 'cached') reason = `input ${String(inputRuns[0])} runs`;
      if (run) runs.add(stage.name);
      entries.push({ ...entry, run, reason });
    }
    return entries;
  };

  const run = async (selection: Selection<keyof O> = {}) => {
    const entries = plan(selection);
    const willRun = new Set(entries.filter((e) => e.run).map((e) => e.name));
    const outputs: Partial<O> = {};
    const seconds = new Map<keyof O, number>();
    const reports: StageReport[] = [];

    const obtain = async (name: keyof O): Promise<O[keyof O]> => {
      if (name in outputs) return outputs[name] as O[keyof O];
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
          log(`cache: ${error.message}; discarding the entry and recomputing ${String(name)}`);
          cache.remove(String(name), keys.get(name)!);
        }
      }
      return execute(stage);
    };

    const stageSeconds = (): Record<string, number> => {
      const table: Record<string, number> = {};
      for (const entry of entries) {
        const known = seconds.get(entry.name as keyof O) ?? (entry.state === 'cached' ? cache.seconds(entry.name, entry.key) : null);
        if (known !== null && known !== undefined) table[entry.name] = known;
      }
      return table;
    };

    const execute = async (stage: Stage<O, C>): Promise<O[keyof O]> => {
      const inputs = {} as Pick<O, keyof O>;
      for (const input of stage.inputs) inputs[input] = await obtain(input);
      log(`▶ ${String(stage.name)}: ${stage.description}`);
      const start = performance.now();
      const value = await stage.run(inputs, { config, log, stageSeconds });
      const elapsed = (performance.now() - start) / 1000;
      if (stage.cache !== false) cache.write(String(stage.name), keys.get(stage.name)!, value, elapsed);
      outputs[stage.name] = value;
      seconds.set(stage.name, elapsed);
      reports.push({ name: String(stage.name), outcome: 'ran', seconds: elapsed });
      log(`✔ ${String(stage.name)} done in ${elapsed.toFixed(1)} s`);
      return value;
    };

    for (const entry of entries) {
      const stage = byName.get(entry.name as keyof O)!;
      if (entry.run) {
        if (!(stage.name in outputs)) await obtain(stage.name);
      } else if (entry.state === 'disabled') {
        reports.push({ name: entry.name, outcome: 'disabled', seconds: 0 });
        log(`- ${entry.name}: disabled`);
      } else if (entry.state === 'cached') {
        reports.push({ name: entry.name, outcome: 'cached', seconds: 0 });
        log(`✔ ${entry.name}: cached`);
      } else {
        reports.push({ name: entry.name, outcome: 'skipped', seconds: 0 });
        log(`- ${entry.name}: skipped (${entry.reason})`);
      }
    }
    return { outputs, reports };
  };

  return { plan, run };
}

/** Reads a cached output without running anything; null when absent or corrupt. */
export function cachedOutput<O, C>(stages: readonly Stage<O, C>[], config: C, cache: StageCache, name: keyof O): O[keyof O] | null {
  const runner = createRunner(stages, config, { cache });
  const entry = runner.plan().find((e) => e.name === String(name));
  if (!entry || entry.state !== 'cached') return null;
  try {
    return cache.read<O[keyof O]>(String(name), entry.key)?.value ?? null;
  } catch (error) {
    if (error instanceof CacheCorruptError) return null;
    throw error;
  }
}
