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
// 2. preprocess  split train / validation / test, one-hot labels; pixels stay bytes, scaled to [0, 1] per batch
// 3. init        Glorot-uniform weights from the seed, shared by both trainings
// 4. gradcheck   reference gradients against finite differences and against TF.js
// 5. train       TF.js, mini-batch SGD over the shared shuffle
// 6. reference   the pure-TypeScript network, same start, same batches (--no-reference skips it)
// 7. evaluate    test metrics of both models, by the same code
// 8. visualize   Vega-Lite charts and canvas image grids
// 9. experiment-<variant>  (--experiments) trainTfjs with one recipe of pipeline/experiments/variants.ts each, cached on its own
//                          (the baseline, the spec's recipe, scores the train stage's model)
// 10. experiments          (--experiments) the comparison; best combination by validation accuracy
// 11. report     metrics.json, training_history.csv, models, report.md, index.html (+ experiments.md/.png, model/best) into --out

// A stage's module is imported when the stage runs, not with this table: a process that runs one
// stage (--jobs) loads only what that stage needs. The reference's process loads no TF.js, vega or
// canvas; a TF.js training's no vega or canvas (bench/child-start.ts measures what that saves).

import path from 'node:path';
import { checkSizes, type Config } from './config.js';
import type { ExperimentsResult, VariantResult } from './stages/experiments.js';
import {
  EXPERIMENT_VARIANTS,
  EXTENDED_VARIANTS,
  hasLongSchedule,
  recipeCost,
  SPEC_RECIPE,
  trainingEpochs,
  type ExperimentVariant,
} from './experiments/variants.js';
import { dataFingerprint, defaultDataDir, loadMnist } from './stages/load.js';
import { preprocessDataset } from './stages/preprocess.js';
import type { ProgressFactory } from './progress.js';
import { REFERENCE_COST, referenceThreads, trainReferenceStage } from './stages/reference.js';
import { trainedBy } from './provenance.js';
import { defineStage, type Stage } from './dag/runner.js';
import type { Dataset, Evaluation, GradientCheck, InitialWeights, Mnist, TrainedModel, Visuals } from './types.js';
import { EXPERIMENT_STAGE_NAMES, STAGE_NAMES, type ExperimentStageName, type StageName } from './stage-names.js';

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

export { EXPERIMENT_STAGE_NAMES, STAGE_NAMES, type ExperimentStageName, type StageName };
true satisfies [StageName] extends [keyof Outputs] ? ([keyof Outputs] extends [StageName] ? true : false) : false; // one name per output

