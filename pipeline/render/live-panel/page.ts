/// <reference lib="dom" />
// The live panel's script, bundled by esbuild into index.html (see ./panel.ts).
//
//   pointer strokes on #draw-canvas ─► RGBA ─► prepareRgba (the same code as npm run predict)
//     ─► the chosen model's forward pass (./forward.ts) ─► top digits, the 28×28 input, both hidden layers
//
// Before the first stroke (and after Clear) the input and the layers show light empty boxes, captioned WAITING.
//
// The weights come from the JSON in #live-panel-models, inline, so the page works from file://.
// D = 784, H1 = 128, H2 = 64, K = 10.

import { H1, H2 } from '../../../reference/shapes.js';
import { FIELD_SIDE, PredictError, TOP_K, prepareRgba, topGuesses } from '../../predict/prepare.js';
import { sequentialColour } from '../colours.js';
import { percent } from '../format.js';
import { createForward, type Activations } from './forward.js';
import { EMPTY_FILL, GRID_LINE, H1_COLUMNS, H2_COLUMNS, PEN_FRACTION, WAITING, type PanelData } from './layout.js';
import { unpackParams, xorBytes } from './weights.js';

/** base64 → inflate → float16 byte planes (see ./weights.ts). Local: no request leaves the page. */
async function inflatePlanes(base64: string): Promise<Uint8Array> {
  const deflated = Uint8Array.from(atob(base64), (char) => char.charCodeAt(0));
  const inflated = new Response(new Blob([deflated]).stream().pipeThrough(new DecompressionStream('deflate-raw')));
  return new Uint8Array(await inflated.arrayBuffer());
}

function element<T extends HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (!found) throw new Error(`live panel: no element #${id}`);
  return found as T;
}

/** A layer's activations as a grid of cells, `columns` wide, coloured against the layer's own maximum; null = an empty grid. */
function drawActivations(canvas: HTMLCanvasElement, values: Float32Array | null, units: number, columns: number): void {
  const context = canvas.getContext('2d')!;
  const cell = canvas.width / columns;
  const max = values ? values.reduce((a, b) => Math.max(a, b), 0) : 0;
  context.fillStyle = GRID_LINE;
  context.fillRect(0, 0, canvas.width, canvas.height);
  for (let unit = 0; unit < units; unit++) {
    if (values) {
      const [r, g, b] = sequentialColour(max > 0 ? values[unit]! : 0, max > 0 ? max : 1); // the report's activation ramp
      context.fillStyle = `rgb(${r},${g},${b})`;
    } else {
      context.fillStyle = EMPTY_FILL;
    }
    context.fillRect((unit % columns) * cell + 1, Math.floor(unit / columns) * cell + 1, cell - 1, cell - 1);
  }
}

/** The network's input (D, 0–1, white ink on black) as opaque RGBA (FIELD_SIDE, FIELD_SIDE, 4), inverted: dark ink on white, as the other figures. */
function inkOnPaper(input: Float32Array): Uint8ClampedArray {
  const rgba = new Uint8ClampedArray(FIELD_SIDE * FIELD_SIDE * 4);
  for (let p = 0; p < FIELD_SIDE * FIELD_SIDE; p++) {
    const level = 255 - Math.round(input[p]! * 255);
    rgba.set([level, level, level, 255], p * 4);
  }
  return rgba;
}

/** Each model's forward pass, by id, from the page's inline weights. */
async function loadForwards(data: PanelData): Promise<Map<string, ReturnType<typeof createForward>>> {
  const forwards = new Map<string, ReturnType<typeof createForward>>();
  let first: Uint8Array | null = null;
  for (const model of data.models) {
    const planes = await inflatePlanes(model.weights);
    first ??= planes; // the models after the first are stored XORed with it
    forwards.set(model.id, createForward(unpackParams(planes === first ? planes : xorBytes(planes, first))));
  }
  return forwards;
}

/** Mouse, finger or pen strokes on `drawCanvas`, in black, round; `changed` after each segment. */
function attachPen(drawCanvas: HTMLCanvasElement, draw: CanvasRenderingContext2D, changed: () => void): void {
  let last: { x: number; y: number } | null = null;
  const point = (event: PointerEvent) => {
    const rect = drawCanvas.getBoundingClientRect();
    return {
      x: ((event.clientX - rect.left) * drawCanvas.width) / rect.width,
      y: ((event.clientY - rect.top) * drawCanvas.height) / rect.height,
    };
  };
  const stroke = (to: { x: number; y: number }) => {
    draw.strokeStyle = '#000000';
    draw.lineCap = 'round';
    draw.lineJoin = 'round';
    draw.lineWidth = PEN_FRACTION * drawCanvas.width;
    draw.beginPath();
    draw.moveTo(last!.x, last!.y);
    draw.lineTo(to.x, to.y);
    draw.stroke();
    last = to;
    changed();
  };
  drawCanvas.addEventListener('pointerdown', (event) => {
    event.preventDefault();
    drawCanvas.setPointerCapture(event.pointerId);
    last = point(event);
    stroke(last); // a tap leaves a dot
  });
  drawCanvas.addEventListener('pointermove', (event) => {
    if (last === null) return;
    for (const coalesced of event.getCoalescedEvents?.() ?? [event]) stroke(point(coalesced));
  });
  const lift = () => {
    last = null;
  };
  drawCanvas.addEventListener('pointerup', lift);
  drawCanvas.addEventListener('pointercancel', lift);
}

