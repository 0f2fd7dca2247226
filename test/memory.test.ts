// pipeline/memory.ts: the resident memory of a process tree, added up over every process in it.
// The tree is made by the test: a node process that forks two children, each holding 50 MB it has
// written to (so every page is resident), and reports their pids once both are ready.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { processTreeRss, parseProcStat, runMemoryPeak, startMemorySampler, startRunMemorySampler } from '../pipeline/memory.js';
import { runMetadata } from '../pipeline/provenance.js';
import { runMetadataJson } from '../pipeline/render/run-files.js';
import type { RunMetadata } from '../pipeline/types.js';

const HELD_BYTES = 50e6; // each child's buffer: written in full, so at least this much of its RSS is the buffer
const ROOT = path.resolve(import.meta.dirname, '..');
const onLinux = existsSync('/proc/self/stat') ? describe : describe.skip;

/** A child that fills its buffer, says so, and sleeps; on SIGTERM the parent stops both children, waits for them, and exits. */
const PARENT = `
const { spawn } = require('node:child_process');
const holder = 'const held = Buffer.alloc(${HELD_BYTES}).fill(1); process.stdout.write("ready"); setInterval(() => held[0]++, 1000);';
const children = [0, 1].map(() => spawn(process.execPath, ['-e', holder], { stdio: ['ignore', 'pipe', 'inherit'] }));
let ready = 0;
for (const child of children) child.stdout.once('data', () => {
  if (++ready === children.length) console.log(JSON.stringify(children.map((c) => c.pid)));
});
process.on('SIGTERM', () => {
  let running = children.length;
  for (const child of children) { child.once('exit', () => { if (--running === 0) process.exit(0); }); child.kill(); }
});
setInterval(() => {}, 1000);
`;

interface Tree {
  parent: ChildProcess & { pid: number };
  children: number[];
}

/** Starts the three-process tree and resolves once both children hold their buffers. */
function startTree(): Promise<Tree> {
  const parent = spawn(process.execPath, ['-e', PARENT], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    parent.once('error', reject);
    parent.once('exit', (code) => reject(new Error(`the tree's parent exited early with code ${code}`)));
    parent.stdout.once('data', (data: Buffer) => {
      resolve({ parent: parent as Tree['parent'], children: JSON.parse(data.toString()) as number[] });
    });
  });
}

/** Stops the tree and resolves once the parent has exited, after its children. */
function stopTree(tree: Tree): Promise<void> {
  if (tree.parent.exitCode !== null || tree.parent.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    tree.parent.removeAllListeners('exit');
    tree.parent.once('exit', () => resolve());
    tree.parent.kill('SIGTERM');
  });
}

/** One process's RSS in bytes as ps reports it: an oracle apart from our /proc walk. */
function psRssBytes(pid: number): number {
  const ps = spawnSync('ps', ['-o', 'rss=', '-p', String(pid)], { encoding: 'utf8' });
  if (ps.status !== 0) throw new Error(`ps -o rss= -p ${pid}: exit ${ps.status}, ${ps.stderr}`);
  return Number(ps.stdout.trim()) * 1024; // KiB
}

