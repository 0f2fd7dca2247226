import { mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createCache } from '../pipeline/dag/cache.js';
import { decodeValue, encodeValue } from '../pipeline/dag/value-codec.js';
import { pinEntries, readPins } from '../pipeline/output/cache-folder.js';
import { createFileHashes } from '../pipeline/dag/file-hashes.js';
import {
  UnaskedTrainingError,
  UndeclaredReadError,
  createRunner,
  defineStage,
  topologicalOrder,
  type Stage,
} from '../pipeline/dag/runner.js';
import { snapshot } from './helpers/files.js';

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
    stage({
      name: 'a',
      inputs: [],
      reads: [],
      version: 1,
      description: 'a',
      run: () => {
        calls.push('a');
        return Float32Array.from([1, 2, 3]);
      },
    }),
    stage({
      name: 'b',
      inputs: ['a'],
      reads: ['scale'],
      version: 1,
      description: 'b',
      run: ({ a }, { config }) => {
        calls.push('b');
        return a.reduce((s, v) => s + v, 0) * config.scale;
      },
    }),
    stage({
      name: 'c',
      inputs: ['a'],
      reads: ['label'],
      version: 1,
      description: 'c',
      run: ({ a }, { config }) => {
        calls.push('c');
        return `${config.label}:${a.length}`;
      },
    }),
    stage({
      name: 'd',
      inputs: ['b', 'c'],
      reads: [],
      version: 1,
      description: 'd',
      run: ({ b, c }) => {
        calls.push('d');
        return { sum: b, label: c };
      },
    }),
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
    expect(
      runner()
        .plan()
        .map((e) => e.state),
    ).toEqual(['missing', 'missing', 'missing', 'missing']);
    await run([], { ...config, label: 'old' });
    expect(
      runner()
        .plan()
        .map((e) => [e.name, e.state]),
    ).toEqual([
      ['a', 'cached'],
      ['b', 'cached'],
      ['c', 'stale'],
      ['d', 'stale'],
    ]);
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

describe('damaged manifests', () => {
  const damage = (text: string) => {
    const bDir = path.join(cacheDir, 'b');
    const [key] = readdirSync(bDir);
    writeFileSync(path.join(bDir, key!, 'manifest.json'), text);
  };

  it.each([
    ['null', 'null', 'found null'],
    ['garbage', '{"stage": "b", "fi', 'expected a JSON manifest, found unreadable data'],
    ['an array', '[]', 'found an array'],
    ['a wrong shape', '{"seconds": 1, "files": {"value.json": 3}}', 'found an object without seconds and both files'],
  ])('a manifest holding %s is reported as damaged and recomputed', async (_label, text, found) => {
    await run([]);
    damage(text);
    const plan = createRunner(toyStages([]), config, { cache: createCache(cacheDir) }).plan();
    expect(plan.find((e) => e.name === 'b')).toMatchObject({ state: 'damaged', run: true });
    expect(plan.find((e) => e.name === 'b')!.cause).toContain(found);
    const lines: string[] = [];
    const calls: string[] = [];
    const runner = createRunner(toyStages(calls), config, { cache: createCache(cacheDir), log: (l) => lines.push(l) });
    const { outputs } = await runner.run();
    expect(calls).toEqual(['b']);
    expect(outputs.b).toBe(12);
    expect(lines.join('\n')).toMatch(/cache: damaged cache entry: .*manifest\.json: expected .*; recomputing b/);
    expect(
      createRunner(toyStages([]), config, { cache: createCache(cacheDir) })
        .plan()
        .map((e) => e.state),
    ).toEqual(['cached', 'cached', 'cached', 'cached']);
  });

  it('a damaged manifest of another entry does not stop the plan', async () => {
    await run([]);
    damage('null');
    const plan = createRunner(toyStages([]), { ...config, scale: 5 }, { cache: createCache(cacheDir) }).plan();
    expect(plan.find((e) => e.name === 'b')).toMatchObject({ state: 'stale', cause: 'only damaged entries in the cache' });
  });
});

