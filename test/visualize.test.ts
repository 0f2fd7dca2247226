// The visualize stage on a tiny synthetic run: specs hold the right data, and
// every PNG decodes, is not blank and has text. No golden images.

import { loadImage } from 'canvas';
import type { TopLevelSpec } from 'vega-lite';
import { confusionMatrixSpec, renderSpecToPng } from '../pipeline/render/charts.js';
import { samplePredictionsPng } from '../pipeline/render/grids.js';
import type {
  ClassMetrics,
  ConfusedPair,
  Dataset,
  EpochRecord,
  Evaluation,
  Example,
  ModelEvaluation,
  Params,
  Split,
  TrainedModel,
  Visuals,
} from '../pipeline/types.js';
import { renderVisuals } from '../pipeline/stages/visualize.js';
import { D, H1, H2, K } from '../reference/shapes.js';
import { mulberry32 } from '../reference/random.js';
import { PNG_PATHS } from './helpers/outputs.js';

const TEST_COUNT = 60;

function randomSplit(count: number, seed: number): Split {
  const random = mulberry32(seed);
  const images = new Uint8Array(count * D); // (N, D) bytes
  for (let i = 0; i < images.length; i++) images[i] = random() < 0.7 ? 0 : Math.floor(random() * 256);
  const labels = new Uint8Array(count);
  const oneHot = new Float32Array(count * K); // (N, K)
  for (let i = 0; i < count; i++) {
    labels[i] = i % K;
    oneHot[i * K + labels[i]!] = 1;
  }
  return { images, labels, oneHot, count };
}

function randomParams(seed: number): Params {
  const random = mulberry32(seed);
  const uniform = (size: number, limit: number) => Float32Array.from({ length: size }, () => (2 * random() - 1) * limit);
  return {
    w1: uniform(D * H1, 0.08),
    b1: uniform(H1, 0.05),
    w2: uniform(H1 * H2, 0.2),
    b2: uniform(H2, 0.05),
    w3: uniform(H2 * K, 0.3),
    b3: uniform(K, 0.05),
  };
}

function history(offset: number): EpochRecord[] {
  return [1, 2, 3].map((epoch) => ({
    epoch,
    loss: 1 / epoch + offset,
    accuracy: 0.8 + 0.04 * epoch - offset,
    valLoss: 1.1 / epoch + offset,
    valAccuracy: 0.79 + 0.04 * epoch - offset,
    seconds: 1.5,
  }));
}

/** Builds an evaluation by hand: image i with i % wrongEvery === 3 is predicted as the next digit (none when wrongEvery is 0). */
function evaluationFor(test: Split, wrongEvery: number): ModelEvaluation {
  const predictions = new Uint8Array(test.count);
  const confidence = new Float32Array(test.count);
  const matrix = Array.from({ length: K }, () => new Array<number>(K).fill(0));
  const correct: Example[] = [];
  const wrong: Example[] = [];
  for (let i = 0; i < test.count; i++) {
    const label = test.labels[i]!;
    predictions[i] = wrongEvery > 0 && i % wrongEvery === 3 ? (label + 1) % K : label;
    confidence[i] = 0.5 + (i % 5) / 10;
    matrix[label]![predictions[i]!]! += 1;
    const example = { index: i, label, predicted: predictions[i]!, probability: confidence[i]! };
    if (example.label === example.predicted) {
      if (correct.length < 4) correct.push(example);
    } else if (wrong.length < 3) wrong.push(example);
  }
  const perClass: ClassMetrics[] = matrix.map((row, digit) => {
    const support = row.reduce((a, b) => a + b, 0);
    const predictedAs = matrix.reduce((sum, other) => sum + other[digit]!, 0);
    const precision = predictedAs > 0 ? row[digit]! / predictedAs : 0;
    const recall = support > 0 ? row[digit]! / support : 0;
    const f1 = precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0;
    return { digit, precision, recall, f1, support };
  });
  const pairs: ConfusedPair[] = [];
  matrix.forEach((row, t) => row.forEach((count, p) => t !== p && pairs.push({ true: t, predicted: p, count })));
  pairs.sort((a, b) => b.count - a.count || a.true - b.true || a.predicted - b.predicted);
  const accuracy = matrix.reduce((sum, row, digit) => sum + row[digit]!, 0) / test.count;
  const average = { precision: accuracy, recall: accuracy, f1: accuracy, support: test.count };
  return {
    implementation: 'tfjs',
    testAccuracy: accuracy,
    testLoss: 0.5,
    confusionMatrix: matrix,
    perClass,
    macroAverage: average,
    weightedAverage: average,
    mostConfused: pairs.slice(0, 5),
    examples: { correct, wrong },
    predictions,
    confidence,
  };
}

