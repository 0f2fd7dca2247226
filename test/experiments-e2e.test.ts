// --experiments as a user runs it, on a tiny config: the best combination is
// saved as model/best (a plain dense network), metrics.json says which variant
// it is, and the independent numpy check agrees with metrics.json.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { EXPERIMENT_VARIANTS } from '../pipeline/experiments/variants.js';
import { defaultDataDir, loadMnist } from '../pipeline/stages/load.js';
import { preprocessDataset } from '../pipeline/stages/preprocess.js';
import { selectBackend } from '../pipeline/tfjs/backend.js';
import { loadModel } from '../pipeline/tfjs/model-io.js';
import { lossAndAccuracy, predictProbabilities } from '../pipeline/tfjs/model.js';
import type { MetricsFile } from '../pipeline/types.js';
import type { ExperimentsMetrics } from '../pipeline/experiments/comparison.js';
import type { RunRow } from '../pipeline/runs.js';
import { ROOT, runCli, runFlags } from './helpers/cli.js';

const SIZES = { train: 640, val: 300, test: 500, epochs: 1 };
let work: string;
let run: ReturnType<typeof runCli>;
const args = (extra: string[]) => runFlags(work, SIZES, ['--no-reference', ...extra]);
const reports = () => path.join(work, 'reports');
const experiments = () =>
  (JSON.parse(readFileSync(path.join(reports(), 'metrics.json'), 'utf8')) as MetricsFile).experiments as ExperimentsMetrics;

beforeAll(() => {
  work = mkdtempSync(path.join(os.tmpdir(), 'experiments-e2e-'));
  run = runCli('pipeline/cli/pipeline.ts', args(['--experiments']));
}, 600_000);
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('--experiments on a tiny config', () => {
  it('saves the best combination as model/best and records which variant it is', async () => {
    expect(run.stderr).not.toMatch(/error:/);
    expect(run.status).toBe(0);
    const best = experiments().best_combination!;
    const combinations = EXPERIMENT_VARIANTS.filter((variant) => variant.kind === 'combination').map((variant) => variant.name);
    expect(combinations).toContain(best.name);
    expect(best.model).toBe('model/best');
    const bestVal = Math.max(...combinations.map((name) => experiments().variants[name]!.val_accuracy));
    expect(best.val_accuracy).toBe(bestVal);
    expect(best.test_accuracy).toBe(experiments().variants[best.name]!.test_accuracy);

    await selectBackend('wasm');
    const model = await loadModel(path.join(reports(), 'model/best'));
    expect(model.layers.map((layer) => [layer.getClassName(), layer.name])).toEqual([
      ['Dense', 'dense1'],
      ['Dense', 'dense2'],
      ['Dense', 'dense3'],
    ]);
    const { test } = preprocessDataset(loadMnist(defaultDataDir()), SIZES.train, SIZES.val, SIZES.test);
    const accuracy = lossAndAccuracy(predictProbabilities(model, test.images, test.count), test.labels).accuracy;
    model.dispose();
    expect(accuracy).toBe(best.test_accuracy);
  });

  it('trains every variant but the baseline, which scores the model of the train stage', () => {
    const trained = [...run.stdout.matchAll(/^(\S+) epoch 1\/1:/gm)].map((match) => match[1]);
    expect(trained.sort()).toEqual(
      ['tfjs', ...EXPERIMENT_VARIANTS.map((variant) => variant.name).filter((name) => name !== 'baseline')].sort(),
    );
    const metrics = JSON.parse(readFileSync(path.join(reports(), 'metrics.json'), 'utf8')) as MetricsFile;
    expect(experiments().variants.baseline!.test_accuracy).toBe(metrics.tfjs.test_accuracy);
  });

  it('--runs lists every variant with its accuracies; each variant and the best record the run that trained them', () => {
    const listed = runCli('pipeline/cli/pipeline.ts', ['--runs', '--json', '--cache-dir', path.join(work, 'cache')]);
    expect(listed.status).toBe(0);
    const rows = JSON.parse(listed.stdout) as RunRow[];
    const metrics = JSON.parse(readFileSync(path.join(reports(), 'metrics.json'), 'utf8')) as MetricsFile;
    for (const variant of EXPERIMENT_VARIANTS) {
      const row = rows.find((r) => r.stage === `experiment-${variant.name}`)!;
      expect([row.valAccuracy, row.testAccuracy]).toEqual([
        experiments().variants[variant.name]!.val_accuracy,
        experiments().variants[variant.name]!.test_accuracy,
      ]);
      expect(row.usedBy).toEqual([reports()]);
      expect(experiments().variants[variant.name]!.trained_by).toEqual(metrics.tfjs.trained_by);
    }
    expect(rows.find((r) => r.stage === 'train')!.testAccuracy).toBe(metrics.tfjs.test_accuracy);
    expect(experiments().best_combination!.trained_by).toEqual(metrics.tfjs.trained_by); // one run trained them all
  });

  it('offers the best model in the live panel of index.html', () => {
    const html = readFileSync(path.join(reports(), 'index.html'), 'utf8');
    expect(html).toContain('<option value="best">');
  });

  it('scripts/verify_model.py reports/model/best best agrees with metrics.json', () => {
    const python = spawnSync('python3', ['-c', 'import numpy'], { encoding: 'utf8' });
    if (python.status !== 0) {
      console.warn('skipped: python3 with numpy is not available');
      return;
    }
    const check = spawnSync('python3', ['scripts/verify_model.py', path.join(reports(), 'model/best'), 'best'], {
      cwd: ROOT,
      encoding: 'utf8',
    });
    expect(check.stderr).toBe('');
    expect(check.stdout).toMatch(/metrics\.json experiments\.best_combination: .*difference 0\.0000; confusion matrix identical/);
    expect(check.status).toBe(0);
  });

  it('a run without --experiments leaves no stale model/best beside its metrics.json', () => {
    const again = runCli('pipeline/cli/pipeline.ts', args([]));
    expect(again.status).toBe(0);
    expect(existsSync(path.join(reports(), 'model/tfjs/model.json'))).toBe(true);
    expect(existsSync(path.join(reports(), 'model/best'))).toBe(false);
    expect(experiments()).toBeUndefined();
    expect(readFileSync(path.join(reports(), 'index.html'), 'utf8')).not.toContain('<option value="best">');
  }, 300_000);
});
