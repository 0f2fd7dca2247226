import { rmSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../pipeline/tfjs/backend.js';
import { evaluateModels } from '../pipeline/stages/evaluate.js';
import { loadMnist } from '../pipeline/stages/load.js';
import { preprocessDataset } from '../pipeline/stages/preprocess.js';
import { silentProgress } from '../pipeline/progress.js';
import { EXPERIMENT_VARIANTS } from '../pipeline/experiments/variants.js';
import { InterruptedError } from '../pipeline/dag/interrupted.js';
import { initialWeights } from '../pipeline/stages/init.js';
import { trainTfjs } from '../pipeline/stages/train.js';
import type { Dataset } from '../pipeline/types.js';
import { DivergenceError } from '../reference/epochs.js';
import { writeFakeMnist } from './helpers/idx.js';

let dataset: Dataset;
let dir: string;
beforeAll(async () => {
  await selectBackend('wasm');
  dir = writeFakeMnist(undefined, { trainCount: 300, testCount: 100 });
  dataset = preprocessDataset(loadMnist(dir), 200, 100, 100);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const options = { epochs: 3, batchSize: 32, lr: 0.1, seed: 7 };
const hooks = () => ({ progress: silentProgress() });

describe('TF.js training', () => {
  it('keeps the tensor count flat across epochs and leaks nothing', async () => {
    const before = tf.memory().numTensors;
    const counts: number[] = [];
    await trainTfjs(dataset, initialWeights(7), options, { ...hooks(), onEpochEnd: (_record, numTensors) => counts.push(numTensors) });
    expect(counts).toHaveLength(3);
    expect(new Set(counts).size).toBe(1);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('keeps the tensor count flat with every recipe of the experiments', async () => {
    const before = tf.memory().numTensors;
    for (const variant of EXPERIMENT_VARIANTS) {
      const counts: number[] = [];
      await trainTfjs(
        dataset,
        initialWeights(7),
        { ...options, epochs: 2, recipe: variant.recipe, label: variant.name },
        {
          ...hooks(),
          onEpochEnd: (_record, numTensors) => counts.push(numTensors),
        },
      );
      expect([variant.name, new Set(counts).size]).toEqual([variant.name, 1]);
      expect([variant.name, tf.memory().numTensors]).toEqual([variant.name, before]);
    }
  });

  it('stops an Adam run at the first non-finite batch loss too, naming its learning rate', async () => {
    const adam = {
      ...EXPERIMENT_VARIANTS.find((variant) => variant.name === 'adam')!.recipe,
      optimizer: { kind: 'adam' as const, lr: 1e6 },
    };
    await expect(trainTfjs(dataset, initialWeights(7), { ...options, recipe: adam, label: 'adam' }, hooks())).rejects.toThrow(
      /^adam training diverged: the batch loss became (NaN|Infinity) in epoch \d, batch \d+ of 7 \(Adam's learning rate 1000000 is probably too large\)$/,
    );
  });

  it('learns the separable fake digits', async () => {
    const trained = await trainTfjs(dataset, initialWeights(7), { ...options, epochs: 5 }, hooks());
    expect(trained.history.at(-1)!.valAccuracy).toBeGreaterThan(0.9);
    expect(trained.history[4]!.loss).toBeLessThan(trained.history[0]!.loss);
    expect(trained.backend).toBe('wasm');
  });

  it('is deterministic for a seed, and another seed starts elsewhere', async () => {
    const a = await trainTfjs(dataset, initialWeights(7), options, hooks());
    const b = await trainTfjs(dataset, initialWeights(7), options, hooks());
    expect(Array.from(a.params.w1)).toEqual(Array.from(b.params.w1));
    expect(a.history.map((r) => r.loss)).toEqual(b.history.map((r) => r.loss));
    const other = initialWeights(8).params.w1;
    expect(Array.from(other)).not.toEqual(Array.from(initialWeights(7).params.w1));
  });

  it('stops at the first non-finite batch loss, naming epoch and batch', async () => {
    const attempt = trainTfjs(dataset, initialWeights(7), { ...options, lr: 1e4 }, hooks());
    await expect(attempt).rejects.toThrow(DivergenceError);
    await expect(trainTfjs(dataset, initialWeights(7), { ...options, lr: 1e4 }, hooks())).rejects.toThrow(
      /training diverged: the batch loss became (NaN|Infinity) in epoch 1, batch \d+ of 7/,
    );
  });

  it('stops between batches when the signal is aborted', async () => {
    const controller = new AbortController();
    controller.abort();
    const before = tf.memory().numTensors;
    await expect(trainTfjs(dataset, initialWeights(7), options, { ...hooks(), signal: controller.signal })).rejects.toThrow(
      InterruptedError,
    );
    expect(tf.memory().numTensors).toBe(before);
  });

  it('evaluates repeatedly without leaking tensors', async () => {
    const trained = await trainTfjs(dataset, initialWeights(7), options, hooks());
    evaluateModels(dataset, trained, null);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) evaluateModels(dataset, trained, null);
    expect(tf.memory().numTensors).toBe(before);
  });
});
