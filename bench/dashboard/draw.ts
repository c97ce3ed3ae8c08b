/**
 * Drawing the Grafana dashboard as one HTML page of SVG panels, placed by each panel's gridPos on
 * Grafana's 24-column grid: timeseries panels as lines with a legend, stat panels as their last
 * values, and a panel whose query the mini-evaluator does not cover as a note saying so.
 */
import type { Dashboard, Panel, TargetResult } from './panels.js';
import { legend } from './promql.js';

const LEGEND_ROW_PX = 16;

/** Grafana's grid: 24 columns, rows of 30 px, 8 px between panels. */
export const GRID = { columns: 24, rowPx: 30, gapPx: 8 } as const;

export interface Box {
  id: number;
  left: number;
  top: number;
  width: number;
  height: number;
}

/** Each panel's box in pixels on a page `width` wide (the page's own padding excluded). */
export function layout(dashboard: Dashboard, width: number): Box[] {
  const col = (width + GRID.gapPx) / GRID.columns;
  return dashboard.panels.map((p) => ({
    id: p.id,
    left: Math.round(p.gridPos.x * col),
    top: p.gridPos.y * (GRID.rowPx + GRID.gapPx),
    width: Math.round(p.gridPos.w * col - GRID.gapPx),
    height: p.gridPos.h * GRID.rowPx + (p.gridPos.h - 1) * GRID.gapPx,
  }));
}

/** The page height the boxes need. */
export function pageHeight(boxes: readonly Box[]): number {
  return Math.max(0, ...boxes.map((b) => b.top + b.height));
}

const PALETTE = [
  '#73bf69',
  '#f2cc0c',
  '#8ab8ff',
  '#ff780a',
  '#f2495c',
  '#5794f2',
  '#b877d9',
  '#37872d',
  '#fade2a',
  '#c4162a',
  '#1f60c4',
  '#8f3bb8',
];

const esc = (s: string): string =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

function trim(n: number): string {
  return Number(n.toPrecision(3)).toString();
}

/** A value in the panel's Grafana unit (the few the dashboard uses). */
export function formatValue(value: number, unit: string | undefined): string {
  if (!Number.isFinite(value)) return String(value);
  switch (unit) {
    case 's':
      if (value === 0) return '0 s';
      return Math.abs(value) < 1 ? `${trim(value * 1000)} ms` : `${trim(value)} s`;
    case 'reqps':
      return `${trim(value)} req/s`;
    case 'ops':
      return `${trim(value)} ops/s`;
    default:
      return trim(value);
  }
}

/** Round numbers for an axis from 0 (or below) to at least `max`. */
function ticks(min: number, max: number): number[] {
  const span = max - min || 1;
  const raw = span / 4;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? raw;
  const out: number[] = [];
  for (let v = Math.floor(min / step) * step; v <= max + step * 1e-9; v += step)
    out.push(Number(v.toFixed(10)));
  if (out.at(-1)! < max) out.push(out.at(-1)! + step);
  return out;
}

/** A query's unit: the panel's, unless an override for its refId (`byFrameRefID`) says another. */
export function unitOf(p: Panel, refId: string): string | undefined {
  for (const o of p.fieldConfig?.overrides ?? []) {
    if (o.matcher.id !== 'byFrameRefID' || o.matcher.options !== refId) continue;
    const unit = o.properties.find((x) => x.id === 'unit')?.value;
    if (typeof unit === 'string') return unit;
  }
  return p.fieldConfig?.defaults.unit;
}

interface Line {
  name: string;
  color: string;
  unit: string | undefined;
  points: { t: number; value: number }[];
}

function linesOf(p: Panel, results: readonly TargetResult[]): Line[] {
  const lines: Line[] = [];
  for (const r of results) {
    if (!('series' in r)) continue;
    for (const s of r.series) {
      const points = s.points.filter((x) => Number.isFinite(x.value));
      if (points.length === 0) continue;
      lines.push({
        name: legend(r.legendFormat, s.labels),
        color: PALETTE[lines.length % PALETTE.length]!,
        unit: unitOf(p, r.refId),
        points,
      });
    }
  }
  return lines;
}

