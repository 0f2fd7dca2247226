// What the live panel's HTML (./panel.ts, in Node) and its script (./page.ts, in the browser) agree on.

export const DRAW_SIDE = 280; // the drawing canvas, in canvas pixels (10× MNIST's side)
export const PEN_FRACTION = 0.065; // pen width as a fraction of DRAW_SIDE: a full-height digit gets MNIST-like strokes
export const H1_COLUMNS = 16; // layer 1 drawn 16 wide × 8 high, as in the report's activation figure
export const H2_COLUMNS = 8; // layer 2 drawn 8 × 8
export const ACTIVATION_CELL = 10; // canvas pixels per unit

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
