// reference/ is the pure-TypeScript oracle: it must not load TF.js, directly or
// through a relative import. Type-only imports are erased before running, so they
// are not followed — but a type import from @tensorflow itself is still refused.

import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const REFERENCE_DIR = join(ROOT, 'reference');
const SOURCE = /\.(ts|mts|cts|js|mjs|cjs)$/;

/** One import, export-from, dynamic import() or require() of a module. */
interface ModuleReference {
  specifier: string;
  typeOnly: boolean;
}

/** Every module a source text refers to. */
function moduleReferences(source: string): ModuleReference[] {
  const patterns = [
    /\b(?:import|export)\s+(?<type>type\s+)?[^'";]*?\bfrom\s*['"](?<specifier>[^'"]+)['"]/g, // import x from '…', export { x } from '…'
    /\bimport\s*['"](?<specifier>[^'"]+)['"]/g, // import '…', for its side effects
    /\b(?:import|require)\s*\(\s*['"](?<specifier>[^'"]+)['"]/g, // import('…'), require('…')
  ];
  return patterns.flatMap((pattern) =>
    [...source.matchAll(pattern)].map((match) => ({ specifier: match.groups!.specifier!, typeOnly: match.groups!.type !== undefined })),
  );
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((entry) => {
    const path = join(dir, entry);
    return statSync(path).isDirectory() ? filesUnder(path) : SOURCE.test(path) ? [path] : [];
  });
}

/** The source file a relative specifier names ('./x.js' is written for './x.ts'). */
function resolveRelative(from: string, specifier: string): string | null {
  const base = resolve(dirname(from), specifier);
  for (const candidate of [base, base.replace(/\.js$/, '.ts'), `${base}.ts`, join(base, 'index.ts')]) {
    if (existsSync(candidate) && statSync(candidate).isFile()) return candidate;
  }
  return null;
}

/** Every '@tensorflow' import reachable at run time from `entries`, as "file → specifier" lines. */
function tensorflowImports(entries: string[], read: (path: string) => string = (path) => readFileSync(path, 'utf8')): string[] {
  const offences: string[] = [];
  const seen = new Set<string>();
  const queue = [...entries];
  while (queue.length > 0) {
    const file = queue.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    for (const { specifier, typeOnly } of moduleReferences(read(file))) {
      if (specifier.startsWith('@tensorflow')) offences.push(`${relative(ROOT, file)} → ${specifier}`);
      else if (specifier.startsWith('.') && !typeOnly) {
        const target = resolveRelative(file, specifier);
        if (target === null) offences.push(`${relative(ROOT, file)} → ${specifier} (unresolved, cannot be checked)`);
        else queue.push(target);
      }
    }
  }
  return offences;
}

describe('reference/ is pure TypeScript', () => {
  it('no file under reference/ imports @tensorflow, directly or through a relative import', () => {
    const files = filesUnder(REFERENCE_DIR);
    expect(files.map((f) => relative(ROOT, f))).toEqual(
      expect.arrayContaining([
        'reference/network.ts',
        'reference/sgd.ts',
        'reference/finite-differences.ts',
        'reference/fast/network.ts',
        'reference/fast/kernels.ts',
        'reference/fast/threads.ts',
        'reference/fast/step-worker.ts',
      ]),
    );
    expect(tensorflowImports(files)).toEqual([]);
  });

  it('the scanner finds every form of import it is meant to catch', () => {
    const source = [
      "import * as tf from '@tensorflow/tfjs';",
      'import type { Tensor } from "@tensorflow/tfjs-core";',
      "import '@tensorflow/tfjs-backend-wasm';",
      "export { sequential } from '@tensorflow/tfjs-layers';",
      "const node = await import('@tensorflow/tfjs-node');",
      "const cpu = require( '@tensorflow/tfjs-backend-cpu' );",
      'import {\n  matMul,\n  add,\n} from "@tensorflow/tfjs";',
      "import { D } from './shapes.js'; // fine",
    ].join('\n');
    expect(
      moduleReferences(source)
        .map((r) => r.specifier)
        .sort(),
    ).toEqual([
      './shapes.js',
      '@tensorflow/tfjs',
      '@tensorflow/tfjs',
      '@tensorflow/tfjs-backend-cpu',
      '@tensorflow/tfjs-backend-wasm',
      '@tensorflow/tfjs-core',
      '@tensorflow/tfjs-layers',
      '@tensorflow/tfjs-node',
    ]);
    const planted = join(REFERENCE_DIR, 'planted.ts');
    const read = (path: string): string => (path === planted ? source : readFileSync(path, 'utf8'));
    expect(tensorflowImports([planted], read)).toHaveLength(7); // and ./shapes.js, followed, is clean
  });

  it('follows relative value imports out of reference/, but not type-only ones', () => {
    const files: Record<string, string> = {
      [join(REFERENCE_DIR, 'a.ts')]:
        "import { helper } from '../pipeline/tfjs/backend.js';\nimport type { Dataset } from '../pipeline/types.js';",
    };
    const read = (path: string): string => files[path] ?? readFileSync(path, 'utf8');
    // pipeline/tfjs/backend.ts imports TF.js, so a value import of it makes reference/ impure;
    // pipeline/types.ts is reached only by a type import, which the compiler erases.
    const offences = tensorflowImports([join(REFERENCE_DIR, 'a.ts')], read);
    expect(offences).toContain('pipeline/tfjs/backend.ts → @tensorflow/tfjs');
    expect(offences.every((line) => line.startsWith('pipeline/'))).toBe(true);
    expect(offences.some((line) => line.startsWith('pipeline/types.ts'))).toBe(false);
  });

  it('catches an import planted in the fast path, reached from the core through a relative import', () => {
    const fastNetwork = join(REFERENCE_DIR, 'fast', 'network.ts');
    const read = (path: string): string =>
      path === fastNetwork ? `${readFileSync(path, 'utf8')}\nimport { tidy } from '@tensorflow/tfjs-core';` : readFileSync(path, 'utf8');
    expect(tensorflowImports([join(REFERENCE_DIR, 'sgd.ts')], read)).toEqual(['reference/fast/network.ts → @tensorflow/tfjs-core']);
  });
});