export interface PipelineHooks {
  progress: ProgressFactory;
  signal?: AbortSignal;
  compare?: readonly string[]; // --compare: other run folders the report sets beside this one
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
      pending = import('./tfjs/backend.js')
        .then(({ selectBackend }) => selectBackend(requested, log))
        .then((name) => {
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
  /** Stage experiment-<name>: one recipe, trained from init (a copy from its own seed), after its teachers when it distills. */
  const variantStage = (variant: ExperimentVariant, extended: boolean) => {
    const teachers = (variant.recipe.distill?.teachers ?? []).map((name) => `experiment-${name}` as ExperimentStageName);
    return stage({
      name: `experiment-${variant.name}` as ExperimentStageName,
      description: `experiment: ${variant.description}`,
      inputs: ['preprocess', 'init', ...teachers],
      // Adam ignores --lr. The recipe is in the fingerprint, so editing one variant reruns only that one.
      reads: [
        'epochs',
        ...(hasLongSchedule(variant.recipe) ? (['longEpochs'] as const) : []),
        'batchSize',
        ...(variant.recipe.optimizer.kind === 'adam' ? [] : (['lr'] as const)),
        'seed',
        'backend',
      ],
      untracked: variant.recipe.optimizer.kind === 'adam' ? ['lr'] : [],
      version: 3, // 2: trainTfjs's loop and scoring; camelCase fields; the exported weights; 3: camelCase epoch records
      expensive: true,
      fingerprint: () => ({ recipe: JSON.stringify(variant.recipe) }),
      enabled: extended ? (config) => config.experiments === 'extended' : (config) => config.experiments !== false,
      enabledBy: extended ? '--experiments extended' : '--experiments',
      threads: () => 1,
      cost: (config) => recipeCost(variant.recipe) * trainingEpochs(variant.recipe, config) * config.trainSize,
      run: async (inputs, { config, log }) => {
        await useBackend(config.backend);
        const { runVariant } = await import('./stages/experiments.js');
        const teacherParams = teachers.map((name) => inputs[name]!.params);
        const trained = await runVariant(variant.name, inputs.preprocess, inputs.init, config, hooks, teacherParams);
        const result = { ...trained, trainedBy: trainedBy(trained.backend) };
        log(`experiment ${variant.name}: val ${(result.valAccuracy * 100).toFixed(2)}%, test ${(result.testAccuracy * 100).toFixed(2)}%`);
        return result;
      },
    });
  };
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
      description: 'split train / validation / test, one-hot labels (pixels stay bytes)',
      inputs: ['load'],
      reads: ['trainSize', 'valSize', 'testSize'],
      version: 2, // 2: pixels kept as bytes, scaled per batch (a quarter of the memory)
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
        const { initialWeights } = await import('./stages/init.js');
        return initialWeights(config.seed);
      },
    }),
    stage({
      name: 'gradcheck',
      description: 'reference gradients against finite differences and TF.js',
      inputs: ['preprocess', 'init'],
      reads: ['gradcheckBatch', 'seed', 'backend'],
      version: 4, // 2: TF.js relative errors with the floor 1e-2; 3: max_rounding_ratio, judged against float32 rounding; 4: camelCase fields
      run: async ({ preprocess, init }, { config, log }) => {
        const backend = await useBackend(config.backend);
        const { gradcheckSummary, gradientBoundViolations, gradientCheck } = await import('./stages/gradcheck.js');
        const result = await gradientCheck(preprocess, init, config.gradcheckBatch, config.seed, backend);
        log(gradcheckSummary(result));
        const violations = gradientBoundViolations(result);
        if (violations.length > 0)
          throw new Error(`gradient check failed, the reference and TF.js disagree:\n  ${violations.join('\n  ')}`);
        return result;
      },
    }),
    stage({
      name: 'train',
      description: 'train the TF.js model',
      inputs: ['preprocess', 'init'],
      reads: ['epochs', 'batchSize', 'lr', 'seed', 'backend'],
      version: 2, // 2: camelCase epoch records (valLoss, valAccuracy)
      expensive: true,
      // No threads declared: it runs in this process, which holds the data and TF.js already (gradcheck, evaluate),
      // so --jobs costs no process of its own for it. TF.js on wasm is single-threaded in Node: one thread of --jobs.
      cost: (config) => recipeCost(SPEC_RECIPE) * config.epochs * config.trainSize,
      run: async ({ preprocess, init }, { config }) => {
        await useBackend(config.backend);
        const { trainTfjs } = await import('./stages/train.js');
        const trained = await trainTfjs(preprocess, init, config, { progress: hooks.progress, signal: hooks.signal });
        return { ...trained, trainedBy: trainedBy(trained.backend) };
      },
    }),
    stage({
      name: 'reference',
      description: 'train the pure-TypeScript reference in lockstep',
      inputs: ['preprocess', 'init'],
      // not referenceThreads: any thread count gives the same weights, bit for bit (test/reference-threads.test.ts)
      reads: ['epochs', 'batchSize', 'lr', 'seed', 'reference'],
      untracked: ['referenceThreads'],
      version: 3, // 2: trained on worker threads, which it records; 3: camelCase epoch records
      expensive: true,
      enabled: (config) => config.reference,
      enabledBy: '--reference',
      threads: referenceThreads,
      cost: (config) => REFERENCE_COST * config.epochs * config.trainSize,
      run: async ({ preprocess, init }, { config, onThreads }) => {
        const trained = await trainReferenceStage(preprocess, init, config, hooks, referenceThreads(config).max, onThreads);
        return { ...trained, trainedBy: trainedBy(trained.backend) };
      },
    }),
    stage({
      name: 'evaluate',
      description: 'test metrics for each trained model',
      inputs: ['preprocess', 'train', 'reference'],
      reads: ['backend'],
      version: 2, // 2: camelCase fields, no validation pass
      run: async ({ preprocess, train, reference }, { config }) => {
        await useBackend(config.backend);
        const { evaluateModels } = await import('./stages/evaluate.js');
        return evaluateModels(preprocess, train, reference);
      },
    }),
    stage({
      name: 'visualize',
      description: 'charts and image grids',
      inputs: ['preprocess', 'train', 'reference', 'evaluate'],
      reads: [],
      version: 2, // 2: the data figures, errors on their own colour scale
      run: async ({ preprocess, train, reference, evaluate }) => {
        const { renderVisuals } = await import('./stages/visualize.js');
        return renderVisuals(preprocess, train, reference, evaluate);
      },
    }),
    ...EXPERIMENT_VARIANTS.map((variant) =>
      variant.recipe === SPEC_RECIPE
        ? stage({
            name: `experiment-${variant.name}` as ExperimentStageName,
            description: `experiment: ${variant.description} (the train stage's model)`,
            inputs: ['preprocess', 'train'],
            reads: [],
            version: 4, // 4: the train stage's model, scored, instead of a second training of the same recipe
            enabled: (config) => config.experiments !== false,
            enabledBy: '--experiments',
            run: async ({ preprocess, train }) => {
              const { variantResult } = await import('./stages/experiments.js');
              return { ...variantResult(variant.name, train, preprocess), trainedBy: train.trainedBy };
            },
          })
        : variantStage(variant, false),
    ),
    ...EXTENDED_VARIANTS.map((variant) => variantStage(variant, true)),
    stage({
      name: 'experiments',
      description: 'compare the experiment variants; best combination by validation accuracy',
      inputs: ['preprocess', ...EXPERIMENT_STAGE_NAMES],
      reads: ['epochs', 'batchSize', 'seed', 'experiments'],
      version: 4, // 2: camelCase fields, the best combination's weights; 3: camelCase epoch records; 4: the target by --experiments
      enabled: (config) => config.experiments !== false,
      enabledBy: '--experiments',
      run: async (inputs, { config }) => {
        const { assembleExperiments } = await import('./stages/experiments.js');
        return assembleExperiments(
          EXPERIMENT_STAGE_NAMES.map((name) => inputs[name]).filter((result): result is VariantResult => result !== null), // extended ones only with --experiments extended
          config,
          inputs.preprocess,
        );
      },
    }),
    stage({
      name: 'report',
      description: 'write metrics, models, charts and the report',
      inputs: ['train', 'reference', 'evaluate', 'gradcheck', 'visualize', 'experiments'],
      reads: ['out'],
      version: 1,
      cache: false,
      run: async (inputs, { config, stageSeconds, stageKeys, log }) => {
        await useBackend(config.backend); // saving the models builds TF.js layers
        const { writeReportFolder } = await import('./stages/report.js');
        return writeReportFolder(
          inputs,
          config,
          { stageSeconds: stageSeconds(), stageKeys: stageKeys(), compare: hooks.compare ?? [] },
          log,
        );
      },
    }),
  ];
}
