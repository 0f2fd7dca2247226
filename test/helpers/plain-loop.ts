// The TF.js training loop as it was before the speed-up (issue 6), kept as the
// oracle the optimised loop in pipeline/stages/train.ts is tested against
// (test/fast-kernels.test.ts), and as the baseline row of bench/bench.ts: per step it
// gathers the batch from the whole training set on the backend and reads loss and
// correct count separately.

import * as tf from '@tensorflow/tfjs';
import { batchCount, epochPermutation } from '../../reference/random.js';
import { D, K, scalePixels } from '../../reference/shapes.js';
import { buildModel, crossEntropy, readParams, writeParams } from '../../pipeline/tfjs/model.js';
import type { TrainOptions } from '../../pipeline/stages/train.js';
import type { Dataset, InitialWeights, Params } from '../../pipeline/types.js';

export interface PlainTraining {
  params: Params;
  losses: number[]; // mean loss of each batch, in order
  corrects: number[]; // correct count of each batch
  trainSeconds: number; // wall time of the epochs' batches
  trainCpuSeconds: number; // process CPU time over the same span
}

/** Trains like trainTfjs (same init, shuffle and batches) with the plain per-step gather loop. */
export function trainTfjsPlain(dataset: Dataset, init: InitialWeights, options: TrainOptions): PlainTraining {
  const { train } = dataset;
  const { epochs, batchSize, lr, seed } = options;
  const model = buildModel(seed);
  writeParams(model, init.params);
  const optimizer = tf.train.sgd(lr);
  const xTrain = tf.tensor2d(scalePixels(train.images), [train.count, D]); // (N, D), scaled up front: the oracle of scaling per batch
  const yTrain = tf.tensor2d(train.oneHot, [train.count, K]); // (N, K)
  const batches = batchCount(train.count, batchSize);
  const losses: number[] = [];
  const corrects: number[] = [];
  let trainSeconds = 0;
  let trainCpuSeconds = 0;
  try {
    for (let epoch = 0; epoch < epochs; epoch++) {
      const epochStart = performance.now();
      const epochCpu = process.cpuUsage();
      const order = epochPermutation(train.count, seed, epoch);
      for (let b = 0; b < batches; b++) {
        const rows = order.subarray(b * batchSize, Math.min((b + 1) * batchSize, train.count));
        const [loss, correct] = plainStep(model, optimizer, xTrain, yTrain, rows);
        losses.push(loss);
        corrects.push(correct);
      }
      trainSeconds += (performance.now() - epochStart) / 1000;
      const cpu = process.cpuUsage(epochCpu);
      trainCpuSeconds += (cpu.user + cpu.system) / 1e6;
    }
    return { params: readParams(model), losses, corrects, trainSeconds, trainCpuSeconds };
  } finally {
    tf.dispose([xTrain, yTrain]);
    optimizer.dispose();
    model.dispose();
  }
}

/** One SGD step on the rows `rows` of the training tensors; returns [mean loss, correct count]. */
function plainStep(
  model: tf.LayersModel,
  optimizer: tf.Optimizer,
  xTrain: tf.Tensor2D,
  yTrain: tf.Tensor2D,
  rows: Uint32Array,
): [number, number] {
  let correct: tf.Tensor | undefined;
  const loss = tf.tidy(() => {
    const indices = tf.tensor1d(Int32Array.from(rows), 'int32');
    const x = tf.gather(xTrain, indices); // (B, D)
    const y = tf.gather(yTrain, indices); // (B, K)
    return optimizer.minimize(() => {
      const probabilities = model.apply(x, { training: true }) as tf.Tensor2D; // (B, K)
      correct = tf.keep(tf.equal(tf.argMax(probabilities, 1), tf.argMax(y, 1)).sum());
      return crossEntropy(y, probabilities);
    }, true) as tf.Scalar;
  });
  if (correct === undefined) throw new Error('plainStep: the loss function did not run');
  const values: [number, number] = [loss.dataSync()[0]!, correct.dataSync()[0]!];
  tf.dispose([loss, correct]);
  return values;
}
