// The graph: stages, what each reads, and their order. A stage is a plain typed
// function with a name, the stages it takes as inputs, and the config fields it
// reads; the runner (runner.ts) wires them by those names.

import type { ThreadRequest } from './budget.js';
import type { FileHashes } from './file-hashes.js';

/** What a stage's run function gets besides its inputs. */
export interface StageContext<C> {
  config: C; // only the fields the stage declares: reading another throws (UndeclaredReadError)
  log: (line: string) => void;
  /** Wall time of every stage so far: this run's, or the cached entry's original. */
  stageSeconds: () => Record<string, number>;
  /** The cache key of every cached stage in this run's plan, so a report can say which entries it was made from. */
  stageKeys: () => Record<string, string>;
  threads: number; // threads it may use now: what its `threads` asked for, as far as --jobs grants it
  /** For a stage that asked for a range: calls listener with its count now, and again when --jobs changes it. */
  onThreads: (listener: (threads: number) => void) => void;
}

/**
 * One node. O maps every stage name to its output type, C is the config; N is this stage,
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
  // With --jobs > 1 a stage that declares them runs in a process of its own, which costs about a second
  // to start: declare them for long stages only. Undeclared, a stage takes one thread, in this process.
  threads?: (config: C) => number | ThreadRequest;
  // Rough relative work (e.g. images trained × a per-image factor), for ordering only: with --jobs > 1,
  // of the stages waiting for threads the costliest starts first; those without a cost (quick ones) before all.
  cost?: (config: C) => number;
  run(inputs: Pick<O, I>, context: StageContext<C>): Promise<O[N]> | O[N];
}

/** Ties a stage's input list to its run signature; use it to declare every stage. */
export function defineStage<O, C>() {
  // `run` is a method, whose parameters TypeScript compares both ways: a stage of narrower inputs is a Stage<O, C>.
  return <N extends keyof O, I extends keyof O>(stage: Stage<O, C, N, I>): Stage<O, C> => stage;
}

interface Node {
  name: PropertyKey;
  inputs: readonly PropertyKey[];
}

/**
 * Stages in dependency order (each after its inputs, otherwise as given), by depth-first search;
 * throws naming the unknown input, or the cycle as a closed path.
 */
export function topologicalOrder<S extends Node>(stages: readonly S[]): S[] {
  const byName = new Map(stages.map((s) => [s.name, s]));
  const ordered: S[] = [];
  const done = new Set<PropertyKey>();
  const path: PropertyKey[] = []; // the stages being visited, each an input of the one before
  const visit = (stage: S) => {
    if (done.has(stage.name)) return;
    if (path.includes(stage.name)) {
      const cycle = [...path.slice(path.indexOf(stage.name)), stage.name];
      throw new Error(`the stages form a cycle: ${cycle.map(String).join(' → ')}`);
    }
    path.push(stage.name);
    for (const input of stage.inputs) {
      const upstream = byName.get(input);
      if (!upstream) throw new Error(`stage ${String(stage.name)}: input ${String(input)} is not a stage`);
      visit(upstream);
    }
    path.pop();
    done.add(stage.name);
    ordered.push(stage);
  };
  for (const stage of stages) visit(stage);
  return ordered;
}

/** `root` and every stage that reads it, directly or not; `ordered` is in dependency order. */
export function downstreamOf<S extends Node>(ordered: readonly S[], root: PropertyKey): Set<PropertyKey> {
  const found = new Set<PropertyKey>([root]);
  for (const stage of ordered) if (stage.inputs.some((input) => found.has(input))) found.add(stage.name);
  return found;
}

/** `roots` and every stage they read, directly or not. */
export function upstreamOf<S extends Node>(byName: ReadonlyMap<PropertyKey, S>, roots: Iterable<PropertyKey>): Set<PropertyKey> {
  const found = new Set<PropertyKey>();
  const visit = (name: PropertyKey) => {
    if (found.has(name)) return;
    found.add(name);
    for (const input of byName.get(name)!.inputs) visit(input);
  };
  for (const root of roots) visit(root);
  return found;
}