describe('why a stage runs', () => {
  const reasons = (cfg: ToyConfig) =>
    Object.fromEntries(
      createRunner(toyStages([]), cfg, { cache: createCache(cacheDir), fieldName: (f) => `--${f}` })
        .plan()
        .map((e) => [e.name, e.cause]),
    );

  it('names the field with its old and new value, and the upstream stage that reruns', async () => {
    expect(reasons(config)).toEqual({ a: 'not in the cache', b: 'not in the cache', c: 'not in the cache', d: 'not in the cache' });
    await run([]);
    expect(reasons({ ...config, scale: 3, label: 'y' })).toEqual({
      a: 'cached',
      b: '--scale 2 → 3',
      c: '--label "x" → "y"',
      d: 'upstream b reruns, upstream c reruns',
    });
  });

  it('compares with the closest earlier entry', async () => {
    await run([], { ...config, scale: 5 });
    await run([], { ...config, scale: 3 });
    await run([], { ...config, scale: 3, label: 'y' });
    // b has entries at 5 and 3; at scale 4 both differ in one field, and the newest (3) is named.
    expect(reasons({ ...config, scale: 4 }).b).toBe('--scale 3 → 4');
  });

  it('names a changed fingerprint, e.g. a data file', async () => {
    let bytes = 'one';
    const stages = (): Stage<Toy, ToyConfig>[] =>
      toyStages([]).map((s) => (s.name === 'a' ? { ...s, fingerprint: () => ({ 'data file x': bytes }) } : s));
    await createRunner(stages(), config, { cache: createCache(cacheDir) }).run();
    bytes = 'two';
    const plan = createRunner(stages(), config, { cache: createCache(cacheDir) }).plan();
    expect(plan.map((e) => e.cause)).toEqual([
      'data file x changed',
      'upstream a reruns',
      'upstream a reruns',
      'upstream b reruns, upstream c reruns',
    ]);
  });

  it('records in each manifest what the entry read', async () => {
    await run([]);
    const [key] = readdirSync(path.join(cacheDir, 'b'));
    const manifest = JSON.parse(readFileSync(path.join(cacheDir, 'b', key!, 'manifest.json'), 'utf8'));
    expect(manifest.made).toEqual({
      version: 1,
      reads: { scale: 2 },
      fingerprint: {},
      inputs: { a: readdirSync(path.join(cacheDir, 'a'))[0] },
    });
  });
});

