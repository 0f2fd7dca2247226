// The rule that outranks every other: a run never deletes, moves or overwrites a
// file it did not create. Each case runs the real CLI on real folders, then checks
// that every file of the user's is still there, byte for byte, and that the run
// was refused before any work: exit 2, one line naming the folder, no stack.

import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT, runCli, runFlags, type RunSize } from './helpers/cli.js';
import { snapshot } from './helpers/files.js';

const STACK_LINE = /^\s+at .+:\d+:\d+\)?$/m;
const TINY: RunSize = { train: 600, val: 100, test: 100, epochs: 1 };
/** The flags of a tiny run on wasm, without --out and --cache-dir. */
const tinyRun = () => runFlags(work, TINY).slice(0, 10);

let work: string;
beforeAll(() => {
  work = mkdtempSync(path.join(os.tmpdir(), 'ownership-'));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** A folder of `work` filled by `fill`. */
function folder(name: string, fill: (dir: string) => void): string {
  const dir = path.join(work, name);
  mkdirSync(dir, { recursive: true });
  fill(dir);
  return dir;
}

const write = (file: string, text: string) => {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, text);
};

const refusal = (out: string, found: string, suggestion: string) =>
  `error: --out ${out}: expected a new folder or a report folder of this pipeline, found ${found}. ` +
  `Nothing there was changed; choose another folder, e.g. --out ${suggestion}`;

interface NotOurs {
  name: string;
  /** Makes the case; returns the folders whose files must stay byte-identical, the flags, and the line expected. */
  make: () => { keep: string[]; flags: Record<string, string>; cwd?: string; env?: NodeJS.ProcessEnv; line: string };
}

const CASES: NotOurs[] = [
  {
    name: 'a folder of dotfiles only',
    make: () => {
      const dir = folder('dotfiles', (d) => {
        write(path.join(d, '.env'), 'SECRET=1\n');
        write(path.join(d, '.config', 'tool.json'), '{}');
      });
      return {
        keep: [dir],
        flags: { out: dir },
        line: refusal(dir, 'a folder of files this pipeline did not write (.config, .env)', `${dir}-reports`),
      };
    },
  },
  {
    name: 'a git work tree',
    make: () => {
      const dir = folder('proj', (d) => {
        expect(spawnSync('git', ['init', '-q', d]).status).toBe(0);
        write(path.join(d, '.env'), 'SECRET=1\n');
      });
      return { keep: [dir], flags: { out: dir }, line: refusal(dir, 'a git work tree', `${dir}-reports`) };
    },
  },
  {
    name: 'a git repo as --out . (the current folder)',
    make: () => {
      const dir = folder('repo', (d) => {
        expect(spawnSync('git', ['init', '-q', d]).status).toBe(0);
        write(path.join(d, 'main.py'), 'print(1)\n');
      });
      return { keep: [dir], flags: { out: '.' }, cwd: dir, line: refusal('.', 'the current folder', 'reports') };
    },
  },
  {
    name: 'a folder of user files',
    make: () => {
      const dir = folder('photos', (d) => write(path.join(d, 'holiday.jpg'), 'jpeg bytes'));
      return {
        keep: [dir],
        flags: { out: dir },
        line: refusal(dir, 'a folder of files this pipeline did not write (holiday.jpg)', `${dir}-reports`),
      };
    },
  },
  {
    name: 'an old-style report folder with user files in it',
    make: () => {
      const dir = folder('results', (d) => {
        write(path.join(d, 'metrics.json'), '{"tfjs": {}}');
        write(path.join(d, 'thesis.txt'), 'chapter 1');
        write(path.join(d, 'figs', 'loss.png'), 'png');
      });
      return {
        keep: [dir],
        flags: { out: dir },
        line: refusal(
          dir,
          `a folder of files this pipeline did not write (figs, metrics.json, thesis.txt); if it is a report of an older version, move it away yourself (mv ${dir} ${dir}.old)`,
          `${dir}-reports`,
        ),
      };
    },
  },
  {
    name: 'a symlink to a user folder',
    make: () => {
      const target = folder('documents', (d) => write(path.join(d, 'cv.pdf'), 'pdf'));
      const link = path.join(work, 'docs-link');
      symlinkSync(target, link);
      return {
        keep: [target],
        flags: { out: link },
        line: refusal(link, `a symlink this pipeline did not make (to ${target})`, `${link}-reports`),
      };
    },
  },
  {
    name: 'the project itself',
    make: () => ({
      keep: [path.join(ROOT, 'pipeline')],
      flags: { out: ROOT },
      cwd: work,
      line: refusal(ROOT, "this project's own folder", path.join(ROOT, 'reports')),
    }),
  },
  {
    name: 'the home folder',
    make: () => {
      const home = folder('home', (d) => write(path.join(d, 'diary.txt'), 'dear diary'));
      return {
        keep: [home],
        flags: { out: home },
        env: { HOME: home },
        line: refusal(home, 'your home folder', path.join(home, 'reports')),
      };
    },
  },
  {
    name: '--out and --cache-dir the same folder (once a run that waited for itself)',
    make: () => {
      const dir = path.join(work, 'both');
      return {
        keep: [],
        flags: { out: dir, 'cache-dir': dir },
        line: `error: --out ${dir} and --cache-dir ${dir}: expected two folders, found the same one; e.g. --out ${dir} --cache-dir .cache`,
      };
    },
  },
  {
    name: '--cache-dir inside --out',
    make: () => {
      const out = path.join(work, 'inside');
      const cache = path.join(out, '.cache');
      return {
        keep: [],
        flags: { out, 'cache-dir': cache },
        line:
          `error: --cache-dir ${cache}: expected a folder outside the report folder --out ${out}, found one inside it; ` +
          `e.g. --out ${out} --cache-dir .cache`,
      };
    },
  },
  {
    name: 'a --cache-dir of user files',
    make: () => {
      const dir = folder('music', (d) => {
        write(path.join(d, 'train', 'song.mp3'), 'mp3'); // a folder named like a stage
        write(path.join(d, 'playlist.m3u'), 'song.mp3');
      });
      return {
        keep: [dir],
        flags: { 'cache-dir': dir },
        line:
          `error: --cache-dir ${dir}: expected a cache folder of this pipeline (with its CACHEDIR.TAG) or a new one, ` +
          'found other files (playlist.m3u, train). Nothing there was changed; choose another folder, e.g. --cache-dir .cache',
      };
    },
  },
];

describe('a folder that is not ours', () => {
  it.each(CASES.map((c) => [c.name, c] as const))(
    '%s: refused before any work, every user file byte-identical',
    (_name, notOurs) => {
      const { keep, flags, cwd, env, line } = notOurs.make();
      const before = keep.map((dir) => snapshot(dir));
      const parentsBefore = [work, ...(cwd ? [cwd] : [])].map((dir) => readdirSync(dir).sort());
      const folders = { out: path.join(work, 'reports'), 'cache-dir': path.join(work, 'cache'), ...flags };
      const result = runCli(
        'pipeline/cli/pipeline.ts',
        [...tinyRun(), '--out', folders.out, '--cache-dir', folders['cache-dir']],
        env,
        cwd,
      );
      expect(result.stderr.split('\n')).toContain(line);
      expect(result.status).toBe(2);
      expect(result.stderr).not.toMatch(STACK_LINE);
      expect(result.stdout).not.toMatch(/▶/); // no stage started
      expect(keep.map((dir) => snapshot(dir))).toEqual(before);
      expect([work, ...(cwd ? [cwd] : [])].map((dir) => readdirSync(dir).sort())).toEqual(parentsBefore); // no lock, cache or run folder made
    },
    60_000,
  );

  it('the git repo given as --out . still is one afterwards (git log works)', () => {
    const repo = path.join(work, 'repo-log');
    expect(spawnSync('git', ['init', '-q', repo]).status).toBe(0);
    write(path.join(repo, 'a.txt'), 'a');
    const git = (...words: string[]) =>
      spawnSync('git', ['-C', repo, '-c', 'user.name=t', '-c', 'user.email=t@t', ...words], { encoding: 'utf8' });
    expect(git('add', '.').status).toBe(0);
    expect(git('commit', '-qm', 'mine').status).toBe(0);
    const result = runCli('pipeline/cli/pipeline.ts', ['--out', '.', '--train-size', '600', '--epochs', '1'], {}, repo);
    expect(result.status).toBe(2);
    expect(git('log', '--format=%s').stdout).toBe('mine\n');
    expect(readdirSync(repo).sort()).toEqual(['.git', 'a.txt']);
  }, 60_000);

  it('a mount point (a real tmpfs) is refused before training, not after it with EBUSY', () => {
    const mount = path.join(work, 'volume');
    mkdirSync(mount);
    const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mount], { encoding: 'utf8' });
    if (mounted.status !== 0) {
      console.warn(`skipped: mounting a tmpfs needs CAP_SYS_ADMIN (${mounted.stderr.trim()})`);
      return;
    }
    try {
      const result = runCli('pipeline/cli/pipeline.ts', [...tinyRun(), '--out', mount, '--cache-dir', path.join(work, 'cache')]);
      expect(result.stderr.split('\n')).toContain(
        refusal(mount, 'a mount point (a volume or a tmpfs), which cannot be replaced by the report link', path.join(mount, 'reports')),
      );
      expect(result.status).toBe(2);
      expect(result.stderr).not.toMatch(STACK_LINE);
      expect(readdirSync(mount)).toEqual([]);
    } finally {
      spawnSync('umount', [mount]);
    }
  }, 60_000);
});

