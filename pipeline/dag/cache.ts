// The on-disk cache of stage outputs. An entry is a folder
//   <cacheDir>/<stage>/<key>/{value.json, arrays.bin, manifest.json}
// written under a temporary name and renamed into place, so a killed run
// leaves no half entry. The manifest records each file's size and SHA-256,
// and what the stage read to make the entry (so a rerun can say what changed);
// an entry whose manifest or bytes are damaged is reported and recomputed.

import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileRecord, recordProblem, sha256, writeFileAtomic, writeFileWithPath } from '../file-records.js';
import { processAlive } from '../output/lock.js';

const TYPED_ARRAYS = { Float32Array, Float64Array, Uint8Array, Uint32Array, Int32Array } as const;
type TypedArrayName = keyof typeof TYPED_ARRAYS;
type AnyTypedArray = InstanceType<(typeof TYPED_ARRAYS)[TypedArrayName]>;

const ENTRIES_PER_STAGE = 3; // recent configs stay cached, e.g. a quick subset run beside the full one
const MANIFEST = 'manifest.json';
const VALUE_FILE = 'value.json';
const ARRAYS_FILE = 'arrays.bin';
const PINS_FILE = 'pins.json'; // beside the stage folders: what report folders were made from (Pins)
const ALIGN = 8; // every array starts on an 8-byte boundary so it can be viewed in place
/**
 * Our mark on a cache folder, the Cache Directory Tagging convention (backup tools skip the folder):
 * the signature line, then a line naming us. Only a folder that carries it, or is empty, is written as a cache.
 */
const CACHE_TAG = 'CACHEDIR.TAG';
const CACHE_TAG_TEXT =
  'Signature: 8a477f597d28d172789f06886806bc55\n# The stage cache of mnist-pipeline (npm run pipeline); safe to delete, it is rebuilt.\n';
/** Beside the stage folders at the top of a cache: what an older version, before the tag, wrote there. */
const CACHE_TOP_FILES = /^file-hashes\.json(\.tmp-.*)?$/;

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

function typedArrayName(value: unknown): TypedArrayName | null {
  for (const name of Object.keys(TYPED_ARRAYS) as TypedArrayName[]) {
    if (value instanceof TYPED_ARRAYS[name]) return name;
  }
  return null;
}

/** Splits a value into JSON and one binary blob holding its typed arrays. */
export function encodeValue(value: unknown): { json: string; arrays: Buffer } {
  const chunks: Buffer[] = [];
  let offset = 0;
  const walk = (node: unknown): unknown => {
    const typed = typedArrayName(node);
    if (typed) {
      const array = node as AnyTypedArray;
      const padding = (ALIGN - (offset % ALIGN)) % ALIGN;
      if (padding) chunks.push(Buffer.alloc(padding));
      offset += padding;
      chunks.push(Buffer.from(array.buffer as ArrayBuffer, array.byteOffset, array.byteLength));
      const ref = { $typed: typed, offset, length: array.length };
      offset += array.byteLength;
      return ref;
    }
    if (typeof node === 'number' && !Number.isFinite(node)) return { $number: String(node) };
    if (Array.isArray(node)) return node.map(walk);
    if (node !== null && typeof node === 'object') {
      return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, walk(v)]));
    }
    return node;
  };
  const json = JSON.stringify(walk(value));
  return { json, arrays: Buffer.concat(chunks) };
}

/** Rebuilds a value from its JSON and blob; arrays are views into the blob, or null without one (a summary). */
export function decodeValue<T>(json: string, arrays: Buffer | null): T {
  // Views need an aligned start; a Buffer from the pool may not have one.
  const base = arrays === null || arrays.byteOffset % ALIGN === 0 ? arrays : Buffer.from(new Uint8Array(arrays));
  const walk = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(walk);
    if (node !== null && typeof node === 'object') {
      const record = node as Record<string, unknown>;
      if (typeof record.$typed === 'string' && record.$typed in TYPED_ARRAYS) {
        if (base === null) return null;
        const Ctor = TYPED_ARRAYS[record.$typed as TypedArrayName];
        return new Ctor(base.buffer as ArrayBuffer, base.byteOffset + (record.offset as number), record.length as number);
      }
      if (typeof record.$number === 'string') return Number(record.$number);
      return Object.fromEntries(Object.entries(record).map(([k, v]) => [k, walk(v)]));
    }
    return node;
  };
  return walk(JSON.parse(json)) as T;
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

/** Whether `stageDir/key` is an entry we wrote: a folder with our manifest (a damaged one counts: it is ours to replace). */
function isEntry(stageDir: string, key: string): boolean {
  return key.startsWith('.tmp-') || existsSync(path.join(stageDir, key, MANIFEST));
}

/**
 * Why `cacheDir` cannot be used as a cache, or null: it is absent, empty, carries our tag, or holds only
 * what an older version of ours wrote there (stage folders of entries with our manifest), which is then tagged.
 */
