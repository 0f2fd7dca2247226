// The pipeline as a DAG. Each node wraps one plain stage function; the runner
// orders, caches and reruns them.
//
//   load ─► preprocess ─┬─────────────► train ─────┬─► evaluate ─► visualize ─► report
//                       │  init ─┬────► train      │      ▲                      ▲ ▲
//                       │        ├────► reference ─┴──────┘                      │ │
//                       │        └────► gradcheck ───────────────────────────────┘ │
//                       └─ + init ────► experiment-<variant> (one each) ─► experiments
//
// 1. load        read and check the four IDX files
// 2. preprocess  scale pixels to [0, 1], one-hot labels, split train / validation / test
// 3. init        Glorot-uniform weights from the seed, shared by both trainings
// 4. gradcheck   reference gradients against finite differences and against TF.js
// 5. train       TF.js, mini-batch SGD over the shared shuffle
// 6. reference   the pure-TypeScript network, same start, same batches (--no-reference skips it)
// 7. evaluate    test metrics of both models, by the same code
// 8. visualize   Vega-Lite charts and canvas image grids
// 9. experiment-<variant>  (--experiments) one training recipe of pipeline/experiments.ts each, cached on its own
// 10. experiments          (--experiments) the comparison; best combination by validation accuracy
// 11. report     metrics.json, training_history.csv, models, report.md, index.html (+ experiments.md/.png) into --out

import path from 'node:path';
import { selectBackend } from './tfjs/backend.js';
import { checkSizes, type Config } from './config.js';
import { evaluateModels } from './evaluate.js';
import {
  EXPERIMENT_VARIANTS,
  VARIANT_NAMES,
  assembleExperiments,
  experimentsFiles,
  experimentsMetrics,
  runVariant,
  type ExperimentsResult,
  type VariantName,
  type VariantResult,
} from './experiments.js';
import { gradcheckSummary, gradientBoundViolations, gradientCheck } from './gradcheck.js';
import { dataFingerprint, defaultDataDir, loadMnist } from './load.js';
import { modelFiles } from './tfjs/model-io.js';
import { preprocessDataset } from './preprocess.js';
import type { ProgressFactory } from './progress.js';
import { historyCsv, metricsFile, textFile, writeReportFiles } from './render/publish.js';
import { referenceThreads, trainReferenceStage } from './train-reference.js';
import { buildReport } from './render/report.js';
import { defineStage, type Stage } from './dag/runner.js';
import { initialWeights, trainTfjs } from './train.js';
import type { Dataset, Evaluation, GradientCheck, InitialWeights, Mnist, TrainedModel, Visuals } from './types.js';
import { renderVisuals } from './visualize.js';

/** One node per experiment variant, so adding a variant leaves the others cached. */
export type ExperimentStageName = `experiment-${VariantName}`;
export const EXPERIMENT_STAGE_NAMES: ExperimentStageName[] = VARIANT_NAMES.map((name) => `experiment-${name}` as const);

/** Every stage's output, by stage name. */
export type Outputs = {
  load: Mnist;
  preprocess: Dataset;
  init: InitialWeights;
  gradcheck: GradientCheck;
  train: TrainedModel;
  reference: TrainedModel | null;
  evaluate: Evaluation;
  visualize: Visuals;
  experiments: ExperimentsResult | null; // null unless --experiments
  report: string[]; // the files written
} & { [N in ExperimentStageName]: VariantResult | null }; // null unless --experiments

export type StageName = keyof Outputs;
export const STAGE_NAMES: StageName[] = [
  'load', 'preprocess', 'init', 'gradcheck', 'train', 'reference', 'evaluate', 'visualize',
  ...EXPERIMENT_STAGE_NAMES, 'experiments', 'report',
];

export interface PipelineHooks {
  progress: ProgressFactory;
  signal?: AbortSignal;
}

export function resolveDataDir(config: Config): string {
  return config.dataDir === '' ? defaultDataDir() : path.resolve(config.dataDir);
}

/** The TF.js backend is process-wide state; it is chosen once, on first use. */
function backendSelector(log: (line: string) => void) {
  const chosen = new Map<string, Promise<string>>();
  return (requested: Config['backend']): Promise<string> => {
    let pending = chosen.get(requested);
    if (!pending) {
      pending = selectBackend(requested, log).then((name) => {
        log(`TF.js backend: ${name}${requested === 'auto' ? ' (auto)' : ''}`);
        return name;
      });
      chosen.set(requested, pending);
    }
    return pending;
  };
}

