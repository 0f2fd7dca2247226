// Stage report (last): everything a run leaves in --out, built in memory and then written.
//
//   metrics.json + config.json + training_history.csv   (pipeline/render/run-files.ts)
//   model/tfjs, model/reference                          (pipeline/tfjs/model-io.ts)
//   the visualize stage's PNGs and specs
//   report.md + index.html                               (pipeline/render/report-sections.ts)
//   experiments.md/.png with --experiments               (pipeline/stages/experiments.ts)

import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Config } from '../config.js';
import type { ExperimentsResult } from './experiments.js';
import { experimentsFiles, experimentsMetrics } from '../experiments/comparison.js';
import { BEST_MODEL_FOLDER } from '../experiments/variants.js';
import { publishFolder } from '../output/publish.js';
import { historyCsv, metricsFile, textFile } from '../render/run-files.js';
import { livePanelHtml } from '../render/live-panel/panel.js';
import { buildReport } from '../render/report-sections.js';
import { modelFiles } from '../tfjs/model-io.js';
import type { Evaluation, GradientCheck, RunMetadata, TrainedModel, Visuals } from '../types.js';

const REPOSITORY = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** The npm package behind each TF.js backend name, for its version. */
const BACKEND_PACKAGES: Record<string, string> = {
  wasm: '@tensorflow/tfjs-backend-wasm',
  cpu: '@tensorflow/tfjs-backend-cpu',
  webgl: '@tensorflow/tfjs-backend-webgl',
  tensorflow: '@tensorflow/tfjs-node',
};

function packageVersion(name: string | undefined): string {
  if (!name) return 'unknown';
  try {
    return (createRequire(import.meta.url)(`${name}/package.json`) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/** Output of `git args` in `directory`, or null without git or outside a repository. */
function git(directory: string, args: string[]): string | null {
  try {
    return execFileSync('git', args, { cwd: directory, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 10_000 }).trim();
  } catch {
    return null;
  }
}

/** Date, commit, versions and machine of this run; "unknown" where git or a package cannot say. */
export function runMetadata(backend: string, repository = REPOSITORY): RunMetadata {
  const commit = git(repository, ['rev-parse', 'HEAD']);
  const status = commit === null ? null : git(repository, ['status', '--porcelain', '--untracked-files=no']);
  const cpus = os.cpus();
  const wallSeconds = process.uptime();
  return {
    startedAt: new Date(Date.now() - wallSeconds * 1000).toISOString(),
    gitCommit: commit ?? 'unknown',
    gitDirty: status === null ? 'unknown' : status.length > 0,
    nodeVersion: process.versions.node,
    tfjsVersion: packageVersion('@tensorflow/tfjs'),
    backend,
    backendVersion: packageVersion(BACKEND_PACKAGES[backend]),
    os: `${os.platform()} ${os.release()} (${os.arch()})`,
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    cpuCores: cpus.length,
    wallSeconds,
  };
}

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

/** Stage report: writes every file of the run into config.out and returns their paths. */
export async function writeReportFolder(
  { train, reference, evaluate, gradcheck, visualize, experiments }: ReportInputs,
  config: Config,
  stageSeconds: Record<string, number>,
  log: (line: string) => void = () => {},
): Promise<string[]> {
  const metrics = metricsFile({
    run: runMetadata(train.backend),
    config,
    tfjs: train,
    tfjsEvaluation: evaluate.tfjs,
    reference,
    referenceEvaluation: evaluate.reference,
    gradientCheck: gradcheck,
    stageSeconds,
    experiments: experiments ? experimentsMetrics(experiments) : null,
  });
  const histories = [{ implementation: 'tfjs', history: train.history }];
  if (reference) histories.push({ implementation: 'reference', history: reference.history });
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
    ...buildReport(metrics, histories, visualize, { htmlAfterResults: [await livePanelHtml(panelModels)] }),
    ...(experiments ? await experimentsFiles(experiments) : []),
    ...(best ? await modelFiles(best.params, BEST_MODEL_FOLDER) : []),
  ];
  await publishFolder(config.out, files, { log }); // the whole folder at once: no stale files of an earlier run stay beside these
  return files.map((file) => file.path);
}
