// Where a step of the pure-TypeScript reference spends its time: each kernel of one
// SGD step, timed on its own over many repetitions of one real batch of 64 MNIST
// digits, with weights after a short training so that the ReLUs are as sparse as
// in a real run (the fast path, reference/fast/). Layer 1's kernels are most of what
// reference/fast/threads.ts shares.
// npx tsx bench/profile-reference.ts [--reps 3000]

import { defaultDataDir, loadMnist } from '../pipeline/stages/load.js';
import { preprocessDataset } from '../pipeline/stages/preprocess.js';
import { initialWeights } from '../pipeline/stages/init.js';
import { softmaxCrossEntropyForward } from '../reference/network.js';
import * as kernels from '../reference/fast/kernels.js';
import * as net from '../reference/fast/network.js';
import { D, H1, H2, K, cloneParams, scalePixels } from '../reference/shapes.js';
import { trainReferenceAsync } from '../reference/sgd.js';
import { subsetDataset } from './subset.js';

const BATCH = 64;
const at = process.argv.indexOf('--reps');
const reps = at >= 0 ? Number(process.argv[at + 1]) : 3000;
if (!Number.isInteger(reps) || reps < 1) throw new Error(`--reps: expected a positive whole number, found ${process.argv[at + 1]}`);

const full = preprocessDataset(loadMnist(defaultDataDir()), 50_000, 10_000, 10_000);
const warm = await trainReferenceAsync(subsetDataset(full, 20_000, BATCH), initialWeights(42).params, {
  epochs: 1,
  batchSize: BATCH,
  lr: 0.01,
  seed: 42,
});
const params = warm.params;
const scratch = cloneParams(params); // the updates land here, so every repetition sees the same weights
const ws = net.createWorkspace(params, BATCH);
const y = full.train.oneHot.subarray(0, BATCH * K);
kernels.sparseRowsOf(ws.xRows, scalePixels(full.train.images.subarray(0, BATCH * D)), BATCH, D);
const g = ws.grads;

// In the order trainStepRows runs them; each reads what the ones before it left in ws.
const phases: [string, boolean, () => void][] = [
  ['layer 1 forward: z1 = x·w1 + b1', true, () => net.layer1Forward(params, ws)],
  [
    'ReLU 1, a1 as nonzeros',
    false,
    () => {
      kernels.reluGate(ws.a1, ws.z1, BATCH * H1);
      kernels.sparseRowsOf(ws.a1Rows, ws.a1, BATCH, H1);
    },
  ],
  ['layer 2 forward: z2 = a1·w2 + b2', false, () => net.layer2Forward(params, ws)],
  [
    'ReLU 2, layer 3, softmax, loss',
    false,
    () => {
      kernels.reluGate(ws.a2, ws.z2, BATCH * H2);
      kernels.matmul(ws.logits, ws.a2, params.w3, BATCH, H2, K, params.b3);
      softmaxCrossEntropyForward(ws.probs, ws.logits, y, BATCH, K);
      net.countCorrect(ws.logits, y, BATCH, K);
    },
  ],
  ['backward to dZ2 (layer 3, ReLU 2)', false, () => net.backwardToZ2(params, y, BATCH, ws)],
  ['layer 2 weights: dW2 = a1ᵀ·dZ2', false, () => net.layer2WeightGradient(ws, BATCH)],
  ['layer 2 input: dZ1 = (dZ2·w2ᵀ) ⊙ [z1 > 0]', false, () => net.layer2InputGradient(params, BATCH, ws)],
  ['xᵀ for dW1', true, () => kernels.transposeSparse(ws.xCols, ws.xRows, D)],
  ['layer 1 weights: dW1 = xᵀ·dZ1, db1', true, () => net.layer1Backward(ws, BATCH)],
  ['SGD update of w1', true, () => net.sgdUpdateW1(scratch, g, 0.01)],
  ['SGD update of the rest', false, () => net.sgdUpdateAllButW1(scratch, g, 0.01)],
];

for (const [, , run] of phases) for (let i = 0; i < 200; i++) run(); // warm-up: let V8 optimise
const micros = phases.map(([, , run]) => {
  const start = performance.now();
  for (let i = 0; i < reps; i++) run();
  return ((performance.now() - start) * 1000) / reps;
});
const total = micros.reduce((a, b) => a + b, 0);
const layer1 = micros.reduce((sum, us, i) => sum + (phases[i]![1] ? us : 0), 0);
console.log(`One SGD step of the reference, batch ${BATCH}, ${reps} repetitions of each kernel:\n`);
phases.forEach(([name, layer1Kernel], i) =>
  console.log(
    `${micros[i]!.toFixed(1).padStart(8)} µs ${((100 * micros[i]!) / total).toFixed(1).padStart(5)}% ${layer1Kernel ? '*' : ' '} ${name}`,
  ),
);
console.log(
  `${total.toFixed(1).padStart(8)} µs        sum (${Math.round((BATCH * 1e6) / total).toLocaleString('en-US')} images/s on one thread)`,
);
console.log(`\nLayer 1 (* kernels: z1, xᵀ, dW1, w1's update): ${((100 * layer1) / total).toFixed(0)}% of the step.`);
console.log(
  `Nonzeros in the batch: x ${ws.xRows.start[BATCH]} of ${BATCH * D}, a1 ${ws.a1Rows.start[BATCH]} of ${BATCH * H1}, dZ2 ${ws.dZ2Rows.start[BATCH]} of ${BATCH * H2}.`,
);
