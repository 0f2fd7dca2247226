// The plan: each stage's cache key, its state, and whether this run executes it, and why.
//
//   key    = hash of the stage's code version, the config fields it reads, its fingerprint
//            (e.g. the data files' SHA-256) and its inputs' keys, and only those
//   state  = cached / stale / missing / damaged / disabled / uncached (a sink), from the cache;
//            a stale stage says what changed since its closest earlier entry ("lr 0.01 → 0.05")
//   run    = every stale stage; --stage and upstream that is not cached; --from and downstream;
//            --force ignores the cache. An expensive stage (a training) that --stage / --from
//            did not name is marked unasked: the run stops before any work.

import { hashKey, type Made, type StageCache } from './cache.js';
import type { FileHashes } from './file-hashes.js';
import { downstreamOf, type Stage, upstreamOf } from './graph.js';

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

/** The expensive stages a plan would start unasked. */
export function unaskedStages(entries: readonly PlanEntry[]): PlanEntry[] {
  return entries.filter((entry) => entry.unasked);
}

export interface Planner<O> {
  keys: ReadonlyMap<keyof O, string>;
  made: ReadonlyMap<keyof O, Made>; // what each key hashes, recorded with the entry so a later run can say what changed
  plan(selection?: Selection<keyof O>): PlanEntry[];
}

/** The difference found when none is: the entry was made from the same inputs under another key. */
const SAME_INPUTS = 'cached under another key';

const formatValue = (value: unknown) => (typeof value === 'string' ? JSON.stringify(value) : String(value));

interface PlanContext<O, C> {
  ordered: readonly Stage<O, C>[];
  byName: ReadonlyMap<PropertyKey, Stage<O, C>>;
  config: C;
  cache: StageCache;
  fieldName: (field: keyof C) => string;
  keys: ReadonlyMap<keyof O, string>;
  made: ReadonlyMap<keyof O, Made>;
  baseline: ReadonlyMap<keyof O, Made> | null; // what each stage of the run in --out hashed
}

/** Each stage's key and what it hashes (its Made record) under `config`. */
function records<O, C>(ordered: readonly Stage<O, C>[], config: C, files: FileHashes) {
  const keys = new Map<keyof O, string>();
  const made = new Map<keyof O, Made>();
  for (const stage of ordered) {
    // A disabled stage outputs null whatever the config: it reads nothing, so its key is constant.
    const enabled = stage.enabled?.(config) ?? true;
    const record: Made = {
      version: stage.version,
      reads: enabled ? Object.fromEntries(stage.reads.map((field) => [field, config[field]])) : {},
      fingerprint: enabled ? (stage.fingerprint?.(config, files) ?? {}) : {},
      inputs: enabled ? Object.fromEntries(stage.inputs.map((input) => [input, keys.get(input)!])) : {},
    };
    made.set(stage.name, record);
    keys.set(stage.name, hashKey({ stage: stage.name, ...(enabled ? record : { disabled: true }) }));
  }
  return { keys, made };
}

/**
 * Keys and plans for `ordered` (in dependency order) under one resolved config. `baseline` is the
 * config of the run in --out, if any: a stale stage is explained against it, not against whatever was cached last.
 */
export function createPlanner<O, C>(
  ordered: readonly Stage<O, C>[],
  config: C,
  options: { cache: StageCache; files: FileHashes; fieldName: (field: keyof C) => string; baseline?: C },
): Planner<O> {
  const { keys, made } = records(ordered, config, options.files);
  const baseline = options.baseline === undefined ? null : records(ordered, options.baseline, options.files).made;
  const byName = new Map<PropertyKey, Stage<O, C>>(ordered.map((s) => [s.name, s]));
  const context: PlanContext<O, C> = { ordered, byName, config, cache: options.cache, fieldName: options.fieldName, keys, made, baseline };
  return { keys, made, plan: (selection = {}) => plan(context, selection) };
}

