// The live panel of index.html: its forward pass against TF.js in Node, then the real page in the
// system Chromium (playwright-core), driven with the mouse as a user would, against `npm run predict`;
// and the whole report on a phone (390 px): nothing wider than the screen, charts that open full size.
// One small pipeline run (2,000 images, one epoch) is built for the whole file.

import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadImage } from 'canvas';
import { chromium, type Browser, type Page } from 'playwright-core';
import type * as tf from '@tensorflow/tfjs';
import { D, H2, K, type Params } from '../reference/shapes.js';
import { defaultDataDir, loadMnist } from '../pipeline/stages/load.js';
import { prepareRgba } from '../pipeline/predict/prepare.js';
import type { FileResult } from '../pipeline/predict/classify.js';
import { createForward } from '../pipeline/render/live-panel/forward.js';
import { bundlePage, livePanelHtml } from '../pipeline/render/live-panel/panel.js';
import { fromFloat16Bits, pageParams, toFloat16Bits } from '../pipeline/render/live-panel/weights.js';
import { selectBackend } from '../pipeline/tfjs/backend.js';
import { loadModel, modelFiles } from '../pipeline/tfjs/model-io.js';
import { modelWithParams, predictProbabilities, readParams } from '../pipeline/tfjs/model.js';
import { publishFolder } from '../pipeline/output/publish.js';
import { renderHtml } from '../pipeline/render/document.js';
import type { RawSplit } from '../pipeline/types.js';
import { IN_CI, findChromium } from './helpers/browser.js';
import { runCli } from './helpers/cli.js';

const FLOAT32_NOISE = 1e-5; // probabilities of one model from two float32 implementations
const PHONE = 390; // CSS px: the width of a common phone held upright
const DESKTOP = 1280;
const LIGHT = 200; // 0–255: a pixel at least this bright in every channel reads as paper, not ink
const DARK = 60; // … and one at most this bright as ink
const SCREENSHOTS = process.env.SCREENSHOT_DIR ?? path.join(os.tmpdir(), 'mnist-live-panel-screenshots');

let work: string;
let out: string; // the small run's report folder
let test: RawSplit;
let spec: Params; // model/tfjs
let reference: Params; // model/reference

async function savedParams(folder: string): Promise<Params> {
  const model = await loadModel(folder);
  try {
    return readParams(model);
  } finally {
    model.dispose();
  }
}

function testImage(index: number): Float32Array {
  return Float32Array.from(test.images.subarray(index * D, (index + 1) * D), (value) => value / 255);
}

function maxDifference(a: ArrayLike<number>, b: ArrayLike<number>): { index: number; a: number; b: number; difference: number } {
  if (a.length !== b.length) throw new Error(`lengths differ: ${a.length} vs ${b.length}`);
  let worst = { index: -1, a: 0, b: 0, difference: 0 };
  for (let i = 0; i < a.length; i++) {
    const difference = Math.abs(a[i]! - b[i]!);
    if (!(difference <= worst.difference)) worst = { index: i, a: a[i]!, b: b[i]!, difference };
  }
  return worst;
}

function expectClose(label: string, a: ArrayLike<number>, b: ArrayLike<number>, tolerance: number): void {
  const worst = maxDifference(a, b);
  if (!(worst.difference <= tolerance)) {
    throw new Error(`${label}: index ${worst.index} differs: ${worst.a} vs ${worst.b} (|Δ| = ${worst.difference}, tolerance ${tolerance})`);
  }
}