export function pipelineStages(hooks: PipelineHooks): Stage<Outputs, Config>[] {
  const stage = defineStage<Outputs, Config>();
  const useBackend = backendSelector(hooks.progress.log);
  return [
    stage({
      name: 'load',
      description: 'read and check the MNIST IDX files',
      inputs: [],
      reads: [],
      untracked: ['dataDir'], // where the files are; the key holds their bytes' SHA-256, so a copy of them stays cached
      version: 1,
      fingerprint: (config, files) => dataFingerprint(resolveDataDir(config), files.hash),
      run: (_inputs, { config }) => loadMnist(resolveDataDir(config)),
    }),
    stage({
      name: 'preprocess',
      description: 'scale pixels, one-hot labels, split train / validation / test',
      inputs: ['load'],
      reads: ['trainSize', 'valSize', 'testSize'],
      version: 1,
      run: ({ load }, { config }) => {
        checkSizes(config, load.train.count, load.test.count);
        return preprocessDataset(load, config.trainSize, config.valSize, config.testSize);
      },
    }),
    stage({
      name: 'init',
      description: 'Glorot-uniform initial weights from the seed',
      inputs: [],
      reads: ['seed'],
      untracked: ['backend'], // started here for the stages after; the seeded Glorot draw comes out bit-identical on cpu and wasm
      version: 1,
      run: async (_inputs, { config }) => {
        await useBackend(config.backend);
        return initialWeights(config.seed);
      },
    }),
    stage({
      name: 'gradcheck',
      description: 'reference gradients against finite differences and TF.js',
      inputs: ['preprocess', 'init'],
      reads: ['gradcheckBatch', 'seed', 'backend'],
      version: 2, // 2: TF.js relative errors with the floor 1e-2
      run: async ({ preprocess, init }, { config, log }) => {
        const backend = await useBackend(config.backend);
        const result = await gradientCheck(preprocess, init, config.gradcheckBatch, config.seed, backend);
        log(gradcheckSummary(result));
        const violations = gradientBoundViolations(result);
        if (violations.length > 0) throw new Error(`gradient check failed, the reference and TF.js disagree:\n  ${violations.join('\n  ')}`);
        return result;
      },
    }),
    stage({
      name: 'train',
      description: 'train the TF.js model',
      inputs: ['preprocess', 'init'],
      reads: ['epochs', 'batchSize', 'lr', 'seed', 'backend'],
      version: 1,
      expensive: true,
      threads: () => 1, // TF.js on wasm is single-threaded in Node
      run: async ({ preprocess, init }, { config }) => {
        await useBackend(config.backend);
        return trainTfjs(preprocess, init, config, { progress: hooks.progress, signal: hooks.signal });
      },
    }),
    stage({
      name: 'reference',
      description: 'train the pure-TypeScript reference in lockstep',
      inputs: ['preprocess', 'init'],
      // not referenceThreads: any thread count gives the same weights, bit for bit (test/reference-threads.test.ts)
      reads: ['epochs', 'batchSize', 'lr', 'seed', 'reference'],
      untracked: ['referenceThreads'],
      version: 2, // 2: trained on worker threads, which it records
      expensive: true,
      enabled: (config) => config.reference,
      enabledBy: '--reference',
      threads: referenceThreads,
      run: ({ preprocess, init }, { config, threads }) => trainReferenceStage(preprocess, init, config, hooks, threads),
    }),
    stage({
      name: 'evaluate',
      description: 'test metrics for each trained model',
      inputs: ['preprocess', 'train', 'reference'],
      reads: ['backend'],
      version: 1,
      run: async ({ preprocess, train, reference }, { config }) => {
        await useBackend(config.backend);
        return evaluateModels(preprocess, train, reference);
      },
    }),
    stage({
      name: 'visualize',
      description: 'charts and image grids',
      inputs: ['preprocess', 'train', 'reference', 'evaluate'],
      reads: [],
      version: 1,
      run: ({ preprocess, train, reference, evaluate }) => renderVisuals(preprocess, train, reference, evaluate),
    }),
    ...EXPERIMENT_VARIANTS.map((variant) =>
      stage({
        name: `experiment-${variant.name}` as ExperimentStageName,
        description: `experiment: ${variant.description}`,
        inputs: ['preprocess', 'init'],
        // Adam ignores --lr. The recipe is in the fingerprint, so editing one variant reruns only that one.
        reads: variant.options.optimizer.kind === 'adam' ? ['epochs', 'batchSize', 'seed', 'backend'] : ['epochs', 'batchSize', 'lr', 'seed', 'backend'],
        untracked: variant.options.optimizer.kind === 'adam' ? ['lr'] : [],
        version: 1,
        expensive: true,
        fingerprint: () => ({ recipe: JSON.stringify(variant.options) }),
        enabled: (config) => config.experiments,
        enabledBy: '--experiments',
        threads: () => 1,
        run: async ({ preprocess, init }, { config, log }) => {
          await useBackend(config.backend);
          const result = await runVariant(variant.name, preprocess, init, config, hooks);
          log(`experiment ${variant.name}: val ${(result.val_accuracy * 100).toFixed(2)}%, test ${(result.test_accuracy * 100).toFixed(2)}%`);
          return result;
        },
      }),
    ),
    stage({
      name: 'experiments',
      description: 'compare the experiment variants; best combination by validation accuracy',
      inputs: ['preprocess', ...EXPERIMENT_STAGE_NAMES],
      reads: ['epochs', 'batchSize', 'seed'],
      version: 1,
      enabled: (config) => config.experiments,
      enabledBy: '--experiments',
      run: (inputs, { config }) => assembleExperiments(EXPERIMENT_STAGE_NAMES.map((name) => inputs[name]!), config, inputs.preprocess),
    }),
    stage({
      name: 'report',
      description: 'write metrics, models, charts and the report',
      inputs: ['train', 'reference', 'evaluate', 'gradcheck', 'visualize', 'experiments'],
      reads: ['out'],
      version: 1,
      cache: false,
      run: async ({ train, reference, evaluate, gradcheck, visualize, experiments }, { config, stageSeconds }) => {
        await useBackend(config.backend); // saving the models builds TF.js layers
        return writeReports(config, train, reference, evaluate, gradcheck, visualize, experiments, stageSeconds());
      },
    }),
  ];
}

