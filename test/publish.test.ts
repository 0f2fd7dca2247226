// The report folder holds exactly one run at every instant: racing publishes,
// a publish that fails part-way, leftovers of killed runs, and the lock.

import { spawn, spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { acquireLock } from '../pipeline/dag/lock.js';
import { publishFolder, publishTargetProblem, verifyPublished } from '../pipeline/dag/publish.js';
import type { ReportFile } from '../pipeline/types.js';
import { snapshot } from './helpers/files.js';

let work: string;
beforeEach(() => {
  work = mkdtempSync(path.join(os.tmpdir(), 'publish-'));
});
afterEach(() => rmSync(work, { recursive: true, force: true }));

const FILE_NAMES = ['metrics.json', 'config.json', 'model/tfjs/weights.bin', 'report.md', 'index.html'];

/** A run's files: every one names the run, so a mix of two runs shows. */
function runFiles(run: string, names = FILE_NAMES): ReportFile[] {
  return names.map((name) => ({ path: name, data: new TextEncoder().encode(`${run}:${name}\n`) }));
}

/** The run every data file of `out` comes from; throws on a mix or a missing file. */
function wholeRun(out: string, names = FILE_NAMES): string {
  const runs = new Set(names.map((name) => readFileSync(path.join(out, name), 'utf8').split(':')[0]));
  if (runs.size !== 1) throw new Error(`${out} mixes runs ${[...runs].join(', ')}`);
  expect(verifyPublished(out)).toEqual([]);
  return [...runs][0]!;
}

/** Siblings of `out` other than `out` itself and the current run folder. */
function leftovers(out: string): string[] {
  const current = lstatSync(out).isSymbolicLink() ? readlinkSync(out) : null;
  return readdirSync(path.dirname(out)).filter((name) => name.startsWith(`.${path.basename(out)}.`) && name !== current);
}

/** A pid that no process has: a child that has already exited. */
function deadPid(): number {
  const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(child.stdout);
}

describe('publishFolder', () => {
  it('two publishes racing on one folder leave one whole run at every instant', async () => {
    const out = path.join(work, 'reports');
    await publishFolder(out, runFiles('previous'));
    let resumeA!: () => void;
    const pausedA = new Promise<void>((resolve) => (resumeA = resolve));
    let seenWhilePaused: string | null = null;
    const a = publishFolder(out, runFiles('A'), {
      // A stops between its first and its last write, while B publishes from start to end.
      afterWrite: async (_file, written) => {
        if (written !== 1) return;
        seenWhilePaused = wholeRun(out);
        await publishFolder(out, runFiles('B'));
        expect(wholeRun(out)).toBe('B');
        await pausedA;
      },
    });
    setTimeout(resumeA, 50);
    await a;
    expect(seenWhilePaused).toBe('previous');
    expect(wholeRun(out)).toBe('A');
    expect(leftovers(out)).toEqual([]);
  });

  it('a publish that throws part-way leaves the previous run byte-identical and no leftovers', async () => {
    const out = path.join(work, 'reports');
    await publishFolder(out, runFiles('previous'));
    const before = snapshot(out);
    const full = Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', syscall: 'write' });
    await expect(
      publishFolder(out, runFiles('new'), {
        afterWrite: (_file, written) => {
          if (written === 3) throw full;
        },
      }),
    ).rejects.toBe(full);
    expect(snapshot(out)).toEqual(before);
    expect(leftovers(out)).toEqual([]);
  });

  it('a disk that fills during the publish leaves the previous run byte-identical (tmpfs of 64 KiB)', async () => {
    const disk = path.join(work, 'disk');
    mkdirSync(disk);
    const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', disk], { encoding: 'utf8' });
    if (mounted.status !== 0) {
      console.warn(
        `skipped the real full disk: mounting a tmpfs needs CAP_SYS_ADMIN (${mounted.stderr.trim()}); the throwing write above covers the property`,
      );
      return;
    }
    try {
      const out = path.join(disk, 'reports');
      await publishFolder(out, runFiles('previous'));
      const before = snapshot(out);
      const big = [...runFiles('new'), { path: 'big.bin', data: new Uint8Array(200 * 1024).fill(7) }];
      await expect(publishFolder(out, big)).rejects.toMatchObject({ code: 'ENOSPC', path: expect.stringContaining('big.bin') });
      expect(snapshot(out)).toEqual(before);
      expect(leftovers(out)).toEqual([]);
    } finally {
      spawnSync('umount', [disk]);
    }
  });

  it('removes what killed runs left beside the folder, and keeps what a live run is building', async () => {
    const out = path.join(work, 'reports');
    await publishFolder(out, runFiles('first'));
    const dead = deadPid();
    const live = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)']);
    try {
      const planted = [
        `.reports.tmp-${dead}-0a1b2c3d`,
        `.reports.run-20260101T000000Z-${dead}-0a1b2c3d`,
        `.reports.tmp-${live.pid}-0a1b2c3d`,
      ];
      for (const name of planted) mkdirSync(path.join(work, name));
      writeFileSync(path.join(work, `.reports.link-${dead}-0a1b2c3d`), '');
      await publishFolder(out, runFiles('second'));
      expect(wholeRun(out)).toBe('second');
      expect(leftovers(out)).toEqual([`.reports.tmp-${live.pid}-0a1b2c3d`]);
    } finally {
      live.kill();
    }
  });

  it('takes over a report folder of an older version, and refuses a folder of other files or a plain file', async () => {
    const legacy = path.join(work, 'reports');
    mkdirSync(legacy);
    writeFileSync(path.join(legacy, 'metrics.json'), '{}');
    await publishFolder(legacy, runFiles('new'));
    expect(lstatSync(legacy).isSymbolicLink()).toBe(true);
    expect(wholeRun(legacy)).toBe('new');
    expect(leftovers(legacy)).toEqual([]);

    const foreign = path.join(work, 'home');
    mkdirSync(foreign);
    writeFileSync(path.join(foreign, 'notes.txt'), 'mine');
    await expect(publishFolder(foreign, runFiles('new'))).rejects.toThrow(
      `--out ${foreign}: expected a report folder, found a folder of other files (no metrics.json), which publishing would replace; choose an empty or new folder`,
    );
    expect(readdirSync(foreign)).toEqual(['notes.txt']);
    writeFileSync(path.join(work, 'plain'), 'x');
    expect(publishTargetProblem(path.join(work, 'plain'))).toBe('a file, not a folder');
  });

  it('opens and copies like a folder: index.html through the link, and cp -rL or cp -r out/. copies the files', async () => {
    const out = path.join(work, 'reports');
    await publishFolder(out, runFiles('run'));
    expect(readFileSync(path.join(out, 'index.html'), 'utf8')).toBe('run:index.html\n');
    for (const [command, destination] of [
      [['-rL', out, path.join(work, 'copy1')], 'copy1'],
      [['-r', `${out}/.`, path.join(work, 'copy2')], 'copy2'],
    ] as const) {
      expect(spawnSync('cp', command).status).toBe(0);
      const copy = path.join(work, destination);
      expect(lstatSync(copy).isDirectory()).toBe(true);
      expect(snapshot(copy)).toEqual(snapshot(out));
    }
    // Moving the parent keeps the link working: it is relative.
    const moved = path.join(os.tmpdir(), `${path.basename(work)}-moved`);
    spawnSync('mv', [work, moved]);
    try {
      expect(wholeRun(path.join(moved, 'reports'))).toBe('run');
    } finally {
      spawnSync('mv', [moved, work]);
    }
  });

  it('refuses a file path that climbs out of the folder', async () => {
    await expect(publishFolder(path.join(work, 'reports'), [{ path: '../escape.txt', data: new Uint8Array(1) }])).rejects.toThrow(
      'report file "../escape.txt": expected a relative path inside the report folder, other than manifest.json',
    );
    expect(existsSync(path.join(work, 'escape.txt'))).toBe(false);
  });
});

