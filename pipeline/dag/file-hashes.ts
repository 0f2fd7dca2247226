// Content hashes of input files, remembered under each file's (path, size,
// mtime, ctime, inode) in one small JSON file, like git's index or DVC's state
// database: a normal run stats the files and rehashes only what changed, and
// `touch` or a reinstall of the same bytes leaves every hash, and so every
// cache key, unchanged.

import { createHash } from 'node:crypto';
import { closeSync, existsSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../file-records.js';

const STATE_VERSION = 2; // 2: ctime is remembered too
const CHUNK_BYTES = 1 << 20; // hash in 1 MiB reads: no 47 MB buffer just for a fingerprint
// A file changed within this long of being hashed may change again in the same mtime tick (git's "racily clean").
const RACY_MS = 2000;

interface Remembered {
  size: number;
  mtimeMs: number;
  ctimeMs: number; // set by the kernel on every write: a file rewritten in place with its mtime put back still shows
  ino: number;
  hashedAtMs: number;
  sha256: string;
}

export interface FileHashes {
  /** The SHA-256 of `file`'s bytes; read only when its size, mtime, ctime or inode changed. */
  hash(file: string): string;
  /** Writes what was learnt to the state file, forgetting files that are gone; only a run that finished calls it. */
  save(): void;
}

function hashBytes(file: string): string {
  const digest = createHash('sha256');
  const buffer = Buffer.allocUnsafe(CHUNK_BYTES);
  const fd = openSync(file, 'r');
  try {
    for (let read = readSync(fd, buffer, 0, CHUNK_BYTES, null); read > 0; read = readSync(fd, buffer, 0, CHUNK_BYTES, null)) {
      digest.update(buffer.subarray(0, read));
    }
  } finally {
    closeSync(fd);
  }
  return digest.digest('hex');
}

function isRemembered(value: unknown): value is Remembered {
  const record = value as Record<string, unknown> | null;
  return (
    record !== null &&
    typeof record === 'object' &&
    ['size', 'mtimeMs', 'ctimeMs', 'ino', 'hashedAtMs'].every((field) => typeof record[field] === 'number') &&
    typeof record.sha256 === 'string'
  );
}

/** A damaged or foreign state file is ignored: the cost is one rehash, never a wrong key. */
function readState(stateFile: string): Map<string, Remembered> {
  const known = new Map<string, Remembered>();
  if (!stateFile || !existsSync(stateFile)) return known;
  try {
    const parsed = JSON.parse(readFileSync(stateFile, 'utf8')) as { version?: unknown; files?: unknown };
    if (parsed?.version !== STATE_VERSION || parsed.files === null || typeof parsed.files !== 'object') return known;
    for (const [file, entry] of Object.entries(parsed.files as Record<string, unknown>)) if (isRemembered(entry)) known.set(file, entry);
  } catch {
    // unreadable: start afresh
  }
  return known;
}

/** Hashes remembered in `stateFile` ('' keeps them in memory only). */
export function createFileHashes(stateFile: string): FileHashes {
  const known = readState(stateFile);
  let changed = false;
  return {
    hash(file) {
      const absolute = path.resolve(file);
      const stat = statSync(absolute);
      const entry = known.get(absolute);
      const trusted =
        entry !== undefined &&
        entry.size === stat.size &&
        entry.mtimeMs === stat.mtimeMs &&
        entry.ctimeMs === stat.ctimeMs &&
        entry.ino === stat.ino &&
        entry.hashedAtMs - Math.max(stat.mtimeMs, stat.ctimeMs) > RACY_MS;
      if (trusted) return entry.sha256;
      const sha256 = hashBytes(absolute);
      known.set(absolute, { size: stat.size, mtimeMs: stat.mtimeMs, ctimeMs: stat.ctimeMs, ino: stat.ino, hashedAtMs: Date.now(), sha256 });
      changed = true;
      return sha256;
    },
    save() {
      if (!changed || !stateFile) return;
      const files = Object.fromEntries([...known].filter(([file]) => existsSync(file)).sort(([a], [b]) => a.localeCompare(b)));
      writeFileAtomic(stateFile, `${JSON.stringify({ version: STATE_VERSION, files }, null, 2)}\n`);
      changed = false;
    },
  };
}
