// The live draw-a-digit panel of index.html, as one HTML block: markup, style, the models' weights
// inline, and ./page.ts bundled by esbuild. Self-contained: it works from file://, with no request.
//
//   livePanelHtml(models) ─► <section id="live-panel"> (draw, answer, what the network saw)
//                          ─► <section id="use-this-model"> (npm run predict, tf.loadLayersModel)
//                          ─► <script type="application/json"> weights ─► <script> page bundle

import { deflateRawSync } from 'node:zlib';
import path from 'node:path';
import * as esbuild from 'esbuild';
import { H1, H2, type Params } from '../../../reference/shapes.js';
import { PROJECT_ROOT } from '../../config.js';
import type { ModelName } from '../../predict/model-names.js';
import { FIELD_SIDE } from '../../predict/prepare.js';
import { NARROW_SCREEN, escapeHtml } from '../document.js';
import { useThisModel } from '../use-this-model.js';
import { ACTIVATION_CELL, DRAW_SIDE, EMPTY_FILL, H1_COLUMNS, H2_COLUMNS, WAITING, type PanelData } from './layout.js';
import { packParams, xorBytes } from './weights.js';

export type LiveModelId = ModelName; // a model the panel offers is one predict can load

/** A trained model to offer in the panel's switch; its folder is model/<id>. */
export interface LiveModel {
  id: LiveModelId;
  params: Params;
}

const MODEL_LABELS: Record<LiveModelId, string> = {
  tfjs: 'Spec model (TF.js)',
  reference: 'TypeScript reference',
  best: 'Best of the experiments',
};

// The source, wherever this module runs from (dist/ holds no page.ts).
const PAGE_SOURCE = path.join(PROJECT_ROOT, 'pipeline', 'render', 'live-panel', 'page.ts');

/** ./page.ts and what it imports, as one browser script, with the source files it was built from. */
export async function bundlePage(): Promise<{ script: string; sources: string[] }> {
  const result = await esbuild.build({
    entryPoints: [PAGE_SOURCE],
    bundle: true,
    write: false,
    format: 'iife',
    platform: 'browser',
    target: 'es2020',
    minify: true,
    legalComments: 'none',
    logLevel: 'silent',
    metafile: true,
  });
  const script = result.outputFiles[0]!.text;
  if (/<\/script/i.test(script))
    throw new Error(`live panel: the bundle of ${PAGE_SOURCE} contains "</script", which would end the page's script early`);
  return { script, sources: Object.keys(result.metafile.inputs) };
}

const PANEL_STYLE = `
  .live-panel { margin: 28px 0; }
  .lp-grid { display: grid; grid-template-columns: auto minmax(180px, 1fr) minmax(220px, 1fr); gap: 20px 28px; align-items: start; }
  .lp-draw canvas { box-sizing: border-box; width: ${DRAW_SIDE}px; max-width: 100%; aspect-ratio: 1; border: 2px solid #57606a; border-radius: 6px; touch-action: none; cursor: crosshair; background: white; display: block; }
  .lp-controls { display: flex; gap: 12px; align-items: center; flex-wrap: wrap; margin-top: 10px; font-size: 14px; }
  .lp-controls button, .lp-controls select { font: inherit; padding: 5px 12px; border: 1px solid #8c959f; border-radius: 6px; background: #f6f8fa; }
  .lp-answer .lp-label, .lp-seen figcaption { color: #57606a; font-size: 13.5px; }
  #prediction { font-size: 64px; font-weight: bold; line-height: 1.1; min-height: 72px; }
  .lp-bar { display: grid; grid-template-columns: 1.5em 1fr 4.2em; gap: 8px; align-items: center; margin: 4px 0; font-variant-numeric: tabular-nums; }
  .lp-bar-digit { font-weight: bold; }
  .lp-bar-track { background: #eaeef2; height: 14px; border-radius: 3px; overflow: hidden; }
  .lp-bar-fill { display: block; height: 100%; background: #cc4c02; }
  .lp-bar-value { text-align: right; font-size: 13.5px; }
  #live-status { color: #57606a; font-size: 13px; margin-top: 8px; }
  .lp-seen { display: flex; flex-wrap: wrap; gap: 14px 20px; }
  .lp-seen figure { margin: 0; }
  .lp-seen canvas { image-rendering: pixelated; border: 1px solid #d0d7de; display: block; background: ${EMPTY_FILL}; }
  .lp-input { position: relative; }
  #input-canvas { width: ${FIELD_SIDE * 4}px; height: ${FIELD_SIDE * 4}px; }
  #input-placeholder { position: absolute; top: 0; left: 0; width: ${FIELD_SIDE * 4}px; height: ${FIELD_SIDE * 4}px; display: grid; place-items: center; color: #8c959f; font-size: 13px; pointer-events: none; }
  #input-placeholder[hidden] { display: none; }
  @media ${NARROW_SCREEN} { .lp-grid { grid-template-columns: 1fr; } .lp-draw canvas { width: 100%; } }
  .use-this-model pre { background: #f6f8fa; border: 1px solid #d0d7de; border-radius: 6px; padding: 10px 12px; overflow-x: auto; font-size: 13px; }
  .use-this-model pre code { background: none; padding: 0; }
`;