beforeAll(async () => {
  await selectBackend('wasm');
  work = mkdtempSync(path.join(os.tmpdir(), 'browser-'));
  out = path.join(work, 'reports');
  const args = ['--train-size', '2000', '--val-size', '500', '--test-size', '500', '--epochs', '1', '--lr', '0.05', '--backend', 'wasm'];
  const run = runCli('pipeline/cli/pipeline.ts', [...args, '--out', out, '--cache-dir', path.join(work, 'cache')]);
  if (run.status !== 0) throw new Error(`the small pipeline run failed (${run.status}):\n${run.stderr}`);
  test = loadMnist(defaultDataDir()).test;
  spec = await savedParams(path.join(out, 'model', 'tfjs'));
  reference = await savedParams(path.join(out, 'model', 'reference'));
}, 300_000);

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('the page script and its weights, in Node', () => {
  it('bundles the shared preparation and the reference forward, and nothing of Node, canvas or TF.js', async () => {
    const { script, sources } = await bundlePage();
    expect(sources).toEqual(
      expect.arrayContaining(['pipeline/predict/prepare.ts', 'pipeline/render/live-panel/forward.ts', 'reference/network.ts']),
    );
    const foreign = sources.filter((source) => /node_modules|^node:|pipeline\/predict\/predict\.ts|pipeline\/tfjs\//.test(source));
    expect(foreign).toEqual([]);
    expect(script.length).toBeLessThan(100_000);
  });

  it('stores weights in half precision, rounded to nearest even', () => {
    const cases: [number, number][] = [
      [1, 0x3c00],
      [-2, 0xc000],
      [65504, 0x7bff],
      [1e6, 0x7c00],
      [2 ** -24, 0x0001],
      [2 ** -26, 0x0000],
      [1 + 2 ** -11, 0x3c00],
      [1 + 3 * 2 ** -11, 0x3c02],
      [0.1, 0x2e66],
    ];
    for (const [value, bits] of cases) expect([value, toFloat16Bits(value).toString(16)]).toEqual([value, bits.toString(16)]);
    for (let bits = 0; bits < 0x7c00; bits += 37) expect(toFloat16Bits(fromFloat16Bits(bits))).toBe(bits); // every finite half survives
    const rounded = pageParams(spec);
    for (const name of ['w1', 'b1', 'w2', 'b2', 'w3', 'b3'] as const) {
      spec[name].forEach((value, i) => {
        const error = Math.abs(rounded[name][i]! - value);
        if (error > Math.max(Math.abs(value) * 2 ** -11, 2 ** -25)) throw new Error(`${name}[${i}]: ${value} became ${rounded[name][i]}`);
      });
    }
  });

  it("the page's forward pass gives TF.js's probabilities, within float32 noise, on 300 test images", () => {
    const count = 300;
    const images = new Float32Array(count * D); // (N, D)
    for (let n = 0; n < count; n++) images.set(testImage(n), n * D);
    for (const [label, params] of [
      ['spec', pageParams(spec)],
      ['reference', pageParams(reference)],
    ] as const) {
      const model: tf.LayersModel = modelWithParams(params);
      const expected = predictProbabilities(model, images, count); // (N, K)
      model.dispose();
      const forward = createForward(params);
      const actual = new Float32Array(count * K); // (N, K)
      for (let n = 0; n < count; n++) actual.set(forward(images.subarray(n * D, (n + 1) * D)).probs, n * K);
      expectClose(`${label} model, probabilities (N, K)`, actual, expected, FLOAT32_NOISE);
    }
  });
});

// ---------------------------------------------------------------------------- the real browser

const chromiumPath = findChromium();
if (!chromiumPath) {
  const message = 'browser tests: no Chromium found (set CHROMIUM_PATH, or apt-get install chromium)';
  if (IN_CI) {
    it('finds a Chromium in CI', () => {
      throw new Error(`${message}; in CI they must run`);
    });
  } else {
    console.warn(`${message}: skipped`);
  }
}
const inBrowser = chromiumPath ? describe : describe.skip;

inBrowser('the live panel in Chromium', () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await chromium.launch({ executablePath: chromiumPath!, args: ['--no-sandbox'] });
  });
  afterAll(async () => {
    await browser?.close();
  });

  /** Opens a page at file://, records every request it makes, and waits until the panel has its weights. */
  async function open(file: string, width = 1280): Promise<{ page: Page; requests: string[]; readyMs: number }> {
    const page = await browser.newPage({ viewport: { width, height: 900 } });
    const requests: string[] = [];
    page.on('request', (request) => requests.push(request.url()));
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(error.message));
    const started = Date.now();
    await page.goto(`file://${file}`);
    await page.waitForSelector('html[data-live-panel="ready"]', { timeout: 20_000 }).catch(() => {
      throw new Error(`the panel never became ready: ${errors.join('; ') || 'no page error'}`);
    });
    return { page, requests, readyMs: Date.now() - started };
  }

  /** Draws MNIST test image `index` with the mouse: one stroke per run of ink along each pixel row. */
  async function drawDigit(page: Page, index: number): Promise<void> {
    await page.click('#clear-canvas');
    const canvas = page.locator('#draw-canvas');
    await canvas.scrollIntoViewIfNeeded();
    const box = (await canvas.boundingBox())!;
    const ink = testImage(index);
    const at = (pixel: number) => (pixel + 0.5) / 28;
    for (let row = 0; row < 28; row++) {
      for (let column = 0; column < 28; column++) {
        if (ink[row * 28 + column]! < 0.5) continue;
        let end = column;
        while (end + 1 < 28 && ink[row * 28 + end + 1]! >= 0.5) end++;
        await page.mouse.move(box.x + at(column) * box.width, box.y + at(row) * box.height);
        await page.mouse.down();
        await page.mouse.move(box.x + at(end) * box.width, box.y + at(row) * box.height, { steps: Math.max(1, end - column) });
        await page.mouse.up();
        column = end;
      }
    }
    await page.evaluate(() => new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)))); // the last update
  }

  /**
   * What the panel shows now: the answer, all ten probabilities, the 28×28 input as shown (0–255 per channel,
   * dark ink on light), the layers' pictures and captions, and the drawing as PNG.
   */
  async function shown(page: Page) {
    return page.evaluate(() => {
      const prediction = document.getElementById('prediction')!;
      const pixels = (id: string) => {
        const canvas = document.getElementById(id) as HTMLCanvasElement;
        return Array.from(canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height).data);
      };
      const input = pixels('input-canvas'); // (28, 28, 4)
      return {
        digit: prediction.dataset.digit!,
        model: prediction.dataset.model!,
        probabilities: JSON.parse(prediction.dataset.probabilities ?? '[]') as number[],
        inputShown: Array.from({ length: 784 }, (_, p) => input[p * 4]!), // the red channel; the input is grey
        inputRgba: input,
        layersRgba: [pixels('hidden1-canvas'), pixels('hidden2-canvas')],
        placeholderShown: document.getElementById('input-placeholder')!.checkVisibility(),
        captions: Array.from(document.querySelectorAll('#live-panel figcaption'), (caption) => caption.textContent!.trim()),
        png: (document.getElementById('draw-canvas') as HTMLCanvasElement).toDataURL('image/png').split(',')[1]!,
      };
    });
  }

  /** Every element whose right edge passes `width`, as "tag#id.class right=… "text…"", after unfolding the folded sections. */
  async function widerThan(page: Page, width: number): Promise<{ scrollWidth: number; offenders: string[] }> {
    return page.evaluate((width) => {
      document.querySelectorAll<HTMLDetailsElement>('main > details').forEach((details) => {
        details.open = true;
      });
      const offenders: string[] = [];
      for (const element of Array.from(document.querySelectorAll('*'))) {
        const right = element.getBoundingClientRect().right;
        if (right <= width + 0.5) continue;
        const name = `${element.tagName.toLowerCase()}${element.id ? `#${element.id}` : ''}${Array.from(element.classList, (name) => `.${name}`).join('')}`;
        offenders.push(`${name} right=${right.toFixed(1)} "${(element.textContent ?? '').trim().slice(0, 40)}"`);
      }
      return { scrollWidth: document.documentElement.scrollWidth, offenders };
    }, width);
  }

  async function redPixels(file: string): Promise<number[]> {
    const { createCanvas } = await import('canvas');
    const image = await loadImage(file);
    const canvas = createCanvas(image.width, image.height);
    canvas.getContext('2d').drawImage(image, 0, 0);
    const data = canvas.getContext('2d').getImageData(0, 0, image.width, image.height).data;
    return Array.from({ length: image.width * image.height }, (_, p) => data[p * 4]!);
  }

  it('test 1: digits drawn with the mouse get the answer, probabilities and 28×28 input of npm run predict on the same drawing', async () => {
    const indices = [0, 1, 2, 3, 4, 7];
    const { page, readyMs } = await open(path.join(out, 'index.html'));
    const drawings = path.join(work, 'drawn');
    mkdirSync(drawings, { recursive: true });
    const seenOnPage: Awaited<ReturnType<typeof shown>>[] = [];
    let firstAnswerMs = 0;
    for (const index of indices) {
      const started = Date.now();
      await drawDigit(page, index);
      const now = await shown(page);
      if (index === indices[0]) firstAnswerMs = Date.now() - started;
      expect(now.digit).toMatch(/^\d$/);
      expect(now.model).toBe('tfjs');
      writeFileSync(path.join(drawings, `digit-${index}.png`), Buffer.from(now.png, 'base64'));
      seenOnPage.push(now);
    }
    await page.close();
    console.log(
      `panel ready ${readyMs} ms after load began; first digit drawn and answered in ${firstAnswerMs} ms (${indices.length} digits)`,
    );

    // predict on the saved model, and on the page's own half-precision weights
    const halfOut = path.join(work, 'half');
    await publishFolder(halfOut, await modelFiles(pageParams(spec), 'model/tfjs'));
    const files = indices.map((index) => path.join(drawings, `digit-${index}.png`));
    const predictJson = (folder: string, seen: string) => {
      const result = runCli('pipeline/cli/predict.ts', ['--out', folder, '--json', '--show-input', seen, ...files]);
      if (result.status !== 0) throw new Error(`npm run predict failed (${result.status}): ${result.stderr}`);
      return (JSON.parse(result.stdout) as { results: FileResult[] }).results;
    };
    const saved = predictJson(out, path.join(work, 'seen'));
    const half = predictJson(halfOut, path.join(work, 'seen-half'));
    let largestGap = 0;
    for (const [i, index] of indices.entries()) {
      const page = seenOnPage[i]!;
      const [fromSaved, fromHalf] = [saved[i]!, half[i]!];
      if (!fromSaved.ok || !fromHalf.ok) throw new Error(`predict could not read the drawing of test image ${index}`);
      expect([index, page.digit]).toEqual([index, String(fromSaved.guesses[0]!.digit)]);
      for (const guess of fromHalf.guesses)
        expectClose(
          `image ${index}, digit ${guess.digit}, page vs predict on the same weights`,
          [page.probabilities[guess.digit]!],
          [guess.probability],
          FLOAT32_NOISE,
        );
      for (const guess of fromSaved.guesses)
        largestGap = Math.max(largestGap, Math.abs(page.probabilities[guess.digit]! - guess.probability));
      const predictInput = await redPixels(fromSaved.inputImage!); // white ink on black, as the network sees it
      const pageInput = page.inputShown.map((level) => 255 - level); // the page shows it inverted: dark ink on light
      expectClose(`image ${index}, the 28×28 input (0–255), page (inverted back) vs --show-input`, pageInput, predictInput, 1);
    }
    // The page's weights are float16 (pipeline/render/live-panel/weights.ts); that moves probabilities by about 1e-3.
    expect(largestGap).toBeLessThan(0.01);
    console.log(`page (float16 weights) vs predict (float32 model): largest probability gap ${largestGap.toExponential(2)}`);
  });

  it('test 2: the page makes no network request, loading, drawing, switching models or opening a chart', async () => {
    const { page, requests } = await open(path.join(out, 'index.html'));
    await drawDigit(page, 0);
    await page.selectOption('#model-select', 'reference');
    await page.click('#clear-canvas');
    await page.click('figure .zoom summary'); // a chart at full size, and back
    await page.click('figure .zoom[open] summary');
    await page.close();
    expect(requests).toEqual([`file://${path.join(out, 'index.html')}`]);
  });

  it('test 3: the switch changes which model answers, and offers the best model only when there is one', async () => {
    // A "best" model whose answer is recognisable: the spec model with its outputs rotated by one digit.
    const rotated: Params = { ...spec, w3: new Float32Array(H2 * K), b3: new Float32Array(K) };
    for (let digit = 0; digit < K; digit++) {
      rotated.b3[(digit + 1) % K] = spec.b3[digit]!;
      for (let unit = 0; unit < H2; unit++) rotated.w3[unit * K + ((digit + 1) % K)] = spec.w3[unit * K + digit]!;
    }
    const withBest = path.join(work, 'with-best.html');
    const panel = await livePanelHtml([
      { id: 'tfjs', params: spec },
      { id: 'reference', params: reference },
      { id: 'best', params: rotated },
    ]);
    writeFileSync(
      withBest,
      `<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>panel</title></head><body><main>${panel}</main></body></html>\n`,
    );

    const optionsOf = (page: Page) =>
      page.locator('#model-select option').evaluateAll((options) => options.map((option) => (option as HTMLOptionElement).value));
    const report = await open(path.join(out, 'index.html'));
    expect(await optionsOf(report.page)).toEqual(['tfjs', 'reference']);
    await report.page.close();

    const { page } = await open(withBest);
    expect(await optionsOf(page)).toEqual(['tfjs', 'reference', 'best']);
    await drawDigit(page, 1);
    const png = path.join(work, 'switch.png');
    const bySpec = await shown(page);
    writeFileSync(png, Buffer.from(bySpec.png, 'base64'));
    const { createCanvas } = await import('canvas');
    const image = await loadImage(png);
    const canvas = createCanvas(image.width, image.height);
    canvas.getContext('2d').drawImage(image, 0, 0);
    const input = prepareRgba(canvas.getContext('2d').getImageData(0, 0, image.width, image.height).data, image.width, image.height).input;

    for (const [id, params] of [
      ['tfjs', spec],
      ['reference', reference],
      ['best', rotated],
    ] as const) {
      await page.selectOption('#model-select', id);
      const now = await shown(page);
      expect(now.model).toBe(id);
      const expected = createForward(pageParams(params))(input).probs;
      expectClose(`${id}: the page's probabilities vs the same model in Node`, now.probabilities, expected, FLOAT32_NOISE);
    }
    const byBest = await shown(page);
    expect(byBest.digit).toBe(String((Number(bySpec.digit) + 1) % K));
    await page.close();
  });

  it('test 4: screenshots at 1280 px and 390 px; the panel fits a phone without sideways scrolling', async () => {
    mkdirSync(SCREENSHOTS, { recursive: true });
    for (const width of [DESKTOP, PHONE]) {
      const { page } = await open(path.join(out, 'index.html'), width);
      const panel = page.locator('#live-panel');
      await panel.screenshot({ path: path.join(SCREENSHOTS, `live-panel-${width}-before-drawing.png`) });
      await drawDigit(page, 0);
      await panel.screenshot({ path: path.join(SCREENSHOTS, `live-panel-${width}.png`) });
      await page.screenshot({ path: path.join(SCREENSHOTS, `viewport-${width}.png`) });
      const layout = await page.evaluate(() => {
        const rect = (id: string) => document.getElementById(id)!.getBoundingClientRect();
        return {
          canvas: rect('draw-canvas'),
          prediction: rect('prediction'),
          panelScroll: document.getElementById('live-panel')!.scrollWidth,
          panelWidth: document.getElementById('live-panel')!.clientWidth,
        };
      });
      expect(layout.canvas.right).toBeLessThanOrEqual(width);
      expect(layout.canvas.width).toBeGreaterThanOrEqual(Math.min(280, width - 80));
      expect(layout.panelScroll).toBeLessThanOrEqual(layout.panelWidth);
      expect(layout.prediction.right).toBeLessThanOrEqual(width);
      await widerThan(page, width); // unfolds the folded sections for the whole-page picture
      await page.screenshot({ path: path.join(SCREENSHOTS, `report-${width}.png`), fullPage: true });
      await page.close();
    }
    console.log(`screenshots in ${SCREENSHOTS}`);
  });

  it('test 5: at 390 px and 1280 px no element of the report, folded sections unfolded, is wider than the screen', async () => {
    for (const width of [PHONE, DESKTOP]) {
      const { page } = await open(path.join(out, 'index.html'), width);
      await drawDigit(page, 0); // the answer's bars and counts are in place
      const { scrollWidth, offenders } = await widerThan(page, width);
      await page.close();
      expect([width, offenders]).toEqual([width, []]);
      expect([width, scrollWidth]).toEqual([width, width]);
    }
  });

  it("test 6: on a phone a full-size run's confusion counts (4-digit cells) keep their columns, in readable type, within the screen", async () => {
    // The small run counts 500 test images; MNIST's full test set puts over 1,000 images in a diagonal cell.
    const matrix = Array.from({ length: K }, (_, t) =>
      Array.from({ length: K }, (_, p) => (t === p ? 1000 + 13 * t : (7 * t + 3 * p) % 23)),
    );
    const file = path.join(work, 'full-size-matrix.html');
    const html = renderHtml(
      [
        {
          id: 'confusion-counts',
          blocks: [
            { kind: 'heading', level: 2, text: 'Confusion matrix counts (TF.js)' },
            {
              kind: 'table',
              header: ['true ↓ predicted →', ...matrix.map((_, digit) => `${digit}`), 'total'],
              numeric: [false, ...matrix.map(() => true), true],
              rows: matrix.map((row, digit) => [`${digit}`, ...row.map((count) => `${count}`), `${row.reduce((a, b) => a + b, 0)}`]),
            },
          ],
        },
      ],
      'full-size confusion counts',
    );
    writeFileSync(file, html);
    const page = await browser.newPage({ viewport: { width: PHONE, height: 900 } });
    await page.goto(`file://${file}`);
    const { scrollWidth, offenders } = await widerThan(page, PHONE);
    const cells = await page.locator('td').evaluateAll((tds) =>
      tds.map((td) => ({
        text: td.textContent!,
        fits: td.scrollWidth <= td.clientWidth,
        fontPx: Number.parseFloat(getComputedStyle(td).fontSize),
      })),
    );
    await page.screenshot({ path: path.join(SCREENSHOTS, `full-size-matrix-${PHONE}.png`), fullPage: true });
    await page.close();
    expect(offenders).toEqual([]);
    expect(scrollWidth).toBe(PHONE);
    expect(cells.filter((cell) => !cell.fits).map((cell) => cell.text)).toEqual([]); // no number clipped in its cell
    expect(Math.min(...cells.map((cell) => cell.fontPx))).toBeGreaterThanOrEqual(12);
  });

  it('test 7: a tap on a chart opens it at its full size over the page, and a second tap closes it', async () => {
    const { page, requests } = await open(path.join(out, 'index.html'), PHONE);
    const zoom = page.locator('details.zoom', { has: page.locator('img[alt^="Confusion matrix"]') });
    const image = zoom.locator('img');
    const inline = (await image.boundingBox())!;
    const fullWidth = Number(await image.getAttribute('width')); // the PNG's intended size: half its pixels
    expect(inline.width).toBeLessThan(fullWidth); // shrunk to the phone
    await zoom.locator('summary').click();
    expect(await zoom.evaluate((details) => (details as HTMLDetailsElement).open)).toBe(true);
    const opened = await page.evaluate(() => {
      const summary = document.querySelector('details.zoom[open] > summary')!.getBoundingClientRect();
      return {
        summary: { width: summary.width, height: summary.height },
        imageWidth: document.querySelector('details.zoom[open] img')!.clientWidth,
      };
    });
    expect(opened.summary).toEqual({ width: PHONE, height: 900 }); // over the whole screen …
    expect(opened.imageWidth).toBe(fullWidth); // … at full size, to scroll around
    await page.screenshot({ path: path.join(SCREENSHOTS, `chart-opened-${PHONE}.png`) });
    await zoom.locator('summary').click();
    expect(await zoom.evaluate((details) => (details as HTMLDetailsElement).open)).toBe(false);
    await page.close();
    expect(requests).toEqual([`file://${path.join(out, 'index.html')}`]);
  });

  it('test 8: before the first stroke the panel shows light empty boxes saying "draw a digit"; drawn, the input is dark ink on light', async () => {
    const { page } = await open(path.join(out, 'index.html'), PHONE);
    const light = (rgba: number[]) => rgba.every((value, i) => i % 4 === 3 || value >= LIGHT);
    const expectWaiting = async (when: string) => {
      const now = await shown(page);
      expect([when, light(now.inputRgba), now.placeholderShown]).toEqual([when, true, true]);
      expect([when, now.layersRgba.map(light)]).toEqual([when, [true, true]]);
      expect([when, now.captions.filter((caption) => caption.endsWith(':'))]).toEqual([when, []]);
      expect([when, now.captions.filter((caption) => caption.endsWith('(draw a digit)')).length]).toEqual([when, 2]);
    };
    await expectWaiting('before the first stroke');

    await drawDigit(page, 0);
    const drawn = await shown(page);
    const corners = [0, 27, 28 * 27, 28 * 28 - 1].map((p) => drawn.inputShown[p]!);
    expect(Math.min(...corners)).toBeGreaterThanOrEqual(LIGHT); // light paper …
    expect(drawn.inputShown.filter((level) => level >= LIGHT).length).toBeGreaterThan(784 / 2); // … most of the picture …
    expect(Math.min(...drawn.inputShown)).toBeLessThanOrEqual(DARK); // … and dark ink
    expect(drawn.placeholderShown).toBe(false);
    expect(drawn.captions.slice(1)).toEqual([
      expect.stringMatching(/^Layer 1, 128 ReLU units: \d+ of 128 active$/),
      expect.stringMatching(/^Layer 2, 64 ReLU units: \d+ of 64 active$/),
    ]);

    await page.click('#clear-canvas');
    await expectWaiting('after Clear');
    await page.close();
  });

  it('a finger draws on a phone (touch pointer events), and the page does not scroll under it', async () => {
    const context = await browser.newContext({ viewport: { width: 390, height: 800 }, hasTouch: true, isMobile: true });
    const page = await context.newPage();
    await page.goto(`file://${path.join(out, 'index.html')}`);
    await page.waitForSelector('html[data-live-panel="ready"]');
    const canvas = page.locator('#draw-canvas');
    await canvas.scrollIntoViewIfNeeded();
    const box = (await canvas.boundingBox())!;
    const scrollBefore = await page.evaluate(() => scrollY);
    const touch = await context.newCDPSession(page);
    const at = (x: number, y: number) => [{ x: box.x + x * box.width, y: box.y + y * box.height }];
    await touch.send('Input.dispatchTouchEvent', { type: 'touchStart', touchPoints: at(0.5, 0.15) });
    for (let step = 1; step <= 12; step++)
      await touch.send('Input.dispatchTouchEvent', { type: 'touchMove', touchPoints: at(0.5, 0.15 + (0.7 * step) / 12) });
    await touch.send('Input.dispatchTouchEvent', { type: 'touchEnd', touchPoints: [] });
    await page.evaluate(() => new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve))));
    expect(await page.locator('#prediction').getAttribute('data-digit')).toMatch(/^\d$/);
    expect(await page.evaluate(() => scrollY)).toBe(scrollBefore);
    await context.close();
  });
});

// The file's own size budget: the three models fit in the page.
describe('size', () => {
  it('index.html of the small run stays under 3 MB with room for a third model', async () => {
    const size = readFileSync(path.join(out, 'index.html')).length;
    const third = (await livePanelHtml([{ id: 'best', params: spec }])).length;
    console.log(`index.html: ${(size / 1e6).toFixed(2)} MB with two models; a third adds about ${(third / 1e6).toFixed(2)} MB`);
    expect(size + third).toBeLessThan(3e6);
  });
});
