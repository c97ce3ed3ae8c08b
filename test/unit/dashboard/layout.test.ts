/**
 * The dashboard renderer against docs/grafana/wheremachines.json: every panel gets a box on the
 * 24-column grid (none overlap, none leave the page), every query is one the mini-evaluator covers,
 * the drawn page holds every panel, and the committed picture exists and stays small.
 */
import { readFileSync, statSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { drawPage, formatValue, layout, pageHeight } from '../../../bench/dashboard/draw.js';
import {
  dashboardSchema,
  evaluatePanels,
  type Dashboard,
} from '../../../bench/dashboard/panels.js';
import { parseExpr, substitute, type Scrape } from '../../../bench/dashboard/promql.js';

const file = (path: string) => new URL(`../../../${path}`, import.meta.url);
const dashboard = dashboardSchema.parse(
  JSON.parse(readFileSync(file('docs/grafana/wheremachines.json'), 'utf8')),
);
const VARS = { region: '.*', __rate_interval: '10s' };
const WIDTH = 1200;

describe('the layout of docs/grafana/wheremachines.json', () => {
  const boxes = layout(dashboard, WIDTH);

  it('gives every panel one box inside the page, and no two boxes overlap', () => {
    expect(boxes.map((b) => b.id)).toEqual(dashboard.panels.map((p) => p.id));
    for (const b of boxes) {
      expect(b.left).toBeGreaterThanOrEqual(0);
      expect(b.left + b.width).toBeLessThanOrEqual(WIDTH);
      expect(b.width).toBeGreaterThan(100);
      expect(b.top + b.height).toBeLessThanOrEqual(pageHeight(boxes));
    }
    for (const a of boxes)
      for (const b of boxes) {
        if (a === b) continue;
        const apart =
          a.left + a.width <= b.left ||
          b.left + b.width <= a.left ||
          a.top + a.height <= b.top ||
          b.top + b.height <= a.top;
        expect(apart, `panels ${a.id} and ${b.id} overlap`).toBe(true);
      }
  });

  it('keeps gridPos order: a panel to the right of another starts to the right of it', () => {
    const half = dashboard.panels.filter((p) => p.gridPos.w === 12);
    for (const p of half) {
      const box = boxes.find((b) => b.id === p.id)!;
      expect(box.left).toBe(p.gridPos.x === 0 ? 0 : Math.round(12 * ((WIDTH + 8) / 24)));
    }
  });

  it('has only queries the mini-evaluator covers, so no panel is drawn with a note', () => {
    for (const p of dashboard.panels)
      for (const t of p.targets)
        expect(() => parseExpr(substitute(t.expr, VARS)), t.expr).not.toThrow();
  });

  it('draws every panel with its title, from scrapes holding each metric the queries name', () => {
    const names = new Set(
      dashboard.panels.flatMap((p) =>
        p.targets.flatMap((t) => [...t.expr.matchAll(/\b(wm_[a-z_]+)/g)].map((m) => m[1]!)),
      ),
    );
    // One series per metric, with a value for every label a query filters or groups on.
    const labels = { region: 'ams', phase: 'click_to_ready', status: '503', action: 'create' };
    const scrapes: Scrape[] = [0, 2, 4].map((t, i) => ({
      t,
      samples: [...names].flatMap((name) =>
        name.endsWith('_bucket')
          ? ['0.5', '1', '+Inf'].map((le) => ({ name, labels: { ...labels, le }, value: i }))
          : [{ name, labels, value: i + 1 }],
      ),
    }));
    const results = evaluatePanels(dashboard, scrapes, VARS);
    const html = drawPage(dashboard, results, {
      width: WIDTH,
      caption: 'test',
      span: { t0: 0, t1: 4 },
    });
    for (const p of dashboard.panels) {
      expect(html).toContain(`data-panel="${p.id}"`);
      expect(html).toContain(p.title.replace(/&/g, '&amp;').replace(/</g, '&lt;'));
      const drawn = results.get(p.id)!;
      expect(
        drawn.some((r) => 'series' in r && r.series.length > 0),
        p.title,
      ).toBe(true);
    }
    expect(html).not.toContain('class="note"');
    expect(html).not.toContain('NaN');
  });

  it('says so on a panel whose query it cannot evaluate', () => {
    const odd: Dashboard = {
      title: 'odd',
      panels: [
        {
          id: 1,
          type: 'timeseries',
          title: 'ratio',
          gridPos: { x: 0, y: 0, w: 24, h: 8 },
          targets: [{ refId: 'A', expr: 'sum(a) / sum(b)' }],
        },
      ],
    };
    const html = drawPage(odd, evaluatePanels(odd, [], VARS), {
      width: WIDTH,
      caption: '',
      span: { t0: 0, t1: 1 },
    });
    expect(html).toContain('query A not drawn');
  });

  it('formats values in the units the panels use', () => {
    expect(formatValue(0.35, 's')).toBe('350 ms');
    expect(formatValue(2.5, 's')).toBe('2.5 s');
    expect(formatValue(0.125, 'reqps')).toBe('0.125 req/s');
    expect(formatValue(3, 'short')).toBe('3');
  });
});

describe('docs/grafana/wheremachines.png', () => {
  it('is committed and under 300 KB', () => {
    const size = statSync(file('docs/grafana/wheremachines.png')).size;
    expect(size).toBeGreaterThan(10_000);
    expect(size).toBeLessThan(300 * 1024);
  });
});
