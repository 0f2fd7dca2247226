// Publishes a folder of files atomically: a reader of `out` sees the whole
// previous folder or the whole new one, never a mix, whatever kills the process.
//
//   <parent>/<base>                      symlink → .<base>.run-<stamp>-<pid>-<id>   (what users open)
//   <parent>/.<base>.run-<stamp>-<pid>-<id>/  a finished, verified folder (manifest.json last)
//   <parent>/.<base>.tmp-<pid>-<id>/     being built; removed on the next publish once <pid> is dead
//   <parent>/.<base>.link-<pid>-<id>     the new symlink, an instant before it is renamed over <base>
//
// 1. build the whole folder under .tmp-, recording each file's size and SHA-256
// 2. read every file back and check it against the record; write manifest.json
// 3. rename .tmp- to .run- (finished), then point a fresh symlink at it
// 4. rename the symlink over <base>: rename(2) replaces it in one step, so there is no instant without <base>
// 5. remove the replaced folder and leftovers of dead runs
//
// A real folder at <base> (written by an older version) is moved aside once, the one step with a window.

import { randomBytes } from 'node:crypto';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
  type Stats,
} from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileRecord, recordProblem, type FileRecord } from './cache.js';
import { processAlive } from './lock.js';

export const PUBLISH_MANIFEST = 'manifest.json';

/** One file of a published folder, relative to it (a ReportFile fits). */
export interface PublishFile {
  path: string;
  data: Uint8Array;
}

export interface PublishHooks {
  /** Called after each file of the new folder is written; tests pause or fail here. */
  afterWrite?: (file: string, written: number, total: number) => void | Promise<void>;
}

export interface Published {
  folder: string; // the versioned folder `out` now points at
  files: string[]; // relative paths, in the order given
}

export class PublishError extends Error {
  override name = 'PublishError';
}

interface Manifest {
  createdAt: string;
  pid: number;
  files: Record<string, FileRecord>;
}

const uniqueId = () => randomBytes(4).toString('hex');

/** The parts of a publish target: its parent folder and the prefix of its sibling folders. */
function siblings(out: string) {
  const absolute = path.resolve(out);
  const parent = path.dirname(absolute);
  const base = path.basename(absolute);
  return { absolute, parent, base, prefix: `.${base}.` };
}

/** Writes `files` as the new content of `out`, atomically. */
export async function publishFolder(out: string, files: PublishFile[], hooks: PublishHooks = {}): Promise<Published> {
  const { absolute, parent, prefix } = siblings(out);
  checkPublishTarget(out);
  mkdirSync(parent, { recursive: true });
  removeLeftovers(out);

  const temporary = path.join(parent, `${prefix}tmp-${process.pid}-${uniqueId()}`);
  await mkdir(temporary);
  const manifest: Manifest = { createdAt: new Date().toISOString(), pid: process.pid, files: {} };
  try {
    let written = 0;
    for (const file of files) {
      const target = resolveInside(temporary, file.path);
      await mkdir(path.dirname(target), { recursive: true });
      await writeFile(target, file.data).catch((error: unknown) => {
        throw withPath(error, target); // fs/promises leaves `path` out of a failed write (ENOSPC)
      });
      manifest.files[file.path] = fileRecord(file.data);
      await hooks.afterWrite?.(file.path, ++written, files.length);
    }
    // Read back: a short write or a full disk that went unnoticed fails here, before anything is switched.
    for (const [name, expected] of Object.entries(manifest.files)) {
      const problem = recordProblem(path.join(temporary, name), expected, await readFile(path.join(temporary, name)));
      if (problem) throw new PublishError(`${problem} (read back after writing)`);
    }
    await writeFile(path.join(temporary, PUBLISH_MANIFEST), `${JSON.stringify(manifest, null, 2)}\n`);
  } catch (error) {
    rmSync(temporary, { recursive: true, force: true });
    throw error;
  }

  const stamp = new Date()
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
  const finished = `${prefix}run-${stamp}-${process.pid}-${uniqueId()}`;
  renameSync(temporary, path.join(parent, finished));
  const link = path.join(parent, `${prefix}link-${process.pid}-${uniqueId()}`);
  let aside: string | null = null; // a legacy folder moved out of the way, put back if the switch fails
  try {
    symlinkSync(finished, link, 'dir'); // relative: moving the parent folder keeps it working
    if (currentTarget(absolute) === null && existsSync(absolute)) aside = moveLegacyFolderAside(absolute, prefix);
    renameSync(link, absolute);
  } catch (error) {
    if (aside) renameSync(aside, absolute);
    rmSync(link, { force: true });
    rmSync(path.join(parent, finished), { recursive: true, force: true });
    throw error;
  }
  try {
    removeLeftovers(out);
  } catch {
    // Best effort: the new folder is in place, and the next publish tries again.
  }
  return { folder: path.join(parent, finished), files: files.map((file) => file.path) };
}

/** `name` inside `folder`, refusing paths that climb out of it. */
function resolveInside(folder: string, name: string): string {
  const target = path.resolve(folder, name);
  if (name === '' || name === PUBLISH_MANIFEST || path.isAbsolute(name) || !target.startsWith(folder + path.sep)) {
    throw new PublishError(
      `report file ${JSON.stringify(name)}: expected a relative path inside the report folder, other than ${PUBLISH_MANIFEST}`,
    );
  }
  return target;
}

