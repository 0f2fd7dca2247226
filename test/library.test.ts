// The package as a library: the README's snippet, copied as written into a fresh folder that depends on
// the package, runs with plain `node` (no tsx, no TF.js) and gives the answers of `npm run predict`.

import { spawnSync } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { argmax } from '../reference/network.js';
import { D, K } from '../reference/shapes.js';
import { selectBackend } from '../pipeline/tfjs/backend.js';
import { predictProbabilities } from '../pipeline/tfjs/model.js';
import { loadModel as loadTfjsModel } from '../pipeline/tfjs/model-io.js';
import { defaultDataDir, loadMnist } from '../pipeline/stages/load.js';
import { ROOT, runCli, runFlags } from './helpers/cli.js';
import { grayPng } from './helpers/png.js';
import { findChromium } from './helpers/browser.js';
import * as esbuild from 'esbuild';
import { chromium } from 'playwright-core';

let work: string;
let project: string; // a user's project that depends on the package
let digits: { file: string; label: number; pixels: Float32Array }[];

/** The code block between the README's library-snippet markers, exactly as a user would copy it. */
function readmeSnippet(): string {
  const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const block = /<!-- library-snippet:begin[^>]*-->\s*```js\n([\s\S]*?)```\s*<!-- library-snippet:end -->/.exec(readme);
  if (!block) throw new Error('README.md: expected a ```js block between the library-snippet markers');
  return block[1]!;
}

/** What console.log printed of [{ digit, probability }, …]. */
function printedGuesses(stdout: string): { digit: number; probability: number }[] {
  return [...stdout.matchAll(/digit: (\d+), probability: ([\d.e+-]+)/g)].map((m) => ({ digit: Number(m[1]), probability: Number(m[2]) }));
}

