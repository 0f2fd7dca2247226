// The run ends with what matters: the test accuracies, the wall time, the page to open and a predict command.

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runCli, smallRunArgs } from './helpers/cli.js';

describe('the last lines of a run', () => {
  let work: string;
  beforeAll(() => (work = mkdtempSync(path.join(os.tmpdir(), 'summary-'))));
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it('give the test accuracies of metrics.json, the wall time, the index.html to open and a predict command', () => {
    const result = runCli('pipeline/cli/pipeline.ts', smallRunArgs(work));
    expect(result.status).toBe(0);
    const out = path.join(work, 'reports');
    const metrics = JSON.parse(readFileSync(path.join(out, 'metrics.json'), 'utf8'));
    const percent = (fraction: number) => `${(fraction * 100).toFixed(2)}%`;
    const last = result.stdout.trimEnd().split('\n').slice(-4);
    expect(last[0]).toBe(
      `test accuracy: TF.js ${percent(metrics.tfjs.test_accuracy)}, reference ${percent(metrics.reference.test_accuracy)} (2 epochs, 4,000 training images)`,
    );
    expect(last[1]).toMatch(/^wall time: \d+\.\d s$/);
    expect(last[2]).toBe(`open ${path.join(out, 'index.html')}`);
    expect(last[3]).toBe(`try your own digit: npm run predict -- my-digit.png --out ${out}`);
  });
});
