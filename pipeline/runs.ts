// The trainings the cache holds, as runs to list (--runs) and to clean up (--gc).
//
//   a run   = one cached training (train, reference, an experiment variant), its config told by what
//             it and its upstream stages read, its accuracies by the evaluate entry that scored it
//   used by = the report folders made from it: each publish pins its stage keys in the cache
//             (pins.json), which also keeps them from being pruned
//
// Everything here reads manifests and the JSON half of entries: no TF.js, no weights.

import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { CONFIG_KEYS, DEFAULTS, FIELDS, type Config } from './config.js';
import type { EntryInfo, StageCache } from './dag/cache.js';
import { pinEntries, readPins } from './output/cache-folder.js';
import { duration, percent } from './render/format.js';
import { TRAINING_STAGE_NAMES } from './stage-names.js';
import type { Evaluation, MetricsFile, Provenance, TrainedModel } from './types.js';
import type { VariantResult } from './stages/experiments.js';

export interface RunRow {
  stage: string; // train (TF.js), reference, experiment-<variant>
  key: string;
  config: Partial<Config>; // what differs from the defaults, among the fields it and its upstream read
  valAccuracy: number | null;
  testAccuracy: number | null; // null until an evaluate entry scored it
  trainSeconds: number;
  createdAt: string;
  commit: string; // of the run that trained it; 'unknown' for entries made before it was recorded
  usedBy: string[]; // report folders made from this entry (the cache's pins)
}

export const SORT_COLUMNS = ['when', 'stage', 'val', 'test', 'time'] as const;
export type SortColumn = (typeof SORT_COLUMNS)[number];

/** The stage keys a report folder was made from, or why they cannot be known. */
export function folderStageKeys(folder: string): Record<string, string> | string {
  const file = path.join(folder, 'metrics.json');
  if (!existsSync(file)) return `${file}: expected the metrics.json of a report folder, found no such file`;
  let metrics: Partial<MetricsFile>;
  try {
    metrics = JSON.parse(readFileSync(file, 'utf8')) as Partial<MetricsFile>;
  } catch (error) {
    return `${file}: expected JSON, found a syntax error (${(error as Error).message})`;
  }
  if (!metrics.stage_keys) {
    return `${file}: expected stage_keys (written since runs record their cache entries), found none; rerun npm run pipeline -- --stage report --out ${folder} to record them`;
  }
  return metrics.stage_keys;
}

/** What an entry and everything upstream of it read, merged: its share of the config. */
function readsOf(cache: StageCache, stage: string, key: string, byStage: Map<string, EntryInfo[]>): Record<string, unknown> {
  const info = byStage.get(stage)?.find((entry) => entry.key === key);
  if (!info?.made) return {};
  const upstream = Object.entries(info.made.inputs).map(([input, inputKey]) => readsOf(cache, input, inputKey, byStage));
  return Object.assign({}, ...upstream, info.made.reads);
}

/** The fields of `reads` that differ from the defaults. */
function differencesFromDefaults(reads: Record<string, unknown>): Partial<Config> {
  const found: Record<string, unknown> = {};
  for (const key of CONFIG_KEYS) if (Object.hasOwn(reads, key) && reads[key] !== DEFAULTS[key]) found[key] = reads[key];
  return found as Partial<Config>;
}

/** Every cached training, newest first, with its accuracies and the report folders that use it. */
export function cachedRuns(cache: StageCache): RunRow[] {
  const stages = ['preprocess', 'init', 'evaluate', ...TRAINING_STAGE_NAMES];
  const byStage = new Map(stages.map((stage) => [stage, cache.entries(stage)]));
  // A folder the user has deleted since uses nothing; its pins go with the next --gc.
  const usedBy = Object.entries(readPins(cache.dir))
    .filter(([folder]) => existsSync(folder))
    .map(([folder, keys]) => ({ folder, keys }));
  const scores = (byStage.get('evaluate') ?? []).map((entry) => ({
    entry,
    value: cache.read<Evaluation>('evaluate', entry.key, false)?.value,
  }));
  const tested = (stage: string, key: string): number | null => {
    const scored = scores.find(({ entry }) => entry.made?.inputs[stage] === key);
    const evaluation = stage === 'train' ? scored?.value?.tfjs : scored?.value?.reference;
    return evaluation?.testAccuracy ?? null;
  };
  const rows: RunRow[] = [];
  for (const stage of TRAINING_STAGE_NAMES) {
    for (const entry of byStage.get(stage) ?? []) {
      const value = cache.read<(TrainedModel | VariantResult) & { trainedBy?: Provenance }>(stage, entry.key, false)?.value ?? null;
      if (value === null) continue; // a disabled stage's null output
      const isVariant = 'testAccuracy' in value;
      rows.push({
        stage,
        key: entry.key,
        config: differencesFromDefaults(readsOf(cache, stage, entry.key, byStage)),
        valAccuracy: value.history.at(-1)?.valAccuracy ?? null,
        testAccuracy: isVariant ? value.testAccuracy : tested(stage, entry.key),
        trainSeconds: value.trainSeconds,
        createdAt: entry.createdAt,
        commit: value.trainedBy?.gitCommit ?? 'unknown',
        usedBy: usedBy.filter(({ keys }) => keys[stage] === entry.key).map(({ folder }) => folder),
      });
    }
  }
  return rows.sort((a, b) => b.createdAt.localeCompare(a.createdAt));
}

