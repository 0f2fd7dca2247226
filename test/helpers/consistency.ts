// Checks that a report folder describes one run: metrics.json, config.json,
// training_history.csv, the saved models, report.md and index.html agree, and
// the saved models re-score to the test accuracies metrics.json records.
// Any test can call it after a run: `expect(await runProblems(out)).toEqual([])`.

import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { loadMnist } from '../../pipeline/stages/load.js';
import { preprocessDataset } from '../../pipeline/stages/preprocess.js';
import { percent } from '../../pipeline/render/format.js';
import { PUBLISH_MANIFEST, verifyPublished } from '../../pipeline/output/publish.js';
import { selectBackend } from '../../pipeline/tfjs/backend.js';
import { lossAndAccuracy, predictProbabilities } from '../../pipeline/tfjs/model.js';
import { loadModel } from '../../pipeline/tfjs/model-io.js';
import { resolveDataDir } from '../../pipeline/stages.js';
import type { Config } from '../../pipeline/config.js';

const IMPLEMENTATIONS = ['tfjs', 'reference'] as const;

/** Every file under `dir`, relative to it. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true })
    .map(String)
    .filter((name) => statSync(path.join(dir, name)).isFile())
    .sort();
}

// biome-ignore lint/suspicious/noExplicitAny: a checker of untrusted files reads fields it then checks one by one
type Json = Record<string, any>;

function readJson(file: string): Json {
  return JSON.parse(readFileSync(file, 'utf8')) as Json;
}

/** The problems that show `out` mixes runs or lies about its model; [] when it is one whole run. */
export async function runProblems(out: string, options: { rescore?: boolean } = {}): Promise<string[]> {
  const problems: string[] = [];
  const fail = (message: string) => problems.push(message);
  for (const name of ['metrics.json', 'config.json', 'training_history.csv', 'report.md', 'index.html', PUBLISH_MANIFEST]) {
    if (!existsSync(path.join(out, name))) fail(`${name}: expected in ${out}, found no file`);
  }
  if (problems.length > 0) return problems;

  // The manifest lists exactly the folder's files, each with the bytes it was published with.
  problems.push(...verifyPublished(out));
  const listed = Object.keys(readJson(path.join(out, PUBLISH_MANIFEST)).files).sort();
  const present = filesUnder(out).filter((name) => name !== PUBLISH_MANIFEST);
  if (JSON.stringify(listed) !== JSON.stringify(present))
    fail(`${PUBLISH_MANIFEST}: lists [${listed.join(', ')}], the folder holds [${present.join(', ')}]`);

  const metrics = readJson(path.join(out, 'metrics.json'));
  const config = readJson(path.join(out, 'config.json')) as Config;
  if (JSON.stringify(metrics.config) !== JSON.stringify(config))
    fail(`metrics.json config ${JSON.stringify(metrics.config)} differs from config.json ${JSON.stringify(config)}`);

  // training_history.csv: one row per epoch of each implementation metrics.json has, ending on its validation accuracy.
  const rows = readFileSync(path.join(out, 'training_history.csv'), 'utf8')
    .trim()
    .split('\n')
    .slice(1)
    .map((line) => line.split(','));
  for (const implementation of IMPLEMENTATIONS) {
    const block = metrics[implementation];
    const history = rows.filter((row) => row[0] === implementation);
    const hasModel = existsSync(path.join(out, 'model', implementation, 'model.json'));
    if (!block) {
      if (history.length > 0 || hasModel) fail(`${implementation}: history rows or a model, but no block in metrics.json`);
      continue;
    }
    if (!hasModel) fail(`model/${implementation}/model.json: expected for the ${implementation} block of metrics.json, found none`);
    if (history.length !== config.epochs || block.epochs !== config.epochs) {
      fail(
        `${implementation}: config.json says ${config.epochs} epochs, metrics.json ${block.epochs}, training_history.csv ${history.length} rows`,
      );
    } else if (Number(history.at(-1)![5]) !== block.val_accuracy) {
      fail(`${implementation}: last val_accuracy ${history.at(-1)![5]} in training_history.csv, ${block.val_accuracy} in metrics.json`);
    }
  }

  // report.md and index.html: this run's seed and test accuracy, and index.html inlines this run's pictures.
  const markdown = readFileSync(path.join(out, 'report.md'), 'utf8');
  const html = readFileSync(path.join(out, 'index.html'), 'utf8');
  const accuracy = percent(metrics.tfjs.test_accuracy);
  const seed = new RegExp(`seed\\W{1,12}${config.seed}\\b`, 'i');
  for (const [name, text] of [
    ['report.md', markdown],
    ['index.html', html],
  ] as const) {
    if (!text.includes(accuracy)) fail(`${name}: expected the test accuracy ${accuracy} of metrics.json, found it nowhere`);
    if (!seed.test(text)) fail(`${name}: expected seed ${config.seed} of config.json, found it nowhere`);
  }
  for (const picture of [...markdown.matchAll(/\]\(([^)]+\.png)\)/g)].map((match) => match[1]!)) {
    const file = path.join(out, picture);
    if (!existsSync(file)) fail(`report.md shows ${picture}, which is not in the folder`);
    else if (!html.includes(readFileSync(file).toString('base64')))
      fail(`index.html: expected ${picture} of this folder inline, found other pictures`);
  }

  if (options.rescore !== false && problems.length === 0) problems.push(...(await rescoreProblems(out, metrics, config)));
  return problems;
}

/** Loads each saved model and scores it on the test split config.json names. */
async function rescoreProblems(out: string, metrics: Json, config: Config): Promise<string[]> {
  await selectBackend(config.backend === 'auto' ? 'wasm' : config.backend);
  const dataset = preprocessDataset(loadMnist(resolveDataDir(config)), config.trainSize, config.valSize, config.testSize);
  const problems: string[] = [];
  for (const implementation of IMPLEMENTATIONS) {
    if (!metrics[implementation]) continue;
    const model = await loadModel(path.join(out, 'model', implementation));
    try {
      const { accuracy } = lossAndAccuracy(predictProbabilities(model, dataset.test.images, dataset.test.count), dataset.test.labels);
      // The evaluate stage scores with the same TF.js forward pass: equal, not close.
      if (accuracy !== metrics[implementation].test_accuracy) {
        problems.push(
          `model/${implementation}: re-scores to test accuracy ${accuracy}, metrics.json says ${metrics[implementation].test_accuracy}`,
        );
      }
    } finally {
      model.dispose();
    }
  }
  return problems;
}
