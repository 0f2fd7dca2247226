// Failures as messages (pipeline/errors.ts lists the errors raised on purpose): file-system errors become one line naming the path and
// the cause; errors we raise on purpose print their message; anything else is
// a bug and keeps its stack.

import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { StagesFailedError } from '../dag/runner.js';
import { isExpected } from '../errors.js';

/** What an errno means to someone who only wanted a report written. */
const FILE_SYSTEM_CAUSES: Record<string, string> = {
  ENOSPC: 'no space left on the device',
  EDQUOT: 'disk quota exceeded',
  EROFS: 'the file system is read-only',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  ENOTDIR: 'a part of the path is a file, not a folder',
  EISDIR: 'expected a file, found a folder',
  EEXIST: 'expected a folder, found a file',
  EBUSY: 'busy: a mount point or a file in use cannot be replaced',
  ENOENT: 'no such file or folder',
  EMFILE: 'too many open files',
  EIO: 'an input/output error of the device',
};

/** The part of `file` that exists and is a file, for ENOTDIR: the culprit is usually an ancestor. */
function fileInTheWay(file: string): string | null {
  for (let dir = path.resolve(file); dir !== path.dirname(dir); dir = path.dirname(dir)) {
    if (existsSync(dir)) return statSync(dir).isDirectory() ? null : dir;
  }
  return null;
}

/** The path a file-system error is about and its cause in words, or null when `error` is not one. */
export function fileSystemCause(error: unknown): { path: string; cause: string } | null {
  const { code, path: file, syscall } = (error ?? {}) as NodeJS.ErrnoException;
  if (typeof code !== 'string' || !(code in FILE_SYSTEM_CAUSES) || typeof file !== 'string') return null;
  if (code === 'ENOTDIR' || code === 'EEXIST') {
    const culprit = fileInTheWay(file);
    if (culprit)
      return { path: culprit, cause: `expected a folder, found a file (${code} on ${syscall}${culprit === file ? '' : ` ${file}`})` };
  }
  return { path: file, cause: `${FILE_SYSTEM_CAUSES[code]} (${code} on ${syscall})` };
}

/** One line for a file-system error, or null when `error` is not one. */
export function fileSystemMessage(error: unknown): string | null {
  const found = fileSystemCause(error);
  return found && `${found.path}: ${found.cause}`;
}

/** The closing line of a failed run: only said when there is a report folder to keep. */
export function reportsKeptNote(out: string): string | null {
  return existsSync(out) ? `Reports in ${out}/ were left as they were.` : null;
}

/** The lines to print for a failed run; a stack only for what looks like a bug. */
export function failureMessage(error: unknown): string {
  const fileSystem = fileSystemMessage(error);
  if (fileSystem) return `error: ${fileSystem}`;
  const err = error instanceof Error ? error : new Error(String(error));
  if (err instanceof StagesFailedError) {
    // Each stage's error worded on its own, as if it had failed alone.
    const each = err.failures.map(
      ({ stage, error: cause }) =>
        `  ${stage}: ${failureMessage(cause)
          .replace(/^error: /, '')
          .replaceAll('\n', '\n    ')}`,
    );
    return [`error: ${err.failures.length} stages failed:`, ...each].join('\n');
  }
  const lines = [`error: ${err.message}`];
  if (!isExpected(err) && err.stack) lines.push(err.stack.split('\n').slice(1, 6).join('\n'));
  return lines.join('\n');
}
