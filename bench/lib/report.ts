/**
 * Result rows and tables: every figure is printed beside the floor measured in the same run, with
 * the ratio, the target and PASS/MISS. A row without a target is INFO (context, not a goal).
 */
import { fmtRatio } from './stats.js';

export type Status = 'PASS' | 'MISS' | 'INFO';

export interface Check {
  /** What the target says, e.g. `≤ 5 ms` or `≤ 3× floor`. */
  readonly label: string;
  readonly ok: boolean;
}

export interface Row {
  readonly metric: string;
  readonly value: string;
  readonly floor: string;
  readonly ratio: string;
  readonly target: string;
  readonly status: Status;
  /** The numbers behind the strings, for bench/results/latest.json. */
  readonly raw: { value: number; floor?: number; ratio?: number; unit: string };
}

export interface SectionResult {
  readonly name: string;
  readonly title: string;
  readonly rows: Row[];
  /** Lines printed under the table: method, caveats, what a MISS is made of. */
  readonly notes: string[];
  /** Anything else worth keeping in the JSON (distributions, counts, settings). */
  readonly data: Record<string, unknown>;
  readonly skipped?: string;
  readonly seconds: number;
}

export interface RowSpec {
  metric: string;
  value: number;
  unit: string;
  fmt: (v: number) => string;
  floor?: number;
  /** Default value / floor. */
  ratio?: number;
  checks?: Check[];
}

export function row(s: RowSpec): Row {
  const ratio = s.ratio ?? (s.floor !== undefined && s.floor !== 0 ? s.value / s.floor : undefined);
  const checks = s.checks ?? [];
  const status: Status = checks.length === 0 ? 'INFO' : checks.every((c) => c.ok) ? 'PASS' : 'MISS';
  const target =
    checks.length === 0 ? '—' : checks.map((c) => `${c.label} ${c.ok ? '✓' : '✗'}`).join('; ');
  return {
    metric: s.metric,
    value: s.fmt(s.value),
    floor: s.floor === undefined ? '—' : s.fmt(s.floor),
    ratio: ratio === undefined ? '—' : fmtRatio(ratio),
    target,
    status,
    raw: {
      value: s.value,
      ...(s.floor !== undefined ? { floor: s.floor } : {}),
      ...(ratio !== undefined ? { ratio } : {}),
      unit: s.unit,
    },
  };
}

/** `value ≤ limit`, labelled. */
export const atMost = (value: number, limit: number, label: string): Check => ({
  label,
  ok: Number.isFinite(value) && value <= limit,
});
/** `value ≥ limit`, labelled. */
export const atLeast = (value: number, limit: number, label: string): Check => ({
  label,
  ok: Number.isFinite(value) && value >= limit,
});

export function renderTable(rows: readonly Row[]): string {
  const head = ['metric', 'value', 'floor', 'ratio', 'target', 'result'];
  const body = rows.map((r) => [r.metric, r.value, r.floor, r.ratio, r.target, r.status]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [
    line(head),
    `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`,
    ...body.map(line),
  ].join('\n');
}

export function renderSection(s: SectionResult): string {
  const out = [`\n== ${s.name}: ${s.title} (${s.seconds.toFixed(1)} s)`];
  if (s.skipped) {
    out.push(`SKIPPED: ${s.skipped}`);
    return out.join('\n');
  }
  out.push(renderTable(s.rows));
  for (const n of s.notes) out.push(`  · ${n}`);
  return out.join('\n');
}
