// Classification metrics from predictions, as pure functions on plain arrays.

import { K } from '../reference/shapes.js';
import type { AverageMetrics, ClassMetrics, ConfusedPair } from './types.js';

/** (K, K) counts; rows are the true digit, columns the predicted one. */
export function confusionMatrix(labels: ArrayLike<number>, predictions: ArrayLike<number>, classes = K): number[][] {
  if (labels.length !== predictions.length) {
    throw new Error(`confusionMatrix: expected as many predictions as labels, found ${predictions.length} and ${labels.length}`);
  }
  const matrix = Array.from({ length: classes }, () => new Array<number>(classes).fill(0));
  for (let n = 0; n < labels.length; n++) matrix[labels[n]!]![predictions[n]!]!++;
  return matrix;
}

/** Precision, recall, F1 and support per class; 0 where a ratio has an empty denominator. */
export function perClassMetrics(matrix: number[][]): ClassMetrics[] {
  return matrix.map((row, digit) => {
    const truePositives = row[digit]!;
    const support = row.reduce((a, b) => a + b, 0);
    const predicted = matrix.reduce((sum, r) => sum + r[digit]!, 0);
    const precision = predicted === 0 ? 0 : truePositives / predicted;
    const recall = support === 0 ? 0 : truePositives / support;
    const f1 = precision + recall === 0 ? 0 : (2 * precision * recall) / (precision + recall);
    return { digit, precision, recall, f1, support };
  });
}

/** The unweighted mean over classes (macro) and the support-weighted mean (weighted). */
export function averages(perClass: ClassMetrics[]): { macro: AverageMetrics; weighted: AverageMetrics } {
  const support = perClass.reduce((sum, c) => sum + c.support, 0);
  const mean = (pick: (c: ClassMetrics) => number, weight: (c: ClassMetrics) => number, total: number): number =>
    total === 0 ? 0 : perClass.reduce((sum, c) => sum + pick(c) * weight(c), 0) / total;
  const average = (weight: (c: ClassMetrics) => number, total: number): AverageMetrics => ({
    precision: mean((c) => c.precision, weight, total),
    recall: mean((c) => c.recall, weight, total),
    f1: mean((c) => c.f1, weight, total),
    support,
  });
  return { macro: average(() => 1, perClass.length), weighted: average((c) => c.support, support) };
}

/** The `limit` largest off-diagonal cells, largest first; ties broken by (true, predicted). */
export function mostConfused(matrix: number[][], limit = 5): ConfusedPair[] {
  const pairs: ConfusedPair[] = [];
  matrix.forEach((row, trueDigit) =>
    row.forEach((count, predicted) => {
      if (predicted !== trueDigit && count > 0) pairs.push({ true: trueDigit, predicted, count });
    }),
  );
  pairs.sort((a, b) => b.count - a.count || a.true - b.true || a.predicted - b.predicted);
  return pairs.slice(0, limit);
}