describe('acquireLock', () => {
  it('makes a second writer wait for the first, naming its pid', async () => {
    const lockFile = path.join(work, '.lock');
    const lines: string[] = [];
    const releaseFirst = await acquireLock(lockFile, { what: 'reports/', log: (line) => lines.push(line) });
    let secondHasIt = false;
    const second = acquireLock(lockFile, { what: 'reports/', log: (line) => lines.push(line), pollMs: 10 }).then((release) => {
      secondHasIt = true;
      return release;
    });
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(secondHasIt).toBe(false);
    expect(lines).toEqual([`another run (pid ${process.pid}) is writing reports/; waiting (Ctrl-C to stop)`]);
    releaseFirst();
    (await second)();
    expect(secondHasIt).toBe(true);
    expect(existsSync(lockFile)).toBe(false);
  });

  it('takes over the lock of a dead pid at once, and stops waiting on abort', async () => {
    const lockFile = path.join(work, '.lock');
    writeFileSync(lockFile, `${deadPid()}\n`);
    const lines: string[] = [];
    const release = await acquireLock(lockFile, { what: 'reports/', log: (line) => lines.push(line) });
    expect(readFileSync(lockFile, 'utf8')).toBe(`${process.pid}\n`);
    expect(lines.filter((line) => line.includes('waiting'))).toEqual([]);

    const controller = new AbortController();
    const waiting = acquireLock(lockFile, { what: 'reports/', log: () => {}, signal: controller.signal, pollMs: 10 });
    setTimeout(() => controller.abort(), 50);
    await expect(waiting).rejects.toThrow(`stopped while waiting for pid ${process.pid} to finish writing reports/`);
    release();
  });
});
