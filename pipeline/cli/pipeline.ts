// `npm run pipeline -- …`: parse the flags, run, and turn failures into a message and an exit code.
// The stages (TF.js, vega, canvas) are imported only after the flags parse, so --help is quick.

import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { hideBin } from 'yargs/helpers';
import { parseArgs, shellWord } from './args.js';
import { EXIT_FAILED, EXIT_INTERRUPTED, EXIT_USAGE, UsageError, exitQuietlyWhenOutputCloses, readFlags } from './conventions.js';
import { PROJECT_ROOT, type Config } from '../config.js';
import { failureMessage, reportsKeptNote } from './failures.js';
import { StartupError, prepareCacheFolder, prepareOutputFolders } from './startup.js';
import { InterruptedError } from '../dag/interrupted.js';
import { startRunMemorySampler, type TreeMemory } from '../memory.js';
import { consoleProgress } from '../progress.js';
import { RUN_STARTED_ENV, runStartedAt } from '../provenance.js';
import { counted, duration, percent } from '../render/format.js';
import type { MetricsFile } from '../types.js';

/** The run's last lines: what it scored, how long it took (since the process started) and the memory it held, where to look, and what to try next. */
function closingLines(config: Config, wallSeconds: number, memory: TreeMemory | null, split: string): string[] {
  const metricsPath = path.join(config.out, 'metrics.json');
  if (!existsSync(metricsPath)) return [];
  const metrics = JSON.parse(readFileSync(metricsPath, 'utf8')) as MetricsFile;
  const accuracies = [`TF.js ${percent(metrics.tfjs.test_accuracy)}`];
  if (metrics.reference) accuracies.push(`reference ${percent(metrics.reference.test_accuracy)}`);
  const processes = (count: number) => (count === 1 ? 'one process' : `all ${count} processes together`);
  const peakMemory = memory ? [`peak memory: ${(memory.bytes / 1024 ** 2).toFixed(0)} MiB, ${processes(memory.processes)}`] : [];
  return [
    ...peakMemory, // before the four lines test/cli-summary.test.ts reads as the last
    `test accuracy: ${accuracies.join(', ')} (${counted(metrics.config.epochs, 'epoch')}, ${counted(metrics.config.trainSize, 'training image')})`,
    `wall time: ${duration(wallSeconds, 1)} (${split})`,
    `open ${shellWord(path.join(config.out, 'index.html'))}`,
    `try your own digit: npm run predict -- my-digit.png${config.out === 'reports' ? '' : ` --out ${shellWord(config.out)}`}`,
    ...gitNote(config.out),
  ];
}

/**
 * The report link is a new file to git when --out lies in a work tree that does not ignore it. This
 * project ignores everything at its top that is not its own (.gitignore); deeper in it, or in another
 * repository, the user's .gitignore is theirs to change, so we only say so.
 */
function gitNote(out: string): string[] {
  const folder = path.dirname(path.resolve(out));
  const ignored = spawnSync('git', ['check-ignore', '-q', path.basename(out)], { cwd: folder, stdio: 'ignore', timeout: 10_000 });
  if (ignored.status !== 1) return []; // 0: ignored; 128 or no git: not in a work tree
  const inProject = !path.relative(PROJECT_ROOT, folder).startsWith('..');
  const fix = inProject
    ? 'a folder at the top of the project, e.g. --out reports-<name>, is ignored by git'
    : "add it to that repository's .gitignore";
  return [`git status will show ${out} (a link to this run); ${fix}`];
}

async function main(): Promise<number> {
  exitQuietlyWhenOutputCloses();
  process.env[RUN_STARTED_ENV] ??= runStartedAt(); // one start for every model this run trains, in its stage processes too
  const flags = await readFlags(() => parseArgs(hideBin(process.argv)), 'pipeline');
  if ('exitCode' in flags) return flags.exitCode;
  const { invocation } = flags;
  const memory = invocation.mode === 'run' ? startRunMemorySampler() : null; // the sum over this process and its stage processes

  const controller = new AbortController();
  const interrupt = (signal: NodeJS.Signals) => {
    if (controller.signal.aborted) process.exit(EXIT_INTERRUPTED); // a second Ctrl-C does not wait
    console.error(`\n${signal} received: stopping after the current batch; earlier reports and cache stay as they were.`);
    controller.abort();
  };
  process.on('SIGINT', interrupt);
  process.on('SIGTERM', interrupt);

  const progress = consoleProgress();
  let release = () => {};
  try {
    if (invocation.mode === 'runs' || invocation.mode === 'gc') {
      if (invocation.mode === 'gc') release = await prepareCacheFolder(invocation.config, progress.log, controller.signal);
      const { runsOrGc } = await import('./runs.js');
      runsOrGc(invocation, progress.log);
      return 0;
    }
    if (invocation.mode === 'run') release = await prepareOutputFolders(invocation.config, progress.log, controller.signal);
    const { runPipeline, wallSplit } = await import('./run.js');
    const { reports, stagesStartedAt } = await runPipeline(invocation, { progress, signal: controller.signal });
    if (invocation.mode === 'run') {
      const ran = reports.filter((r) => r.outcome === 'ran').map((r) => r.name);
      progress.log(`done: ran ${ran.length > 0 ? ran.join(', ') : 'nothing (all cached)'}; reports in ${invocation.config.out}/`);
      const published = reports.some((r) => r.name === 'report' && r.outcome === 'ran');
      if (published) {
        const wall = performance.now() / 1000; // since the process started
        const split = wallSplit(reports, stagesStartedAt ?? 0, wall);
        for (const line of closingLines(invocation.config, wall, memory?.stop() ?? null, split)) progress.log(line);
      }
    }
    return 0;
  } catch (error) {
    const err = error as Error;
    if (err instanceof InterruptedError) {
      console.error(`interrupted: ${err.message}. Nothing was written for the unfinished stage.`);
      return EXIT_INTERRUPTED;
    }
    console.error(failureMessage(error));
    if (err instanceof StartupError || err instanceof UsageError) return EXIT_USAGE; // a flag named a folder we must not or cannot write: refused before any work
    // True by construction: the report folder is switched in one rename, the last step of a run.
    const note = reportsKeptNote(invocation.config.out);
    if (note) console.error(note);
    return EXIT_FAILED;
  } finally {
    release();
  }
}

process.exitCode = await main();
