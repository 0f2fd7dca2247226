// A stage's process starts on the compiled build (dist/) only while the build is newer than
// every source file; after an edit it runs the TypeScript, so it never runs older code.

import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { compiledTwin } from '../pipeline/compiled-twin.js';

let root: string;
beforeEach(() => {
  root = mkdtempSync(path.join(os.tmpdir(), 'compiled-'));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

/** Writes `file` under root with its modification time at `seconds`. */
function place(file: string, seconds: number): string {
  const full = path.join(root, file);
  mkdirSync(path.dirname(full), { recursive: true });
  writeFileSync(full, '');
  utimesSync(full, seconds, seconds);
  return full;
}

describe('compiledTwin', () => {
  it('names dist/…/stage-child.js while the build is newer than every source, and the source once one is edited', () => {
    const source = place('pipeline/dag/stage-child.ts', 1_000);
    place('reference/fast/step-worker.ts', 1_000);
    place('reference/fast/worker-boot.mjs', 1_000);
    const compiled = place('dist/pipeline/dag/stage-child.js', 2_000);
    expect(compiledTwin(root, source)).toBe(compiled);
    place('reference/fast/worker-boot.mjs', 3_000); // edited after the build
    expect(compiledTwin(root, source)).toBe(source);
    place('reference/fast/worker-boot.mjs', 1_000);
    place('pipeline/stages/new-stage.ts', 2_000); // a file as new as the build counts as newer
    expect(compiledTwin(root, source)).toBe(source);
  });

  it('names the source when nothing was built', () => {
    const source = place('pipeline/dag/stage-child.ts', 1_000);
    place('reference/shapes.ts', 1_000);
    expect(compiledTwin(root, source)).toBe(source);
  });
});
