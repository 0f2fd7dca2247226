// Stage report (last): everything a run leaves in --out, built in memory and then written.
//
//   metrics.json + config.json + training_history.csv   (pipeline/render/run-files.ts)
//   model/tfjs, model/reference                          (pipeline/tfjs/model-io.ts)
//   the visualize stage's PNGs and specs
//   report.md + index.html                               (pipeline/render/report-sections.ts)
//   compare_<n>.png + a "Compared with" section each     (pipeline/render/compare.ts; --compare)
//   experiments.md/.png with --experiments               (pipeline/stages/experiments.ts)

import type { Config } from '../config.js';
import type { ExperimentsResult } from './experiments.js';
import { experimentsFiles, experimentsMetrics } from '../experiments/comparison.js';
import { BEST_MODEL_FOLDER } from '../experiments/variants.js';
import { publishFolder } from '../output/publish.js';
import { historyCsv, metricsFile, textFile } from '../render/run-files.js';
import { comparedWith, metricsDiffLines, readComparedRun } from '../render/compare.js';
import { livePanelHtml } from '../render/live-panel/panel.js';
import { buildReport } from '../render/report-sections.js';
import { modelFiles } from '../tfjs/model-io.js';
import { runMetadata } from '../provenance.js';
import type { Evaluation, GradientCheck, TrainedModel, Visuals } from '../types.js';

/** Pretty JSON that keeps arrays of numbers (matrix rows) on one line. */
function compactJson(value: unknown): string {
  return JSON.stringify(value, null, 2).replace(
    /\[\s*(-?[\d.e+-]+(?:,\s*-?[\d.e+-]+)*)\s*\]/g,
    (_match, body: string) => `[${body.split(/,\s*/).join(', ')}]`,
  );
}

export interface ReportInputs {
  train: TrainedModel;
  reference: TrainedModel | null;
  evaluate: Evaluation;
  gradcheck: GradientCheck;
  visualize: Visuals;
  experiments: ExperimentsResult | null;
}

/** What the runner knows of this run beside the stage outputs, and the runs --compare sets beside it. */
export interface ReportRun {
  stageSeconds: Record<string, number>; // each stage's wall time: this run's, or the cached entry's
  stageKeys: Record<string, string>; // each cached stage's key, so --runs and --gc know what this folder uses
  compare: readonly string[]; // other report folders, for the "Compared with" section
}

/** Stage report: writes every file of the run into config.out and returns their paths. */
export async function writeReportFolder(
  { train, reference, evaluate, gradcheck, visualize, experiments }: ReportInputs,
  config: Config,
  run: ReportRun,
  log: (line: string) => void = () => {},
): Promise<string[]> {
  const others = run.compare.map(readComparedRun); // first: a folder that is not a report fails before anything is built
  const metrics = metricsFile({
    run: runMetadata(train.backend),
    config,
    tfjs: train,
    tfjsEvaluation: evaluate.tfjs,
    reference,
    referenceEvaluation: evaluate.reference,
    gradientCheck: gradcheck,
    stageSeconds: run.stageSeconds,
    stageKeys: run.stageKeys,
    experiments: experiments ? experimentsMetrics(experiments) : null,
  });
  const histories = [{ implementation: 'tfjs', history: train.history }];
  if (reference) histories.push({ implementation: 'reference', history: reference.history });
  const comparison = await comparedWith({ metrics, histories }, others);
  const best = experiments?.bestCombination ?? null;
  const panelModels = [
    { id: 'tfjs' as const, params: train.params },
    ...(reference ? [{ id: 'reference' as const, params: reference.params }] : []),
    ...(best ? [{ id: 'best' as const, params: best.params }] : []),
  ];
  const files = [
    textFile('metrics.json', `${compactJson(metrics)}\n`),
    textFile('config.json', `${JSON.stringify(config, null, 2)}\n`),
    textFile('training_history.csv', historyCsv(histories)),
    ...(await modelFiles(train.params, 'model/tfjs')),
    ...(reference ? await modelFiles(reference.params, 'model/reference') : []),
    ...visualize.files,
    ...comparison.files,
    ...buildReport(metrics, histories, visualize, {
      htmlAfterResults: [await livePanelHtml(panelModels)],
      comparedWith: comparison.sections,
    }),
    ...(experiments ? await experimentsFiles(experiments) : []),
    ...(best ? await modelFiles(best.params, BEST_MODEL_FOLDER) : []),
  ];
  await publishFolder(config.out, files, { log }); // the whole folder at once: no stale files of an earlier run stay beside these
  for (const other of others) for (const line of metricsDiffLines(config.out, metrics, other)) log(line);
  return files.map((file) => file.path);
}
