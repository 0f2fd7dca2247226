// The on-disk cache of stage outputs. An entry is a folder
//   <cacheDir>/<stage>/<key>/{value.json, arrays.bin, manifest.json}
// written under a temporary name and renamed into place, so a killed run
// leaves no half entry. The manifest records each file's size and SHA-256,
// and what the stage read to make the entry (so a rerun can say what changed);
// an entry whose manifest or bytes are damaged is reported and recomputed.

import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileRecord, recordProblem, sha256, writeFileWithPath } from '../file-records.js';
import { decodeValue, encodeValue } from './value-codec.js';
import { isEntry, MANIFEST, readPins, tagCacheFolder } from '../output/cache-folder.js';
import { processAlive } from '../output/lock.js';

const ENTRIES_PER_STAGE = 3; // recent configs stay cached, e.g. a quick subset run beside the full one
const VALUE_FILE = 'value.json';
const ARRAYS_FILE = 'arrays.bin';

/** What a stage read to make an entry; the runner compares it with a new run's to name what changed. */
export interface Made {
  version: number;
  reads: Record<string, unknown>; // config field → value
  fingerprint: Record<string, string>; // outside state, e.g. data file → SHA-256
  inputs: Record<string, string>; // input stage → its key
}

interface Manifest {
  stage: string;
  key: string;
  seconds: number; // how long the stage took when it produced this entry
  createdAt: string;
  made?: Made; // absent in entries written before it was recorded
  files: Record<string, { bytes: number; sha256: string }>;
}

/** An entry as its manifest describes it, without reading its data. */
export interface EntryInfo {
  key: string;
  seconds: number;
  createdAt: string;
  made: Made | null;
}

export interface CacheEntry<T> {
  value: T;
  seconds: number;
}

export class CacheCorruptError extends Error {
  override name = 'CacheCorruptError';
}

const isRecord = (value: unknown): value is Record<string, unknown> => value !== null && typeof value === 'object' && !Array.isArray(value);

function isMade(value: unknown): value is Made {
  return (
    isRecord(value) && typeof value.version === 'number' && isRecord(value.reads) && isRecord(value.fingerprint) && isRecord(value.inputs)
  );
}

/** Reads and checks a manifest's shape; throws CacheCorruptError naming the file for null, garbage or a wrong shape. */
function readManifest(manifestFile: string): Manifest {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(manifestFile, 'utf8'));
  } catch (error) {
    throw new CacheCorruptError(`${manifestFile}: expected a JSON manifest, found unreadable data (${(error as Error).message})`);
  }
  const files = isRecord(parsed) ? parsed.files : undefined;
  const fileEntriesOk =
    isRecord(files) &&
    [VALUE_FILE, ARRAYS_FILE].every(
      (name) => isRecord(files[name]) && typeof files[name].bytes === 'number' && typeof files[name].sha256 === 'string',
    );
  if (!isRecord(parsed) || !fileEntriesOk || typeof parsed.seconds !== 'number') {
    const found =
      parsed === null
        ? 'null'
        : Array.isArray(parsed)
          ? 'an array'
          : isRecord(parsed)
            ? 'an object without seconds and both files'
            : typeof parsed;
    throw new CacheCorruptError(
      `${manifestFile}: expected a manifest with seconds and the size and SHA-256 of ${VALUE_FILE} and ${ARRAYS_FILE}, found ${found}`,
    );
  }
  const manifest = parsed as unknown as Manifest;
  return { ...manifest, made: isMade(parsed.made) ? parsed.made : undefined };
}

export type EntryState =
  | { state: 'cached'; seconds: number } // the run time its manifest records
  | { state: 'stale' | 'missing' }
  | { state: 'damaged'; problem: string }; // a manifest that is null, garbage, or names files that are not there

export interface StageCache {
  readonly dir: string;
  /** The state of `stage` at `key` from its manifest and file sizes, without hashing: present, damaged, absent, or another key exists. */
  state(stage: string, key: string): EntryState;
  /** Every readable entry of `stage`, newest first; damaged ones are left out. */
  entries(stage: string): EntryInfo[];
  /**
   * Reads and verifies an entry; null when absent; throws CacheCorruptError when its bytes changed.
   * Without `arrays`, only its JSON half, its typed arrays as null: what --runs reads, without the weights.
   */
  read<T>(stage: string, key: string, arrays?: boolean): CacheEntry<T> | null;
  write(stage: string, key: string, value: unknown, seconds: number, made?: Made): void;
  /** Deletes an entry (after corruption was reported, or by --gc). */
  remove(stage: string, key: string): void;
}

/**
 * A cache rooted at `cacheDir`. Each stage keeps its newest few entries, and every pinned one: what
 * a report folder was made from, so a named run's training is never pruned (--gc removes those).
 */
