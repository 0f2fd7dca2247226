// numpy, for the course's users: weights.npz as numpy itself reads it, the report's numpy snippet
// run exactly as index.html shows it, and scripts/verify_model.py from the command line.
// Needs python3 with numpy (.ci/run installs python3-numpy when the import fails).

import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PARAM_NAMES, PARAM_SHAPES, TFJS_WEIGHT_NAMES } from '../reference/shapes.js';
import { npzBytes } from '../pipeline/output/npz.js';
import type { MetricsFile } from '../pipeline/types.js';
import { type CliResult, ROOT, runCli, smallRunArgs } from './helpers/cli.js';
import { pythonJson, runPython } from './helpers/python.js';

// smallRunArgs: 4,000 / 500 / 1,000 images (the first 1,000 of the 10,000 test images), 2 epochs, wasm, with the reference.
let work: string;
let run: CliResult;
beforeAll(() => {
  work = mkdtempSync(path.join(os.tmpdir(), 'numpy-'));
  run = runCli('pipeline/cli/pipeline.ts', smallRunArgs(work));
}, 300_000);
afterAll(() => rmSync(work, { recursive: true, force: true }));

const reports = () => path.join(work, 'reports');
const metrics = () => JSON.parse(readFileSync(path.join(reports(), 'metrics.json'), 'utf8')) as MetricsFile;
const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/** Each member of an .npz as numpy sees it, and whether its bytes are those np.save writes for the same array. */
const READ_NPZ = `
import io, json, sys, zipfile
import numpy as np
path = sys.argv[1]
archive = zipfile.ZipFile(path)
assert archive.testzip() is None, 'a CRC-32 does not match'
members = {}
for info in archive.infolist():
    stored = archive.read(info.filename)
    array = np.load(io.BytesIO(stored))
    saved = io.BytesIO()
    np.save(saved, array)
    members[info.filename] = {
        'compression': info.compress_type, 'dtype': array.dtype.str, 'shape': list(array.shape),
        'values': array.ravel().tolist() if array.size < 100 else None,
        'sha256': __import__('hashlib').sha256(array.tobytes()).hexdigest(), 'asNumpySaves': stored == saved.getvalue(),
    }
print(json.dumps({'keys': list(np.load(path).files), 'members': members}))
`;

interface NpzAsNumpyReads {
  keys: string[];
  members: Record<
    string,
    { compression: number; dtype: string; shape: number[]; values: number[] | null; sha256: string; asNumpySaves: boolean }
  >;
}

describe('npzBytes', () => {
  it("writes what numpy reads: stored .npy files, each as np.save writes it, with the CRC-32 zip's reader checks", () => {
    const arrays = [
      { name: 'm', shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, -6.5]) },
      { name: 'v', shape: [3], data: Float32Array.from([0.1, 1e-8, -0]) },
      { name: 'one', shape: [1], data: Float32Array.from([3.25]) },
      { name: 'big', shape: [784, 128], data: Float32Array.from({ length: 784 * 128 }, (_, i) => Math.sin(i)) },
    ];
    const file = path.join(work, 'small.npz');
    writeFileSync(file, npzBytes(arrays));
    const read = pythonJson<NpzAsNumpyReads>(READ_NPZ, [file]);
    expect(read.keys).toEqual(['m', 'v', 'one', 'big']);
    for (const array of arrays) {
      const { compression, dtype, shape, values, sha256: valuesSha256, asNumpySaves } = read.members[`${array.name}.npy`]!;
      expect({ name: array.name, compression, dtype, shape, asNumpySaves }).toEqual({
        name: array.name,
        compression: 0, // stored
        dtype: '<f4',
        shape: array.shape,
        asNumpySaves: true,
      });
      expect({ name: array.name, sha256: valuesSha256 }).toEqual({ name: array.name, sha256: sha256(new Uint8Array(array.data.buffer)) });
      if (values !== null) expect(values).toEqual(Array.from(array.data));
    }
  });

  it('refuses an array whose values do not fill its shape', () => {
    expect(() => npzBytes([{ name: 'w', shape: [2, 2], data: new Float32Array(3) }])).toThrow(
      new Error('npy w: expected 4 values for shape (2, 2), found 3'),
    );
  });
});