export function cacheFolderProblem(cacheDir: string): string | null {
  let names: string[];
  try {
    if (!statSync(cacheDir).isDirectory()) return null; // the start-up write check names it: expected a folder, found a file
    names = readdirSync(cacheDir);
  } catch {
    return null; // absent: the first entry creates it
  }
  const tag = path.join(cacheDir, CACHE_TAG);
  if (names.length === 0 || (existsSync(tag) && readFileSync(tag, 'utf8') === CACHE_TAG_TEXT)) return null;
  const foreign = names.filter((name) => {
    if (CACHE_TOP_FILES.test(name)) return false;
    const stageDir = path.join(cacheDir, name);
    return !statSync(stageDir).isDirectory() || !readdirSync(stageDir).every((key) => isEntry(stageDir, key));
  });
  if (foreign.length === 0) {
    writeFileAtomic(tag, CACHE_TAG_TEXT); // an older version's cache: ours by every entry's manifest
    return null;
  }
  const shown = foreign.slice(0, 3).join(', ') + (foreign.length > 3 ? ` and ${foreign.length - 3} more` : '');
  return (
    `--cache-dir ${cacheDir}: expected a cache folder of this pipeline (with its ${CACHE_TAG}) or a new one, found other files (${shown}). ` +
    'Nothing there was changed; choose another folder, e.g. --cache-dir .cache'
  );
}

export type EntryState =
  | { state: 'cached'; seconds: number } // the run time its manifest records
  | { state: 'stale' | 'missing' }
  | { state: 'damaged'; problem: string }; // a manifest that is null, garbage, or names files that are not there

export interface StageCache {
  /** The state of `stage` at `key` from its manifest and file sizes, without hashing: present, damaged, absent, or another key exists. */
  state(stage: string, key: string): EntryState;
  /** Every readable entry of `stage`, newest first; damaged ones are left out. */
  entries(stage: string): EntryInfo[];
  /** Reads and verifies an entry; null when absent; throws CacheCorruptError when its bytes changed. */
  read<T>(stage: string, key: string): CacheEntry<T> | null;
  /** The JSON half of an entry, verified, with its typed arrays as null: what --runs reads, without the weights. */
  summary<T>(stage: string, key: string): T | null;
  write(stage: string, key: string, value: unknown, seconds: number, made?: Made): void;
  /** Deletes an entry (after corruption was reported, or by --gc). */
  remove(stage: string, key: string): void;
  /** Every owner's pinned entries: stage → key. */
  pins(): Pins;
  /** Pins the entries `keys` (stage → key) for `owner`, replacing what it pinned before; null unpins them. */
  pin(owner: string, keys: Record<string, string> | null): void;
}

/** Entries that outlive pruning, by owner: a report folder and the stage keys it was made from. */
export type Pins = Record<string, Record<string, string>>;

/** The pins of a cache; a damaged file counts as none (pins only keep entries longer). */
function readPins(cacheDir: string): Pins {
  try {
    const parsed: unknown = JSON.parse(readFileSync(path.join(cacheDir, PINS_FILE), 'utf8'));
    return isRecord(parsed) ? (Object.fromEntries(Object.entries(parsed).filter(([, keys]) => isRecord(keys))) as Pins) : {};
  } catch {
    return {};
  }
}

/**
 * A cache rooted at `cacheDir`. Each stage keeps its newest few entries, and every pinned one: what
 * a report folder was made from, so a named run's training is never pruned (--gc removes those).
 */
export function createCache(cacheDir: string): StageCache {
  const entryDir = (stage: string, key: string) => path.join(cacheDir, stage, key);

  return {
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

    read<T>(stage: string, key: string): CacheEntry<T> | null {
      const dir = entryDir(stage, key);
      const manifestFile = path.join(dir, MANIFEST);
      if (!existsSync(manifestFile)) return null;
      const manifest = readManifest(manifestFile);
      const contents: Record<string, Buffer> = {};
      for (const name of [VALUE_FILE, ARRAYS_FILE]) {
        const file = path.join(dir, name);
        const expected = manifest.files[name]!; // readManifest checked both
        const bytes = existsSync(file) ? readFileSync(file) : null;
        const problem = recordProblem(file, expected, bytes);
        if (problem) throw new CacheCorruptError(problem);
        contents[name] = bytes!;
      }
      return { value: decodeValue<T>(contents[VALUE_FILE]!.toString('utf8'), contents[ARRAYS_FILE]!), seconds: manifest.seconds };
    },

    summary<T>(stage: string, key: string): T | null {
      const dir = entryDir(stage, key);
      const manifestFile = path.join(dir, MANIFEST);
      if (!existsSync(manifestFile)) return null;
      const file = path.join(dir, VALUE_FILE);
      const bytes = existsSync(file) ? readFileSync(file) : null;
      const problem = recordProblem(file, readManifest(manifestFile).files[VALUE_FILE]!, bytes);
      if (problem) throw new CacheCorruptError(problem);
      return decodeValue<T>(bytes!.toString('utf8'), null);
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

    pins: () => readPins(cacheDir),

    pin(owner, keys) {
      const { [owner]: _, ...others } = readPins(cacheDir);
      writeFileAtomic(path.join(cacheDir, PINS_FILE), `${JSON.stringify(keys ? { ...others, [owner]: keys } : others, null, 2)}\n`);
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
    if (!existsSync(path.join(cacheDir, CACHE_TAG))) writeFileAtomic(path.join(cacheDir, CACHE_TAG), CACHE_TAG_TEXT);
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
