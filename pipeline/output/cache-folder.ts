// The cache as a folder on the user's disk, around the entries cache.ts writes:
//   - our mark on it, so that only a folder we made (or an empty one) is ever written as a cache;
//   - the pins: which entries each report folder was made from, kept when a stage is pruned.

import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../file-records.js';

/** The file that makes a folder an entry of ours: a folder holding it is ours to replace, even when damaged. */
export const MANIFEST = 'manifest.json';
/**
 * Our mark, the Cache Directory Tagging convention (backup tools skip the folder): the signature line,
 * then a line naming us.
 */
const CACHE_TAG = 'CACHEDIR.TAG';
const CACHE_TAG_TEXT =
  'Signature: 8a477f597d28d172789f06886806bc55\n# The stage cache of mnist-pipeline (npm run pipeline); safe to delete, it is rebuilt.\n';
/** Beside the stage folders at the top of a cache: what an older version, before the tag, wrote there. */
const CACHE_TOP_FILES = /^file-hashes\.json(\.tmp-.*)?$/;
const PINS_FILE = 'pins.json';

/** Whether `stageDir/key` is an entry we wrote or are writing. */
export function isEntry(stageDir: string, key: string): boolean {
  return key.startsWith('.tmp-') || existsSync(path.join(stageDir, key, MANIFEST));
}

/** Marks `cacheDir` as ours, once: before its first entry is written. */
export function tagCacheFolder(cacheDir: string): void {
  if (!existsSync(path.join(cacheDir, CACHE_TAG))) writeFileAtomic(path.join(cacheDir, CACHE_TAG), CACHE_TAG_TEXT);
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
    tagCacheFolder(cacheDir); // an older version's cache: ours by every entry's manifest
    return null;
  }
  const shown = foreign.slice(0, 3).join(', ') + (foreign.length > 3 ? ` and ${foreign.length - 3} more` : '');
  return (
    `--cache-dir ${cacheDir}: expected a cache folder of this pipeline (with its ${CACHE_TAG}) or a new one, found other files (${shown}). ` +
    'Nothing there was changed; choose another folder, e.g. --cache-dir .cache'
  );
}

/** Entries that outlive pruning, by owner: a report folder and the stage keys it was made from. */
export type Pins = Record<string, Record<string, string>>;

/** The pins of a cache; a damaged file counts as none (pins only keep entries longer). */
export function readPins(cacheDir: string): Pins {
  try {
    const parsed: unknown = JSON.parse(readFileSync(path.join(cacheDir, PINS_FILE), 'utf8'));
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return {};
    return Object.fromEntries(Object.entries(parsed).filter(([, keys]) => keys !== null && typeof keys === 'object')) as Pins;
  } catch {
    return {};
  }
}

/** Pins the entries `keys` (stage → key) for `owner`, replacing what it pinned before; null unpins them. */
export function pinEntries(cacheDir: string, owner: string, keys: Record<string, string> | null): void {
  const { [owner]: _, ...others } = readPins(cacheDir);
  writeFileAtomic(path.join(cacheDir, PINS_FILE), `${JSON.stringify(keys ? { ...others, [owner]: keys } : others, null, 2)}\n`);
}