describe("a run's model folders", () => {
  it('the run exits 0', () => {
    expect(run.stderr).not.toMatch(/error:/);
    expect(run.status).toBe(0);
  });

  it('each holds weights.npz, listed in the report folder manifest like every file', () => {
    const listed = Object.keys((JSON.parse(readFileSync(path.join(reports(), 'manifest.json'), 'utf8')) as { files: object }).files);
    const folders = [...new Set(listed.filter((file) => file.startsWith('model/')).map((file) => path.posix.dirname(file)))].sort();
    expect(folders).toEqual(['model/reference', 'model/tfjs']);
    for (const folder of folders) {
      expect(listed.filter((file) => file.startsWith(`${folder}/`)).sort()).toEqual(
        ['model.json', 'weights.bin', 'weights.npz'].map((name) => `${folder}/${name}`),
      );
    }
  });

  it("weights.npz holds w1…b3, float32 of the course's shapes, the very bytes weights.bin holds for dense1/kernel…dense3/bias", () => {
    for (const folder of ['model/tfjs', 'model/reference']) {
      const modelJson = JSON.parse(readFileSync(path.join(reports(), folder, 'model.json'), 'utf8')) as {
        weightsManifest: { weights: { name: string; shape: number[]; dtype: string }[] }[];
      };
      const bin = readFileSync(path.join(reports(), folder, 'weights.bin'));
      const inBin: Record<string, { shape: number[]; sha256: string }> = {};
      let offset = 0;
      for (const spec of modelJson.weightsManifest.flatMap((group) => group.weights)) {
        expect(spec.dtype).toBe('float32');
        const bytes = 4 * spec.shape.reduce((a, b) => a * b, 1);
        inBin[spec.name] = { shape: spec.shape, sha256: sha256(bin.subarray(offset, offset + bytes)) };
        offset += bytes;
      }
      const read = pythonJson<NpzAsNumpyReads>(READ_NPZ, [path.join(reports(), folder, 'weights.npz')]);
      expect({ folder, keys: read.keys }).toEqual({ folder, keys: [...PARAM_NAMES] });
      for (const name of PARAM_NAMES) {
        const member = read.members[`${name}.npy`]!;
        const tfjs = inBin[TFJS_WEIGHT_NAMES[name]]!;
        expect({ folder, name, dtype: member.dtype, shape: member.shape, sha256: member.sha256 }).toEqual({
          folder,
          name,
          dtype: '<f4',
          shape: PARAM_SHAPES[name],
          sha256: tfjs.sha256,
        });
        expect(tfjs.shape).toEqual(PARAM_SHAPES[name]);
      }
    }
  });
});

/** The one numpy snippet in index.html's "Use this model" section, as the page shows it. */
function numpySnippet(html: string): string {
  const section = /<section id="use-this-model"[\s\S]*?<\/section>/.exec(html)?.[0] ?? '';
  const blocks = [...section.matchAll(/<pre><code[^>]*>([\s\S]*?)<\/code><\/pre>/g)]
    .map((match) =>
      match[1]!
        .replace(/&lt;/g, '<')
        .replace(/&gt;/g, '>')
        .replace(/&quot;/g, '"')
        .replace(/&amp;/g, '&'),
    )
    .filter((code) => code.includes('import numpy'));
  expect(blocks).toHaveLength(1);
  return blocks[0]!;
}

describe("the report's numpy snippet", () => {
  it('run exactly as index.html shows it, gets right the same test images metrics.json records, of the same count', () => {
    const snippet = numpySnippet(readFileSync(path.join(reports(), 'index.html'), 'utf8'));
    expect(snippet).toContain("np.load(REPORT + 'model/tfjs/weights.npz')");
    // The snippet runs from the project folder: here a folder laid out like one, with the run's reports/ and the project's node_modules/.
    symlinkSync(path.join(ROOT, 'node_modules'), path.join(work, 'node_modules'));
    writeFileSync(path.join(work, 'use_this_model.py'), snippet);
    const result = runPython(['use_this_model.py'], work);
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    const printed = /^(\d+) of (\d+) test images right: accuracy (\d\.\d{4})\n$/.exec(result.stdout);
    expect(printed).not.toBeNull();
    const [correct, count, accuracy] = [Number(printed![1]), Number(printed![2]), printed![3]];
    const recorded = metrics().tfjs;
    const recordedCorrect = recorded.confusion_matrix.reduce((sum, row, digit) => sum + row[digit]!, 0);
    expect({ correct, count, accuracy }).toEqual({
      correct: recordedCorrect,
      count: metrics().config.testSize,
      accuracy: recorded.test_accuracy.toFixed(4),
    });
    expect(count).toBe(1000); // the first 1,000 of the file's 10,000: the snippet measured what the report measured
    expect(correct / count).toBe(recorded.test_accuracy);
  });

  it('report.md shows the same snippet, or none', () => {
    const snippet = numpySnippet(readFileSync(path.join(reports(), 'index.html'), 'utf8'));
    const markdown = readFileSync(path.join(reports(), 'report.md'), 'utf8');
    const fences = [...markdown.matchAll(/```python\n([\s\S]*?)```/g)].map((match) => match[1]!).filter((code) => code.includes('numpy'));
    expect(fences.every((code) => code === `${snippet}\n`)).toBe(true);
    expect(markdown.includes('weights.npz')).toBe(fences.length > 0);
  });
});

describe('scripts/verify_model.py', () => {
  it('--help prints its usage and exits 0', () => {
    const result = runPython(['scripts/verify_model.py', '--help']);
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(/^usage: verify_model\.py \[-h\] \[folder\] \[block\] \[metrics\]\n/);
    expect(result.stdout).toContain("default: the folder's name");
  });

  it("without its second argument, checks each folder against the metrics.json block of the folder's name", () => {
    const recorded = metrics();
    for (const block of ['tfjs', 'reference'] as const) {
      const folder = path.join(reports(), 'model', block);
      const result = runPython(['scripts/verify_model.py', folder]);
      expect({ block, stderr: result.stderr, status: result.status }).toEqual({ block, stderr: '', status: 0 });
      const accuracy = recorded[block]!.test_accuracy.toFixed(4);
      expect(result.stdout).toBe(
        `${folder}: test accuracy ${accuracy} (metrics.json ${block}: ${accuracy}), difference 0.0000; confusion matrix identical\n` +
          `${path.join(folder, 'weights.npz')}: the same weights as weights.bin\n`,
      );
    }
  });

  it('refuses a folder whose name is no block, and says what to give', () => {
    const result = runPython(['scripts/verify_model.py', path.join(reports(), 'model')]);
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(
      /\nverify_model\.py: error: cannot tell the block from the folder name 'model': give it, one of tfjs, reference, best\n$/,
    );
  });
});