function trainedModel(implementation: 'tfjs' | 'reference', params: Params, offset: number): TrainedModel {
  return {
    implementation,
    backend: implementation === 'tfjs' ? 'cpu' : 'typescript',
    params,
    history: history(offset),
    trainSeconds: 2,
    samplesPerSecond: 1000,
    trainAccuracy: 0.92,
  };
}

const dataset: Dataset = {
  train: randomSplit(40, 1),
  validation: randomSplit(20, 2),
  test: randomSplit(TEST_COUNT, 3),
  validationOffset: 40,
};
const params = randomParams(4);
const evaluation: Evaluation = { tfjs: evaluationFor(dataset.test, 7), reference: null };

function file(visuals: Visuals, path: string): Uint8Array {
  const found = visuals.files.find((candidate) => candidate.path === path);
  if (!found) throw new Error(`visuals has no ${path}; it has ${visuals.files.map((f) => f.path).join(', ')}`);
  return found.data;
}

function specOf(visuals: Visuals, name: string): TopLevelSpec & { data: { values: Record<string, unknown>[] } } {
  return JSON.parse(new TextDecoder().decode(file(visuals, `specs/${name}.vl.json`)));
}

/** Every `field` named in any encoding of the spec, with the channel it came from. */
function encodedFields(node: unknown, found: string[] = [], inEncoding = false): string[] {
  if (Array.isArray(node)) {
    for (const item of node) encodedFields(item, found, inEncoding);
  } else if (node && typeof node === 'object') {
    for (const [key, value] of Object.entries(node)) {
      if (inEncoding && key === 'field' && typeof value === 'string') found.push(value);
      encodedFields(value, found, inEncoding || key === 'encoding');
    }
  }
  return found;
}

interface Decoded {
  width: number;
  height: number;
  pixels: Uint8ClampedArray; // (height, width, 4)
}

async function decode(png: Uint8Array): Promise<Decoded> {
  const image = await loadImage(Buffer.from(png));
  const { createCanvas } = await import('canvas');
  const canvas = createCanvas(image.width, image.height);
  const ctx = canvas.getContext('2d');
  ctx.drawImage(image, 0, 0);
  return { width: image.width, height: image.height, pixels: ctx.getImageData(0, 0, image.width, image.height).data };
}

function distinctColours({ pixels }: Decoded): number {
  const colours = new Set<number>();
  for (let i = 0; i < pixels.length; i += 4) colours.add((pixels[i]! << 16) | (pixels[i + 1]! << 8) | pixels[i + 2]!);
  return colours.size;
}

/** Dark, grey (unsaturated) pixels in the top band where every figure has its title. */
function titleInkPixels({ width, pixels }: Decoded, bandHeight: number): number {
  let dark = 0;
  for (let i = 0; i < width * bandHeight * 4; i += 4) {
    const [r, g, b] = [pixels[i]!, pixels[i + 1]!, pixels[i + 2]!];
    if (Math.max(r, g, b) < 90 && Math.max(r, g, b) - Math.min(r, g, b) < 30) dark++;
  }
  return dark;
}