/**
 * The live panel for `models` (the spec model first), as an HTML block to place
 * inside index.html's <main>. Test contract: #draw-canvas, #clear-canvas, and
 * #prediction with the top digit in data-digit (and the model in data-model).
 */
export async function livePanelHtml(models: readonly LiveModel[]): Promise<string> {
  if (models.length === 0) throw new Error('livePanelHtml: expected at least one model, found none');
  const first = packParams(models[0]!.params);
  const data: PanelData = {
    models: models.map((model, index) => ({
      id: model.id,
      label: MODEL_LABELS[model.id],
      weights: deflateRawSync(index === 0 ? first : xorBytes(packParams(model.params), first), { level: 9 }).toString('base64'),
    })),
  };
  const options = models.map((model) => `<option value="${model.id}">${escapeHtml(MODEL_LABELS[model.id])}</option>`).join('');
  const h1Rows = H1 / H1_COLUMNS;
  const h2Rows = H2 / H2_COLUMNS;
  return [
    `<style>${PANEL_STYLE}</style>`,
    '<section id="live-panel" class="live-panel">',
    '<h2>Draw a digit</h2>',
    '<p>Draw with the mouse, a finger or a pen. The network answers as you draw, after the same preparation as <code>npm run predict</code> (crop to the ink, fit 20×20, centre by mass).</p>',
    '<div class="lp-grid">',
    '  <div class="lp-draw">',
    `    <canvas id="draw-canvas" width="${DRAW_SIDE}" height="${DRAW_SIDE}" aria-label="Drawing area: draw one digit"></canvas>`,
    '    <div class="lp-controls">',
    '      <button id="clear-canvas" type="button">Clear</button>',
    `      <label>Model <select id="model-select">${options}</select></label>`,
    '    </div>',
    '  </div>',
    '  <div class="lp-answer">',
    '    <div class="lp-label">The network reads</div>',
    '    <div id="prediction" data-digit="" aria-live="polite">–</div>',
    '    <div id="probability-bars"></div>',
    '    <div id="live-status"></div>',
    '  </div>',
    '  <div class="lp-seen">',
    // Until the first stroke: a light input box saying so, and "(draw a digit)" after each layer's name.
    `    <figure class="lp-input"><canvas id="input-canvas" width="${FIELD_SIDE}" height="${FIELD_SIDE}"></canvas><span id="input-placeholder">draw a digit</span><figcaption>The 28×28 input it saw</figcaption></figure>`,
    `    <figure><canvas id="hidden1-canvas" width="${H1_COLUMNS * ACTIVATION_CELL}" height="${h1Rows * ACTIVATION_CELL}"></canvas><figcaption>Layer 1, ${H1} ReLU units<span id="hidden1-count"> ${WAITING}</span></figcaption></figure>`,
    `    <figure><canvas id="hidden2-canvas" width="${H2_COLUMNS * ACTIVATION_CELL}" height="${h2Rows * ACTIVATION_CELL}"></canvas><figcaption>Layer 2, ${H2} ReLU units<span id="hidden2-count"> ${WAITING}</span></figcaption></figure>`,
    '  </div>',
    '</div>',
    '<p class="lp-label">The input is shown dark on light, as the other figures; the network receives it inverted, white ink on black, as in MNIST. Activations are coloured from white (silent) to dark brown (the layer\'s largest), as in the activation figure. The page holds the weights in half precision to stay small.</p>',
    '</section>',
    useThisModel(models.map((model) => model.id)),
    `<script type="application/json" id="live-panel-models">${JSON.stringify(data)}</script>`,
    `<script>${(await bundlePage()).script}</script>`,
  ].join('\n');
}
