// A file's size and SHA-256, the record the cache's manifests and a report folder's manifest keep,
// and writing a file so that no reader ever sees half of it. Shared by the cache (pipeline/dag/)
// and publishing (pipeline/output/).

import { createHash } from 'node:crypto';
import { closeSync, mkdirSync, openSync, renameSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';

/** File contents: text, bytes, or bytes in pieces (written one after another, never joined into a copy). */
export type FileData = string | Uint8Array | readonly Uint8Array[];

export function sha256(data: FileData): string {
  const hash = createHash('sha256');
  for (const piece of typeof data === 'string' || data instanceof Uint8Array ? [data] : data) hash.update(piece);
  return hash.digest('hex');
}

function byteLength(data: FileData): number {
  if (typeof data === 'string') return Buffer.byteLength(data);
  return data instanceof Uint8Array ? data.byteLength : data.reduce((sum, piece) => sum + piece.byteLength, 0);
}

/** What a manifest records of a file, here and in a published report folder: its size and SHA-256. */
export interface FileRecord {
  bytes: number;
  sha256: string;
}

export function fileRecord(data: FileData): FileRecord {
  return { bytes: byteLength(data), sha256: sha256(data) };
}

/** Why `file`, whose contents are `data` (null: it is missing), no longer matches its record; null when it does. */
export function recordProblem(file: string, expected: FileRecord, data: Uint8Array | null): string | null {
  if (data === null) return `${file}: expected ${expected.bytes} bytes, found the file missing`;
  if (data.byteLength !== expected.bytes)
    return `${file}: expected ${expected.bytes} bytes with SHA-256 ${expected.sha256.slice(0, 12)}…, found ${data.byteLength} bytes`;
  const digest = sha256(data);
  return digest === expected.sha256 ? null : `${file}: expected SHA-256 ${expected.sha256.slice(0, 12)}…, found ${digest.slice(0, 12)}…`;
}

/** writeFileSync whose error names the file: a failed write (ENOSPC, EDQUOT) carries no path of its own. */
export function writeFileWithPath(file: string, data: FileData): void {
  try {
    if (typeof data === 'string' || data instanceof Uint8Array) writeFileSync(file, data);
    else writePieces(file, data);
  } catch (error) {
    const errno = error as NodeJS.ErrnoException;
    if (errno && typeof errno.code === 'string' && typeof errno.path !== 'string') errno.path = file;
    throw error;
  }
}

function writePieces(file: string, pieces: readonly Uint8Array[]): void {
  const fd = openSync(file, 'w');
  try {
    for (const piece of pieces) {
      for (let written = 0; written < piece.byteLength; ) written += writeSync(fd, piece, written);
    }
  } finally {
    closeSync(fd);
  }
}

/** Writes `data` to `file` through a temporary name and a rename, so readers never see half a file. */
export function writeFileAtomic(file: string, data: FileData): void {
  mkdirSync(path.dirname(file), { recursive: true });
  const temporary = `${file}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
  try {
    writeFileWithPath(temporary, data);
    renameSync(temporary, file);
  } catch (error) {
    rmSync(temporary, { force: true });
    throw error;
  }
}
