import { mkdtempSync, readdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createCache, decodeValue, encodeValue } from '../pipeline/dag/cache.js';
import { createRunner, defineStage, findCycle, topologicalOrder, type Stage } from '../pipeline/dag/runner.js';

// A toy DAG: a → b → d, a → c → d, with calls counted.
interface Toy {
  a: Float32Array;
  b: number;
  c: string;
  d: { sum: number; label: string };
}
interface ToyConfig {
  scale: number;
  label: string;
  withC: boolean;
}

function toyStages(calls: string[]): Stage<Toy, ToyConfig>[] {
  const stage = defineStage<Toy, ToyConfig>();
  return [
    stage({ name: 'a', inputs: [], reads: [], version: 1, description: 'a', run: () => (calls.push('a'), Float32Array.from([1, 2, 3])) }),
    stage({ name: 'b', inputs: ['a'], reads: ['scale'], version: 1, description: 'b', run: ({ a }, { config }) => (calls.push('b'), a.reduce((s, v) => s + v, 0) * config.scale) }),
    stage({ name: 'c', inputs: ['a'], reads: ['label'], version: 1, description: 'c', run: ({ a }, { config }) => (calls.push('c'), `${config.label}:${a.length}`) }),
    stage({ name: 'd', inputs: ['b', 'c'], reads: [], version: 1, description: 'd', run: ({ b, c }) => (calls.push('d'), { sum: b, label: c }) }),
  ];
}

let cacheDir: string;
beforeEach(() => {
  cacheDir = mkdtempSync(path.join(os.tmpdir(), 'runner-'));
});
afterEach(() => rmSync(cacheDir, { recursive: true, force: true }));

const config: ToyConfig = { scale: 2, label: 'x', withC: true };
async function run(calls: string[], cfg = config, selection = {}) {
  const runner = createRunner(toyStages(calls), cfg, { cache: createCache(cacheDir) });
  return runner.run(selection);
}

describe('DAG runner', () => {
  it('runs stages in dependency order and passes typed outputs', async () => {
    const calls: string[] = [];
    const { outputs } = await run(calls);
    expect(calls).toEqual(['a', 'b', 'c', 'd']);
    expect(outputs.d).toEqual({ sum: 12, label: 'x:3' });
  });

  it('caches: a second run executes nothing and says cached', async () => {
    await run([]);
    const calls: string[] = [];
    const { reports } = await run(calls);
    expect(calls).toEqual([]);
    expect(reports.map((r) => r.outcome)).toEqual(['cached', 'cached', 'cached', 'cached']);
  });

  it('reruns exactly the stages whose config values changed, and their downstream', async () => {
    await run([]);
    const calls: string[] = [];
    const { outputs } = await run(calls, { ...config, scale: 3 });
    expect(calls).toEqual(['b', 'd']);
    expect(outputs.d!.sum).toBe(18);
  });

  it('--stage runs the named stage and only the missing upstream', async () => {
    const calls: string[] = [];
    await run(calls, config, { stages: ['b'] });
    expect(calls).toEqual(['a', 'b']);
    const again: string[] = [];
    await run(again, config, { stages: ['b'] });
    expect(again).toEqual(['b']); // named stages always run; a is cached
  });

  it('--from runs that stage and everything downstream', async () => {
    await run([]);
    const calls: string[] = [];
    await run(calls, config, { from: 'c' });
    expect(calls).toEqual(['c', 'd']);
  });

  it('--force reruns everything selected', async () => {
    await run([]);
    const calls: string[] = [];
    await run(calls, config, { force: true });
    expect(calls).toEqual(['a', 'b', 'c', 'd']);
  });

  it('plans cached / stale / missing without running', async () => {
    const runner = () => createRunner(toyStages([]), config, { cache: createCache(cacheDir) });
    expect(runner().plan().map((e) => e.state)).toEqual(['missing', 'missing', 'missing', 'missing']);
    await run([], { ...config, label: 'old' });
    expect(runner().plan().map((e) => [e.name, e.state])).toEqual([['a', 'cached'], ['b', 'cached'], ['c', 'stale'], ['d', 'stale']]);
  });

  it('detects a corrupted entry, reports it and recomputes', async () => {
    await run([]);
    const bDir = path.join(cacheDir, 'b');
    const [key] = readdirSync(bDir);
    writeFileSync(path.join(bDir, key!, 'value.json'), '13'); // same size, other bytes
    const lines: string[] = [];
    const calls: string[] = [];
    const runner = createRunner(toyStages(calls), config, { cache: createCache(cacheDir), log: (l) => lines.push(l) });
    const { outputs } = await runner.run({ stages: ['d'] });
    expect(calls).toEqual(['b', 'd']);
    expect(outputs.d!.sum).toBe(12);
    expect(lines.join('\n')).toMatch(/value\.json: expected SHA-256 .* found .*; discarding the entry and recomputing b/);
  });

  it('ignores a half-written entry (no manifest)', async () => {
    await run([]);
    const aDir = path.join(cacheDir, 'a');
    const [key] = readdirSync(aDir);
    rmSync(path.join(aDir, key!, 'manifest.json'));
    const calls: string[] = [];
    await run(calls);
    expect(calls).toEqual(['a']);
    expect(existsSync(path.join(aDir, key!, 'manifest.json'))).toBe(true);
  });

  it('refuses unknown stage names with the list of stages', () => {
    const runner = createRunner(toyStages([]), config, { cache: createCache(cacheDir) });
    expect(() => runner.plan({ stages: ['zzz' as keyof Toy] })).toThrow('unknown stage "zzz": expected one of a, b, c, d');
  });
});

describe('cycles', () => {
  it('finds a cycle and names it', () => {
    const stages = [
      { name: 'x', inputs: ['z'] },
      { name: 'y', inputs: ['x'] },
      { name: 'z', inputs: ['y'] },
    ];
    expect(findCycle(stages)).toEqual({ hasCycle: true, cycle: ['x', 'z', 'y', 'x'] });
    expect(() => topologicalOrder(stages)).toThrow('the stages form a cycle: x → z → y → x');
  });

  it('reports no cycle for a DAG and orders it', () => {
    const stages = [
      { name: 'd', inputs: ['b', 'c'] },
      { name: 'b', inputs: ['a'] },
      { name: 'c', inputs: ['a'] },
      { name: 'a', inputs: [] },
    ];
    expect(findCycle(stages)).toEqual({ hasCycle: false });
    expect(topologicalOrder(stages).map((s) => s.name)).toEqual(['a', 'b', 'c', 'd']);
  });

  it('refuses an input that is not a stage', () => {
    expect(() => topologicalOrder([{ name: 'a', inputs: ['ghost'] }])).toThrow('stage a: input ghost is not a stage');
  });
});

describe('cache encoding', () => {
  it('round-trips typed arrays, nested objects and non-finite numbers', () => {
    const value = { w: Float32Array.from([1.5, -2]), labels: Uint8Array.from([3, 4, 5]), nested: [{ d: Float64Array.from([Math.PI]) }], nan: NaN, n: null };
    const { json, arrays } = encodeValue(value);
    const back = decodeValue<typeof value>(json, arrays);
    expect(Array.from(back.w)).toEqual([1.5, -2]);
    expect(back.labels).toBeInstanceOf(Uint8Array);
    expect(back.nested[0]!.d[0]).toBe(Math.PI);
    expect(back.nan).toBeNaN();
    expect(back.n).toBeNull();
  });
});