/** Smallest size each figure can have at 2×, from what it must contain. */
const MIN_SIZE: Record<string, [width: number, height: number]> = {
  'training_curves.png': [2 * 2 * 340, 2 * 260],
  'confusion_matrix.png': [2 * 440, 2 * 440],
  'per_class_metrics.png': [2 * 620, 2 * 300],
  'weight_visualization.png': [2 * 16 * 28 * 2, 2 * 8 * 28 * 2], // 16 × 8 tiles of 28×28 at 2 px per weight
  'sample_predictions.png': [2 * 7 * 28 * 3, 2 * 28 * 3], // 7 samples in one row, 3 px per pixel
  'misclassified.png': [2 * 28 * 3, 2 * 28 * 3],
  'activation_patterns.png': [2 * 2 * (28 * 3 + 16 * 10 + 8 * 10), 2 * 5 * 28 * 3], // 2 columns of 5 digits
  'class_counts.png': [2 * 3 * 290, 2 * 180], // three panels
  'training_images.png': [2 * 12 * 28 * 2, 2 * 10 * 28 * 2], // 12 images of each of 10 digits at 2 px per pixel
};

describe('renderVisuals', () => {
  let visuals: Visuals;
  beforeAll(async () => {
    visuals = await renderVisuals(dataset, trainedModel('tfjs', params, 0), trainedModel('reference', params, 0.01), evaluation);
  });

  test('returns every PNG and the four Vega-Lite specs', () => {
    const paths = visuals.files.map((f) => f.path).sort();
    const expected = [
      ...PNG_PATHS,
      'specs/training_curves.vl.json',
      'specs/confusion_matrix.vl.json',
      'specs/per_class_metrics.vl.json',
      'specs/class_counts.vl.json',
    ].sort();
    expect(paths).toEqual(expected);
  });

  test('confusion matrix spec: one cell per (true, predicted) pair, each with its count, summing to the test size', () => {
    const values = specOf(visuals, 'confusion_matrix').data.values;
    expect(values).toHaveLength(K * K);
    expect(values.reduce((sum, cell) => sum + (cell.count as number), 0)).toBe(TEST_COUNT);
    const matrix = Array.from({ length: K }, (_, t) =>
      Array.from({ length: K }, (_, p) => values.filter((v) => v.true === t && v.predicted === p).map((v) => v.count)),
    );
    expect(matrix).toEqual(evaluation.tfjs.confusionMatrix.map((row) => row.map((count) => [count])));
    expect(matrix[0]![1]).toEqual([1]); // image 10, a 0, is the only one of its digit predicted as the next (10 % 7 === 3)
  });

  test('confusion matrix spec: errors have their own labelled colour scale, up to the largest error', () => {
    const spec = specOf(visuals, 'confusion_matrix') as unknown as {
      layer: { encoding?: { color?: { title?: string; scale?: { domain?: number[] } } } }[];
    };
    const scales = spec.layer.map((layer) => layer.encoding?.color).filter((color) => color?.title !== undefined);
    const largestError = Math.max(...evaluation.tfjs.confusionMatrix.flatMap((row, t) => row.filter((_, p) => p !== t)));
    const largestRight = Math.max(...evaluation.tfjs.confusionMatrix.map((row, t) => row[t]!));
    expect(scales.map((color) => [color!.title, color!.scale!.domain])).toEqual([
      ['Right (diagonal)', [0, largestRight]],
      ['Errors (off-diagonal)', [1, Math.max(2, largestError)]], // a domain of one value would collapse
    ]);
  });

  test('class counts spec: images per digit in each split, as in the labels', () => {
    const values = specOf(visuals, 'class_counts').data.values as { split: string; digit: number; count: number }[];
    for (const [split, { labels }] of [
      ['training', dataset.train],
      ['validation', dataset.validation],
      ['test', dataset.test],
    ] as const) {
      const counts = values
        .filter((v) => v.split === split)
        .sort((a, b) => a.digit - b.digit)
        .map((v) => v.count);
      expect(counts).toEqual(Array.from({ length: K }, (_, digit) => labels.filter((label) => label === digit).length));
    }
  });

  test('training curves spec holds both implementations, both splits, both metrics, every epoch', () => {
    const values = specOf(visuals, 'training_curves').data.values;
    expect(values).toHaveLength(2 /* impl */ * 2 /* split */ * 2 /* metric */ * 3 /* epochs */);
    expect(new Set(values.map((v) => v.implementation))).toEqual(new Set(['TF.js', 'TypeScript reference']));
    const referenceValidation = values.find(
      (v) => v.implementation === 'TypeScript reference' && v.metric === 'accuracy' && v.split === 'validation' && v.epoch === 2,
    );
    expect(referenceValidation?.value).toBeCloseTo(0.79 + 0.08 - 0.01, 10);
  });

  test('per-class spec has precision, recall and F1 for each digit', () => {
    const values = specOf(visuals, 'per_class_metrics').data.values;
    expect(values).toHaveLength(3 * K);
    const f1 = values.find((v) => v.digit === 4 && v.metric === 'F1');
    expect(f1?.value).toBeCloseTo(evaluation.tfjs.perClass[4]!.f1, 10);
  });

  test.each([
    ['training_curves', ['epoch', 'implementation', 'split', 'value']],
    ['confusion_matrix', ['count', 'predicted', 'true']],
    ['per_class_metrics', ['digit', 'metric', 'value']],
    ['class_counts', ['count', 'digit', 'split']],
  ])('%s: encodes exactly the fields %j, each in every data row, in DejaVu Sans', (name, expectedFields) => {
    const spec = specOf(visuals, name);
    const fields = encodedFields(spec);
    expect([...new Set(fields)].sort()).toEqual(expectedFields);
    for (const field of fields) {
      const missing = spec.data.values.filter((row) => !(field in row));
      if (missing.length > 0) throw new Error(`${name}: field "${field}" is missing from ${missing.length} data rows`);
    }
    expect(spec.config?.font).toBe('DejaVu Sans');
  });

  test.each(PNG_PATHS)('%s decodes to its size, is not blank and has a title', async (path) => {
    const image = await decode(file(visuals, path));
    const [minWidth, minHeight] = MIN_SIZE[path]!;
    expect(image.width).toBeGreaterThanOrEqual(minWidth);
    expect(image.height).toBeGreaterThanOrEqual(minHeight);
    expect(image.width % 2).toBe(0); // drawn at 2×
    expect(distinctColours(image)).toBeGreaterThan(50);
    expect(titleInkPixels(image, 80)).toBeGreaterThan(200);
  });

  test('is deterministic: a second render gives the same bytes', async () => {
    const again = await renderVisuals(dataset, trainedModel('tfjs', params, 0), trainedModel('reference', params, 0.01), evaluation);
    expect(again.files.map((f) => f.path)).toEqual(visuals.files.map((f) => f.path));
    for (const { path, data } of again.files) {
      expect(Buffer.compare(Buffer.from(data), Buffer.from(file(visuals, path)))).toBe(0);
    }
  });
});

describe('charts and grids', () => {
  test('renderSpecToPng scales every dimension', async () => {
    const spec = confusionMatrixSpec(evaluation.tfjs.confusionMatrix, 'scale check');
    const one = await decode(await renderSpecToPng(spec, 1));
    const two = await decode(await renderSpecToPng(spec, 2));
    expect(two.width).toBe(2 * one.width);
    expect(two.height).toBe(2 * one.height);
  });

  test('a run without a reference and without mistakes still renders every figure', async () => {
    const perfect: Evaluation = { tfjs: evaluationFor(dataset.test, 0), reference: null };
    const visuals = await renderVisuals(dataset, trainedModel('tfjs', params, 0), null, perfect);
    const curves = specOf(visuals, 'training_curves').data.values;
    expect(new Set(curves.map((v) => v.implementation))).toEqual(new Set(['TF.js']));
    for (const path of PNG_PATHS) {
      const image = await decode(file(visuals, path));
      expect(titleInkPixels(image, 80)).toBeGreaterThan(200);
    }
  });

  test('sample predictions with no samples is still a titled figure', async () => {
    const image = await decode(samplePredictionsPng(dataset.test.images, []));
    expect(titleInkPixels(image, 80)).toBeGreaterThan(200);
  });
});
