// Publishes a folder of files atomically: a reader of `out` sees the whole
// previous folder or the whole new one, never a mix, whatever kills the process.
//
//   <parent>/<base>                      symlink → .<base>.run-<stamp>-<pid>-<id>   (what users open)
//   <parent>/.<base>.run-<stamp>-<pid>-<id>/  a finished, verified folder (manifest.json last)
//   <parent>/.<base>.tmp-<pid>-<id>/     being built (marked by PUBLISHING_MARK); removed on the next publish once <pid> is dead
//   <parent>/.<base>.link-<pid>-<id>     the new symlink, an instant before it is renamed over <base>
//
// 1. build the whole folder under .tmp-, recording each file's size and SHA-256
// 2. read every file back and check it against the record; write manifest.json
// 3. rename .tmp- to .run- (finished), then point a fresh symlink at it
// 4. rename the symlink over <base>: rename(2) replaces it in one step, so there is no instant without <base>
// 5. remove the replaced folder and leftovers of dead runs
//
// Nothing this program did not create is deleted, moved or overwritten. A folder is ours only by our
// mark: our link to a .run- sibling, or a folder whose manifest.json lists every file in it. So:
//   - an existing <base> that is not ours and not completely empty (dotfiles count) is refused before any work;
//   - an empty folder is replaced by the link (rmdir: nothing is lost); a report folder of ours that is a real
//     folder (an older version's, or a `cp -rL` copy) is moved aside under a visible name, never deleted;
//   - the current folder, the project, a git work tree, the home folder and mount points are refused;
//   - leftovers are removed only when they carry our mark; a run folder a user added files to is kept.

import { randomBytes } from 'node:crypto';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  renameSync,
  rmdirSync,
  rmSync,
  statSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
  type Stats,
} from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PROJECT_ROOT } from '../config.js';
import { fileRecord, recordProblem, type FileRecord } from '../file-records.js';
import { processAlive } from './lock.js';

export const PUBLISH_MANIFEST = 'manifest.json';
/** Written first into a folder being built: the mark that makes a dead run's half folder ours to remove. */
const PUBLISHING_MARK = '.publishing';
/** The project's own folder: never a report folder. */

/** One file of a published folder, relative to it (a ReportFile fits). */
export interface PublishFile {
  path: string;
  data: Uint8Array;
}

export interface PublishHooks {
  /** Called after each file of the new folder is written; tests pause or fail here. */
  afterWrite?: (file: string, written: number, total: number) => void | Promise<void>;
  /** Where a report folder moved aside went, and which leftovers were kept. */
  log?: (line: string) => void;
}

export interface Published {
  folder: string; // the versioned folder `out` now points at
  files: string[]; // relative paths, in the order given
  movedAside: string | null; // where a report folder that was a real folder went
}

export class PublishError extends Error {
  override name = 'PublishError';
}

interface Manifest {
  createdAt: string;
  pid: number;
  files: Record<string, FileRecord>;
}

/** What publishing does with `out` as it is now. */
type Target =
  | { kind: 'absent' } // the first publish creates the link
  | { kind: 'our-link' } // our link to a .run- sibling: switched
  | { kind: 'empty-folder' } // no entries at all, dotfiles included: removed (nothing is lost), then linked
  | { kind: 'report-folder' } // a real folder whose manifest lists every file in it: moved aside, visible
  | { kind: 'refused'; problem: string };

const uniqueId = () => randomBytes(4).toString('hex');

/** The parts of a publish target: its parent folder and the prefix of its sibling folders. */
function siblings(out: string) {
  const absolute = path.resolve(out);
  const parent = path.dirname(absolute);
  const base = path.basename(absolute);
  return { absolute, parent, base, prefix: `.${base}.` };
}

const timeStamp = () =>
  new Date()
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');

