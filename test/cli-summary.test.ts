// The run ends with what matters: the test accuracies, the wall time, the page to open and a predict command.

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { wallSplit } from '../pipeline/cli/run.js';
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
    // The wall time and where it went; the parts add up to it (each rounded to 0.1 s).
    const split =
      /^wall time: (\d+\.\d) s \(start-up (\d+\.\d) s, data (\d+\.\d) s, longest training \((train|reference)\) (\d+\.\d) s, everything else (\d+\.\d) s\)$/.exec(
        last[1]!,
      );
    expect(split).not.toBeNull();
    const [wall, startup, data, , longest, rest] = split!.slice(1).map(Number);
    expect(Math.abs(startup! + data! + longest! + rest! - wall!)).toBeLessThanOrEqual(0.25);
    expect(longest).toBeGreaterThan(0);
    expect(last[2]).toBe(`open ${path.join(out, 'index.html')}`);
    expect(last[3]).toBe(`try your own digit: npm run predict -- my-digit.png --out ${out}`);
  });
});

describe('where the wall time went', () => {
  it('start-up, the data this run loaded, the longest training it ran, and the rest; cached stages count nothing', () => {
    const reports = [
      { name: 'load', outcome: 'ran', seconds: 0.5 },
      { name: 'preprocess', outcome: 'ran', seconds: 0.2 },
      { name: 'train', outcome: 'ran', seconds: 10 },
      { name: 'reference', outcome: 'ran', seconds: 12 },
      { name: 'experiment-adam', outcome: 'cached', seconds: 40 },
      { name: 'evaluate', outcome: 'ran', seconds: 3 },
    ] as const;
    expect(wallSplit([...reports], 1.5, 20)).toBe('start-up 1.5 s, data 0.7 s, longest training (reference) 12.0 s, everything else 5.8 s');
    expect(wallSplit([{ name: 'load', outcome: 'cached', seconds: 9 }], 1, 2)).toBe(
      'start-up 1.0 s, data 0.0 s, no training, everything else 1.0 s',
    );
  });
});