/** The sibling folder `out` points at, or null when `out` is absent or not our symlink. */
function currentTarget(absolute: string): string | null {
  try {
    if (!lstatSync(absolute).isSymbolicLink()) return null;
    return path.basename(readlinkSync(absolute));
  } catch {
    return null;
  }
}

/** A report folder written by an older version becomes a .run- sibling, then `out` is free for the symlink. */
function moveLegacyFolderAside(absolute: string, prefix: string): string {
  const aside = path.join(path.dirname(absolute), `${prefix}run-legacy-${process.pid}-${uniqueId()}`);
  renameSync(absolute, aside);
  return aside;
}

/**
 * Why `out` cannot be published to, or null: a file, or a folder of something other than reports.
 * Checked at start-up and again before the switch, so a run never trains for a target it will refuse.
 */
export function publishTargetProblem(out: string): string | null {
  const { absolute } = siblings(out);
  let stat: Stats;
  try {
    stat = lstatSync(absolute);
  } catch {
    return null; // absent: the first publish creates it
  }
  if (stat.isSymbolicLink()) {
    if (currentTarget(absolute)?.startsWith(`.${path.basename(absolute)}.run-`)) return null;
    return 'a symlink this pipeline did not make; remove it or choose another --out';
  }
  if (!stat.isDirectory()) return 'a file, not a folder';
  const entries = readdirSync(absolute).filter((name) => !name.startsWith('.'));
  if (entries.length === 0 || entries.includes('metrics.json')) return null;
  return `a folder of other files (no metrics.json), which publishing would replace; choose an empty or new folder`;
}

function checkPublishTarget(out: string): void {
  const problem = publishTargetProblem(out);
  if (problem) throw new PublishError(`--out ${out}: expected a report folder, found ${problem}`);
}

/** Removes unfinished and replaced siblings of `out` whose writer is dead (or is us and is done with them). */
function removeLeftovers(out: string): string[] {
  const { absolute, parent, prefix } = siblings(out);
  if (!existsSync(parent)) return [];
  const current = currentTarget(absolute);
  const removed: string[] = [];
  for (const name of readdirSync(parent)) {
    if (!name.startsWith(prefix) || name === current) continue;
    const match = /^(tmp|link|run)-(?:.*-)?(\d+)-[0-9a-f]+$/.exec(name.slice(prefix.length));
    if (!match) continue; // the lock file, or someone else's file
    const [, kind, pidText] = match;
    const pid = Number(pidText);
    const ours = pid === process.pid;
    // Our own .tmp- or .link- may be in use by a publish still running in this process.
    if ((ours && kind !== 'run') || (!ours && processAlive(pid))) continue;
    try {
      rmSync(path.join(parent, name), { recursive: true, force: true });
      removed.push(name);
    } catch {
      // A leftover that cannot be removed now is tried again next time.
    }
  }
  return removed;
}

/**
 * Reads `out`'s manifest and checks every file against it (only those under the relative folder `under`,
 * when given); returns the problems found, each naming the file.
 */
export function verifyPublished(out: string, under?: string): string[] {
  const manifestFile = path.join(out, PUBLISH_MANIFEST);
  let manifest: Manifest;
  try {
    manifest = JSON.parse(readFileSync(manifestFile, 'utf8')) as Manifest;
  } catch (error) {
    return [`${manifestFile}: expected a JSON manifest, found ${(error as Error).message}`];
  }
  const problems: string[] = [];
  const prefix = under === undefined ? '' : `${under.replace(/\/+$/, '')}/`;
  for (const [name, expected] of Object.entries(manifest.files ?? {})) {
    if (!name.startsWith(prefix)) continue;
    const file = path.join(out, name);
    const problem = recordProblem(file, expected, existsSync(file) ? readFileSync(file) : null);
    if (problem) problems.push(problem);
  }
  return problems;
}

/**
 * Checks at start-up that `folder` can be written: creates it (or, with `asSibling`, its parent)
 * and writes and removes a probe file. Throws the file-system error, whose path names the folder.
 */
export function checkWritableFolder(folder: string, options: { asSibling?: boolean } = {}): void {
  const absolute = path.resolve(folder);
  let dir = options.asSibling ? path.dirname(absolute) : absolute;
  // A folder that does not exist yet is made when first written; until then its nearest existing ancestor must take it.
  while (!existsSync(dir) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  if (!statSync(dir).isDirectory()) {
    throw Object.assign(new Error(`ENOTDIR: not a directory, mkdir '${dir}'`), { code: 'ENOTDIR', path: dir, syscall: 'mkdir' });
  }
  const probe = path.join(dir, `.write-check-${process.pid}-${uniqueId()}`);
  try {
    writeFileSync(probe, '');
    unlinkSync(probe);
  } catch (error) {
    throw withPath(error, dir, true); // the folder is what cannot be written, not the probe
  }
}

/** Gives a file-system error the path it is about, so its message can name it. */
function withPath(error: unknown, file: string, replace = false): unknown {
  const errno = error as NodeJS.ErrnoException;
  if (errno && typeof errno.code === 'string' && (replace || typeof errno.path !== 'string')) errno.path = file;
  return error;
}
