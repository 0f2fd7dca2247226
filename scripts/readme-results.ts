// Rewrites the README's results block (between the results:begin / results:end markers) from one run's
// metrics.json and training_history.csv, stamped with the command, commit and machine, so that no figure is
// copied by hand.  Usage: npm run readme-results -- [OUT] [--note "why the machine was slow"]   (OUT: reports)

import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DEFAULTS, FIELDS, type Config } from '../pipeline/config.js';
import { percent, thousands } from '../pipeline/render/format.js';
import type { ImplementationMetrics, MetricsFile, RunMetadataJson } from '../pipeline/types.js';

const README = path.join(import.meta.dirname, '..', 'README.md');
const BEGIN = '<!-- results:begin (written by npm run readme-results; do not edit) -->';
const END = '<!-- results:end -->';

/** Run metadata as metrics.json records it; a run from before it was recorded has none. */
type RunInfo = Partial<RunMetadataJson>;

/** The command that reproduces the run: the flags whose values differ from the defaults, out and cache aside. */
function command(config: Config): string {
  const flags: string[] = [];
  for (const key of Object.keys(DEFAULTS) as (keyof Config)[]) {
    if (key === 'out' || key === 'cacheDir' || config[key] === DEFAULTS[key]) continue;
    const value = config[key];
    flags.push(typeof value === 'boolean' ? `--${value ? '' : 'no-'}${FIELDS[key].flag}` : `--${FIELDS[key].flag} ${value}`);
  }
  return flags.length === 0 ? 'npm run pipeline' : `npm run pipeline -- ${flags.join(' ')}`;
}

interface HistoryRow {
  implementation: string;
  epoch: number;
  loss: number;
  val_accuracy: number;
}

function readHistory(out: string): HistoryRow[] {
  const [header, ...lines] = readFileSync(path.join(out, 'training_history.csv'), 'utf8').trim().split('\n');
  const columns = header!.split(',');
  return lines.map((line) => {
    const cells = line.split(',');
    const cell = (name: string) => cells[columns.indexOf(name)]!;
    return {
      implementation: cell('implementation'),
      epoch: Number(cell('epoch')),
      loss: Number(cell('loss')),
      val_accuracy: Number(cell('val_accuracy')),
    };
  });
}

function row(label: string, m: ImplementationMetrics): string {
  return `| ${label} | ${percent(m.train_accuracy)} | ${percent(m.val_accuracy)} | **${percent(m.test_accuracy)}** | ${m.test_loss.toFixed(4)} | ${m.train_seconds.toFixed(0)} s | ${thousands(m.train_samples_per_second)} |`;
}

function resultsBlock(metrics: MetricsFile, history: HistoryRow[], run: RunInfo, note: string): string {
  const lines = [
    BEGIN,
    '| | train accuracy | validation accuracy | test accuracy | test loss | training time | images/s |',
    '|---|---:|---:|---:|---:|---:|---:|',
    row(`TF.js (${metrics.backend})`, metrics.tfjs),
  ];
  if (metrics.reference)
    lines.push(
      row(
        `TypeScript reference (${metrics.reference.threads ?? 1} thread${(metrics.reference.threads ?? 1) === 1 ? '' : 's'})`,
        metrics.reference,
      ),
    );
  lines.push('');
  if (metrics.reference) {
    const byEpoch = (name: string) => history.filter((r) => r.implementation === name).sort((a, b) => a.epoch - b.epoch);
    const [tfjs, reference] = [byEpoch('tfjs'), byEpoch('reference')];
    let worstLoss = { epoch: 0, difference: 0 };
    let worstValidation = 0;
    tfjs.forEach((r, i) => {
      const other = reference[i]!;
      const difference = Math.abs(r.loss - other.loss);
      if (difference > worstLoss.difference) worstLoss = { epoch: r.epoch, difference };
      worstValidation = Math.max(worstValidation, Math.abs(r.val_accuracy - other.val_accuracy));
    });
    lines.push(
      `- **The two implementations agree.** Per-epoch training losses differ by at most ${worstLoss.difference.toExponential(1)} ` +
        `(epoch ${worstLoss.epoch}), validation accuracies by at most ${(worstValidation * 100).toFixed(2)} percentage points, ` +
        `test accuracies by ${(Math.abs(metrics.tfjs.test_accuracy - metrics.reference.test_accuracy) * 100).toFixed(2)} points.`,
    );
  }
  const check = metrics.gradient_check;
  if (check) {
    const worst = (errors: Record<string, { max_abs_error: number; max_rel_error: number }>, field: 'max_abs_error' | 'max_rel_error') =>
      Math.max(...Object.values(errors).map((e) => e[field])).toExponential(1);
    lines.push(
      `- **The gradients agree.** The reference's gradients match central finite differences in float64 to a relative error of at most ` +
        `${worst(check.finite_difference, 'max_rel_error')}, and TF.js's own gradients to an absolute error of at most ${worst(check.tfjs, 'max_abs_error')}, on every tensor.`,
    );
  }
  const machine = `${run.cpu_model ?? os.cpus()[0]?.model ?? 'unknown CPU'}, ${run.cpu_cores ?? os.cpus().length} cores, Node ${run.node_version ?? process.version}`;
  const commit =
    run.git_commit && run.git_commit !== 'unknown'
      ? `${run.git_commit.slice(0, 7)}${run.git_dirty === true ? ' (uncommitted changes)' : ''}`
      : `${gitHead()} (the checkout the table was written from)`;
  const wall = run.wall_seconds ?? Object.values(metrics.stage_seconds).reduce((sum, s) => sum + s, 0);
  lines.push(
    '',
    `<sub>From \`${command(metrics.config)}\` at commit ${commit}${run.started_at ? ` on ${run.started_at.slice(0, 10)}` : ''}; ${machine}; ` +
      `the run took ${(wall / 60).toFixed(1)} min${note ? ` (${note})` : ''}. \`reports/metrics.json\` holds every figure.</sub>`,
    END,
  );
  return lines.join('\n');
}

function gitHead(): string {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}

const args = process.argv.slice(2);
const noteAt = args.indexOf('--note');
const note = noteAt >= 0 ? (args.splice(noteAt, 2)[1] ?? '') : '';
const out = args[0] ?? 'reports';
const metrics = JSON.parse(readFileSync(path.join(out, 'metrics.json'), 'utf8')) as MetricsFile;
const readme = readFileSync(README, 'utf8');
const [start, end] = [readme.indexOf(BEGIN), readme.indexOf(END)];
if (start < 0 || end < start) {
  console.error(`error: ${README}: expected the markers ${BEGIN} … ${END}`);
  process.exit(1);
}
writeFileSync(
  README,
  readme.slice(0, start) + resultsBlock(metrics, readHistory(out), metrics.run ?? {}, note) + readme.slice(end + END.length),
);
console.log(`README.md: results from ${path.join(out, 'metrics.json')}`);
