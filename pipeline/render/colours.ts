// The figures' colour maps, in a module of their own with no canvas import, so the
// live panel's browser script draws its activations with the same ramp as the report.

export type Rgb = readonly [number, number, number];

/** ColorBrewer RdBu, reversed: blue for negative, near-white at 0, red for positive. */
const DIVERGING_STOPS: readonly Rgb[] = [
  [5, 48, 97],
  [33, 102, 172],
  [67, 147, 195],
  [146, 197, 222],
  [209, 229, 240],
  [247, 247, 247],
  [253, 219, 199],
  [244, 165, 130],
  [214, 96, 77],
  [178, 24, 43],
  [103, 0, 31],
];

/** ColorBrewer YlOrBr from white: an inactive (zero) ReLU unit is blank. */
const SEQUENTIAL_STOPS: readonly Rgb[] = [
  [255, 255, 255],
  [254, 227, 145],
  [254, 153, 41],
  [204, 76, 2],
  [102, 37, 6],
];

/** Piecewise-linear colour at t ∈ [0, 1] (clamped) along evenly spaced stops. */
function rampColour(stops: readonly Rgb[], t: number): Rgb {
  const position = Math.min(1, Math.max(0, Number.isFinite(t) ? t : 0)) * (stops.length - 1);
  const lower = Math.min(Math.floor(position), stops.length - 2);
  const fraction = position - lower;
  const a = stops[lower]!;
  const b = stops[lower + 1]!;
  return [
    Math.round(a[0] + (b[0] - a[0]) * fraction),
    Math.round(a[1] + (b[1] - a[1]) * fraction),
    Math.round(a[2] + (b[2] - a[2]) * fraction),
  ];
}

/** Maps v ∈ [−limit, limit] to the diverging ramp, 0 in the middle. */
export function divergingColour(value: number, limit: number): Rgb {
  return rampColour(DIVERGING_STOPS, 0.5 + value / (2 * limit));
}

export function sequentialColour(value: number, max: number): Rgb {
  return rampColour(SEQUENTIAL_STOPS, value / max);
}
