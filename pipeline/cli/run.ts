// Runs an invocation: list the DAG, say what would run, or run it.

import { createCache } from '../dag/cache.js';
import type { Invocation } from './args.js';
import type { ProgressFactory } from '../progress.js';
import { createRunner, type PlanEntry, type StageReport } from '../dag/runner.js';
import { pipelineStages, type Outputs } from '../stages.js';

export interface PipelineResult {
  plan: PlanEntry[];
  reports: StageReport[];
  outputs: Partial<Outputs>;
}

function planTable(entries: PlanEntry[], showRun: boolean): string {
  const width = Math.max(...entries.map((e) => e.name.length));
  return entries
    .map((e) => `  ${e.name.padEnd(width)}  ${e.state.padEnd(9)}${showRun ? `  ${e.run ? 'run' : '-  '}  (${e.reason})` : ''}`)
    .join('\n');
}

export async function runPipeline(invocation: Invocation, hooks: { progress: ProgressFactory; signal?: AbortSignal }): Promise<PipelineResult> {
  const { config } = invocation;
  const log = hooks.progress.log;
  const stages = pipelineStages(hooks);
  const runner = createRunner(stages, config, { cache: createCache(config.cacheDir), log });
  const selection = { stages: invocation.stages, from: invocation.from, force: invocation.force };

  if (invocation.mode === 'list') {
    const plan = runner.plan();
    log(`stages in order (cache: ${config.cacheDir}):\n${planTable(plan, false)}`);
    return { plan, reports: [], outputs: {} };
  }
  const plan = runner.plan(selection);
  if (invocation.mode === 'dry-run') {
    log(`would run (cache: ${config.cacheDir}):\n${planTable(plan, true)}`);
    return { plan, reports: [], outputs: {} };
  }
  const { outputs, reports } = await runner.run(selection);
  return { plan, reports, outputs };
}
