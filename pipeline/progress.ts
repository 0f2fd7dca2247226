// Progress for long work: a bar on a terminal, one plain line per epoch elsewhere (CI, pipes).

import cliProgress from 'cli-progress';
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

/** A bar on a TTY; otherwise only the summary lines. */
export function consoleProgress(stream: NodeJS.WriteStream = process.stderr): ProgressFactory {
  const log: Logger = (line) => console.log(line);
  const interactive = Boolean(stream.isTTY) && !process.env.CI;
  return {
    log,
    epoch(label, batches) {
      if (!interactive) return { batch() {}, end: (summary) => log(summary) };
      const bar = new cliProgress.SingleBar(
        {
          format: `${label} [{bar}] {value}/{total} batches | loss {loss} | acc {acc} | eta {eta_formatted}`,
          stream,
          hideCursor: true,
          clearOnComplete: true,
        },
        cliProgress.Presets.shades_classic,
      );
      bar.start(batches, 0, { loss: '-', acc: '-' });
      let last = 0;
      return {
        batch(done, loss, accuracy) {
          const now = Date.now();
          if (now - last < 100 && done < batches) return; // redraws cost more than batches
          last = now;
          bar.update(done, { loss: loss.toFixed(4), acc: accuracy.toFixed(4) });
        },
        end(summary) {
          bar.stop();
          log(summary);
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