beforeAll(() => {
  work = mkdtempSync(path.join(os.tmpdir(), 'library-'));
  const build = spawnSync(process.execPath, [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'], {
    cwd: ROOT,
    encoding: 'utf8',
  });
  if (build.status !== 0) throw new Error(`npm run build failed:\n${build.stdout}${build.stderr}`);
  const run = runCli(
    'pipeline/cli/pipeline.ts',
    runFlags(work, { train: 3000, val: 500, test: 500, epochs: 2 }, ['--lr', '0.05', '--no-reference']),
  );
  if (run.status !== 0) throw new Error(`the small run failed:\n${run.stdout}${run.stderr}`);

  // The user's project: the package as a dependency (npm links a folder dependency the same way), a copy of the run's reports, and pictures.
  project = path.join(work, 'my-project');
  mkdirSync(path.join(project, 'node_modules'), { recursive: true });
  writeFileSync(path.join(project, 'package.json'), JSON.stringify({ type: 'module', dependencies: { 'mnist-pipeline': `file:${ROOT}` } }));
  symlinkSync(ROOT, path.join(project, 'node_modules', 'mnist-pipeline'), 'dir');
  cpSync(path.join(work, 'reports'), path.join(project, 'reports'), { recursive: true, dereference: true });
  const { test } = loadMnist(defaultDataDir());
  digits = [0, 1, 2, 3, 4].map((index) => {
    const pixels = test.images.subarray(index * D, (index + 1) * D);
    const file = `digit-${index}.png`;
    // Dark ink on white, ten times MNIST's size, as a photo of a drawing would be.
    const png = grayPng(280, 280, (y) =>
      Uint8Array.from({ length: 280 }, (_, x) => 255 - Math.round(255 * pixels[Math.floor(y / 10) * 28 + Math.floor(x / 10)]!)),
    );
    writeFileSync(path.join(project, file), png);
    return { file, label: test.labels[index]!, pixels: Float32Array.from(pixels) };
  });
}, 300_000);
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe("the README's library snippet", () => {
  it('runs as written with plain node in a project that depends on the package, and agrees with npm run predict', () => {
    for (const { file } of digits) {
      const script = readmeSnippet().replaceAll('my-digit.png', file);
      writeFileSync(path.join(project, 'classify.mjs'), script);
      const ran = spawnSync(process.execPath, ['classify.mjs'], {
        cwd: project,
        encoding: 'utf8',
        env: { ...process.env, NODE_OPTIONS: '' },
      });
      expect(ran.stderr).toBe('');
      expect(ran.status).toBe(0);
      const fromLibrary = printedGuesses(ran.stdout);
      expect(fromLibrary).toHaveLength(3);

      const predicted = runCli('pipeline/cli/predict.ts', [file, '--out', 'reports', '--json', '--backend', 'wasm'], { INIT_CWD: project });
      expect(predicted.status).toBe(0);
      const fromCli = (JSON.parse(predicted.stdout) as { results: { guesses: { digit: number; probability: number }[] }[] }).results[0]!
        .guesses;
      expect(fromLibrary.map((guess) => guess.digit)).toEqual(fromCli.map((guess) => guess.digit));
      fromLibrary.forEach((guess, i) => expect(Math.abs(guess.probability - fromCli[i]!.probability)).toBeLessThan(1e-5)); // float32, two implementations
    }
  }, 120_000);

  it('classifies 784 prepared pixels too, as TF.js does, and the package loads no TF.js and no tsx', async () => {
    const script = [
      "import { loadModel } from 'mnist-pipeline';",
      "const model = await loadModel('reports/model/tfjs');",
      `const digits = ${JSON.stringify(digits.map((digit) => Array.from(digit.pixels)))};`,
      'for (const pixels of digits) console.log((await model.classify(Float32Array.from(pixels), 1))[0].digit);',
      "const loaded = Object.keys(globalThis).filter((name) => name === 'tf');",
      'console.log(JSON.stringify({ tf: loaded.length, execArgv: process.execArgv }));',
    ].join('\n');
    writeFileSync(path.join(project, 'pixels.mjs'), script);
    const ran = spawnSync(process.execPath, ['--trace-warnings', 'pixels.mjs'], { cwd: project, encoding: 'utf8' });
    expect(ran.stderr).toBe('');
    const lines = ran.stdout.trim().split('\n');
    expect(JSON.parse(lines.at(-1)!)).toEqual({ tf: 0, execArgv: ['--trace-warnings'] });
    // TF.js's answer for the same pixels, with the same saved model.
    await selectBackend('wasm');
    const model = await loadTfjsModel(path.join(project, 'reports', 'model', 'tfjs'));
    const batch = new Float32Array(digits.length * D);
    digits.forEach((digit, n) => batch.set(digit.pixels, n * D));
    const probabilities = predictProbabilities(model, batch, digits.length); // (N, K)
    model.dispose();
    const expected = digits.map((_, n) => argmax(probabilities, n * K, K));
    expect(lines.slice(0, -1).map(Number)).toEqual(expected);
    // The library's closure, as built (every file library.js imports, statically or not, and theirs): none imports TF.js.
    // dist/ also holds a stage's process, which does.
    const closure = (file: string, seen = new Set<string>()): Set<string> => {
      if (seen.has(file)) return seen;
      seen.add(file);
      for (const [, specifier] of readFileSync(file, 'utf8').matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)) {
        closure(path.resolve(path.dirname(file), specifier!), seen);
      }
      return seen;
    };
    const library = [...closure(path.join(ROOT, 'dist', 'pipeline', 'library.js'))].map((file) => path.relative(ROOT, file));
    expect(library).toContain(path.join('dist', 'reference', 'network.js'));
    expect(library).toContain(path.join('dist', 'pipeline', 'predict', 'decode.js'));
    expect(library.filter((file) => readFileSync(path.join(ROOT, file), 'utf8').includes('@tensorflow'))).toEqual([]);
    expect(readFileSync(path.join(ROOT, 'dist', 'pipeline', 'tfjs', 'model.js'), 'utf8')).toContain('@tensorflow'); // the scan can find it
  }, 120_000);

  it('refuses a damaged model folder in one line naming the file', () => {
    const damaged = path.join(project, 'damaged');
    cpSync(path.join(project, 'reports'), damaged, { recursive: true });
    const weights = path.join(damaged, 'model', 'tfjs', 'weights.bin');
    const bytes = readFileSync(weights);
    bytes.fill(7, 0, 4096);
    writeFileSync(weights, bytes);
    const script = readmeSnippet().replaceAll('my-digit.png', digits[0]!.file).replaceAll('reports/model/tfjs', 'damaged/model/tfjs');
    writeFileSync(path.join(project, 'classify-damaged.mjs'), script);
    const ran = spawnSync(process.execPath, ['classify-damaged.mjs'], { cwd: project, encoding: 'utf8' });
    expect(ran.status).not.toBe(0);
    expect(ran.stderr).toMatch(
      /damaged\/model\/tfjs\/weights\.bin: expected SHA-256 [0-9a-f]{12}…, found [0-9a-f]{12}…; the model folder is damaged/,
    );
  }, 60_000);
});