/** Rows in the order of `column`: the newest, the stage name, or the highest accuracy or time first. */
export function sortRuns(rows: readonly RunRow[], column: SortColumn): RunRow[] {
  const numeric = (value: number | null) => value ?? Number.NEGATIVE_INFINITY;
  const compare: Record<SortColumn, (a: RunRow, b: RunRow) => number> = {
    when: (a, b) => b.createdAt.localeCompare(a.createdAt),
    stage: (a, b) => a.stage.localeCompare(b.stage) || b.createdAt.localeCompare(a.createdAt),
    val: (a, b) => numeric(b.valAccuracy) - numeric(a.valAccuracy),
    test: (a, b) => numeric(b.testAccuracy) - numeric(a.testAccuracy),
    time: (a, b) => b.trainSeconds - a.trainSeconds,
  };
  return [...rows].sort(compare[column]);
}

/** A config difference as flags, e.g. "--lr 0.05 --no-reference"; "defaults" when there is none. */
export function configFlags(config: Partial<Config>): string {
  const words = (Object.keys(config) as (keyof Config)[]).map((key) => {
    const value = config[key];
    const flag = FIELDS[key].flag;
    return typeof value === 'boolean' ? (value ? `--${flag}` : `--no-${flag}`) : `--${flag} ${String(value)}`;
  });
  return words.length > 0 ? words.join(' ') : 'defaults';
}

/** The --runs table: a header and one aligned line per training. */
export function runsTable(rows: readonly RunRow[], relativeTo = process.cwd()): string {
  const header = ['stage', 'config (vs defaults)', 'val', 'test', 'trained in', 'when', 'commit', 'used by'];
  const lines = rows.map((row) => [
    row.stage,
    configFlags(row.config),
    row.valAccuracy === null ? '-' : percent(row.valAccuracy),
    row.testAccuracy === null ? 'not evaluated' : percent(row.testAccuracy),
    duration(row.trainSeconds, 1),
    row.createdAt.replace('T', ' ').replace(/:\d\d\.\d+Z$/, ' UTC'),
    row.commit === 'unknown' ? 'unknown' : row.commit.slice(0, 8),
    row.usedBy.map((folder) => shownPath(folder, relativeTo)).join(', ') || '-',
  ]);
  const widths = header.map((title, column) => Math.max(title.length, ...lines.map((line) => line[column]!.length)));
  return [header, ...lines]
    .map((cells) =>
      cells
        .map((cell, column) => cell.padEnd(widths[column]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** A folder as the user would type it from `here`: relative inside it, else absolute. */
function shownPath(folder: string, here: string): string {
  const relative = path.relative(here, folder);
  return relative === '' ? '.' : relative.startsWith('..') || path.isAbsolute(relative) ? folder : relative;
}

/** Bytes of everything under `target`. */
export function bytesUnder(target: string): number {
  const stat = statSync(target);
  if (!stat.isDirectory()) return stat.size;
  return readdirSync(target).reduce((sum, name) => sum + bytesUnder(path.join(target, name)), 0);
}

export interface Removed {
  stage: string;
  key: string;
  bytes: number;
}

/**
 * Removes every cache entry that none of `keep` (report folder → its stage keys) was made from, and
 * the pins of every other folder. Only entries go, each a folder our manifest marks; report folders
 * and anything else are never touched.
 */
export function collectGarbage(cache: StageCache, keep: Record<string, Record<string, string>>): Removed[] {
  const cacheDir = cache.dir;
  const kept = new Set(Object.values(keep).flatMap((keys) => Object.entries(keys).map(([stage, key]) => `${stage}/${key}`)));
  for (const folder of Object.keys(readPins(cacheDir))) if (!Object.hasOwn(keep, folder)) pinEntries(cacheDir, folder, null);
  for (const [folder, keys] of Object.entries(keep)) pinEntries(cacheDir, folder, keys);
  const removed: Removed[] = [];
  const stageDirs = existsSync(cacheDir) ? readdirSync(cacheDir).filter((name) => statSync(path.join(cacheDir, name)).isDirectory()) : [];
  for (const stage of stageDirs) {
    for (const entry of cache.entries(stage)) {
      if (kept.has(`${stage}/${entry.key}`)) continue;
      const bytes = bytesUnder(path.join(cacheDir, stage, entry.key));
      cache.remove(stage, entry.key);
      removed.push({ stage, key: entry.key, bytes });
    }
  }
  return removed;
}

/** The cache's size in a line, for --list. */
export function cacheSizeLine(cache: StageCache, cacheDir: string): string {
  if (!existsSync(cacheDir)) return `cache ${cacheDir}: empty (not created yet)`;
  const stageDirs = readdirSync(cacheDir).filter((name) => statSync(path.join(cacheDir, name)).isDirectory());
  const entries = stageDirs.reduce((sum, stage) => sum + cache.entries(stage).length, 0);
  return `cache ${cacheDir}: ${entries} entries, ${megabytes(bytesUnder(cacheDir))}`;
}

/** A size for a line: kB below a megabyte, else MB. */
export const megabytes = (bytes: number) => (bytes < 1e6 ? `${Math.ceil(bytes / 1e3)} kB` : `${(bytes / 1e6).toFixed(1)} MB`);