/** A vertical scale for the lines of one unit: round ticks from 0 (or below) past the largest value. */
function scale(lines: readonly Line[], top: number, bottom: number) {
  const values = lines.flatMap((l) => l.points.map((x) => x.value));
  const ys = ticks(Math.min(0, ...values), Math.max(...values));
  const lo = ys[0]!;
  const hi = ys.at(-1)!;
  return { ys, y: (v: number): number => top + (1 - (v - lo) / (hi - lo || 1)) * (bottom - top) };
}

function notes(results: readonly TargetResult[]): string {
  return results
    .filter((r): r is Extract<TargetResult, { unsupported: string }> => 'unsupported' in r)
    .map((r) => `<p class="note">query ${esc(r.refId)} not drawn: ${esc(r.unsupported)}</p>`)
    .join('');
}

function timeseries(
  p: Panel,
  box: Box,
  results: readonly TargetResult[],
  span: { t0: number; t1: number },
): string {
  const lines = linesOf(p, results);
  if (lines.length === 0) return `<div class="nodata">No data</div>${notes(results)}`;
  const legendRows = Math.min(lines.length, 5);
  const w = box.width - 16;
  // Title, then the plot, then the legend: a header row and a row per line shown, 16 px each.
  const h = box.height - 34 - (legendRows + 1) * LEGEND_ROW_PX;
  // Lines in the panel's unit on the left axis; another unit (an override) gets the right one.
  const leftUnit = lines[0]!.unit;
  const rightLines = lines.filter((l) => l.unit !== leftUnit);
  const rightUnit = rightLines[0]?.unit;
  const left = 64;
  const right = rightLines.length > 0 ? w - 60 : w - 6;
  const bottom = h - 18;
  const leftScale = scale(
    lines.filter((l) => l.unit === leftUnit),
    4,
    bottom,
  );
  const rightScale = rightLines.length > 0 ? scale(rightLines, 4, bottom) : undefined;
  const x = (t: number): number =>
    left + ((t - span.t0) / (span.t1 - span.t0 || 1)) * (right - left);
  const grid =
    leftScale.ys
      .map(
        (v) =>
          `<line x1="${left}" x2="${right}" y1="${leftScale.y(v)}" y2="${leftScale.y(v)}" class="grid"/>` +
          `<text x="${left - 6}" y="${leftScale.y(v) + 4}" text-anchor="end">${esc(formatValue(v, leftUnit))}</text>`,
      )
      .join('') +
    (rightScale?.ys
      .map(
        (v) =>
          `<text x="${right + 6}" y="${rightScale.y(v) + 4}">${esc(formatValue(v, rightUnit))}</text>`,
      )
      .join('') ?? '');
  const times = ticks(0, span.t1 - span.t0)
    .filter((s) => s <= span.t1 - span.t0)
    .map((s) => `<text x="${x(span.t0 + s)}" y="${h - 2}" text-anchor="middle">${s} s</text>`)
    .join('');
  const paths = lines
    .map((l) => {
      const y = l.unit === leftUnit || !rightScale ? leftScale.y : rightScale.y;
      const d = l.points.map(
        (pt, i) => `${i ? 'L' : 'M'}${x(pt.t).toFixed(1)},${y(pt.value).toFixed(1)}`,
      );
      const dot =
        l.points.length === 1
          ? `<circle cx="${x(l.points[0]!.t)}" cy="${y(l.points[0]!.value)}" r="2.5" fill="${l.color}"/>`
          : '';
      return `<path d="${d.join('')}" stroke="${l.color}" class="series"/>${dot}`;
    })
    .join('');
  const shown = legendRows === lines.length ? lines : lines.slice(0, legendRows - 1);
  const legendHtml = shown
    .map((l) => {
      const last = l.points.at(-1)!.value;
      const max = Math.max(...l.points.map((pt) => pt.value));
      return (
        `<tr><td><i style="background:${l.color}"></i>${esc(l.name)}</td>` +
        `<td>${esc(formatValue(last, l.unit))}</td><td>${esc(formatValue(max, l.unit))}</td></tr>`
      );
    })
    .join('');
  const more =
    shown.length < lines.length
      ? `<tr><td colspan="3">… and ${lines.length - shown.length} more series</td></tr>`
      : '';
  return (
    `<svg width="${w}" height="${h}">${grid}${times}${paths}</svg>` +
    `<table class="legend"><tr><th></th><th>last</th><th>max</th></tr>${legendHtml}${more}</table>` +
    notes(results)
  );
}