/** The code blocks of index.html's "Use this model" section, as a reader copies them (entities decoded). */
function reportSnippets(indexHtml: string): string[] {
  const section = /<section id="use-this-model"[\s\S]*?<\/section>/.exec(indexHtml);
  if (!section) throw new Error('index.html: expected a "Use this model" section');
  const decode = (text: string) => text.replaceAll('&lt;', '<').replaceAll('&gt;', '>').replaceAll('&quot;', '"').replaceAll('&amp;', '&');
  return [...section[0].matchAll(/<pre><code>([\s\S]*?)<\/code><\/pre>/g)].map((block) => decode(block[1]!));
}

describe("index.html's snippets", () => {
  const snippet = (first: RegExp) => {
    const found = reportSnippets(readFileSync(path.join(work, 'reports', 'index.html'), 'utf8')).find((text) =>
      first.test(text.split('\n')[0]!),
    );
    if (!found) throw new Error(`index.html: expected a snippet whose first line matches ${first}`);
    return found;
  };

  it("the Node snippet runs as written with plain node and gives the library's answer", () => {
    const text = snippet(/Node/);
    writeFileSync(path.join(project, 'report-node.mjs'), text.replaceAll('my-digit.png', digits[0]!.file));
    const ran = spawnSync(process.execPath, ['report-node.mjs'], { cwd: project, encoding: 'utf8' });
    expect(ran.stderr).toBe('');
    expect(ran.status).toBe(0);
    writeFileSync(path.join(project, 'classify.mjs'), readmeSnippet().replaceAll('my-digit.png', digits[0]!.file));
    const readme = spawnSync(process.execPath, ['classify.mjs'], { cwd: project, encoding: 'utf8' });
    expect(printedGuesses(ran.stdout)[0]).toEqual(printedGuesses(readme.stdout)[0]);
  }, 60_000);

  const chromiumPath = findChromium();
  (chromiumPath ? it : it.skip)(
    'the browser snippet runs as written in a page bundled with @tensorflow/tfjs, served over HTTP',
    async () => {
      const text = snippet(/browser/);
      const pixels = Array.from(digits[0]!.pixels);
      const entry = `const input = new Float32Array(${JSON.stringify(pixels)});\n${text}\nwindow.snippetResult = Array.from(probabilities);\n`;
      const bundle = await esbuild.build({
        stdin: { contents: entry, resolveDir: ROOT, loader: 'js' },
        bundle: true,
        write: false,
        format: 'esm',
        target: 'es2022',
        logLevel: 'silent',
      });
      const files: Record<string, Buffer | string> = {
        '/index.html': '<!doctype html><script type="module" src="page.js"></script>',
        '/page.js': Buffer.from(bundle.outputFiles[0]!.contents),
      };
      const reports = path.join(project, 'reports');
      const server: Server = createServer((request, response) => {
        const url = decodeURIComponent(new URL(request.url!, 'http://localhost').pathname);
        const body =
          files[url] ??
          (() => {
            try {
              return readFileSync(path.join(reports, path.normalize(url)));
            } catch {
              return null;
            }
          })();
        response.writeHead(body === null ? 404 : 200, {
          'content-type': url.endsWith('.js') ? 'text/javascript' : url.endsWith('.html') ? 'text/html' : 'application/octet-stream',
        });
        response.end(body ?? 'not found');
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const browser = await chromium.launch({ executablePath: chromiumPath!, args: ['--no-sandbox'] });
      try {
        const page = await browser.newPage();
        const errors: string[] = [];
        page.on('pageerror', (error) => errors.push(error.message));
        const { port } = server.address() as { port: number };
        await page.goto(`http://127.0.0.1:${port}/index.html`);
        await page.waitForFunction(() => (window as unknown as { snippetResult?: number[] }).snippetResult !== undefined, null, {
          timeout: 60_000,
        });
        expect(errors).toEqual([]);
        const probabilities = await page.evaluate(() => (window as unknown as { snippetResult: number[] }).snippetResult);
        const writeModule = [
          "import { loadModel } from 'mnist-pipeline';",
          "const model = await loadModel('reports/model/tfjs');",
          `console.log(JSON.stringify(await model.classify(new Float32Array(${JSON.stringify(pixels)}), 10)));`,
        ];
        writeFileSync(path.join(project, 'all-ten.mjs'), writeModule.join('\n'));
        const expected = JSON.parse(spawnSync(process.execPath, ['all-ten.mjs'], { cwd: project, encoding: 'utf8' }).stdout) as {
          digit: number;
          probability: number;
        }[];
        for (const { digit, probability } of expected) expect(Math.abs(probabilities[digit]! - probability)).toBeLessThan(1e-5);
      } finally {
        await browser.close();
        server.close();
      }
    },
    120_000,
  );
});