onLinux('processTreeRss and the sampler, on a parent with two 50 MB children', () => {
  let tree: Tree;
  beforeAll(async () => {
    tree = await startTree();
  });
  afterAll(async () => {
    await stopTree(tree);
  });

  test('the sum counts all 3 processes, holds both buffers, exceeds the largest single one, and agrees with ps', () => {
    const whole = processTreeRss(tree.parent.pid);
    const parts = [tree.parent.pid, ...tree.children].map((pid) => processTreeRss(pid));
    expect(whole?.processes).toBe(3); // down the tree only: not the jest process above it
    expect(parts.map((part) => part?.processes)).toEqual([3, 1, 1]);
    const singles = [tree.parent.pid, ...tree.children].map(psRssBytes);
    for (const child of singles.slice(1)) expect(child).toBeGreaterThanOrEqual(HELD_BYTES);
    expect(whole!.bytes).toBeGreaterThanOrEqual(2 * HELD_BYTES);
    // The largest process holds one buffer at most; the sum holds the other one too.
    expect(whole!.bytes).toBeGreaterThanOrEqual(Math.max(...singles) + HELD_BYTES);
    const psSum = singles.reduce((sum, bytes) => sum + bytes, 0);
    expect(Math.abs(whole!.bytes - psSum) / psSum).toBeLessThan(0.05); // read moments apart, so not to the byte
  });

  test('the sampler keeps the peak after the children exit', async () => {
    const sampler = startMemorySampler(tree.parent.pid, 3_600_000); // no tick in this test: the peak is the sample taken at start
    await stopTree(tree);
    expect(processTreeRss(tree.parent.pid)).toEqual({ bytes: 0, processes: 0 }); // gone: nothing left to measure
    const peak = sampler.stop();
    expect(peak?.processes).toBe(3);
    expect(peak!.bytes).toBeGreaterThanOrEqual(2 * HELD_BYTES);
    expect(sampler.peak()).toEqual(peak);
  });
});

describe('parseProcStat', () => {
  test('reads the state and parent after the last ")", whatever comm holds', () => {
    const line =
      '4242 (tsx ) (watch) x) S 17 4242 4242 0 -1 4194560 1393 0 0 0 12 3 0 0 20 0 11 0 5150 1106333696 14712 18446744073709551615';
    expect(parseProcStat(line)).toEqual({ pid: 4242, state: 'S', ppid: 17 });
    expect(parseProcStat('1 (systemd) S 0 1 1 0 -1 4194560')).toEqual({ pid: 1, state: 'S', ppid: 0 });
  });

  test('refuses a line that is not "pid (comm) state ppid …"', () => {
    expect(() => parseProcStat('4242 node S 17')).toThrow('/proc stat line: expected "pid (comm) state ppid …", found "4242 node S 17"');
  });
});

onLinux('the run sampler', () => {
  test('runMetadata has no figure before the CLI starts a sampler, and this process afterwards', () => {
    expect(runMemoryPeak()).toBeNull();
    const before = runMetadata('wasm');
    expect([before.peakMemoryMiB, before.peakMemoryProcesses]).toEqual([null, null]);
    const sampler = startRunMemorySampler();
    try {
      const run = runMetadata('wasm');
      expect(run.peakMemoryProcesses).toBeGreaterThanOrEqual(1);
      expect(run.peakMemoryMiB).toBeGreaterThanOrEqual(psRssBytes(process.pid) / 1024 ** 2 / 2); // at least half of what ps sees now
    } finally {
      sampler.stop();
    }
  });

  test('its timer does not keep a process alive', () => {
    const script = "import { startMemorySampler } from './pipeline/memory.ts'; startMemorySampler(); console.log('started');";
    const run = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect([run.status, run.signal, run.stdout]).toEqual([0, null, 'started\n']);
  });
});

describe('runMetadataJson', () => {
  const RUN: RunMetadata = {
    startedAt: '2026-11-28T21:04:05.123Z',
    gitCommit: '0123456789abcdef0123456789abcdef01234567',
    gitDirty: false,
    nodeVersion: '20.18.1',
    tfjsVersion: '4.22.0',
    backend: 'wasm',
    backendVersion: '4.22.0',
    os: 'linux 6.1.0 (x64)',
    cpuModel: 'Test CPU',
    cpuCores: 2,
    wallSeconds: 60,
    peakMemoryMiB: 612.4,
    peakMemoryProcesses: 3,
  };

  test('writes the peak of all processes together, and null where it was not measured', () => {
    expect(runMetadataJson(RUN)).toMatchObject({ peak_memory_mib: 612.4, peak_memory_processes: 3 });
    const unmeasured = runMetadataJson({ ...RUN, peakMemoryMiB: null, peakMemoryProcesses: null });
    expect(unmeasured).toMatchObject({ peak_memory_mib: null, peak_memory_processes: null });
    expect(JSON.parse(JSON.stringify(unmeasured))).toHaveProperty('peak_memory_mib', null); // in the file, not left out
  });
});