/** What differs between this run's inputs and an entry's; `runs` words an upstream change. */
function differences<O, C>(context: PlanContext<O, C>, stage: Stage<O, C>, previous: Made | null, runs: Set<PropertyKey>): string[] {
  if (previous === null) return ['the cached entry does not record what it read'];
  const current = context.made.get(stage.name)!;
  const found: string[] = [];
  if (previous.version !== current.version) found.push(`version ${previous.version} → ${current.version}`);
  for (const [field, value] of Object.entries(current.reads)) {
    const before = previous.reads[field];
    if (JSON.stringify(before) !== JSON.stringify(value))
      found.push(`${context.fieldName(field as keyof C)} ${formatValue(before)} → ${formatValue(value)}`);
  }
  for (const [label, value] of Object.entries(current.fingerprint)) {
    if (previous.fingerprint[label] !== value) found.push(`${label} changed`);
  }
  for (const [input, key] of Object.entries(current.inputs)) {
    if (previous.inputs[input] !== key) found.push(`upstream ${input} ${runs.has(input) ? 'reruns' : 'changed'}`);
  }
  return found.length > 0 ? found : [SAME_INPUTS];
}

/** The state of a stage, why, and what the closest earlier entry of it took. */
function status<O, C>(
  context: PlanContext<O, C>,
  stage: Stage<O, C>,
  runs: Set<PropertyKey>,
): Pick<PlanEntry, 'state' | 'cause' | 'previousSeconds'> {
  if (!(stage.enabled?.(context.config) ?? true)) {
    const cause = stage.enabledBy ? `${stage.enabledBy} enables it` : 'disabled by the config';
    return { state: 'disabled', cause, previousSeconds: null };
  }
  if (stage.cache === false) return { state: 'uncached', cause: 'never cached: runs whenever selected', previousSeconds: null };
  const name = String(stage.name);
  const key = context.keys.get(stage.name)!;
  const found = context.cache.state(name, key);
  if (found.state === 'cached') return { state: 'cached', cause: 'cached', previousSeconds: found.seconds };
  if (found.state === 'missing') return { state: 'missing', cause: 'not in the cache', previousSeconds: null };
  // The closest earlier entry explains best what changed; ties go to the newest.
  let best: { diffs: string[]; seconds: number } | null = null;
  for (const entry of context.cache.entries(name).filter((entry) => entry.key !== key)) {
    const diffs = differences(context, stage, entry.made, runs);
    if (best === null || diffs.length < best.diffs.length) best = { diffs, seconds: entry.seconds };
  }
  const previousSeconds = best?.seconds ?? null;
  if (found.state === 'damaged') return { state: 'damaged', cause: `damaged cache entry: ${found.problem}`, previousSeconds };
  // The run in --out is what the user compares with: its config explains the change, when it differs.
  const fromOut = context.baseline?.get(stage.name);
  const againstOut = fromOut ? differences(context, stage, fromOut, runs) : [];
  if (againstOut.length > 0 && againstOut[0] !== SAME_INPUTS) return { state: 'stale', cause: againstOut.join(', '), previousSeconds };
  return { state: 'stale', cause: best ? best.diffs.join(', ') : 'only damaged entries in the cache', previousSeconds };
}

/** Which stages a run of `selection` executes, and why. */
function plan<O, C>(context: PlanContext<O, C>, selection: Selection<keyof O>): PlanEntry[] {
  const { ordered, byName, keys } = context;
  for (const name of [...(selection.stages ?? []), ...(selection.from === undefined ? [] : [selection.from])]) {
    if (!byName.has(name)) {
      throw new Error(`unknown stage ${JSON.stringify(name)}: expected one of ${ordered.map((s) => String(s.name)).join(', ')}`);
    }
  }
  // Stages this run must execute whatever the cache says.
  const named = new Set<PropertyKey>(selection.stages ?? []);
  if (selection.from !== undefined) for (const name of downstreamOf(ordered, selection.from)) named.add(name);
  const explicit = named.size > 0;
  const scope = explicit ? upstreamOf(byName, named) : new Set(ordered.map((s) => s.name));

  const runs = new Set<PropertyKey>();
  const states = new Map<PropertyKey, StageState>();
  return ordered.map((stage): PlanEntry => {
    const { state, cause, previousSeconds } = status(context, stage, runs);
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
      const downstream = selection.from !== undefined && !(selection.stages ?? []).includes(stage.name);
      reason = downstream ? `downstream of --from ${String(selection.from)}` : 'selected';
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
    const key = keys.get(stage.name)!;
    return { name: String(stage.name), key, version: stage.version, state, cause, run, reason, expensive, unasked, previousSeconds };
  });
}