/** Writes `files` as the new content of `out`, atomically. */
export async function publishFolder(out: string, files: PublishFile[], hooks: PublishHooks = {}): Promise<Published> {
  const { absolute, parent, prefix } = siblings(out);
  checkPublishTarget(out);
  mkdirSync(parent, { recursive: true });
  removeLeftovers(out, hooks.log);

  const temporary = path.join(parent, `${prefix}tmp-${process.pid}-${uniqueId()}`);
  await mkdir(temporary);
  const manifest: Manifest = { createdAt: new Date().toISOString(), pid: process.pid, files: {} };
  try {
    await writeFile(path.join(temporary, PUBLISHING_MARK), `${process.pid}\n`);
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
    unlinkSync(path.join(temporary, PUBLISHING_MARK)); // from here the manifest is the mark
  } catch (error) {
    rmSync(temporary, { recursive: true, force: true });
    throw error;
  }

  const finished = `${prefix}run-${timeStamp()}-${process.pid}-${uniqueId()}`;
  renameSync(temporary, path.join(parent, finished));
  const link = path.join(parent, `${prefix}link-${process.pid}-${uniqueId()}`);
  let movedAside: string | null = null; // a report folder moved out of the way, put back if the switch fails
  let removedEmpty = false;
  try {
    symlinkSync(finished, link, 'dir'); // relative: moving the parent folder keeps it working
    // Checked again at the switch: the folder may have gained files while the run trained.
    const target = checkPublishTarget(out);
    if (target.kind === 'empty-folder') {
      rmdirSync(absolute); // fails on a folder that is no longer empty: nothing is lost
      removedEmpty = true;
    }
    if (target.kind === 'report-folder') movedAside = moveReportFolderAside(absolute);
    renameSync(link, absolute);
  } catch (error) {
    if (movedAside) renameSync(movedAside, absolute);
    if (removedEmpty) mkdirSync(absolute);
    rmSync(link, { force: true });
    rmSync(path.join(parent, finished), { recursive: true, force: true });
    throw error;
  }
  if (movedAside)
    hooks.log?.(`${out} was a report folder of an earlier run; it is now ${path.join(path.dirname(out), path.basename(movedAside))}`);
  try {
    removeLeftovers(out, hooks.log);
  } catch {
    // Best effort: the new folder is in place, and the next publish tries again.
  }
  return { folder: path.join(parent, finished), files: files.map((file) => file.path), movedAside };
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
    const target = readlinkSync(absolute);
    const prefix = `.${path.basename(absolute)}.run-`;
    return target.startsWith(prefix) && !target.includes('/') ? target : null;
  } catch {
    return null;
  }
}

/** A report folder that is a real folder (ours by its manifest) becomes `<base>.before-<time>` beside it. */
function moveReportFolderAside(absolute: string): string {
  let aside = `${absolute}.before-${timeStamp()}`;
  for (let n = 2; existsSync(aside); n++) aside = `${absolute}.before-${timeStamp()}-${n}`;
  renameSync(absolute, aside);
  return aside;
}

/** Every entry under `folder` (files, links and folders; links not followed), relative to it. */
function entriesUnder(folder: string): { files: string[]; folders: string[] } {
  const files: string[] = [];
  const folders: string[] = [];
  const walk = (relative: string) => {
    for (const name of readdirSync(path.join(folder, relative))) {
      const entry = relative === '' ? name : `${relative}/${name}`;
      if (lstatSync(path.join(folder, entry)).isDirectory()) {
        folders.push(entry);
        walk(entry);
      } else files.push(entry);
    }
  };
  walk('');
  return { files, folders };
}

/**
 * The entries of `folder` that its manifest does not account for, or null when it holds no manifest
 * of ours. An empty list proves the folder ours: every file in it is one we wrote.
 */
function foreignEntries(folder: string): string[] | null {
  let manifest: Manifest;
  try {
    manifest = JSON.parse(readFileSync(path.join(folder, PUBLISH_MANIFEST), 'utf8')) as Manifest;
  } catch {
    return null;
  }
  if (manifest === null || typeof manifest !== 'object' || manifest.files === null || typeof manifest.files !== 'object') return null;
  const listed = new Set(Object.keys(manifest.files));
  const listedFolders = new Set(
    [...listed].flatMap((file) =>
      file
        .split('/')
        .slice(0, -1)
        .map((_, i, parts) => parts.slice(0, i + 1).join('/')),
    ),
  );
  const { files, folders } = entriesUnder(folder);
  return [
    ...files.filter((file) => file !== PUBLISH_MANIFEST && !listed.has(file)),
    ...folders.filter((sub) => !listedFolders.has(sub)).map((sub) => `${sub}/`),
  ];
}

/** `child` is `ancestor` or lies inside it (both absolute). */
const within = (child: string, ancestor: string) =>
  child === ancestor || child.startsWith(ancestor.endsWith(path.sep) ? ancestor : ancestor + path.sep);

/** The real path of `file`, or of its nearest existing ancestor with the rest appended: links resolved where they exist. */
export function realPathOf(file: string): string {
  const absolute = path.resolve(file);
  for (let existing = absolute; ; existing = path.dirname(existing)) {
    try {
      return path.join(realpathSync(existing), path.relative(existing, absolute));
    } catch {
      if (path.dirname(existing) === existing) return absolute;
    }
  }
}

/** Whether `folder` is a mount point: a volume or tmpfs cannot be renamed over, so it cannot become the link. */
function isMountPoint(folder: string): boolean {
  try {
    if (statSync(folder).dev !== statSync(path.dirname(folder)).dev) return true;
    const real = realpathSync(folder);
    const decode = (field: string) => field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(Number.parseInt(octal, 8)));
    // A bind mount keeps the device number; the kernel's mount table still lists it.
    return readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .some((line) => decode(line.split(' ')[4] ?? '') === real);
  } catch {
    return false;
  }
}

