// What a stage's process costs before its stage can start (issue 24): a fresh Node loading the
// stage table through tsx, and from the build (dist/, plain Node, as a stage's process starts
// when the build is fresh: compiledTwin in pipeline/dag/child.ts), and reading the preprocess
// entry, the largest input of every training, from a cache. Each measured in fresh processes,
// the medians of --reps.
//
//   `npx tsx bench/child-start.ts --entry <cache>/preprocess/<key> [--entry …] [--reps 5]`

import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { summarise } from './jobs.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const parsed = yargs(hideBin(process.argv))
  .scriptName('npx tsx bench/child-start.ts')
  .option('entry', { type: 'string', array: true, default: [], describe: 'A preprocess cache entry folder to read (repeatable)' })
  .option('reps', { type: 'number', default: 5, describe: 'Fresh processes per measurement' })
  .strict()
  .help()
  .parseSync();

/** Seconds a fresh `node [--import tsx] -e <code>` process reports for its own work, and its whole wall. */
function fresh(code: string, tsx = true): { inside: number; wall: number } {
  const start = performance.now();
  const flags = [...(tsx ? ['--import', 'tsx'] : []), '--input-type=module', '-e', code];
  const child = spawnSync(process.execPath, flags, { cwd: ROOT, encoding: 'utf8' });
  if (child.status !== 0) throw new Error(`node -e exited ${child.status}:\n${child.stderr}`);
  return { inside: Number(child.stdout.trim()), wall: (performance.now() - start) / 1000 };
}

const median = (values: number[]) => summarise(values).median.toFixed(2);
const rows: string[] = [];
const load = Array.from({ length: parsed.reps }, () =>
  fresh(`const t = performance.now(); await import('./pipeline/stages.ts'); console.log((performance.now() - t) / 1000);`),
);
rows.push(
  `| a fresh process: Node and tsx start, then the stage table imported | ${median(load.map((r) => r.wall - r.inside))} s + ${median(load.map((r) => r.inside))} s |`,
);
if (existsSync(path.join(ROOT, 'dist', 'pipeline', 'stages.js'))) {
  const built = Array.from({ length: parsed.reps }, () =>
    fresh(`const t = performance.now(); await import('./dist/pipeline/stages.js'); console.log((performance.now() - t) / 1000);`, false),
  );
  rows.push(
    `| the same from the build (dist/, plain Node): Node start, then the stage table imported | ${median(built.map((r) => r.wall - r.inside))} s + ${median(built.map((r) => r.inside))} s |`,
  );
} else rows.push('| the build (dist/) | not built: npm run build |');
for (const entry of parsed.entry as string[]) {
  const [stageDir, key] = [path.dirname(path.resolve(entry)), path.basename(entry)];
  const code = `import { createCache } from './pipeline/dag/cache.ts';
const t = performance.now(); createCache(${JSON.stringify(path.dirname(stageDir))}).read(${JSON.stringify(path.basename(stageDir))}, ${JSON.stringify(key)});
console.log((performance.now() - t) / 1000);`;
  const reads = Array.from({ length: parsed.reps }, () => fresh(code));
  rows.push(`| reading ${entry} (checked against its SHA-256) | ${median(reads.map((r) => r.inside))} s |`);
}
process.stdout.write(
  [
    `### What a stage's process costs before its stage starts (${parsed.reps} fresh processes each; ${os.availableParallelism()} cores, ${os.cpus()[0]?.model.trim()})`,
    '',
    '| what | median |',
    '|---|---:|',
    ...rows,
    '',
  ].join('\n'),
);