async function start(): Promise<void> {
  const forwards = await loadForwards(JSON.parse(element('live-panel-models').textContent!) as PanelData);
  const drawCanvas = element<HTMLCanvasElement>('draw-canvas');
  const draw = drawCanvas.getContext('2d', { willReadFrequently: true })!;
  const inputCanvas = element<HTMLCanvasElement>('input-canvas');
  const hidden1 = element<HTMLCanvasElement>('hidden1-canvas');
  const hidden2 = element<HTMLCanvasElement>('hidden2-canvas');
  const prediction = element('prediction');
  const bars = element('probability-bars');
  const select = element<HTMLSelectElement>('model-select');
  const status = element('live-status');

  const clear = () => {
    draw.fillStyle = '#ffffff';
    draw.fillRect(0, 0, drawCanvas.width, drawCanvas.height);
    update();
  };

  const inputPlaceholder = element('input-placeholder');
  function show(input: Float32Array | null, activations: Activations | null): void {
    const context = inputCanvas.getContext('2d')!;
    if (input) {
      const pixels = context.createImageData(FIELD_SIDE, FIELD_SIDE);
      pixels.data.set(inkOnPaper(input));
      context.putImageData(pixels, 0, 0);
    } else {
      context.fillStyle = EMPTY_FILL;
      context.fillRect(0, 0, FIELD_SIDE, FIELD_SIDE);
    }
    inputPlaceholder.hidden = input !== null;
    drawActivations(hidden1, activations?.a1 ?? null, H1, H1_COLUMNS);
    drawActivations(hidden2, activations?.a2 ?? null, H2, H2_COLUMNS);
    const active = (values: Float32Array, units: number) => `: ${values.filter((v) => v > 0).length} of ${units} active`;
    element('hidden1-count').textContent = activations ? active(activations.a1, H1) : ` ${WAITING}`;
    element('hidden2-count').textContent = activations ? active(activations.a2, H2) : ` ${WAITING}`;
  }

  function update(): void {
    const model = select.value;
    prediction.dataset.model = model;
    const { data: rgba, width, height } = draw.getImageData(0, 0, drawCanvas.width, drawCanvas.height);
    let prepared: ReturnType<typeof prepareRgba>;
    try {
      prepared = prepareRgba(rgba, width, height);
    } catch (error) {
      if (!(error instanceof PredictError)) throw error;
      prediction.dataset.digit = '';
      prediction.textContent = '–';
      delete prediction.dataset.probabilities;
      bars.replaceChildren();
      status.textContent = 'Draw a digit in the box.';
      show(null, null);
      return;
    }
    const activations = forwards.get(model)!(prepared.input);
    const guesses = topGuesses(activations.probs, TOP_K);
    prediction.dataset.digit = String(guesses[0]!.digit);
    prediction.dataset.probabilities = JSON.stringify(Array.from(activations.probs));
    prediction.textContent = String(guesses[0]!.digit);
    bars.replaceChildren(
      ...guesses.map(({ digit, probability }) => {
        const row = document.createElement('div');
        row.className = 'lp-bar';
        const shown = percent(probability, 1);
        row.innerHTML = `<span class="lp-bar-digit">${digit}</span><span class="lp-bar-track"><span class="lp-bar-fill" style="width:${(probability * 100).toFixed(2)}%"></span></span><span class="lp-bar-value">${shown}</span>`;
        return row;
      }),
    );
    status.textContent = `${select.selectedOptions[0]?.textContent ?? model}${prepared.thickenedBy > 0 ? ' · thin strokes thickened' : ''}`;
    show(prepared.input, activations);
  }

  let pending = false;
  const scheduleUpdate = () => {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      update();
    });
  };

  attachPen(drawCanvas, draw, scheduleUpdate);
  element('clear-canvas').addEventListener('click', clear);
  select.addEventListener('change', update);
  clear();
  document.documentElement.dataset.livePanel = 'ready';
}

start().catch((error: unknown) => {
  // e.g. a browser without DecompressionStream (Safari before 16.4): say so in the panel instead of staying blank
  const status = document.getElementById('live-status');
  if (status) status.textContent = `The live panel could not start in this browser: ${(error as Error).message}`;
  throw error;
});
