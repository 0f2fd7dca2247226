// How the reports write numbers and names: one definition each, shared by
// report.md / index.html, the charts and the experiments' comparison.

/** The Vega-Lite schema every chart spec declares. */
export const SPEC_SCHEMA = 'https://vega.github.io/schema/vega-lite/v6.json';

const IMPLEMENTATION_LABELS: Record<string, string> = { tfjs: 'TF.js', reference: 'TypeScript reference' };

/** "tfjs" → "TF.js", "reference" → "TypeScript reference". */
export function implementationLabel(implementation: string): string {
  return IMPLEMENTATION_LABELS[implementation] ?? implementation;
}

/** 0.97234 → "97.23%" (digits after the point: 2 unless given). */
export function percent(fraction: number, digits = 2): string {
  return `${(fraction * 100).toFixed(digits)}%`;
}

/** 27321.4 → "27,321" */
export function thousands(value: number): string {
  return Math.round(value)
    .toString()
    .replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}