describe('--stage never starts an expensive stage unasked', () => {
  // b is the "training": expensive, and what d needs.
  const stages = (calls: string[]) => toyStages(calls).map((s) => (s.name === 'b' ? { ...s, expensive: true } : s));

  it('stops before any work when it is stale, naming it and why, and leaves the cache byte-identical', async () => {
    await createRunner(stages([]), config, { cache: createCache(cacheDir) }).run();
    const before = snapshot(cacheDir);
    const calls: string[] = [];
    const runner = createRunner(stages(calls), { ...config, scale: 3 }, { cache: createCache(cacheDir), fieldName: (f) => `--${f}` });
    const plan = runner.plan({ stages: ['d'] });
    expect(plan.filter((e) => e.unasked).map((e) => [e.name, e.cause])).toEqual([['b', '--scale 2 → 3']]);
    expect(plan.find((e) => e.name === 'b')!.previousSeconds).toEqual(expect.any(Number));
    await expect(runner.run({ stages: ['d'] })).rejects.toThrow(
      new UnaskedTrainingError([], 'b (--scale 2 → 3) would have to run first; name it with --stage or --from'),
    );
    expect(calls).toEqual([]);
    expect(snapshot(cacheDir)).toEqual(before);
  });

  it('stops when it is missing, though the cheap stages before it may run', async () => {
    const calls: string[] = [];
    const runner = createRunner(stages(calls), config, { cache: createCache(cacheDir) });
    await expect(runner.run({ stages: ['d'] })).rejects.toThrow('b (not in the cache) would have to run first');
    expect(calls).toEqual([]);
    expect(readdirSync(cacheDir)).toEqual([]);
  });

  it('runs it when named: --stage b, --from b, or a full run', async () => {
    for (const selection of [{ stages: ['b' as const] }, { from: 'b' as const }, {}]) {
      rmSync(cacheDir, { recursive: true, force: true });
      const calls: string[] = [];
      await createRunner(stages(calls), config, { cache: createCache(cacheDir) }).run(selection);
      expect(calls).toContain('b');
    }
  });

  it('does not stop when it is cached', async () => {
    await createRunner(stages([]), config, { cache: createCache(cacheDir) }).run();
    const calls: string[] = [];
    await createRunner(stages(calls), { ...config, label: 'y' }, { cache: createCache(cacheDir) }).run({ stages: ['d'] });
    expect(calls).toEqual(['c', 'd']);
  });

  it('a stopped run leaves the file-hash state unwritten', async () => {
    const stateFile = path.join(cacheDir, 'file-hashes.json');
    const dataFile = path.join(cacheDir, '..', `${path.basename(cacheDir)}-data`);
    writeFileSync(dataFile, 'bytes');
    const withData = stages([]).map((s) =>
      s.name === 'a' ? { ...s, fingerprint: (_c: ToyConfig, files: { hash(f: string): string }) => ({ data: files.hash(dataFile) }) } : s,
    );
    const runner = createRunner(withData, config, { cache: createCache(cacheDir), files: createFileHashes(stateFile) });
    await expect(runner.run({ stages: ['d'] })).rejects.toThrow(UnaskedTrainingError);
    expect(existsSync(stateFile)).toBe(false);
    await createRunner(withData, config, { cache: createCache(cacheDir), files: createFileHashes(stateFile) }).run();
    expect(Object.keys(JSON.parse(readFileSync(stateFile, 'utf8')).files)).toEqual([dataFile]);
    rmSync(dataFile);
  });
});

describe('a cached stage sees only the config fields it declares', () => {
  it('throws naming the stage and the field when it reads another', async () => {
    const stage = defineStage<Toy, ToyConfig>();
    const sneaky = toyStages([]).map((s) =>
      s.name === 'c'
        ? stage({
            name: 'c',
            inputs: ['a'],
            reads: ['label'],
            version: 1,
            description: 'c',
            run: (_i, { config: cfg }) => `${cfg.label}${cfg.scale}`,
          })
        : s,
    );
    const runner = createRunner(sneaky, config, { cache: createCache(cacheDir) });
    const attempt = runner.run();
    await expect(attempt).rejects.toThrow(UndeclaredReadError);
    await expect(createRunner(sneaky, config, { cache: createCache(cacheDir) }).run()).rejects.toThrow(
      'stage c read config.scale, which is not among its reads (label): add it to reads, or to untracked if no value of it can change the output',
    );
  });

  it('untracked fields are readable but not in the key', async () => {
    const stage = defineStage<Toy, ToyConfig>();
    const seen: unknown[] = [];
    const stages = toyStages([]).map((s) =>
      s.name === 'c'
        ? stage({
            name: 'c',
            inputs: ['a'],
            reads: ['label'],
            untracked: ['withC'],
            version: 1,
            description: 'c',
            run: (_i, { config: cfg }) => {
              seen.push({ ...cfg });
              return `${cfg.label}${cfg.withC}`;
            },
          })
        : s,
    );
    await createRunner(stages, config, { cache: createCache(cacheDir) }).run();
    expect(seen).toEqual([{ label: 'x', withC: true }]); // a spread copies the declared fields only
    const plan = createRunner(stages, { ...config, withC: false }, { cache: createCache(cacheDir) }).plan();
    expect(plan.map((e) => e.state)).toEqual(['cached', 'cached', 'cached', 'cached']);
  });
});

