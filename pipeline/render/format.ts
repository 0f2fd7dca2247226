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

/** 0.97234 → "97.23% (0.9723)" */
export function percentAndFraction(fraction: number): string {
  return `${percent(fraction)} (${fraction.toFixed(4)})`;
}

/** A signed difference in percentage points: "+0.35 pp", "-1.62 pp", "0.00 pp". */
export function percentagePoints(difference: number): string {
  return signed(difference, 2, ' pp');
}

/** "+0.0012", "-3.4 s", "0.00": a signed difference rounded to `decimals`. */
export function signed(difference: number, decimals: number, unit = ''): string {
  const rounded = Math.abs(difference).toFixed(decimals);
  if (Number(rounded) === 0) return `${(0).toFixed(decimals)}${unit}`;
  return `${difference > 0 ? '+' : '-'}${rounded}${unit}`;
}

/** A fraction as percent rounded to the 2 decimals shown, so differences match the printed numbers. */
export function shownPercent(fraction: number): number {
  return Number((fraction * 100).toFixed(2));
}

/** A wall time: "12 s" under a minute and a half (seconds to `digits` places), else "2.5 min". */
export function duration(seconds: number, digits = 0): string {
  return seconds < 90 ? `${seconds.toFixed(digits)} s` : `${(seconds / 60).toFixed(1)} min`;
}

/** 12.345 → "12.3" */
export function seconds(value: number): string {
  return value.toFixed(1);
}

export function scientific(value: number): string {
  return value.toExponential(2);
}

/** 1 → "1 epoch", 15 → "15 epochs" */
export function counted(count: number, noun: string): string {
  return `${thousands(count)} ${noun}${count === 1 ? '' : 's'}`;
}
