/**
 * The parts of a Grafana dashboard JSON the renderer reads (panels, their queries, units and
 * overrides), parsed with zod, and every panel's queries evaluated over a run's scrapes.
 */
import { z } from 'zod';
import { evaluateRange, substitute, Unsupported, type Scrape, type TimeSeries } from './promql.js';

const target = z.object({
  refId: z.string(),
  expr: z.string(),
  legendFormat: z.string().optional(),
});
const panel = z.object({
  id: z.number(),
  type: z.string(),
  title: z.string(),
  gridPos: z.object({ x: z.number(), y: z.number(), w: z.number(), h: z.number() }),
  targets: z.array(target),
  fieldConfig: z
    .object({
      defaults: z.object({ unit: z.string().optional() }),
      overrides: z
        .array(
          z.object({
            matcher: z.object({ id: z.string(), options: z.unknown() }),
            properties: z.array(z.object({ id: z.string(), value: z.unknown() })),
          }),
        )
        .default([]),
    })
    .optional(),
});
export const dashboardSchema = z.object({ title: z.string(), panels: z.array(panel) });
export type Dashboard = z.infer<typeof dashboardSchema>;
export type Panel = Dashboard['panels'][number];

/** What one query gave: series to draw, or why it could not be evaluated. */
export type TargetResult =
  | { refId: string; legendFormat: string | undefined; series: TimeSeries[] }
  | { refId: string; unsupported: string };

/** Every panel's queries over the run; a query outside the evaluator is kept as a note. */
export function evaluatePanels(
  dashboard: Dashboard,
  scrapes: readonly Scrape[],
  vars: Record<string, string>,
): Map<number, TargetResult[]> {
  return new Map(
    dashboard.panels.map((p) => [
      p.id,
      p.targets.map((t): TargetResult => {
        try {
          const series = evaluateRange(substitute(t.expr, vars), scrapes);
          return { refId: t.refId, legendFormat: t.legendFormat, series };
        } catch (err) {
          if (err instanceof Unsupported) return { refId: t.refId, unsupported: err.message };
          throw err;
        }
      }),
    ]),
  );
}
