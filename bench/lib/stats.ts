/**
 * Small statistics for the benches: nearest-rank percentiles (with 20 samples p99 is the maximum,
 * and the tables say so), medians, and unit formatting.
 */

/** Nearest-rank percentile of `xs` (q in [0, 1]); NaN for no samples. */
export function percentile(xs: readonly number[], q: number): number {
  if (xs.length === 0) return Number.NaN;
  const sorted = [...xs].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil(q * sorted.length)));
  return sorted[rank - 1]!;
}

export const p50 = (xs: readonly number[]) => percentile(xs, 0.5);
export const p99 = (xs: readonly number[]) => percentile(xs, 0.99);
export const median = p50;

export function mean(xs: readonly number[]): number {
  return xs.length === 0 ? Number.NaN : xs.reduce((a, b) => a + b, 0) / xs.length;
}

export interface Summary {
  n: number;
  p50: number;
  p99: number;
  min: number;
  max: number;
  mean: number;
}

/** Min and max without spreading (a spread of 200k arguments overflows the stack). */
export function minOf(xs: readonly number[]): number {
  let m = Number.POSITIVE_INFINITY;
  for (const x of xs) if (x < m) m = x;
  return xs.length ? m : Number.NaN;
}

export function maxOf(xs: readonly number[]): number {
  let m = Number.NEGATIVE_INFINITY;
  for (const x of xs) if (x > m) m = x;
  return xs.length ? m : Number.NaN;
}

export function summarize(xs: readonly number[]): Summary {
  return {
    n: xs.length,
    p50: p50(xs),
    p99: p99(xs),
    min: minOf(xs),
    max: maxOf(xs),
    mean: mean(xs),
  };
}

/** Milliseconds with a precision that fits the size. */
export function fmtMs(ms: number): string {
  if (!Number.isFinite(ms)) return 'n/a';
  if (Math.abs(ms) < 0.01) return `${(ms * 1000).toFixed(2)} µs`;
  if (Math.abs(ms) < 1) return `${(ms * 1000).toFixed(0)} µs`;
  if (Math.abs(ms) < 10) return `${ms.toFixed(2)} ms`;
  if (Math.abs(ms) < 1000) return `${ms.toFixed(1)} ms`;
  return `${(ms / 1000).toFixed(2)} s`;
}

export function fmtBytes(b: number): string {
  if (!Number.isFinite(b)) return 'n/a';
  if (Math.abs(b) < 1024) return `${b.toFixed(0)} B`;
  if (Math.abs(b) < 1024 * 1024) return `${(b / 1024).toFixed(2)} KB`;
  return `${(b / 1024 / 1024).toFixed(1)} MB`;
}

export function fmtRate(perS: number, unit: string): string {
  if (!Number.isFinite(perS)) return 'n/a';
  if (perS >= 10_000) return `${Math.round(perS).toLocaleString('en-US')} ${unit}/s`;
  return `${perS.toFixed(perS >= 100 ? 0 : 1)} ${unit}/s`;
}

export function fmtRatio(r: number): string {
  return Number.isFinite(r) ? `${r.toFixed(2)}×` : 'n/a';
}

/** Run the garbage collector (the suite runs with --expose-gc) a few times so heap figures settle. */
export async function settleHeap(): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('run with node --expose-gc (npm run bench does)');
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((r) => setImmediate(r));
  }
}

export const hasGc = () => typeof (globalThis as { gc?: unknown }).gc === 'function';
