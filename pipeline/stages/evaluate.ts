// Stage evaluate (after train and reference): test metrics for each trained model,
// computed by the same code whichever implementation trained the weights.

import * as tf from '@tensorflow/tfjs';
import { argmax } from '../../reference/network.js';
import { K } from '../../reference/shapes.js';
import { averages, confusionMatrix, mostConfused, perClassMetrics } from '../metrics.js';
import { lossAndAccuracy, modelWithParams, predictProbabilities } from '../tfjs/model.js';
import type { Dataset, Evaluation, Example, ModelEvaluation, TrainedModel } from '../types.js';

const EXAMPLES_PER_KIND = 24;

/** Evaluates one trained model on the test split. */
export function evaluateModel(dataset: Dataset, trained: TrainedModel): ModelEvaluation {
  const { test } = dataset;
  const model = modelWithParams(trained.params);
  try {
    const probabilities = predictProbabilities(model, test.images, test.count); // (N, K)
    const predictions = new Uint8Array(test.count); // (N)
    const confidence = new Float32Array(test.count); // (N)
    for (let n = 0; n < test.count; n++) {
      const row = probabilities.subarray(n * K, (n + 1) * K);
      predictions[n] = argmax(row);
      confidence[n] = row[predictions[n]!]!;
    }
    const { loss, accuracy } = lossAndAccuracy(probabilities, test.labels);
    const matrix = confusionMatrix(test.labels, predictions);
    const perClass = perClassMetrics(matrix);
    const { macro, weighted } = averages(perClass);
    return {
      implementation: trained.implementation,
      testAccuracy: accuracy,
      testLoss: loss,
      confusionMatrix: matrix,
      perClass,
      macroAverage: macro,
      weightedAverage: weighted,
      mostConfused: mostConfused(matrix),
      examples: pickExamples(test.labels, predictions, confidence),
      predictions,
      confidence,
    };
  } finally {
    model.dispose();
  }
}

/** The first examples of each kind in test order, so the pick is stable across runs. */
function pickExamples(labels: Uint8Array, predictions: Uint8Array, confidence: Float32Array): ModelEvaluation['examples'] {
  const correct: Example[] = [];
  const wrong: Example[] = [];
  for (let n = 0; n < labels.length && (correct.length < EXAMPLES_PER_KIND || wrong.length < EXAMPLES_PER_KIND); n++) {
    const example = { index: n, label: labels[n]!, predicted: predictions[n]!, probability: confidence[n]! };
    const bucket = example.label === example.predicted ? correct : wrong;
    if (bucket.length < EXAMPLES_PER_KIND) bucket.push(example);
  }
  return { correct, wrong };
}

/** Stage evaluate: the TF.js model, and the reference when it was trained. */
export function evaluateModels(dataset: Dataset, tfjs: TrainedModel, reference: TrainedModel | null): Evaluation {
  const before = tf.memory().numTensors;
  const evaluation = { tfjs: evaluateModel(dataset, tfjs), reference: reference ? evaluateModel(dataset, reference) : null };
  const leaked = tf.memory().numTensors - before;
  if (leaked !== 0) throw new Error(`evaluate: ${leaked} tensors were not disposed`);
  return evaluation;
}
