// The child process of one stage (see child.ts): gets {config, job} from the parent, runs the
// stage by runStageJob (inputs from the cache, its entry into it), and exits. SIGINT, SIGTERM or
// a vanished parent stop the stage at its next batch; it then writes nothing.

import { createCache } from './cache.js';
import { watchedCount } from './budget.js';
import { serializeError, type ChildMessage, type JobMessage, type ThreadsMessage } from './child.js';
import { runStageJob } from './runner.js';
import type { Config } from '../config.js';
import type { EpochProgress, ProgressFactory } from '../progress.js';
import { pipelineStages } from '../stages.js';

const send = (message: ChildMessage) => new Promise<void>((resolve) => process.send!(message, undefined, {}, () => resolve()));

/** Progress that the parent draws: every call becomes a message. */
function parentProgress(): ProgressFactory {
  let next = 0;
  const log = (line: string) => void send({ kind: 'log', line });
  return {
    log,
    epoch(label, batches): EpochProgress {
      const id = next++;
      void send({ kind: 'epoch', id, label, batches });
      let last = 0;
      return {
        batch(done, loss, accuracy) {
          const now = Date.now();
          if (now - last < 100 && done < batches) return; // the parent redraws at most this often anyway
          last = now;
          void send({ kind: 'batch', id, done, loss, accuracy });
        },
        end: (summary) => void send({ kind: 'end', id, summary }),
      };
    },
  };
}

if (!process.send) throw new Error('pipeline/dag/stage-child.ts runs as a child of the pipeline (see child.ts), not on its own');

const controller = new AbortController();
// The terminal's Ctrl-C reaches the child and the parent forwards it too: the first one counts.
process.on('SIGINT', () => controller.abort());
process.on('SIGTERM', () => controller.abort());
process.on('disconnect', () => process.exit(1)); // the parent is gone: nobody would read the result

process.once('message', async ({ config, job }: JobMessage<Config>) => {
  const threads = watchedCount(job.threads); // the parent's budget may change it while the stage runs
  process.on('message', (message: ThreadsMessage) => threads.set(message.threads));
  const progress = parentProgress();
  try {
    const stages = pipelineStages({ progress, signal: controller.signal });
    await runStageJob(stages, config, createCache(config.cacheDir), job, {
      log: progress.log,
      onThreads: threads.onChange,
    });
    await send({ kind: 'done' });
    process.exit(0);
  } catch (error) {
    await send({ kind: 'failed', error: serializeError(error) });
    process.exit(1);
  }
});
