// Runs an invocation: list the DAG, say what would run and why, or run it.

import { availableParallelism } from 'node:os';
import path from 'node:path';
import { childProcessJobs } from '../dag/child.js';
import { compiledTwin } from '../compiled-twin.js';
import { createJobsExecutor } from '../dag/executor.js';
import { expectedErrors } from '../errors.js';
import { createCache } from '../dag/cache.js';
import { pinEntries } from '../output/cache-folder.js';
import { commandLine, configNote, flagsFor, type Invocation } from './args.js';
import { DEFAULTS, FIELDS, PROJECT_ROOT } from '../config.js';
import { createFileHashes } from '../dag/file-hashes.js';
import type { ProgressFactory } from '../progress.js';
import { UnaskedTrainingError, createRunner, unaskedStages, type PlanEntry, type StageReport } from '../dag/runner.js';
import { pipelineStages, type Outputs } from '../stages.js';
import { TRAINING_STAGE_NAMES } from '../stage-names.js';
import { duration, seconds } from '../render/format.js';
import { cacheSizeLine, folderStageKeys } from '../runs.js';

export interface PipelineResult {
  plan: PlanEntry[];
  reports: StageReport[];
  outputs: Partial<Outputs>;
  stagesStartedAt?: number; // seconds since the process started, when the first stage could start
}

const TRAININGS = new Set<string>(TRAINING_STAGE_NAMES);

/**
 * Where a run's wall time went: start-up (Node, tsx, the modules, flags, locks, the plan), the data
 * (load and preprocess, this run's), the longest training, and everything else (the other stages
 * as far as they did not overlap it, and the report). Cached stages count nothing.
 */
export function wallSplit(reports: readonly StageReport[], stagesStartedAt: number, wallSeconds: number): string {
  const ran = reports.filter((report) => report.outcome === 'ran');
  const data = ran.filter((report) => report.name === 'load' || report.name === 'preprocess').reduce((sum, r) => sum + r.seconds, 0);
  const longest = ran.filter((report) => TRAININGS.has(report.name)).sort((a, b) => b.seconds - a.seconds)[0];
  const rest = Math.max(0, wallSeconds - stagesStartedAt - data - (longest?.seconds ?? 0));
  const parts = [
    `start-up ${seconds(stagesStartedAt)} s`,
    `data ${seconds(data)} s`,
    longest ? `longest training (${longest.name}) ${seconds(longest.seconds)} s` : 'no training',
    `everything else ${seconds(rest)} s`,
  ];
  return parts.join(', ');
}

/** The child process that runs one stage when stages run side by side (--jobs): compiled when the build is fresh. */
const STAGE_CHILD = path.join(PROJECT_ROOT, 'pipeline', 'dag', 'stage-child.ts');

/**
 * When a stage is worth a process of its own under --jobs, by its estimated cost (Stage.cost: training images ×
 * epochs × the recipe's cost, plain SGD = 1). Starting one (Node, the stage's modules, reading its inputs) takes
 * about 0.4 s for the reference and 1.2 s for a TF.js training (bench/child-start.ts), the time of some 7,000–20,000
 * cost units on wasm. Below 20,000 a stage runs in this process; from 100,000 (--train-size 10000 --epochs 10) in
 * its own, leaving this process to the stages that can only run here; in between (--train-size 10000 --epochs 3
 * costs 30,000) here if this process is free when its threads come, else in its own rather than wait.
 * MNIST_PIPELINE_MIN_PROCESS_COST moves the upper bound (0: every threaded stage in its own process, as the tests of --jobs need).
 */
const ALWAYS_A_PROCESS = Number(process.env.MNIST_PIPELINE_MIN_PROCESS_COST ?? 100_000);
const PROCESS_COSTS = { worth: Math.min(20_000, ALWAYS_A_PROCESS), always: ALWAYS_A_PROCESS };

/** Where the data files' hashes are remembered, beside the stage entries. */
const FILE_HASHES = 'file-hashes.json';

function planTable(entries: PlanEntry[], showRun: boolean): string {
  const width = Math.max('stage'.length, ...entries.map((e) => e.name.length));
  const line = (name: string, state: string, version: string, detail: string) =>
    `  ${name.padEnd(width)}  ${state.padEnd(9)}  ${version.padEnd(4)}${detail ? `  ${detail}` : ''}`.trimEnd();
  const header = line('stage', 'state', 'code', showRun ? 'run  why' : 'why not cached');
  const rows = entries.map((e) =>
    line(e.name, e.state, `v${e.version}`, showRun ? `${e.run ? 'run' : '-  '}  ${e.reason}` : e.state === 'cached' ? '' : e.cause),
  );
  return [header, ...rows].join('\n');
}