function stat(unit: string | undefined, results: readonly TargetResult[]): string {
  const cells = results.map((r) => {
    if (!('series' in r))
      return `<div class="stat"><b>—</b><span>${esc(r.unsupported)}</span></div>`;
    const last = r.series
      .map((s) => ({ s, p: s.points.filter((p) => Number.isFinite(p.value)).at(-1) }))
      .filter((x) => x.p !== undefined);
    if (last.length === 0)
      return `<div class="stat"><b class="none">No data</b><span>${esc(legend(r.legendFormat, {}))}</span></div>`;
    return last
      .map(
        ({ s, p }) =>
          `<div class="stat"><b>${esc(formatValue(p!.value, unit))}</b><span>${esc(legend(r.legendFormat, s.labels))}</span></div>`,
      )
      .join('');
  });
  return `<div class="stats">${cells.join('')}</div>`;
}

/** One panel's inner HTML. */
export function drawPanel(
  p: Panel,
  box: Box,
  results: readonly TargetResult[],
  span: { t0: number; t1: number },
): string {
  const unit = p.fieldConfig?.defaults.unit;
  const body =
    p.type === 'stat'
      ? stat(unit, results)
      : p.type === 'timeseries'
        ? timeseries(p, box, results, span)
        : `<p class="note">panel type "${esc(p.type)}" is not drawn here</p>`;
  return (
    `<section class="panel" data-panel="${p.id}" style="left:${box.left}px;top:${box.top}px;` +
    `width:${box.width}px;height:${box.height}px"><h2>${esc(p.title)}</h2>${body}</section>`
  );
}

const STYLE = `
body{margin:0;background:#111217;color:#ccccdc;font:12px/1.3 "DejaVu Sans","Liberation Sans",sans-serif}
header{padding:12px 16px 4px}header h1{margin:0;font-size:18px;color:#fff;font-weight:500}
header p{margin:4px 0 0;color:#8e8e9e}
main{position:relative;margin:8px 16px 16px}
.panel{position:absolute;box-sizing:border-box;background:#181b1f;border:1px solid #2a2d35;border-radius:3px;padding:6px 8px;overflow:hidden}
.panel h2{margin:0 0 4px;font-size:13px;font-weight:500;color:#dcdce5}
svg text{fill:#8e8e9e;font-size:10px}.grid{stroke:#2a2d35}.series{fill:none;stroke-width:1.6}
.legend{border-collapse:collapse;width:100%;font-size:11px}.legend tr{height:16px;line-height:14px}.legend th{color:#6e6e7e;font-weight:400;text-align:right}
.legend td,.legend th{padding:0 6px;white-space:nowrap}.legend td+td{text-align:right;width:70px}
.legend i{display:inline-block;width:12px;height:3px;margin:0 6px 3px 0;vertical-align:middle}
.nodata{color:#6e6e7e;text-align:center;padding-top:90px;font-size:14px}
.note{color:#f2cc0c;margin:4px 0}
.stats{display:flex;flex-wrap:wrap;gap:8px;height:calc(100% - 24px)}
.stat{flex:1 1 30%;display:flex;flex-direction:column;justify-content:center;align-items:center;background:#1f2228;border-radius:3px}
.stat b{font-size:40px;font-weight:500;color:#73bf69}.stat b.none{font-size:18px;color:#6e6e7e}.stat span{color:#8e8e9e;text-align:center}
`;

/** The whole page: a header that says how it was made, then every panel at its place. */
export function drawPage(
  dashboard: Dashboard,
  results: ReadonlyMap<number, readonly TargetResult[]>,
  opts: { width: number; caption: string; span: { t0: number; t1: number } },
): string {
  const boxes = layout(dashboard, opts.width);
  const panels = dashboard.panels
    .map((p, i) => drawPanel(p, boxes[i]!, results.get(p.id) ?? [], opts.span))
    .join('');
  return (
    `<!doctype html><html><head><meta charset="utf-8"><title>${esc(dashboard.title)}</title>` +
    `<style>${STYLE}</style></head><body><header><h1>${esc(dashboard.title)}</h1>` +
    `<p>${esc(opts.caption)}</p></header>` +
    `<main style="width:${opts.width}px;height:${pageHeight(boxes)}px">${panels}</main></body></html>`
  );
}
