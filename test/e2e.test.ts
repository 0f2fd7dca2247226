// The real pipeline on a small subset of the real MNIST, run as a user would.

import { existsSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type { Config } from '../pipeline/config.js';
import { defaultDataDir, loadMnist } from '../pipeline/stages/load.js';
import { preprocessDataset } from '../pipeline/stages/preprocess.js';
import { selectBackend } from '../pipeline/tfjs/backend.js';
import { loadModel } from '../pipeline/tfjs/model-io.js';
import { lossAndAccuracy, predictProbabilities } from '../pipeline/tfjs/model.js';
import type { MetricsFile } from '../pipeline/types.js';
import { ROOT, runCli, smallRunArgs } from './helpers/cli.js';

let work: string;
let first: ReturnType<typeof runCli>;
beforeAll(() => {
  work = mkdtempSync(path.join(os.tmpdir(), 'e2e-'));
  first = runCli('pipeline/cli/pipeline.ts', smallRunArgs(work));
}, 300_000);
afterAll(() => rmSync(work, { recursive: true, force: true }));

// Images each split got right in this file's run (smallRunArgs: 4,000 / 500 / 1,000 images, 2 epochs, lr 0.05, seed 42, wasm);
// two runs give bit-identical weights, so these change only when training changes. Both implementations score the same.
const RECORDED_CORRECT = { train: 3463, validationEpoch1: 417, validation: 455, test: 825 };
const WEIGHTS_BYTES = 4 * (784 * 128 + 128 + 128 * 64 + 64 + 64 * 10 + 10); // float32 w1, b1, w2, b2, w3, b3

const reports = () => path.join(work, 'reports');
const metrics = () => JSON.parse(readFileSync(path.join(reports(), 'metrics.json'), 'utf8')) as MetricsFile;

describe('end to end on 4,000 real images', () => {
  it('exits 0 and names the backend that ran', () => {
    expect(first.stderr).not.toMatch(/error:/);
    expect(first.status).toBe(0);
    expect(first.stdout).toContain('TF.js backend: wasm');
  });

  it('writes the contract files', () => {
    for (const file of [
      'metrics.json',
      'config.json',
      'training_history.csv',
      'model/tfjs/model.json',
      'model/reference/model.json',
      'report.md',
      'index.html',
    ]) {
      expect(existsSync(path.join(reports(), file))).toBe(true);
    }
    for (const weights of ['model/tfjs/weights.bin', 'model/reference/weights.bin']) {
      expect({ weights, bytes: statSync(path.join(reports(), weights)).size }).toEqual({ weights, bytes: WEIGHTS_BYTES });
    }
  });

  it('records the accuracies of this deterministic run, consistent with the confusion matrix', () => {
    const m = metrics();
    expect(m.backend).toBe('wasm');
    expect(m.config.trainSize).toBe(4000);
    for (const [implementation, block] of [
      ['tfjs', m.tfjs],
      ['reference', m.reference!],
    ] as const) {
      const cells = block.confusion_matrix.flat();
      expect(cells.reduce((a, b) => a + b, 0)).toBe(1000);
      expect(block.per_class).toHaveLength(10);
      expect(block.per_class.reduce((a, c) => a + c.support, 0)).toBe(1000);
      const diagonal = block.confusion_matrix.reduce((sum, row, i) => sum + row[i]!, 0);
      expect({ implementation, diagonal }).toEqual({ implementation, diagonal: RECORDED_CORRECT.test });
      expect({ implementation, test: block.test_accuracy, validation: block.val_accuracy, train: block.train_accuracy }).toEqual({
        implementation,
        test: RECORDED_CORRECT.test / 1000,
        validation: RECORDED_CORRECT.validation / 500,
        train: RECORDED_CORRECT.train / 4000,
      });
    }
    expect(first.stdout).toContain('\ntest accuracy: TF.js 82.50%, reference 82.50% (2 epochs, 4,000 training images)\n');
  });

  it('writes the history with the contract columns', () => {
    const lines = readFileSync(path.join(reports(), 'training_history.csv'), 'utf8').trim().split('\n');
    expect(lines[0]).toBe('implementation,epoch,loss,accuracy,val_loss,val_accuracy,seconds');
    const validation = [RECORDED_CORRECT.validationEpoch1 / 500, RECORDED_CORRECT.validation / 500];
    expect(lines.slice(1).map((l) => l.split(',').filter((_, column) => column === 0 || column === 1 || column === 5))).toEqual(
      ['tfjs', 'reference'].flatMap((implementation) => [1, 2].map((epoch) => [implementation, `${epoch}`, `${validation[epoch - 1]}`])),
    );
    for (const line of lines.slice(1)) for (const cell of line.split(',').slice(1)) expect(Number.isFinite(Number(cell))).toBe(true);
  });

  it('records where the run came from, and shows it at the top of the report', () => {
    const { run } = metrics();
    const require = createRequire(import.meta.url);
    expect(run.node_version).toBe(process.versions.node);
    expect(run.tfjs_version).toBe((require('@tensorflow/tfjs/package.json') as { version: string }).version);
    expect(run.backend).toBe('wasm');
    expect(run.backend_version).toBe((require('@tensorflow/tfjs-backend-wasm/package.json') as { version: string }).version);
    expect(run.cpu_cores).toBe(os.cpus().length);
    expect(run.git_commit).toMatch(existsSync(path.join(ROOT, '.git')) ? /^[0-9a-f]{40}$/ : /^unknown$/);
    const report = readFileSync(path.join(reports(), 'report.md'), 'utf8');
    const summary = report.slice(0, report.indexOf('\n## Results\n'));
    expect(summary).toMatch(new RegExp(`^- \\*\\*Code\\*\\*: commit \`${run.git_commit.slice(0, 12)}\`[ ,]`, 'm'));
  });

  it('saves models that tf.loadLayersModel reads back and that re-score to the recorded test accuracy and loss', async () => {
    await selectBackend('wasm');
    const config = JSON.parse(readFileSync(path.join(reports(), 'config.json'), 'utf8')) as Config;
    const { test } = preprocessDataset(loadMnist(defaultDataDir(ROOT)), config.trainSize, config.valSize, config.testSize);
    const m = metrics();
    for (const [folder, recorded] of [
      ['tfjs', m.tfjs],
      ['reference', m.reference!],
    ] as const) {
      const model = await loadModel(path.join(reports(), 'model', folder));
      try {
        expect(model.inputs[0]!.shape).toEqual([null, 784]);
        expect(model.outputs[0]!.shape).toEqual([null, 10]);
        const { loss, accuracy } = lossAndAccuracy(predictProbabilities(model, test.images, test.count), test.labels);
        expect({ folder, accuracy }).toEqual({ folder, accuracy: recorded.test_accuracy });
        expect(loss).toBeCloseTo(recorded.test_loss, 6);
      } finally {
        model.dispose();
      }
    }
    expect(tf.getBackend()).toBe('wasm');
  });

  it('reruns evaluate from the cache without retraining', () => {
    const before = readFileSync(path.join(reports(), 'model', 'tfjs', 'weights.bin'));
    const again = runCli('pipeline/cli/pipeline.ts', smallRunArgs(work, ['--stage', 'evaluate']));
    expect(again.status).toBe(0);
    expect(again.stdout).toMatch(/✔ train: cached/);
    expect(again.stdout).not.toMatch(/▶ train/);
    expect(again.stdout).toMatch(/▶ evaluate/);
    expect(readFileSync(path.join(reports(), 'model', 'tfjs', 'weights.bin')).equals(before)).toBe(true);
  }, 120_000);

  it('redraws the charts with --stage visualize into a new report folder, training nothing', () => {
    const [folderBefore, curvesBefore] = [readlinkSync(reports()), readFileSync(path.join(reports(), 'training_curves.png'))];
    const again = runCli('pipeline/cli/pipeline.ts', smallRunArgs(work, ['--stage', 'visualize']));
    expect(again.status).toBe(0);
    expect(again.stdout).toMatch(/▶ visualize/);
    expect(again.stdout).not.toMatch(/▶ (train|reference|evaluate)\b/);
    expect(again.stdout).toMatch(/▶ report/);
    expect(readlinkSync(reports())).not.toBe(folderBefore);
    expect(readFileSync(path.join(reports(), 'training_curves.png')).equals(curvesBefore)).toBe(true); // drawn with a fixed seed
  }, 120_000);

  it('--list shows every stage cached after the run', () => {
    const listed = runCli('pipeline/cli/pipeline.ts', smallRunArgs(work, ['--list']));
    expect(listed.status).toBe(0);
    for (const stage of ['load', 'preprocess', 'init', 'gradcheck', 'train', 'reference', 'evaluate', 'visualize']) {
      expect(listed.stdout).toMatch(new RegExp(`^  ${stage} +cached +v\\d+$`, 'm'));
    }
  }, 60_000);
});