/** Why a rerun stops: each training it would start, why, what it took, and the commands that do it. */
function stopMessage(invocation: Invocation, unasked: PlanEntry[]): string {
  const { config, base } = invocation;
  const asked = invocation.from !== undefined ? `--from ${invocation.from}` : invocation.stages.map((name) => `--stage ${name}`).join(' ');
  const lines = unasked.map(
    (entry) =>
      `  ${entry.name}: ${entry.state} (${entry.cause}); ` +
      (entry.previousSeconds === null ? 'no earlier run of it in the cache' : `took about ${duration(entry.previousSeconds)} last time`),
  );
  // A --from rerun starts from the run in --out, so it needs only what differs from that run; a full run needs every non-default field.
  const rerunBase = { ...(base.kind === 'run' ? base.config : DEFAULTS), out: DEFAULTS.out };
  const rerunFlags = flagsFor(config, rerunBase);
  const named = [...unasked.map((entry) => entry.name), ...invocation.stages].flatMap((name) => ['--stage', name]);
  const commands = [
    ...(unasked.length === 1 ? [`to train it and redo what follows: ${commandLine([...rerunFlags, '--from', unasked[0]!.name])}`] : []),
    ...(unasked.length > 1 && invocation.stages.length > 0
      ? [`to train them, then ${asked}: ${commandLine([...rerunFlags, ...named])}`]
      : []),
    `the full run: ${commandLine(flagsFor(config, DEFAULTS))}`,
  ];
  return [
    `${asked} needs ${unasked.length === 1 ? 'a training' : 'trainings'} that ${asked.startsWith('--from') ? '--from' : '--stage'} does not start unasked:`,
    ...lines,
    ...commands.map((command) => `  ${command}`),
    'Nothing was run; the cache is as it was.',
  ].join('\n');
}

/** The same progress, saying each backend line once: every process that runs TF.js stages chooses its backend. */
function backendLinesOnce(progress: ProgressFactory): ProgressFactory {
  const said = new Set<string>();
  const log = (line: string) => {
    if (line.startsWith('TF.js backend')) {
      if (said.has(line)) return;
      said.add(line);
    }
    progress.log(line);
  };
  return { ...progress, log };
}

export async function runPipeline(
  invocation: Invocation,
  given: { progress: ProgressFactory; signal?: AbortSignal },
): Promise<PipelineResult> {
  const hooks = { ...given, progress: backendLinesOnce(given.progress), compare: invocation.compare };
  const { config } = invocation;
  const log = hooks.progress.log;
  log(configNote(invocation));
  const stages = pipelineStages(hooks);
  const jobs = config.jobs === 0 ? availableParallelism() : config.jobs;
  const cache = createCache(config.cacheDir);
  const runner = createRunner(stages, config, {
    cache,
    files: createFileHashes(path.join(config.cacheDir, FILE_HASHES)),
    log,
    fieldName: (field) => FIELDS[field].flag,
    executor:
      jobs > 1
        ? createJobsExecutor(
            jobs,
            childProcessJobs({
              entry: compiledTwin(PROJECT_ROOT, STAGE_CHILD),
              config,
              progress: hooks.progress,
              signal: hooks.signal,
              errorClasses: expectedErrors(),
            }),
            PROCESS_COSTS,
          )
        : undefined,
    signal: hooks.signal,
    baseline: invocation.base.kind === 'run' ? invocation.base.config : undefined,
  });
  const selection = { stages: invocation.stages, from: invocation.from, force: invocation.force };

  if (invocation.mode === 'list') {
    const plan = runner.plan();
    log(`stages in order, with their code version (cache: ${config.cacheDir}):\n${planTable(plan, false)}`);
    log(cacheSizeLine(cache, config.cacheDir));
    return { plan, reports: [], outputs: {} };
  }
  const plan = runner.plan(selection);
  const unasked = unaskedStages(plan);
  if (invocation.mode === 'dry-run') {
    log(`would run (cache: ${config.cacheDir}):\n${planTable(plan, true)}`);
    if (unasked.length > 0) log(`but it would stop before any work: ${stopMessage(invocation, unasked)}`);
    return { plan, reports: [], outputs: {} };
  }
  if (unasked.length > 0) throw new UnaskedTrainingError(unasked, stopMessage(invocation, unasked));
  const stagesStartedAt = performance.now() / 1000;
  const { outputs, reports } = await runner.run(selection, plan);
  // The folder now shows the entries its metrics.json names: pinned, they stay until --gc, whatever later runs add.
  if (reports.some((report) => report.name === 'report' && report.outcome === 'ran')) {
    const keys = folderStageKeys(config.out);
    if (typeof keys !== 'string') pinEntries(config.cacheDir, path.resolve(config.out), keys);
  }
  return { plan, reports, outputs, stagesStartedAt };
}
