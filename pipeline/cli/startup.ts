// Before any training: the folders a run writes must be writable, and no other
// run may be writing them. Both checks happen here so a bad --out or --cache-dir
// fails in a second, not after the training.

import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Config } from '../config.js';
import { acquireLock } from '../output/lock.js';
import { checkWritableFolder, publishTargetProblem, realPathOf } from '../output/publish.js';
import { cacheFolderProblem } from '../output/cache-folder.js';
import { fileSystemCause } from './failures.js';

export class StartupError extends Error {
  override name = 'StartupError';
}

/** Throws StartupError naming the flag, the folder and what is wrong with it. */
function checkOutputFolders(config: Pick<Config, 'out' | 'cacheDir'>): void {
  const problems: string[] = [];
  const check = (flag: string, folder: string, asSibling: boolean) => {
    try {
      checkWritableFolder(folder, { asSibling });
    } catch (error) {
      const found = fileSystemCause(error);
      if (!found) throw error;
      const where = path.resolve(found.path) === path.resolve(folder) ? '' : `${found.path}: `;
      problems.push(`${flag} ${folder}: cannot be written: ${where}${found.cause}`);
    }
  };
  const overlap = foldersOverlap(config);
  if (overlap) throw new StartupError(overlap);
  const target = publishTargetProblem(config.out);
  if (target) problems.push(target);
  const cache = cacheFolderProblem(config.cacheDir);
  if (cache) problems.push(cache);
  if (problems.length === 0) {
    check('--cache-dir', config.cacheDir, false);
    check('--out', config.out, true); // --out itself is a symlink made at publish; its parent holds the runs
  }
  if (problems.length > 0) throw new StartupError(problems.join('\n'));
}

/** The cache inside the report folder would be published over or removed with it; the report inside the cache, pruned with it. */
function foldersOverlap(config: Pick<Config, 'out' | 'cacheDir'>): string | null {
  const out = realPathOf(config.out);
  const cache = realPathOf(config.cacheDir);
  const inside = (child: string, parent: string) => child === parent || child.startsWith(parent + path.sep);
  const example = `e.g. --out ${config.out} --cache-dir .cache`;
  if (out === cache) return `--out ${config.out} and --cache-dir ${config.cacheDir}: expected two folders, found the same one; ${example}`;
  if (inside(cache, out) || inside(cache, path.resolve(config.out))) {
    return `--cache-dir ${config.cacheDir}: expected a folder outside the report folder --out ${config.out}, found one inside it; ${example}`;
  }
  if (inside(out, cache)) {
    return `--out ${config.out}: expected a folder outside the cache --cache-dir ${config.cacheDir}, found one inside it; e.g. --out reports`;
  }
  return null;
}

/** A folder's lock file, beside it: taking the lock creates nothing inside a folder that a stopped run must leave untouched. */
function lockFileOf(folder: string): string {
  const absolute = path.resolve(folder);
  return path.join(path.dirname(absolute), `.${path.basename(absolute)}.lock`);
}

const cacheLock = (config: Pick<Config, 'cacheDir'>) => ({ file: lockFileOf(config.cacheDir), what: `${config.cacheDir}/ (the cache)` });

/** The lock files of a run: one beside the cache, one beside the report folder. */
function lockFiles(config: Pick<Config, 'out' | 'cacheDir'>): { file: string; what: string }[] {
  return [cacheLock(config), { file: lockFileOf(config.out), what: `${config.out}/` }].sort((a, b) => a.file.localeCompare(b.file)); // one order for every run, so two runs never wait on each other
}

/** Takes the locks, waiting for a live holder; returns the function that releases them. */
async function lockFolders(
  locks: { file: string; what: string }[],
  log: (line: string) => void,
  signal?: AbortSignal,
): Promise<() => void> {
  const releases: (() => void)[] = [];
  const releaseAll = () =>
    releases
      .splice(0)
      .reverse()
      .forEach((release) => release());
  try {
    for (const { file, what } of locks) {
      mkdirSync(path.dirname(file), { recursive: true });
      releases.push(await acquireLock(file, { what, log, signal }));
    }
  } catch (error) {
    releaseAll();
    throw error;
  }
  return releaseAll;
}

/** Start-up of a run that writes: check the folders, then take their locks. */
export async function prepareOutputFolders(
  config: Pick<Config, 'out' | 'cacheDir'>,
  log: (line: string) => void,
  signal?: AbortSignal,
): Promise<() => void> {
  checkOutputFolders(config);
  return lockFolders(lockFiles(config), log, signal);
}

/** Start-up of --gc: the cache must be ours; it takes the cache's lock as a run does, so it never removes what a run is reading. */
export async function prepareCacheFolder(
  config: Pick<Config, 'cacheDir'>,
  log: (line: string) => void,
  signal?: AbortSignal,
): Promise<() => void> {
  const problem = cacheFolderProblem(config.cacheDir);
  if (problem) throw new StartupError(problem);
  return lockFolders([cacheLock(config)], log, signal);
}
