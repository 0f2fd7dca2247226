// File-system failures become one line naming the path and the cause; bugs keep their stack.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { failureMessage, fileSystemMessage, reportsKeptNote } from '../pipeline/cli/failures.js';
import { DataError } from '../pipeline/stages/load.js';
import { StagesFailedError } from '../pipeline/dag/runner.js';
import { StageProcessError, deserializeError, serializeError } from '../pipeline/dag/child.js';
import { expectedErrors } from '../pipeline/errors.js';

const errno = (code: string, file: string, syscall = 'open') =>
  Object.assign(new Error(`${code}: raw message, ${syscall} '${file}'`), { code, path: file, syscall });

describe('fileSystemMessage', () => {
  it.each([
    ['ENOSPC', 'write', 'no space left on the device (ENOSPC on write)'],
    ['EROFS', 'open', 'the file system is read-only (EROFS on open)'],
    ['EACCES', 'mkdir', 'permission denied (EACCES on mkdir)'],
    ['EISDIR', 'open', 'expected a file, found a folder (EISDIR on open)'],
  ])('%s names the path and the cause in one line', (code, syscall, cause) => {
    expect(fileSystemMessage(errno(code, '/data/reports/metrics.json', syscall))).toBe(`/data/reports/metrics.json: ${cause}`);
    expect(failureMessage(errno(code, '/data/reports/metrics.json', syscall))).toBe(`error: /data/reports/metrics.json: ${cause}`);
  });

  it('ENOTDIR names the plain file that stands where a folder should be', () => {
    const work = mkdtempSync(path.join(os.tmpdir(), 'errors-'));
    try {
      const file = path.join(work, 'plain');
      writeFileSync(file, 'x');
      expect(fileSystemMessage(errno('ENOTDIR', path.join(file, 'a', 'b'), 'mkdir'))).toBe(
        `${file}: expected a folder, found a file (ENOTDIR on mkdir ${path.join(file, 'a', 'b')})`,
      );
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  });

  it('leaves other errors alone: ours print their message, a bug keeps its stack', () => {
    expect(fileSystemMessage(new Error('plain'))).toBeNull();
    expect(fileSystemMessage(Object.assign(new Error('no path'), { code: 'ENOSPC' }))).toBeNull();
    expect(failureMessage(new DataError('x.idx: expected magic 2051, found 1'))).toBe('error: x.idx: expected magic 2051, found 1');
    const bug = failureMessage(new TypeError("Cannot read properties of null (reading 'files')"));
    expect(bug.split('\n')[0]).toBe("error: Cannot read properties of null (reading 'files')");
    expect(bug).toMatch(/\n\s+at /);
  });

  it('says the reports were kept only when there is a report folder', () => {
    expect(reportsKeptNote(path.join(os.tmpdir(), 'no-such-folder-here'))).toBeNull();
    expect(reportsKeptNote(os.tmpdir())).toBe(`Reports in ${os.tmpdir()}/ were left as they were.`);
  });
});

describe('errors from a stage process', () => {
  it('keep their path across the process boundary: ENOSPC in a child is one line naming the file', () => {
    const full = errno('ENOSPC', '/data/.cache/train/.tmp-ab/arrays.bin', 'write');
    const rebuilt = deserializeError(structuredClone(serializeError(full))); // what the IPC channel carries
    expect(failureMessage(rebuilt)).toBe('error: /data/.cache/train/.tmp-ab/arrays.bin: no space left on the device (ENOSPC on write)');
  });

  it('keep their class name, so ours print no stack, and a bug keeps its stack', () => {
    const ours = deserializeError(
      serializeError(new StageProcessError('stage train: its process was killed by SIGKILL before it finished')),
      expectedErrors(),
    );
    expect(ours).toBeInstanceOf(StageProcessError); // the same class, not a name string
    expect(failureMessage(ours)).toBe('error: stage train: its process was killed by SIGKILL before it finished');
    const bug = deserializeError(serializeError(new TypeError('x is undefined')), expectedErrors());
    expect(failureMessage(bug).split('\n').length).toBeGreaterThan(1);
    expect(failureMessage(bug).split('\n')[1]).toMatch(/^\s+at /);
  });

  it('several stages failing: each one worded as if it failed alone', () => {
    const error = new StagesFailedError([
      { stage: 'train', error: errno('ENOSPC', '/c/train/arrays.bin', 'write') },
      { stage: 'reference', error: new StageProcessError('stage reference: its process was killed by SIGKILL before it finished') },
    ]);
    expect(failureMessage(error)).toBe(
      [
        'error: 2 stages failed:',
        '  train: /c/train/arrays.bin: no space left on the device (ENOSPC on write)',
        '  reference: stage reference: its process was killed by SIGKILL before it finished',
      ].join('\n'),
    );
  });
});
