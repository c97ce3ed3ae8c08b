/**
 * The cost of observability on the launch path (issue 12, ADR 0016 and 0021): the same sequential
 * launches through the real runtime and effect runner, with metrics (store, change feed, Fly calls)
 * and tracing (a span at the request, the traceparent in the first fact, effects in their work
 * scope, a span around each create) against the same run without them, interleaved in blocks so
 * drift in machine load hits both alike.
 */
import { MemoryEventStore } from '../../src/adapters/memory/memoryEventStore.js';
import { WhereMetrics } from '../../src/where/metrics.js';
import type { SectionOutput } from './context.js';
import { atMost, row } from './report.js';
import { makeRuntimeRig, runLaunch } from './runtimeRig.js';
import { fmtMs, mean, p50, summarize } from './stats.js';

/** Time per launch may grow at most this much with observability on (issue 12: ≤ 5 %). */
const TARGET = 1.05;

export async function observabilityCost(n: number): Promise<{
  rows: SectionOutput['rows'];
  data: Record<string, unknown>;
  note: string;
}> {
  const metrics = new WhereMetrics({ now: () => Date.now(), defaults: false });
  const on = makeRuntimeRig(new MemoryEventStore(), { observed: metrics });
  const off = makeRuntimeRig(new MemoryEventStore());
  await on.runtime.boot();
  await off.runtime.boot();
  // Warm both paths (JIT, first-use allocations) before measuring.
  for (let i = 0; i < 100; i++) {
    await runLaunch(on, { traced: true });
    await runLaunch(off);
  }
  const withObs: number[] = [];
  const without: number[] = [];
  for (let block = 0; block < n / 100; block++) {
    // Alternate which goes first, so neither always runs right after a GC the other caused.
    const order = block % 2 === 0 ? (['on', 'off'] as const) : (['off', 'on'] as const);
    for (const which of order) {
      for (let i = 0; i < 100; i++) {
        const t = performance.now();
        if (which === 'on') await runLaunch(on, { traced: true });
        else await runLaunch(off);
        (which === 'on' ? withObs : without).push(performance.now() - t);
      }
    }
  }
  // The metrics really were fed: every launch counted (warm-up included).
  const scraped = await metrics.text();
  const counted = /wm_launches_total\{[^}]*outcome="ready"[^}]*\} (\d+)/.exec(scraped)?.[1];
  await on.close();
  await off.close();
  metrics.close();
  if (Number(counted) !== n + 100)
    throw new Error(`metrics counted ${counted} ready launches, expected ${n + 100}`);

  const ratioP50 = p50(withObs) / p50(without);
  const ratioMean = mean(withObs) / mean(without);
  return {
    rows: [
      row({
        metric: 'per-launch time with metrics + tracing (floor: same run without), p50',
        value: p50(withObs),
        unit: 'ms',
        fmt: fmtMs,
        floor: p50(without),
        checks: [atMost(ratioP50, TARGET, '≤ 1.05× without')],
      }),
      row({
        metric: 'per-launch time with metrics + tracing (floor: same run without), mean',
        value: mean(withObs),
        unit: 'ms',
        fmt: fmtMs,
        floor: mean(without),
        checks: [atMost(ratioMean, TARGET, '≤ 1.05× without')],
      }),
    ],
    data: { launches: n, with: summarize(withObs), without: summarize(without) },
    note: `(a2) observability: ${n} sequential launches each way in alternating blocks of 100, after 100 of warm-up. "With" = the landing app's WhereMetrics on the store (count and time every append), on the change feed (outcomes, phase histograms) and on every Fly call of the fake, plus tracing: a span at the request through @opentelemetry/api (no SDK registered, as deployed without an exporter), the traceparent in launch.requested, effects in their work scope (child logger with launch and trace ids, AsyncLocalStorage), and a span around each create. "Without" = none of it (RuntimeOptions.workScope false, no metrics, no traceparent). Same fake, same in-memory store, silent logger in both.`,
  };
}
