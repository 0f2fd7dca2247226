// The CLIs' one launcher. It runs the build in dist/ when it is fresh (pipeline/compiled-twin.ts),
// on plain Node, and otherwise the TypeScript source through tsx: a clone runs before any build,
// and an edit runs at once, before the next build.
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** Runs the project's TypeScript entry `relative` (e.g. 'pipeline/cli/pipeline.ts'), or its fresh build. */
export async function launch(relative) {
  const source = path.join(ROOT, relative);
  let entry = source;
  try {
    const { compiledTwin } = await import(pathToFileURL(path.join(ROOT, 'dist', 'pipeline', 'compiled-twin.js')).href);
    entry = compiledTwin(ROOT, source);
  } catch (error) {
    if (error?.code !== 'ERR_MODULE_NOT_FOUND') throw error; // never built: the source runs
  }
  if (entry.endsWith('.ts')) (await import('tsx/esm/api')).register();
  await import(pathToFileURL(entry).href);
}
