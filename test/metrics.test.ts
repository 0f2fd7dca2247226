import { averages, confusionMatrix, mostConfused, perClassMetrics } from '../pipeline/metrics.js';

// Three classes, worked by hand:
//   true 0: predicted 0,0,1     true 1: predicted 1,1     true 2: predicted 0,2,2,1
const labels = [0, 0, 0, 1, 1, 2, 2, 2, 2];
const predictions = [0, 0, 1, 1, 1, 0, 2, 2, 1];

describe('classification metrics', () => {
  const matrix = confusionMatrix(labels, predictions, 3);

  it('counts the confusion matrix with rows as the true class', () => {
    expect(matrix).toEqual([
      [2, 1, 0],
      [0, 2, 0],
      [1, 1, 2],
    ]);
  });

  it('computes precision, recall, F1 and support per class', () => {
    const perClass = perClassMetrics(matrix);
    // class 0: tp 2, predicted 3, support 3 → p 2/3, r 2/3
    expect(perClass[0]!.precision).toBeCloseTo(2 / 3, 12);
    expect(perClass[0]!.recall).toBeCloseTo(2 / 3, 12);
    // class 1: tp 2, predicted 4, support 2 → p 1/2, r 1, f1 2/3
    expect(perClass[1]!.precision).toBeCloseTo(0.5, 12);
    expect(perClass[1]!.recall).toBe(1);
    expect(perClass[1]!.f1).toBeCloseTo(2 / 3, 12);
    // class 2: tp 2, predicted 2, support 4 → p 1, r 1/2
    expect(perClass[2]!.precision).toBe(1);
    expect(perClass[2]!.recall).toBe(0.5);
    expect(perClass.map((c) => c.support)).toEqual([3, 2, 4]);
  });

  it('averages by class (macro) and by support (weighted)', () => {
    const { macro, weighted } = averages(perClassMetrics(matrix));
    expect(macro.recall).toBeCloseTo((2 / 3 + 1 + 0.5) / 3, 12);
    // weighted recall is plain accuracy: 6 right of 9
    expect(weighted.recall).toBeCloseTo(6 / 9, 12);
    expect(weighted.precision).toBeCloseTo((3 * (2 / 3) + 2 * 0.5 + 4 * 1) / 9, 12);
    expect(macro.support).toBe(9);
  });

  it('lists the most-confused pairs, largest first', () => {
    expect(
      mostConfused(
        [
          [5, 3, 0],
          [7, 1, 1],
          [0, 3, 9],
        ],
        3,
      ),
    ).toEqual([
      { true: 1, predicted: 0, count: 7 },
      { true: 0, predicted: 1, count: 3 },
      { true: 2, predicted: 1, count: 3 },
    ]);
  });

  it('gives 0, not NaN, for a class never predicted', () => {
    const perClass = perClassMetrics(confusionMatrix([0, 1], [0, 0], 2));
    expect(perClass[1]).toEqual({ digit: 1, precision: 0, recall: 0, f1: 0, support: 1 });
  });
});
