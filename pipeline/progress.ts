// Progress for long work: a bar on a terminal, one plain line per epoch elsewhere (CI, pipes).

import cliProgress from 'cli-progress';
import type { EpochObserver } from '../reference/epochs.js';
import type { EpochRecord } from './types.js';

export interface EpochProgress {
  /** Called after each batch with the running loss and accuracy. */
  batch(done: number, loss: number, accuracy: number): void;
  /** Ends the epoch's bar and prints its summary line. */
  end(summary: string): void;
}

export type Logger = (line: string) => void;

export interface ProgressFactory {
  epoch(label: string, batches: number): EpochProgress;
  log: Logger;
}

/**
 * On a TTY, one bar per running epoch, stacked (stages that run side by side each have theirs);
 * otherwise only the summary lines, one per epoch per stage.
 */
export function consoleProgress(stream: NodeJS.WriteStream = process.stderr, lines: NodeJS.WriteStream = process.stdout): ProgressFactory {
  const interactive = Boolean(stream.isTTY) && !process.env.CI && process.env.TERM !== 'dumb'; // a dumb terminal cannot move its cursor
  let bars: cliProgress.MultiBar | null = null; // while any epoch runs
  let open = 0;
  // While bars are drawn on the terminal the log goes above them, so the two never overwrite each other.
  const log: Logger = (line) => (bars !== null && lines.isTTY ? bars.log(`${line}\n`) : lines.write(`${line}\n`));
  return {
    log,
    epoch(label, batches) {
      if (!interactive) return { batch() {}, end: (summary) => log(summary) };
      bars ??= new cliProgress.MultiBar(
        {
          format: '{label} [{bar}] {value}/{total} batches | loss {loss} | acc {acc} | eta {eta_formatted}',
          stream,
          hideCursor: true,
          clearOnComplete: true,
          gracefulExit: false, // the CLI handles SIGINT itself
        },
        cliProgress.Presets.shades_classic,
      );
      const multi = bars;
      const bar = multi.create(batches, 0, { label, loss: '-', acc: '-' });
      open++;
      let last = 0;
      return {
        batch(done, loss, accuracy) {
          const now = Date.now();
          if (now - last < 100 && done < batches) return; // redraws cost more than batches
          last = now;
          bar.update(done, { loss: loss.toFixed(4), acc: accuracy.toFixed(4) });
        },
        end(summary) {
          log(summary);
          multi.remove(bar); // redraws, writing the summary above the bars left
          if (--open === 0) {
            multi.stop();
            bars = null;
          }
        },
      };
    },
  };
}

/** No output: for tests and nested runs. */
export function silentProgress(): ProgressFactory {
  return { log: () => {}, epoch: () => ({ batch() {}, end() {} }) };
}

/** The one line each trainer prints at the end of an epoch. */
export function epochSummary(label: string, record: EpochRecord, epochs: number): string {
  return (
    `${label} epoch ${record.epoch}/${epochs}: loss ${record.loss.toFixed(4)} acc ${record.accuracy.toFixed(4)} ` +
    `val_loss ${record.valLoss.toFixed(4)} val_acc ${record.valAccuracy.toFixed(4)} (${record.seconds.toFixed(1)} s)`
  );
}

/** One progress bar per epoch, labelled `${label} epoch e/epochs` and ended by its summary line; the reference stage draws its own with it. */
export function epochBars(progress: ProgressFactory, label: string, epochs: number): EpochObserver {
  let bar: EpochProgress | null = null;
  return {
    onEpochStart: (epoch, batches) => {
      bar = progress.epoch(`${label} epoch ${epoch}/${epochs}`, batches);
    },
    onBatch: ({ batch, loss, accuracy }) => bar?.batch(batch, loss, accuracy),
    onEpoch: (record) => {
      bar?.end(epochSummary(label, record, epochs));
      bar = null;
    },
  };
}
