// Which file to run, the TypeScript source or its build in dist/: the CLIs (bin/) and a stage's child
// process (dag/child.ts) both ask here. Plain Node on the build starts faster and holds less than tsx
// transpiling the source: no esbuild, no transpiled copies, no source maps.

import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';

/**
 * The compiled twin of `source`, a file of the project at `root`, in dist/ (npm run build; npm ci builds it too),
 * when it is newer than every TypeScript file of pipeline/ and reference/: it then runs on plain Node, without
 * tsx. After an edit, until the next build, the source runs, so nothing ever runs code older than the source.
 */
export function compiledTwin(root: string, source: string): string {
  const compiled = path.join(root, 'dist', path.relative(root, source)).replace(/\.ts$/, '.js');
  let built: number;
  try {
    built = statSync(compiled).mtimeMs;
  } catch {
    return source; // never built
  }
  for (const folder of ['pipeline', 'reference']) {
    for (const file of readdirSync(path.join(root, folder), { recursive: true, encoding: 'utf8' })) {
      if (/\.(ts|mjs)$/.test(file) && statSync(path.join(root, folder, file)).mtimeMs >= built) return source;
    }
  }
  return compiled;
}
