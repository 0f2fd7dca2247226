// What the live panel's HTML (./panel.ts, in Node) and its script (./page.ts, in the browser) agree on.

export const DRAW_SIDE = 280; // the drawing canvas, in canvas pixels (10× MNIST's side)
export const PEN_FRACTION = 0.065; // pen width as a fraction of DRAW_SIDE: a full-height digit gets MNIST-like strokes
export const H1_COLUMNS = 16; // layer 1 drawn 16 wide × 8 high, as in the report's activation figure
export const H2_COLUMNS = 8; // layer 2 drawn 8 × 8
export const ACTIVATION_CELL = 10; // canvas pixels per unit
export const EMPTY_FILL = '#f6f8fa'; // what the network saw, before the first stroke: a light box, a light grid
export const GRID_LINE = '#d0d7de'; // the lines between the units of a layer
export const WAITING = '(draw a digit)'; // the layers' captions before the first stroke, in place of "N of M active"

/** One model offered by the switch. */
export interface PanelModel {
  id: string; // 'tfjs' | 'reference' | 'best': the folder under model/
  label: string; // shown in the switch
  weights: string; // base64 of the deflated float16 byte planes of ./weights.ts, XORed with the first model's after the first
}

/** The JSON inlined in #live-panel-models. */
export interface PanelData {
  models: PanelModel[];
}