/** Why `folder` (which exists) can never be a report folder, or null: what replacing it would take from the user. */
function protectedFolderProblem(folder: string): string | null {
  const real = realPathOf(folder);
  if (within(realPathOf(process.cwd()), real))
    return real === realPathOf(process.cwd()) ? 'the current folder' : 'a folder that holds the current folder';
  if (within(realPathOf(PROJECT_ROOT), real)) return "this project's own folder";
  if (within(realPathOf(os.homedir()), real)) return 'your home folder';
  if (existsSync(path.join(folder, '.git'))) return 'a git work tree';
  if (isMountPoint(folder)) return 'a mount point (a volume or a tmpfs), which cannot be replaced by the report link';
  return null;
}

/** A few names of a list, for a message: "a, b, c and 4 more". */
function someOf(names: string[], most = 3): string {
  const shown = names.slice(0, most).join(', ');
  return names.length > most ? `${shown} and ${names.length - most} more` : shown;
}

/** A folder name beside `out` that does not exist yet, for the message that refuses `out`. */
function freshName(out: string): string {
  const absolute = path.resolve(out);
  const base = path.basename(absolute) === '' || absolute === realPathOf(process.cwd()) ? 'reports' : `${path.basename(absolute)}-reports`;
  // Inside the current folder, the project, the home folder or a mount point; beside a git work tree (not in its status).
  const guarded = protectedFolderProblem(absolute);
  const inside = guarded !== null && guarded !== 'a git work tree' && !existsSync(path.join(absolute, 'reports'));
  const where = inside ? absolute : path.dirname(absolute);
  let name = path.join(where, inside ? 'reports' : base);
  for (let n = 2; existsSync(name); n++) name = path.join(where, `${inside ? 'reports' : base}-${n}`);
  const relative = path.relative(process.cwd(), name);
  return relative.startsWith('..') || relative === '' ? name : relative;
}

function publishTarget(out: string): Target {
  const { absolute } = siblings(out);
  let stat: Stats;
  try {
    stat = lstatSync(absolute);
  } catch {
    return { kind: 'absent' };
  }
  if (stat.isSymbolicLink()) {
    if (currentTarget(absolute) !== null) return { kind: 'our-link' };
    return { kind: 'refused', problem: `a symlink this pipeline did not make (to ${readlinkSync(absolute)})` };
  }
  if (!stat.isDirectory()) return { kind: 'refused', problem: 'a file, not a folder' };
  const guarded = protectedFolderProblem(absolute);
  if (guarded) return { kind: 'refused', problem: guarded };
  const entries = readdirSync(absolute);
  if (entries.length === 0) return { kind: 'empty-folder' };
  const foreign = foreignEntries(absolute);
  if (foreign === null) {
    // A report of a version before manifests is not provably ours: say what to do, do nothing to it.
    const older = entries.includes('metrics.json')
      ? `; if it is a report of an older version, move it away yourself (mv ${out} ${out}.old)`
      : '';
    return { kind: 'refused', problem: `a folder of files this pipeline did not write (${someOf(entries.sort())})${older}` };
  }
  if (foreign.length > 0) {
    return { kind: 'refused', problem: `a report folder holding files this pipeline did not write (${someOf(foreign.sort())})` };
  }
  return { kind: 'report-folder' };
}

/**
 * Why `out` cannot be published to, or null. Checked at start-up and again at the switch, so a run
 * never trains for a target it will refuse, and never replaces what appeared while it trained.
 */
export function publishTargetProblem(out: string): string | null {
  const target = publishTarget(out);
  if (target.kind !== 'refused') return null;
  return (
    `--out ${out}: expected a new folder or a report folder of this pipeline, found ${target.problem}. ` +
    `Nothing there was changed; choose another folder, e.g. --out ${freshName(out)}`
  );
}

function checkPublishTarget(out: string): Target {
  const target = publishTarget(out);
  if (target.kind === 'refused') throw new PublishError(publishTargetProblem(out)!);
  return target;
}

/** Whether the leftover `name` beside `out` carries our mark: only then may it be removed. */
function markedAsOurs(parent: string, name: string, kind: string, prefix: string): boolean {
  const full = path.join(parent, name);
  try {
    const stat = lstatSync(full);
    if (kind === 'link')
      return stat.isSymbolicLink() && /^[^/]+$/.test(readlinkSync(full)) && readlinkSync(full).startsWith(`${prefix}run-`);
    if (!stat.isDirectory()) return false;
    if (kind === 'tmp') return existsSync(path.join(full, PUBLISHING_MARK)) || foreignEntries(full)?.length === 0;
    return foreignEntries(full)?.length === 0;
  } catch {
    return false;
  }
}

/** Removes unfinished and replaced siblings of `out` that carry our mark and whose writer is dead (or is us and is done with them). */
function removeLeftovers(out: string, log?: (line: string) => void): string[] {
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
    if (!markedAsOurs(parent, name, kind!, prefix)) {
      if (kind === 'run') {
        const foreign = foreignEntries(path.join(parent, name));
        const what = foreign === null ? 'no manifest of this pipeline' : `files this pipeline did not write (${someOf(foreign)})`;
        log?.(`kept ${path.join(path.dirname(out), name)}: it holds ${what}; move what you need out of it, then delete it`);
      }
      continue;
    }
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
