// Fixtures the report tests share: a made-up training history.

import type { EpochRecord } from '../../pipeline/types.js';

/** One epoch record per validation accuracy, the other fields a plain function of the epoch. */
export function history(validationAccuracies: number[]): EpochRecord[] {
  return validationAccuracies.map((valAccuracy, i) => ({
    epoch: i + 1,
    loss: 0.5 / (i + 1),
    accuracy: 0.9 + i / 100,
    valLoss: 0.6 / (i + 1),
    valAccuracy,
    seconds: 3.25,
  }));
}
