// The report folder holds exactly one run at every instant: racing publishes,
// a publish that fails part-way, leftovers of killed runs, and the lock.

import { spawn, spawnSync } from 'node:child_process';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { acquireLock, processStartTime } from '../pipeline/output/lock.js';
import { publishFolder, publishTargetProblem, verifyPublished } from '../pipeline/output/publish.js';
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
      // Each with our mark: the half-built folders their .publishing file, the run folder its manifest, the link its target.
      for (const name of [planted[0]!, planted[2]!]) writeFileSync(path.join(work, name, '.publishing'), '');
      writeFileSync(path.join(work, planted[1]!, 'manifest.json'), JSON.stringify({ createdAt: '', pid: dead, files: {} }));
      symlinkSync(planted[1]!, path.join(work, `.reports.link-${dead}-0a1b2c3d`));
      await publishFolder(out, runFiles('second'));
      expect(wholeRun(out)).toBe('second');
      expect(leftovers(out)).toEqual([`.reports.tmp-${live.pid}-0a1b2c3d`]);
    } finally {
      live.kill();
    }
  });

  it('moves a report folder of ours that is a real folder aside under a visible name, and says where', async () => {
    const published = path.join(work, 'published');
    await publishFolder(published, runFiles('old'));
    const copy = path.join(work, 'results');
    expect(spawnSync('cp', ['-rL', published, copy]).status).toBe(0); // a real folder: its manifest lists every file
    const before = snapshot(copy);
    const lines: string[] = [];
    const result = await publishFolder(copy, runFiles('new'), { log: (line) => lines.push(line) });
    expect(lstatSync(copy).isSymbolicLink()).toBe(true);
    expect(wholeRun(copy)).toBe('new');
    expect(result.movedAside).toMatch(/\/results\.before-\d{8}T\d{6}Z$/);
    expect(snapshot(result.movedAside!)).toEqual(before);
    expect(lines).toEqual([`${copy} was a report folder of an earlier run; it is now ${result.movedAside}`]);
    expect(leftovers(copy)).toEqual([]);
  });

  const refusal = (out: string, found: string, suggestion: string) =>
    `--out ${out}: expected a new folder or a report folder of this pipeline, found ${found}. ` +
    `Nothing there was changed; choose another folder, e.g. --out ${suggestion}`;

  it('refuses, byte for byte untouched, every folder that is not ours', async () => {
    const cases: [string, (folder: string) => void, string][] = [
      ['dotfiles only', (f) => writeFileSync(path.join(f, '.env'), 'SECRET=1'), 'a folder of files this pipeline did not write (.env)'],
      [
        'a git work tree',
        (f) => {
          mkdirSync(path.join(f, '.git'));
          writeFileSync(path.join(f, '.git', 'config'), '[core]');
        },
        'a git work tree',
      ],
      [
        'user files beside a metrics.json',
        (f) => {
          writeFileSync(path.join(f, 'metrics.json'), '{}');
          writeFileSync(path.join(f, 'thesis.txt'), 'chapter 1');
          mkdirSync(path.join(f, 'figs'));
          writeFileSync(path.join(f, 'figs', 'a.png'), 'png');
        },
        'a folder of files this pipeline did not write (figs, metrics.json, thesis.txt); if it is a report of an older version, move it away yourself (mv {folder} {folder}.old)',
      ],
      [
        'a report folder of ours with a user file added',
        (f) => {
          for (const file of runFiles('old')) {
            mkdirSync(path.dirname(path.join(f, file.path)), { recursive: true });
            writeFileSync(path.join(f, file.path), file.data);
          }
          const files = Object.fromEntries(runFiles('old').map((file) => [file.path, { bytes: file.data.length, sha256: 'x' }]));
          writeFileSync(path.join(f, 'manifest.json'), JSON.stringify({ createdAt: '', pid: 1, files }));
          writeFileSync(path.join(f, 'notes.txt'), 'mine');
          mkdirSync(path.join(f, 'empty-folder-of-mine'));
        },
        'a report folder holding files this pipeline did not write (empty-folder-of-mine/, notes.txt)',
      ],
    ];
    for (const [name, fill, found] of cases) {
      const folder = path.join(work, name.replaceAll(' ', '-'));
      mkdirSync(folder);
      fill(folder);
      const before = snapshot(folder);
      const names = readdirSync(folder).sort();
      await expect(publishFolder(folder, runFiles('new'))).rejects.toThrow(
        refusal(folder, found.replaceAll('{folder}', folder), `${folder}-reports`),
      );
      expect(snapshot(folder)).toEqual(before);
      expect(readdirSync(folder).sort()).toEqual(names);
      expect(lstatSync(folder).isDirectory()).toBe(true);
    }
    const userFolder = path.join(work, 'pictures');
    mkdirSync(userFolder);
    writeFileSync(path.join(userFolder, 'cat.png'), 'cat');
    const link = path.join(work, 'link-to-pictures');
    symlinkSync(userFolder, link);
    await expect(publishFolder(link, runFiles('new'))).rejects.toThrow(
      refusal(link, `a symlink this pipeline did not make (to ${userFolder})`, `${link}-reports`),
    );
    expect(readlinkSync(link)).toBe(userFolder);
    expect(readdirSync(userFolder)).toEqual(['cat.png']);
    writeFileSync(path.join(work, 'plain'), 'x');
    expect(publishTargetProblem(path.join(work, 'plain'))).toBe(
      refusal(path.join(work, 'plain'), 'a file, not a folder', `${path.join(work, 'plain')}-reports`),
    );
    expect(readdirSync(work).filter((entry) => entry.startsWith('.'))).toEqual([]); // nothing built beside any of them
  });

  it('replaces an empty folder with the link, and refuses one that gains a file while the run works', async () => {
    const empty = path.join(work, 'empty');
    mkdirSync(empty);
    await publishFolder(empty, runFiles('first'));
    expect(wholeRun(empty)).toBe('first');

    const filling = path.join(work, 'filling');
    mkdirSync(filling);
    await expect(
      publishFolder(filling, runFiles('new'), {
        afterWrite: (_file, written) => {
          if (written === 1) writeFileSync(path.join(filling, 'arrived.txt'), 'while the run trained');
        },
      }),
    ).rejects.toThrow(refusal(filling, 'a folder of files this pipeline did not write (arrived.txt)', `${filling}-reports`));
    expect(readdirSync(filling)).toEqual(['arrived.txt']);
    expect(readdirSync(work).filter((entry) => entry.startsWith('.filling.'))).toEqual([]);
  });

  it('keeps a leftover that does not carry our mark: a run folder with a user file, an unmarked tmp folder', async () => {
    const out = path.join(work, 'reports');
    await publishFolder(out, runFiles('first'));
    const firstRun = readlinkSync(out);
    writeFileSync(path.join(out, 'my-notes.txt'), 'written into reports/ by the user');
    const dead = deadPid();
    const unmarked = `.reports.tmp-${dead}-0a1b2c3d`;
    mkdirSync(path.join(work, unmarked));
    writeFileSync(path.join(work, unmarked, 'data.csv'), '1,2');
    const lines: string[] = [];
    await publishFolder(out, runFiles('second'), { log: (line) => lines.push(line) });
    expect(wholeRun(out)).toBe('second');
    expect(readFileSync(path.join(work, firstRun, 'my-notes.txt'), 'utf8')).toBe('written into reports/ by the user');
    expect(readFileSync(path.join(work, unmarked, 'data.csv'), 'utf8')).toBe('1,2');
    expect(leftovers(out).sort()).toEqual([firstRun, unmarked].sort());
    expect(lines).toEqual([
      `kept ${path.join(work, firstRun)}: it holds files this pipeline did not write (my-notes.txt); move what you need out of it, then delete it`,
    ]);
  });

  it('refuses the current folder, the project, and the home folder', () => {
    const project = path.resolve(import.meta.dirname, '..');
    expect(publishTargetProblem('.')).toBe(refusal('.', 'the current folder', 'reports'));
    expect(publishTargetProblem(project)).toMatch(/found (the current folder|this project's own folder)\./);
    expect(publishTargetProblem(os.homedir())).toMatch(/found (your home folder|a folder that holds the current folder)\./);
    expect(publishTargetProblem('/')).toMatch(/found a folder that holds the current folder\./);
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
  /** A live process that is not this one, and the lock file it would write. */
  function liveHolder(lockFile: string, started?: string) {
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)']);
    const pid = child.pid!;
    writeFileSync(lockFile, `${JSON.stringify({ pid, started: started ?? processStartTime(pid) })}\n`);
    return { child, pid };
  }

  it('makes a second writer wait for the first, naming its pid and the lock file, then takes it', async () => {
    const lockFile = path.join(work, '.reports.lock');
    const { child, pid } = liveHolder(lockFile);
    const lines: string[] = [];
    let taken = false;
    const waiting = acquireLock(lockFile, { what: 'reports/', log: (line) => lines.push(line), pollMs: 10 }).then((release) => {
      taken = true;
      return release;
    });
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(taken).toBe(false);
    expect(lines).toEqual([
      `another run (pid ${pid}) is writing reports/; waiting (Ctrl-C to stop). If no such run exists, delete its lock file: rm ${lockFile}`,
    ]);
    child.kill();
    const release = await waiting;
    expect(JSON.parse(readFileSync(lockFile, 'utf8'))).toEqual({ pid: process.pid, started: processStartTime(process.pid) });
    release();
    expect(existsSync(lockFile)).toBe(false);
  });

  it("takes over at once a lock whose pid is dead, or alive but another process (pid reused), or an older version's", async () => {
    const lockFile = path.join(work, '.lock');
    const { child } = liveHolder(lockFile, '1'); // the pid runs, but it did not start at tick 1: not the lock's writer
    try {
      for (const content of [null, `${deadPid()}\n`, `${JSON.stringify({ pid: deadPid(), started: null })}\n`]) {
        if (content !== null) writeFileSync(lockFile, content);
        const lines: string[] = [];
        const release = await acquireLock(lockFile, { what: 'reports/', log: (line) => lines.push(line) });
        expect(JSON.parse(readFileSync(lockFile, 'utf8')).pid).toBe(process.pid);
        expect(lines).toEqual([]);
        release();
      }
    } finally {
      child.kill();
    }
  });

  it('never waits for itself, stops waiting on abort, and refuses a lock path that is not a lock file', async () => {
    const lockFile = path.join(work, '.lock');
    const release = await acquireLock(lockFile, { what: 'reports/', log: () => {} });
    await expect(acquireLock(lockFile, { what: 'reports/', log: () => {} })).rejects.toThrow(
      `${lockFile}: this run already holds it for reports/; a run never waits for itself`,
    );
    release();

    const { child, pid } = liveHolder(lockFile);
    const controller = new AbortController();
    const waiting = acquireLock(lockFile, { what: 'reports/', log: () => {}, signal: controller.signal, pollMs: 10 });
    setTimeout(() => controller.abort(), 50);
    await expect(waiting).rejects.toThrow(`stopped while waiting for pid ${pid} to finish writing reports/ (lock file ${lockFile})`);
    child.kill();

    const folder = path.join(work, '.folder.lock');
    mkdirSync(folder);
    writeFileSync(path.join(folder, 'mine.txt'), 'x');
    await expect(acquireLock(folder, { what: 'folder/', log: () => {} })).rejects.toThrow(
      `${folder}: expected the lock file of a run of this pipeline, found a folder or a link; move it away`,
    );
    expect(readdirSync(folder)).toEqual(['mine.txt']);
    writeFileSync(lockFile, 'my shopping list');
    await expect(acquireLock(lockFile, { what: 'reports/', log: () => {} })).rejects.toThrow(
      `${lockFile}: expected the lock file of a run of this pipeline, found other content; if it is not yours and no run is writing, delete it`,
    );
    expect(readFileSync(lockFile, 'utf8')).toBe('my shopping list');
  });
});
