// --runs and --gc: the cache's trainings listed, and the entries no report folder uses removed.
// Neither loads TF.js, vega or canvas: they read manifests and the JSON half of entries.

import path from 'node:path';
import { createCache } from '../dag/cache.js';
import { counted } from '../render/format.js';
import { cachedRuns, collectGarbage, folderStageKeys, megabytes, runsTable, sortRuns } from '../runs.js';
import type { Invocation } from './args.js';
import { UsageError } from './conventions.js';

/** --runs: the table (or JSON) of every cached training; --gc: the entries no kept folder uses, removed. */
export function runsOrGc(invocation: Invocation, log: (line: string) => void): void {
  const { cacheDir } = invocation.config;
  const cache = createCache(cacheDir);
  if (invocation.mode === 'runs') {
    const rows = sortRuns(cachedRuns(cache), invocation.sort);
    if (invocation.json) log(JSON.stringify(rows, null, 2));
    else if (rows.length === 0) log(`no trainings in the cache ${cacheDir}/`);
    else log(`${counted(rows.length, 'training')} in the cache ${cacheDir}/:\n${runsTable(rows)}`);
    return;
  }
  const keep = Object.fromEntries(
    invocation.keep.map((folder) => {
      const keys = folderStageKeys(folder);
      if (typeof keys === 'string') throw new UsageError(`--gc ${folder}: ${keys}`);
      return [path.resolve(folder), keys];
    }),
  );
  const removed = collectGarbage(cache, keep);
  for (const entry of removed) log(`removed ${entry.stage}/${entry.key} (${megabytes(entry.bytes)})`);
  const freed = removed.reduce((sum, entry) => sum + entry.bytes, 0);
  log(
    `--gc: removed ${removed.length} cache ${removed.length === 1 ? 'entry' : 'entries'}, freed ${megabytes(freed)}; kept the entries ${invocation.keep.join(', ')} ${invocation.keep.length === 1 ? 'was' : 'were'} made from`,
  );
}
