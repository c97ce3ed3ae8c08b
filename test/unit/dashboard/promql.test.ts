/**
 * The dashboard renderer's PromQL mini-evaluator on known samples: rate and increase (window,
 * counter reset), aggregation by labels, label matchers, histogram_quantile's interpolation (checked
 * against prom-client's own buckets too), legends, and a clear refusal of what it does not evaluate.
 */
import { Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import {
  bucketQuantile,
  evaluateAt,
  evaluateRange,
  legend,
  parseExpr,
  substitute,
  Unsupported,
  type Scrape,
  type ScrapedSample,
} from '../../../bench/dashboard/promql.js';
import { parsePromText } from '../../support/promText.js';

const counter = (labels: Record<string, string>, value: number): ScrapedSample => ({
  name: 'wm_launches_total',
  labels,
  value,
});

/** Scrapes every 2 s of two counters: ams 0, 2, 4, 10 and syd 5, 8, 2 (a reset), 4. */
const scrapes: Scrape[] = [
  [0, 5],
  [2, 8],
  [4, 2],
  [10, 4],
].map(([ams, syd], i) => ({
  t: i * 2,
  samples: [
    counter({ region: 'ams', outcome: 'ready' }, ams!),
    counter({ region: 'syd', outcome: 'ready' }, syd!),
    counter({ region: 'syd', outcome: 'failed:flyError' }, i),
  ],
}));

const value = (expr: string, at = 3, labels: Record<string, string> = {}): number | undefined =>
  evaluateAt(expr, scrapes, at).find((p) =>
    Object.entries(labels).every(([k, v]) => p.labels[k] === v),
  )?.value;

describe('rate and increase', () => {
  it('rise over the samples inside the window, a fall counting as a reset', () => {
    expect(value('increase(wm_launches_total{region="ams"}[10s])')).toBe(10);
    expect(value('rate(wm_launches_total{region="ams"}[10s])')).toBeCloseTo(10 / 6);
    // syd: 5 → 8 (+3) → 2 (reset: +2) → 4 (+2).
    expect(value('increase(wm_launches_total{region="syd",outcome="ready"}[1m])')).toBe(7);
    // A 3 s window at t = 6 holds the samples at 4 and 6 only.
    expect(value('rate(wm_launches_total{region="ams"}[3s])')).toBe(3);
  });

  it('need two samples in the window: none at the first scrape', () => {
    expect(evaluateAt('rate(wm_launches_total[10s])', scrapes, 0)).toEqual([]);
    const series = evaluateRange('rate(wm_launches_total{region="ams"}[10s])', scrapes);
    expect(series).toHaveLength(1);
    expect(series[0]!.points.map((p) => p.t)).toEqual([2, 4, 6]);
    expect(series[0]!.points.map((p) => p.value)).toEqual([1, 1, 10 / 6]);
  });
});

describe('aggregation and matchers', () => {
  it('sum by keeps only the named labels; sum, count, min, max over everything', () => {
    const byRegion = evaluateAt(
      'sum by (region) (increase(wm_launches_total[1m]))',
      scrapes,
      3,
    ).sort((a, b) => a.labels.region!.localeCompare(b.labels.region!));
    expect(byRegion).toEqual([
      { labels: { region: 'ams' }, value: 10 },
      { labels: { region: 'syd' }, value: 7 + 3 },
    ]);
    expect(value('sum(wm_launches_total)')).toBe(10 + 4 + 3);
    expect(value('count(wm_launches_total)')).toBe(3);
    expect(value('max(wm_launches_total)')).toBe(10);
    expect(value('min(wm_launches_total)')).toBe(3);
    expect(value('sum(wm_launches_total) by (outcome)', 3, { outcome: 'ready' })).toBe(14);
  });

  it('matches labels with =, !=, =~ (anchored) and !~', () => {
    expect(value('sum(wm_launches_total{outcome!="ready"})')).toBe(3);
    expect(value('sum(wm_launches_total{outcome=~"failed:.*"})')).toBe(3);
    expect(value('sum(wm_launches_total{outcome=~"fail"})')).toBeUndefined();
    expect(value('sum(wm_launches_total{region!~"a.*|x"})')).toBe(7);
    expect(value(substitute('sum(wm_launches_total{region=~"$region"})', { region: '.*' }))).toBe(
      17,
    );
  });
});

describe('histogram_quantile', () => {
  it('interpolates inside the bucket that holds the rank, as Prometheus does', () => {
    const buckets = [
      { le: 0.5, count: 1 },
      { le: 1, count: 3 },
      { le: 2, count: 4 },
      { le: Infinity, count: 4 },
    ];
    // Rank 2 is the first of the two observations in (0.5, 1].
    expect(bucketQuantile(0.5, buckets)).toBe(0.75);
    expect(bucketQuantile(0.99, buckets)).toBeCloseTo(1.96);
    expect(bucketQuantile(0.1, buckets)).toBeCloseTo(0.2);
    // A rank in the +Inf bucket answers the highest finite bound.
    expect(
      bucketQuantile(0.9, [
        { le: 1, count: 1 },
        { le: Infinity, count: 2 },
      ]),
    ).toBe(1);
    expect(bucketQuantile(0.5, [{ le: Infinity, count: 0 }])).toBeNaN();
    expect(bucketQuantile(2, buckets)).toBe(Infinity);
  });

  it('over rates of prom-client buckets, by region, lands in the bucket of the true quantile', async () => {
    const registry = new Registry();
    const h = new Histogram({
      name: 'wm_launch_phase_seconds',
      help: 'x',
      labelNames: ['region', 'phase'],
      buckets: [0.25, 0.5, 1, 2, 5],
      registers: [registry],
    });
    const scrape = async (t: number): Promise<Scrape> => ({
      t,
      samples: [...parsePromText(await registry.metrics()).values()].flatMap((f) => f.samples),
    });
    h.observe({ region: 'ams', phase: 'click_to_ready' }, 0.1);
    h.observe({ region: 'syd', phase: 'click_to_ready' }, 4);
    const series: Scrape[] = [await scrape(0)];
    // ams: 80 launches at 0.6 s, 20 at 1.5 s; syd: 10 at 3 s.
    for (let i = 0; i < 80; i++) h.observe({ region: 'ams', phase: 'click_to_ready' }, 0.6);
    for (let i = 0; i < 20; i++) h.observe({ region: 'ams', phase: 'click_to_ready' }, 1.5);
    for (let i = 0; i < 10; i++) h.observe({ region: 'syd', phase: 'click_to_ready' }, 3);
    h.observe({ region: 'ams', phase: 'created_to_started' }, 9);
    series.push(await scrape(10));
    const q = (quantile: number): Record<string, number> =>
      Object.fromEntries(
        evaluateAt(
          `histogram_quantile(${quantile}, sum by (le, region) (rate(wm_launch_phase_seconds_bucket{phase="click_to_ready"}[30s])))`,
          series,
          1,
        ).map((p): [string, number] => [p.labels.region ?? '', p.value]),
      );
    const p50 = q(0.5);
    // The 50th of the 100 new ams observations is in (0.5, 1], which holds 80 of them.
    expect(p50.ams).toBeCloseTo(0.5 + 0.5 * (50 / 80));
    expect(p50.syd).toBeCloseTo(2 + 3 * 0.5);
    const p90 = q(0.9);
    expect(p90.ams).toBeGreaterThan(1);
    expect(p90.ams).toBeLessThanOrEqual(2);
    expect(Object.keys(p90).sort()).toEqual(['ams', 'syd']);
  });
});

describe('what is not evaluated', () => {
  it('is refused with Unsupported, not guessed', () => {
    for (const expr of [
      'topk(3, wm_launches_total)',
      'sum(rate(wm_launches_total[5m])) / sum(rate(wm_launches_total[5m]))',
      'wm_launches_total offset 5m',
      'rate(wm_launches_total[$__rate_interval])',
      'label_values(wm_launches_total, region)',
    ])
      expect(() => parseExpr(expr), expr).toThrow(Unsupported);
  });

  it('formats legends from labels', () => {
    expect(legend('p50 {{region}}', { region: 'ams' })).toBe('p50 ams');
    expect(legend('{{action}} {{status}}', { action: 'create' })).toBe('create');
  });
});