describe('from a folder outside the project', () => {
  it('npx mnist-pipeline runs with --jobs 2 (children find tsx), and a copy of its report is moved aside, never deleted', () => {
    const outside = mkdtempSync(path.join(os.tmpdir(), 'elsewhere-'));
    try {
      const bin = path.join(ROOT, 'bin', 'mnist-pipeline.js');
      const run = (out: string) =>
        spawnSync(process.execPath, [bin, ...tinyRun(), '--jobs', '2', '--out', out, '--cache-dir', '.cache'], {
          cwd: outside,
          encoding: 'utf8',
          env: { ...process.env, CI: 'true' },
          timeout: 300_000,
        });
      const first = run('reports');
      expect(first.stderr).not.toContain('ERR_MODULE_NOT_FOUND');
      expect(first.status).toBe(0);
      expect(lstatSync(path.join(outside, 'reports')).isSymbolicLink()).toBe(true);

      // A real-folder copy of our report is ours by its manifest: the next run moves it aside under a visible name.
      expect(spawnSync('cp', ['-rL', 'reports', 'results'], { cwd: outside }).status).toBe(0);
      const copied = snapshot(path.join(outside, 'results'));
      const second = run('results');
      expect(second.status).toBe(0);
      const aside = readdirSync(outside).filter((name) => /^results\.before-\d{8}T\d{6}Z$/.test(name));
      expect(aside).toHaveLength(1);
      expect(second.stdout).toContain(`results was a report folder of an earlier run; it is now ${aside[0]}`);
      expect(snapshot(path.join(outside, aside[0]!))).toEqual(copied);
      expect(lstatSync(path.join(outside, 'results')).isSymbolicLink()).toBe(true);
      expect(readFileSync(path.join(outside, 'results', 'metrics.json'), 'utf8')).toContain('"test_accuracy"');
      expect(existsSync(path.join(outside, '.cache', 'CACHEDIR.TAG'))).toBe(true);
    } finally {
      rmSync(outside, { recursive: true, force: true });
    }
  }, 300_000);
});