describe('the log', () => {
  it('says consecutive stages disabled by one flag in one line', async () => {
    const stage = defineStage<Toy, ToyConfig>();
    const off = { enabled: (cfg: ToyConfig) => cfg.withC, enabledBy: '--with-c' };
    const stages = [
      stage({ name: 'a', inputs: [], reads: [], version: 1, description: 'a', run: () => Float32Array.from([1]) }),
      stage({ name: 'b', inputs: ['a'], reads: [], version: 1, description: 'b', ...off, run: () => 1 }),
      stage({ name: 'c', inputs: ['a'], reads: [], version: 1, description: 'c', ...off, run: () => 'c' }),
      stage({ name: 'd', inputs: ['b', 'c'], reads: [], version: 1, description: 'd', run: () => ({ sum: 0, label: '' }) }),
    ];
    const lines: string[] = [];
    await createRunner(stages, { ...config, withC: false }, { cache: createCache(cacheDir), log: (l) => lines.push(l) }).run();
    expect(lines.filter((l) => l.includes('disabled'))).toEqual(['- c (2 stages): disabled, --with-c enables them']);
  });
});

describe('cycles', () => {
  it('finds a cycle and names it', () => {
    const stages = [
      { name: 'x', inputs: ['z'] },
      { name: 'y', inputs: ['x'] },
      { name: 'z', inputs: ['y'] },
    ];
    expect(() => topologicalOrder(stages)).toThrow('the stages form a cycle: x → z → y → x');
  });

  it('orders a DAG, each stage after its inputs', () => {
    const stages = [
      { name: 'd', inputs: ['b', 'c'] },
      { name: 'b', inputs: ['a'] },
      { name: 'c', inputs: ['a'] },
      { name: 'a', inputs: [] },
    ];
    expect(topologicalOrder(stages).map((s) => s.name)).toEqual(['a', 'b', 'c', 'd']);
  });

  it('refuses an input that is not a stage', () => {
    expect(() => topologicalOrder([{ name: 'a', inputs: ['ghost'] }])).toThrow('stage a: input ghost is not a stage');
  });
});

describe('cache encoding', () => {
  it('round-trips typed arrays, nested objects and non-finite numbers', () => {
    const value = {
      w: Float32Array.from([1.5, -2]),
      labels: Uint8Array.from([3, 4, 5]),
      nested: [{ d: Float64Array.from([Math.PI]) }],
      nan: NaN,
      n: null,
    };
    const { json, arrays } = encodeValue(value);
    const back = decodeValue<typeof value>(json, Buffer.concat(arrays));
    expect(Array.from(back.w)).toEqual([1.5, -2]);
    expect(back.labels).toBeInstanceOf(Uint8Array);
    expect(back.nested[0]!.d[0]).toBe(Math.PI);
    expect(back.nan).toBeNaN();
    expect(back.n).toBeNull();
  });
});

describe('cache pruning and pins', () => {
  it('keeps the three newest entries of a stage and every pinned one; a summary has no arrays', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'pins-'));
    try {
      const cache = createCache(dir);
      pinEntries(dir, '/runs/first', { train: 'k1' });
      ['k1', 'k2', 'k3', 'k4', 'k5'].forEach((key, i) => {
        cache.write('train', key, { key, w: Float32Array.from([1]) }, 1);
        utimesSync(path.join(dir, 'train', key), 1_000_000 + i, 1_000_000 + i); // "newest" is by mtime: make the order certain
      });
      expect(readdirSync(path.join(dir, 'train')).sort()).toEqual(['k1', 'k3', 'k4', 'k5']);
      expect(cache.read('train', 'k1', false)).toEqual({ value: { key: 'k1', w: null }, seconds: 1 });
      pinEntries(dir, '/runs/first', null);
      cache.write('train', 'k6', { key: 'k6' }, 1);
      expect(readdirSync(path.join(dir, 'train')).sort()).toEqual(['k4', 'k5', 'k6']);
      expect(readPins(dir)).toEqual({});
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