export function createCache(cacheDir: string): StageCache {
  const entryDir = (stage: string, key: string) => path.join(cacheDir, stage, key);

  return {
    dir: cacheDir,
    state(stage, key) {
      const dir = entryDir(stage, key);
      const manifestFile = path.join(dir, MANIFEST);
      if (existsSync(manifestFile)) {
        try {
          const manifest = readManifest(manifestFile);
          for (const [name, expected] of Object.entries(manifest.files)) {
            const file = path.join(dir, name);
            const bytes = existsSync(file) ? statSync(file).size : null;
            if (bytes !== expected.bytes) {
              throw new CacheCorruptError(
                `${file}: expected ${expected.bytes} bytes, found ${bytes === null ? 'the file missing' : bytes}`,
              );
            }
          }
          return { state: 'cached', seconds: manifest.seconds };
        } catch (error) {
          if (!(error instanceof CacheCorruptError)) throw error;
          return { state: 'damaged', problem: error.message };
        }
      }
      const stageDir = path.join(cacheDir, stage);
      const others = existsSync(stageDir) ? readdirSync(stageDir).filter((name) => !name.startsWith('.')) : [];
      return { state: others.length > 0 ? 'stale' : 'missing' };
    },

    entries(stage) {
      const stageDir = path.join(cacheDir, stage);
      if (!existsSync(stageDir)) return [];
      const found: EntryInfo[] = [];
      for (const key of readdirSync(stageDir)) {
        if (key.startsWith('.')) continue;
        const manifestFile = path.join(stageDir, key, MANIFEST);
        if (!existsSync(manifestFile)) continue;
        try {
          const manifest = readManifest(manifestFile);
          found.push({ key, seconds: manifest.seconds, createdAt: String(manifest.createdAt), made: manifest.made ?? null });
        } catch (error) {
          if (!(error instanceof CacheCorruptError)) throw error;
        }
      }
      return found.sort((a, b) => b.createdAt.localeCompare(a.createdAt));
    },

    read<T>(stage: string, key: string, arrays = true): CacheEntry<T> | null {
      const dir = entryDir(stage, key);
      const manifestFile = path.join(dir, MANIFEST);
      if (!existsSync(manifestFile)) return null;
      const manifest = readManifest(manifestFile);
      const verified = (name: string): Buffer => {
        const file = path.join(dir, name);
        const bytes = existsSync(file) ? readFileSync(file) : null;
        const problem = recordProblem(file, manifest.files[name]!, bytes); // readManifest checked both records
        if (problem) throw new CacheCorruptError(problem);
        return bytes!;
      };
      const value = decodeValue<T>(verified(VALUE_FILE).toString('utf8'), arrays ? verified(ARRAYS_FILE) : null);
      return { value, seconds: manifest.seconds };
    },

    write(stage, key, value, seconds, made) {
      writeEntry(cacheDir, { stage, key, seconds, createdAt: new Date().toISOString(), ...(made ? { made } : {}) }, value);
    },

    remove(stage, key) {
      // Renamed first, so a run killed mid-removal leaves an orphan the next write clears, never half an entry.
      const doomed = temporaryEntry(path.join(cacheDir, stage), key);
      try {
        renameSync(entryDir(stage, key), doomed);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
        throw error;
      }
      rmSync(doomed, { recursive: true, force: true });
    },
  };
}

/** A name beside the entries for one being written or removed by this process; removeOrphans clears it once the process is gone. */
function temporaryEntry(stageDir: string, key: string): string {
  return path.join(stageDir, `.tmp-${key}-${process.pid}-${Math.random().toString(36).slice(2)}`);
}

/** Writes an entry under a temporary name, its manifest last, then renames it into place and prunes the stage. */
function writeEntry(cacheDir: string, about: Omit<Manifest, 'files'>, value: unknown): void {
  const { json, arrays } = encodeValue(value);
  const stageDir = path.join(cacheDir, about.stage);
  const entry = path.join(stageDir, about.key);
  const temporary = temporaryEntry(stageDir, about.key);
  try {
    tagCacheFolder(cacheDir);
    mkdirSync(temporary, { recursive: true });
    writeFileWithPath(path.join(temporary, VALUE_FILE), json);
    writeFileWithPath(path.join(temporary, ARRAYS_FILE), arrays);
    const manifest: Manifest = { ...about, files: { [VALUE_FILE]: fileRecord(json), [ARRAYS_FILE]: fileRecord(arrays) } };
    // The manifest goes last: an entry without one is never read.
    writeFileWithPath(path.join(temporary, MANIFEST), JSON.stringify(manifest, null, 2));
    rmSync(entry, { recursive: true, force: true }); // a forced rerun replaces its entry
    renameSync(temporary, entry);
  } catch (error) {
    rmSync(temporary, { recursive: true, force: true });
    throw error;
  }
  removeOrphans(stageDir);
  const pinned = new Set(Object.values(readPins(cacheDir)).map((keys) => keys[about.stage]));
  keepNewest(stageDir, ENTRIES_PER_STAGE, (key) => pinned.has(key));
}

/** Drops all but the `keep` most recent entries of a stage, and those pinned, so the cache does not grow without bound. */
function keepNewest(stageDir: string, keep: number, isPinned: (key: string) => boolean): void {
  const entries = readdirSync(stageDir)
    .filter((name) => !name.startsWith('.') && isEntry(stageDir, name) && !isPinned(name))
    .map((name) => ({ name, time: statSync(path.join(stageDir, name)).mtimeMs }))
    .sort((a, b) => b.time - a.time);
  for (const { name } of entries.slice(keep)) rmSync(path.join(stageDir, name), { recursive: true, force: true });
}

/** Temporary folders left by runs that were killed; ours are gone by now. */
function removeOrphans(stageDir: string): void {
  for (const name of readdirSync(stageDir)) {
    if (!name.startsWith('.tmp-')) continue;
    const pid = Number(name.split('-').at(-2));
    if (!Number.isInteger(pid) || !processAlive(pid)) rmSync(path.join(stageDir, name), { recursive: true, force: true });
  }
}

/** A short stable hash of a JSON-able value, for cache keys. */
export function hashKey(value: unknown): string {
  return sha256(JSON.stringify(value)).slice(0, 16);
}