/** Pretty JSON that keeps arrays of numbers (matrix rows) on one line. */
function compactJson(value: unknown): string {
  return JSON.stringify(value, null, 2).replace(/\[\s*(-?[\d.e+-]+(?:,\s*-?[\d.e+-]+)*)\s*\]/g, (_match, body: string) => `[${body.split(/,\s*/).join(', ')}]`);
}

async function writeReports(
  config: Config,
  tfjs: TrainedModel,
  reference: TrainedModel | null,
  evaluation: Evaluation,
  gradcheck: GradientCheck,
  visuals: Visuals,
  experiments: ExperimentsResult | null,
  stageSeconds: Record<string, number>,
): Promise<string[]> {
  const metrics = metricsFile({
    config,
    tfjs,
    tfjsEvaluation: evaluation.tfjs,
    reference,
    referenceEvaluation: evaluation.reference,
    gradientCheck: gradcheck,
    stageSeconds,
    experiments: experiments ? experimentsMetrics(experiments) : undefined,
  });
  const histories = [{ implementation: 'tfjs', history: tfjs.history }];
  if (reference) histories.push({ implementation: 'reference', history: reference.history });
  const files = [
    textFile('metrics.json', `${compactJson(metrics)}\n`),
    textFile('config.json', `${JSON.stringify(config, null, 2)}\n`),
    textFile('training_history.csv', historyCsv(histories)),
    ...(await modelFiles(tfjs.params, 'model/tfjs')),
    ...(reference ? await modelFiles(reference.params, 'model/reference') : []),
    ...visuals.files,
    ...buildReport(metrics, histories, visuals),
    ...(experiments ? await experimentsFiles(experiments) : []),
  ];
  // A run without --reference or --experiments leaves no stale files of theirs beside the new metrics.json.
  const obsolete = [...(reference ? [] : ['model/reference']), ...(experiments ? [] : ['experiments.md', 'experiments.png', 'specs/experiments.vl.json'])];
  writeReportFiles(config.out, files, obsolete);
  return files.map((file) => file.path);
}
