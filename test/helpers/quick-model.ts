// The quick model the predict and photo tests read with: the spec's network trained on 15,000 images for
// 2 epochs at lr 0.1 (larger steps than the spec, so that two epochs reach about 94%), saved as a report
// folder of ours (with its manifest) in `out`, and loaded back as predict loads it.

import type * as tf from '@tensorflow/tfjs';
import { publishFolder } from '../../pipeline/output/publish.js';
import { loadTrainedModel, reportFolder } from '../../pipeline/predict/classify.js';
import { silentProgress } from '../../pipeline/progress.js';
import { initialWeights } from '../../pipeline/stages/init.js';
import { defaultDataDir, loadMnist } from '../../pipeline/stages/load.js';
import { preprocessDataset } from '../../pipeline/stages/preprocess.js';
import { trainTfjs } from '../../pipeline/stages/train.js';
import { selectBackend } from '../../pipeline/tfjs/backend.js';
import { modelFiles } from '../../pipeline/tfjs/model-io.js';
import type { Dataset } from '../../pipeline/types.js';

/** Trains the quick model on wasm, publishes it as `out`/model/tfjs, and returns it with its dataset (`testCount` test images). */
export async function quickModel(out: string, testCount: number): Promise<{ dataset: Dataset; model: tf.LayersModel }> {
  await selectBackend('wasm');
  const dataset = preprocessDataset(loadMnist(defaultDataDir()), 15_000, 1_000, testCount);
  const trained = await trainTfjs(
    dataset,
    initialWeights(42),
    { epochs: 2, batchSize: 64, lr: 0.1, seed: 42 },
    { progress: silentProgress() },
  );
  await publishFolder(out, await modelFiles(trained.params, 'model/tfjs'));
  return { dataset, model: (await loadTrainedModel(reportFolder(out), 'tfjs')).model };
}
