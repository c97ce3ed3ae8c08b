/**
 * The cost of observability on the launch path (issue 12, ADR 0016 and 0021): the same sequential
 * launches through the real runtime and effect runner, with metrics (store, change feed, Fly calls)
 * and tracing (a span at the request, the traceparent in the first fact, effects in their work
 * scope, a span around each create) against the same run without them, interleaved in blocks so
 * drift in machine load hits both alike. Run twice: on the durable file store (the launch path as
 * one machine deploys it) and on the in-memory store (no I/O at all: the CPU-bound worst case).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileEventStore } from '../../src/adapters/file/fileEventStore.js';
import { MemoryEventStore } from '../../src/adapters/memory/memoryEventStore.js';
import type { EventStore } from '../../src/ports/eventStore.js';
import { WhereMetrics } from '../../src/where/metrics.js';
import type { SectionOutput } from './context.js';
import { atMost, row } from './report.js';
import { makeRuntimeRig, runLaunch } from './runtimeRig.js';
import { fmtMs, mean, p50, summarize } from './stats.js';

/** Time per launch may grow at most this much with observability on (issue 12: ≤ 5 %). */
const TARGET = 1.05;
const BLOCK = 50;

export type ObservedStore = 'file' | 'memory';

export async function observabilityCost(
  n: number,
  kind: ObservedStore,
): Promise<{ rows: SectionOutput['rows']; data: Record<string, unknown>; note: string }> {
  const dirs: string[] = [];
  const store = (): EventStore => {
    if (kind === 'memory') return new MemoryEventStore();
    const dir = mkdtempSync(join(tmpdir(), 'wm-bench-obs-'));
    dirs.push(dir);
    return FileEventStore.open(join(dir, 'events.log'));
  };
  const metrics = new WhereMetrics({ now: () => Date.now(), defaults: false });
  const on = makeRuntimeRig(store(), { observed: metrics });
  const off = makeRuntimeRig(store());
  try {
    await on.runtime.boot();
    await off.runtime.boot();
    // Warm both paths (JIT, first-use allocations) before measuring.
    const warm = Math.min(100, n / 4);
    for (let i = 0; i < warm; i++) {
      await runLaunch(on, { traced: true });
      await runLaunch(off);
    }
    const withObs: number[] = [];
    const without: number[] = [];
    for (let block = 0; block < n / BLOCK; block++) {
      // Alternate which goes first, so neither always runs right after a GC the other caused.
      const order = block % 2 === 0 ? (['on', 'off'] as const) : (['off', 'on'] as const);
      for (const which of order) {
        for (let i = 0; i < BLOCK; i++) {
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
    if (Number(counted) !== n + warm)
      throw new Error(`metrics counted ${counted} ready launches, expected ${n + warm}`);

    const ratioP50 = p50(withObs) / p50(without);
    const ratioMean = mean(withObs) / mean(without);
    const where = kind === 'file' ? 'file store (durable appends)' : 'memory store (no I/O)';
    // The target is judged where a launch does what it does when deployed (durable appends); the
    // memory row is the CPU-bound worst case, shown for what it costs in µs.
    const checks = (ratio: number) =>
      kind === 'file' ? [atMost(ratio, TARGET, '≤ 1.05× without')] : [];
    return {
      rows: [
        row({
          metric: `per-launch time with metrics + tracing, ${where} (floor: same run without), p50`,
          value: p50(withObs),
          unit: 'ms',
          fmt: fmtMs,
          floor: p50(without),
          checks: checks(ratioP50),
        }),
        row({
          metric: `per-launch time with metrics + tracing, ${where} (floor: same run without), mean`,
          value: mean(withObs),
          unit: 'ms',
          fmt: fmtMs,
          floor: mean(without),
          checks: checks(ratioMean),
        }),
      ],
      data: { store: kind, launches: n, with: summarize(withObs), without: summarize(without) },
      note: `(a2) observability, ${where}: ${n} sequential launches each way in alternating blocks of ${BLOCK}, after ${warm} of warm-up. "With" = the landing app's WhereMetrics on the store (count and time every append), on the change feed (outcomes, phase histograms) and on every Fly call of the fake, plus tracing: a span at the request through @opentelemetry/api (no SDK registered, as deployed without an exporter), the traceparent in launch.requested, each effect's work scope (a child logger naming launch and trace, made on first use), a span around each create and the traceparent on its Fly call. "Without" = none of it (RuntimeOptions.workScope false, no metrics, no traceparent). Same fake, same kind of store, silent logger in both.${kind === 'memory' ? ' No I/O at all: the extra microseconds are the whole difference, a worst case no deployment runs; the target is judged on the file store.' : ''}`,
    };
  } finally {
    await on.close();
    await off.close();
    await on.store.close();
    await off.store.close();
    metrics.close();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }
}
