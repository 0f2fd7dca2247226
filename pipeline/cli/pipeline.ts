// `npm run pipeline -- …`: parse the flags, run, and turn failures into a message and an exit code.

import { hideBin } from 'yargs/helpers';
import { parseArgs, UsageError } from './args.js';
import { EXIT_FAILED, EXIT_INTERRUPTED, EXIT_USAGE } from './conventions.js';
import { runPipeline } from './run.js';
import { consoleProgress } from '../progress.js';


async function main(): Promise<number> {
  let invocation;
  try {
    invocation = await parseArgs(hideBin(process.argv));
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    console.error(`error: ${error.message}\nRun "npm run pipeline -- --help" for every flag.`);
    return EXIT_USAGE;
  }
  if (invocation === null) return 0; // --help

  const controller = new AbortController();
  const interrupt = (signal: NodeJS.Signals) => {
    if (controller.signal.aborted) process.exit(EXIT_INTERRUPTED); // a second Ctrl-C does not wait
    console.error(`\n${signal} received: stopping after the current batch; earlier reports and cache stay as they were.`);
    controller.abort();
  };
  process.on('SIGINT', interrupt);
  process.on('SIGTERM', interrupt);

  const progress = consoleProgress();
  try {
    const { reports } = await runPipeline(invocation, { progress, signal: controller.signal });
    if (invocation.mode === 'run') {
      const ran = reports.filter((r) => r.outcome === 'ran').map((r) => r.name);
      progress.log(`done: ran ${ran.length > 0 ? ran.join(', ') : 'nothing (all cached)'}; reports in ${invocation.config.out}/`);
    }
    return 0;
  } catch (error) {
    const err = error as Error;
    if (err.name === 'InterruptedError') {
      console.error(`interrupted: ${err.message}. Nothing was written for the unfinished stage.`);
      return EXIT_INTERRUPTED;
    }
    const known = ['DataError', 'DivergenceError', 'ConfigError', 'UsageError', 'CacheCorruptError', 'UnaskedTrainingError', 'StagesFailedError'].includes(err.name);
    console.error(`error: ${err.message}`);
    if (!known && err.stack) console.error(err.stack.split('\n').slice(1, 6).join('\n'));
    console.error(`Reports in ${invocation.config.out}/ were left as they were.`);
    return EXIT_FAILED;
  }
}

process.exitCode = await main();
