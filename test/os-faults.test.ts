// Every fault of the operating system is one line naming the path and the cause,
// with no stack: a full cache disk (in the pipeline's process and in a stage's
// child process), a child killed by a signal, stdout closed early, a dumb terminal.

import { spawn, spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { consoleProgress } from '../pipeline/progress.js';
import { ROOT, runCli, runFlags, type RunSize } from './helpers/cli.js';
import { writeFakeMnist } from './helpers/idx.js';

const STACK_LINE = /^\s+at .+:\d+:\d+\)?$/m;
const PIPELINE = path.join(ROOT, 'pipeline', 'cli', 'pipeline.ts');
const TSX = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
const SMALL: RunSize = { train: 600, val: 100, test: 100, epochs: 1 };

let work: string;
let data: string;
beforeAll(() => {
  work = mkdtempSync(path.join(os.tmpdir(), 'os-faults-'));
  data = path.join(work, 'data');
  mkdirSync(data);
  writeFakeMnist(data, { trainCount: 700, testCount: 100 });
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** A small run on the fake data writing into `name`/reports and `name`/cache; `extra` after the flags. */
const small = (name: string, extra: string[] = [], size = SMALL) => runFlags(path.join(work, name), size, ['--data-dir', data, ...extra]);

/** Bytes under `dir`, as the file system counts them (whole blocks). */
const diskUsage = (dir: string) => Number(spawnSync('du', ['-sB1', dir], { encoding: 'utf8' }).stdout.split('\t')[0]);

/** Mounts a tmpfs of `bytes` at `dir` for `body`; false (and a warning) where mounting needs a privilege we lack. */
function withTmpfs(dir: string, bytes: number, body: () => void): boolean {
  mkdirSync(dir, { recursive: true });
  const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${bytes}`, 'tmpfs', dir], { encoding: 'utf8' });
  if (mounted.status !== 0) {
    console.warn(`skipped: mounting a tmpfs needs CAP_SYS_ADMIN (${mounted.stderr.trim()})`);
    return false;
  }
  try {
    body();
  } finally {
    spawnSync('umount', [dir]);
  }
  return true;
}

describe('a cache disk that fills', () => {
  it.each([
    ['1', 'in the pipeline process (load)', ['load']],
    ['2', 'in a training child process', ['train', 'reference']],
  ])(
    '--jobs %s: one line naming the cache file, %s, no stack',
    (jobs, _where, stages) => {
      // Room for every entry before the trainings, measured on a free disk, so that the first write that fails is theirs.
      const measured = path.join(work, `measure-${jobs}`);
      expect(runCli('pipeline/cli/pipeline.ts', small(`measure-${jobs}`, ['--jobs', jobs])).status).toBe(0);
      const cache = path.join(measured, 'cache');
      const beforeTrainings = ['load', 'preprocess', 'init', 'gradcheck'].reduce(
        (sum, stage) => sum + diskUsage(path.join(cache, stage)),
        0,
      );
      const room = jobs === '1' ? 64 * 1024 : beforeTrainings + 64 * 1024;
      const full = path.join(work, `full-${jobs}`);
      const ran = withTmpfs(full, room, () => {
        const result = runCli('pipeline/cli/pipeline.ts', [
          ...small(`run-${jobs}`, ['--jobs', jobs]).filter((word, i, words) => word !== '--cache-dir' && words[i - 1] !== '--cache-dir'),
          '--cache-dir',
          full,
        ]);
        expect(result.status).toBe(1);
        const lines = result.stderr.split('\n').filter((line) => line.includes('ENOSPC'));
        expect(lines.length).toBeGreaterThan(0);
        const entry = `${full}/(${stages.join('|')})/\\.tmp-[^/]+/(value\\.json|arrays\\.bin|manifest\\.json)`;
        for (const line of lines) {
          expect(line).toMatch(
            new RegExp(`^(error|  (${stages.join('|')})): ${entry}: no space left on the device \\(ENOSPC on write\\)$`),
          );
        }
        expect(result.stderr).not.toMatch(STACK_LINE);
        for (const stage of stages) {
          const stageDir = path.join(full, stage);
          if (existsSync(stageDir)) expect(readdirSync(stageDir).filter((name) => name.startsWith('.tmp-'))).toEqual([]); // no half entry
        }
      });
      if (!ran) expect(statSync(cache).isDirectory()).toBe(true);
    },
    240_000,
  );
});

describe('a stage process killed by a signal', () => {
  it('is one line saying which stage and how, exit 1, no stack', async () => {
    const cli = spawn(process.execPath, ['--import', TSX, PIPELINE, ...small('killed', ['--jobs', '2'], { ...SMALL, epochs: 200 })], {
      cwd: ROOT,
      env: { ...process.env, CI: 'true' },
    });
    let stdout = '';
    let stderr = '';
    let killed: string | null = null;
    cli.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    cli.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      if (killed === null && /(tfjs|reference) epoch 1\/200/.test(stdout)) {
        const children = spawnSync('pgrep', ['-P', String(cli.pid)], { encoding: 'utf8' })
          .stdout.trim()
          .split('\n')
          .filter(Boolean);
        killed = children[0] ?? '';
        if (killed) process.kill(Number(killed), 'SIGKILL');
      }
    });
    const code = await new Promise<number | null>((resolve) => cli.on('close', resolve));
    expect(killed).toMatch(/^\d+$/);
    expect(code).toBe(1);
    expect(stderr).toMatch(
      /stage (train|reference): its process was killed by SIGKILL before it finished \(the system may have run short of memory\); nothing of it was cached, rerun to try again/,
    );
    expect(stderr).not.toMatch(STACK_LINE);
  }, 240_000);
});

describe('stdout closed early', () => {
  it('`npm run pipeline | head -1` exits quietly: status 0, nothing on stderr about EPIPE, locks released', () => {
    const flags = small('piped').map((word) => `'${word}'`);
    const script = `node --import '${TSX}' '${PIPELINE}' ${flags.join(' ')} | head -1; echo "status \${PIPESTATUS[0]}" >&2`;
    const result = spawnSync('bash', ['-c', script], {
      cwd: ROOT,
      encoding: 'utf8',
      env: { ...process.env, CI: 'true' },
      timeout: 120_000,
    });
    expect(result.stdout).toMatch(/^using the defaults, overridden by: .*\n$/);
    expect(result.stderr).toContain('status 0');
    expect(result.stderr).not.toMatch(/EPIPE|Unhandled/);
    expect(result.stderr).not.toMatch(STACK_LINE);
    const folder = path.join(work, 'piped');
    expect(readdirSync(folder).filter((name) => name.endsWith('.lock'))).toEqual([]);
  }, 120_000);
});

describe('a dumb terminal', () => {
  /** A stand-in for a terminal stream that records what is written to it. */
  const terminal = () => {
    const written: string[] = [];
    const stream = {
      isTTY: true,
      columns: 80,
      rows: 24,
      write: (chunk: string) => written.push(String(chunk)) > 0,
      on: () => stream,
      once: () => stream,
      removeListener: () => stream,
      off: () => stream,
      cursorTo: () => true,
      moveCursor: () => true,
      clearLine: () => true,
      clearScreenDown: () => true,
    };
    return { stream: stream as unknown as NodeJS.WriteStream, written };
  };

  it.each([
    ['dumb', false],
    ['xterm', true],
  ])('TERM=%s: cursor escapes %s', (term, escapes) => {
    const saved = { TERM: process.env.TERM, CI: process.env.CI };
    process.env.TERM = term;
    delete process.env.CI;
    try {
      const bars = terminal();
      const lines = terminal();
      const progress = consoleProgress(bars.stream, lines.stream);
      const epoch = progress.epoch('tfjs epoch 1/1', 10);
      epoch.batch(10, 0.5, 0.9);
      epoch.end('tfjs epoch 1/1: loss 0.5000');
      const all = [...bars.written, ...lines.written].join('');
      expect(all.includes('\u001b[')).toBe(escapes);
      expect(all).toContain('tfjs epoch 1/1: loss 0.5000\n');
    } finally {
      process.env.TERM = saved.TERM;
      if (saved.CI !== undefined) process.env.CI = saved.CI;
    }
  });
});
