/**
 * Section `soak`: months of history in minutes (issue 10, item 4). N finished launches go through
 * the production assembly (`createWhere` on `buildPorts`' ports, the Fly fake in immediate mode)
 * on the file store and on JetStream, 32 in flight, with retention short enough that compaction
 * archives most of them. The app restarts at each step in a new process under a 512 MB VM's heap
 * limit; at each checkpoint it reports heap, RSS, disk and open + boot time beside the first
 * checkpoint's figures, and the floors of the same run (boot of an empty store, a raw read of the
 * live log). Targets: heap and boot at the last checkpoint within 1.2× of the first, the live store
 * bounded by retention, and no process out of memory.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NATS_SERVER } from '../../test/support/require.js';
import { NatsServer } from '../../test/support/natsServer.js';
import { forkTs } from '../lib/child.js';
import { defer } from '../lib/cleanup.js';
import type { SectionContext, SectionDef, SectionOutput } from '../lib/context.js';
import { atMost, row, type Check, type Row } from '../lib/report.js';
import type { SoakOut, SoakReport, SoakStore, SoakTask } from '../lib/soakChild.js';
import { fmtBytes, fmtMs, fmtRate } from '../lib/stats.js';

const CONCURRENCY = 32;
/** A 512 MB Fly VM: Node's default heap limit there is ~259 MB (issue 10). */
const HEAP_LIMIT_MB = Number(process.env.BENCH_SOAK_HEAP_MB ?? 256);
/** The copy's age before JetStream retention purges it (production: 10 min; ADR 0014). */
const PURGE_GRACE_MS = 1000;
const FLAT = 1.2;

export interface SoakSettings {
  checkpoints: number[];
  /** At most this many launches per process between restarts (equal chunks keep "running" comparable). */
  chunk: number;
  stores: SoakStore[];
  /**
   * Boot at the empty store and at each checkpoint is measured in this many processes, best taken
   * (the box is shared: a single boot swung 2–3× with the load in development runs).
   */
  bootReps: number;
  env: Record<string, string>;
}

export function soakSettings(quick: boolean, env = process.env): SoakSettings {
  const list = (v: string | undefined, dflt: string) =>
    (v ?? dflt)
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
  const checkpoints = list(
    env.BENCH_SOAK_CHECKPOINTS,
    quick ? '100,200,500' : '5000,20000,50000',
  ).map(Number);
  if (checkpoints.some((n) => !Number.isInteger(n) || n <= 0))
    throw new Error(`BENCH_SOAK_CHECKPOINTS: positive integers, got ${checkpoints.join(',')}`);
  checkpoints.sort((a, b) => a - b);
  const chunk = Number(env.BENCH_SOAK_CHUNK ?? checkpoints[0]);
  const stores = list(env.BENCH_SOAK_STORES, 'file,nats');
  for (const s of stores)
    if (s !== 'file' && s !== 'nats') throw new Error(`BENCH_SOAK_STORES: file, nats; got ${s}`);
  return {
    checkpoints,
    chunk,
    stores: stores as SoakStore[],
    bootReps: Math.max(1, Number(env.BENCH_SOAK_BOOT_REPS ?? 3)),
    env: {
      // Short enough that compaction archives most finished launches between checkpoints; the
      // count cap keeps the same number live at every checkpoint whatever the drive's speed.
      WM_RETENTION: env.BENCH_SOAK_RETENTION ?? '10s',
      WM_RETENTION_MAX_FINISHED: env.BENCH_SOAK_MAX_FINISHED ?? (quick ? '40' : '2000'),
      WM_COMPACT_INTERVAL: env.BENCH_SOAK_COMPACT_INTERVAL ?? '5s',
    },
  };
}

/** The history (finished launches) each process boots on: 0, every chunk, every checkpoint. */
export function soakSteps(checkpoints: readonly number[], chunk: number): number[] {
  const last = checkpoints.at(-1)!;
  const steps = new Set<number>([0, ...checkpoints]);
  for (let n = chunk; n < last; n += chunk) steps.add(n);
  return [...steps].sort((a, b) => a - b);
}

const k = (n: number) => (n >= 1000 && n % 1000 === 0 ? `${n / 1000}k` : String(n));
const heapOf = (m: SoakReport['afterBoot']) => m.heapUsed + m.arrayBuffers;

async function runStore(
  ctx: SectionContext,
  store: SoakStore,
  s: SoakSettings,
): Promise<{ reports: SoakReport[]; failure?: string; natsUrl?: string }> {
  const dir = mkdtempSync(join(tmpdir(), `wm-bench-soak-${store}-`));
  const removeDir = defer(`soak ${store} dir`, () => rmSync(dir, { recursive: true, force: true }));
  let server: NatsServer | undefined;
  const stopServer = defer('soak nats-server', async () => {
    await server?.cleanup();
  });
  const reports: SoakReport[] = [];
  try {
    if (store === 'nats') server = await NatsServer.start();
    const steps = soakSteps(s.checkpoints, s.chunk);
    const measured = new Set([0, ...s.checkpoints]);
    for (let i = 0; i < steps.length; i++) {
      const from = steps[i]!;
      const last = steps[i + 1] ?? from;
      // Extra boot-only processes first at the floor and the checkpoints; then the one that drives.
      const runs =
        measured.has(from) && last > from ? [...Array(s.bootReps - 1).fill(from), last] : [last];
      if (last === from) runs.push(...Array(s.bootReps - 1).fill(from));
      for (const to of runs) {
        const task: SoakTask = {
          store,
          dataDir: dir,
          ...(server ? { natsUrl: server.url } : {}),
          from,
          to,
          concurrency: CONCURRENCY,
          env: s.env,
          purgeGraceMs: PURGE_GRACE_MS,
        };
        ctx.progress(
          `soak ${store}: boot on ${k(from)} finished launches${to > from ? `, drive to ${k(to)}` : ' (boot only)'}`,
        );
        const child = forkTs<never, SoakOut>(
          'bench/lib/soakChild.ts',
          [JSON.stringify(task)],
          `soak ${store} ${from}→${to}`,
          [`--max-old-space-size=${HEAP_LIMIT_MB}`],
        );
        let out: SoakOut;
        try {
          out = await child.next((_m): _m is SoakOut => true, 30 * 60_000);
        } catch (err) {
          const why = err instanceof Error ? err.message : String(err);
          await child.stop();
          return { reports, failure: `booting on ${from}, driving to ${to}: ${why}` };
        }
        await child.stop();
        if (out.type === 'error')
          return { reports, failure: `booting on ${from}, driving to ${to}: ${out.message}` };
        reports.push(out);
        ctx.progress(
          `soak ${store}: open ${fmtMs(out.openMs)} + boot ${fmtMs(out.bootMs)}, heap ${fmtBytes(heapOf(out.afterBoot))} → ${fmtBytes(heapOf(out.running))} running, live ${fmtBytes(out.diskAtEnd.live)}, archive ${fmtBytes(out.diskAtEnd.archive)}, ${to > from ? fmtRate(((to - from) / out.driveMs) * 1000, 'launches') : 'no drive'}`,
        );
      }
    }
    return { reports, ...(server ? { natsUrl: server.url } : {}) };
  } finally {
    await stopServer();
    await removeDir();
  }
}

/** The rows of one store: each checkpoint's figure beside the first checkpoint's, with the floors. */
export function soakRows(
  store: SoakStore,
  s: SoakSettings,
  reports: readonly SoakReport[],
  failure: string | undefined,
): Row[] {
  const rows: Row[] = [];
  const label = store === 'file' ? 'file' : 'JetStream';
  /** The fastest of the processes that booted on `n` launches, with the least heap and raw read. */
  const bootAt = (n: number): SoakReport | undefined => {
    const xs = reports.filter((r) => r.from === n);
    if (xs.length === 0) return undefined;
    const best = xs.reduce((a, b) => (b.openMs + b.bootMs < a.openMs + a.bootMs ? b : a));
    const raws = xs.flatMap((r) => (r.rawReadMs === undefined ? [] : [r.rawReadMs]));
    const heap = xs.reduce((a, b) => (heapOf(b.afterBoot) < heapOf(a.afterBoot) ? b : a));
    return {
      ...best,
      afterBoot: heap.afterBoot,
      ...(raws.length ? { rawReadMs: Math.min(...raws) } : {}),
    };
  };
  const endAt = (n: number) => reports.find((r) => r.to === n && r.to > r.from);
  const empty = bootAt(0);
  const first = s.checkpoints[0]!;
  const flat = (v: number, base: number | undefined, n: number): Check[] =>
    n === first || base === undefined ? [] : [atMost(v / base, FLAT, `≤ ${FLAT}× ${k(first)}`)];
  if (empty) {
    rows.push(
      row({
        metric: `${label}: floor: open + boot of an empty store (best of ${s.bootReps} processes)`,
        value: empty.openMs + empty.bootMs,
        unit: 'ms',
        fmt: fmtMs,
      }),
      row({
        metric: `${label}: floor: heap after boot of an empty store (V8 heap + array buffers)`,
        value: heapOf(empty.afterBoot),
        unit: 'bytes',
        fmt: fmtBytes,
      }),
    );
  }
  const b0 = bootAt(first);
  const e0 = endAt(first);
  for (const n of s.checkpoints) {
    const b = bootAt(n);
    const e = endAt(n);
    if (e) {
      rows.push(
        row({
          metric: `${label} @ ${k(n)}: heap while running (after ${k(e.to - e.from)} launches and the retention pass)`,
          value: heapOf(e.running),
          unit: 'bytes',
          fmt: fmtBytes,
          ...(e0 ? { floor: heapOf(e0.running) } : {}),
          checks: flat(heapOf(e.running), e0 && heapOf(e0.running), n),
        }),
        row({
          metric: `${label} @ ${k(n)}: RSS while running, peak`,
          value: e.peakRss,
          unit: 'bytes',
          fmt: fmtBytes,
          ...(e0 ? { floor: e0.peakRss } : {}),
        }),
        row({
          metric: `${label} @ ${k(n)}: live ${store === 'file' ? 'log (events.log)' : 'stream bytes'} after the retention pass`,
          value: e.diskAtEnd.live,
          unit: 'bytes',
          fmt: fmtBytes,
          ...(e0 ? { floor: e0.diskAtEnd.live } : {}),
          checks: flat(e.diskAtEnd.live, e0?.diskAtEnd.live, n),
        }),
        row({
          metric: `${label} @ ${k(n)}: archive ${store === 'file' ? `(${e.diskAtEnd.archiveFiles ?? 0} segment + name files)` : 'stream bytes'}`,
          value: e.diskAtEnd.archive,
          unit: 'bytes',
          fmt: fmtBytes,
          ...(e0 ? { floor: e0.diskAtEnd.archive } : {}),
        }),
      );
    }
    if (b) {
      rows.push(
        row({
          metric: `${label} @ ${k(n)}: open + boot (new process, best of ${s.bootReps})`,
          value: b.openMs + b.bootMs,
          unit: 'ms',
          fmt: fmtMs,
          ...(b0 ? { floor: b0.openMs + b0.bootMs } : {}),
          checks: flat(b.openMs + b.bootMs, b0 && b0.openMs + b0.bootMs, n),
        }),
        row({
          metric: `${label} @ ${k(n)}:   of which open`,
          value: b.openMs,
          unit: 'ms',
          fmt: fmtMs,
          ...(b0 ? { floor: b0.openMs } : {}),
        }),
        ...(b.rawReadMs !== undefined
          ? [
              row({
                metric: `${label} @ ${k(n)}:   floor: raw read + JSON.parse of the same live log (best of ${s.bootReps})`,
                value: b.rawReadMs,
                unit: 'ms',
                fmt: fmtMs,
                ...(b0?.rawReadMs !== undefined ? { floor: b0.rawReadMs } : {}),
              }),
            ]
          : []),
        ...(b.rawReadMs !== undefined
          ? [
              row({
                metric: `${label} @ ${k(n)}:   open + boot ÷ that raw read (load-normalised)`,
                value: (b.openMs + b.bootMs) / b.rawReadMs,
                unit: 'ratio',
                fmt: (v) => `${v.toFixed(2)}×`,
                ...(b0?.rawReadMs !== undefined
                  ? { floor: (b0.openMs + b0.bootMs) / b0.rawReadMs }
                  : {}),
              }),
            ]
          : []),
        row({
          metric: `${label} @ ${k(n)}: heap after boot (V8 heap + array buffers, least of ${s.bootReps})`,
          value: heapOf(b.afterBoot),
          unit: 'bytes',
          fmt: fmtBytes,
          ...(b0 ? { floor: heapOf(b0.afterBoot) } : {}),
          checks: flat(heapOf(b.afterBoot), b0 && heapOf(b0.afterBoot), n),
        }),
        row({
          metric: `${label} @ ${k(n)}: RSS after boot`,
          value: b.afterBoot.rss,
          unit: 'bytes',
          fmt: fmtBytes,
          ...(b0 ? { floor: b0.afterBoot.rss } : {}),
        }),
      );
    }
  }
  const drives = reports.filter((r) => r.to > r.from);
  const launches = drives.reduce((a, r) => a + r.to - r.from, 0);
  const driveMs = drives.reduce((a, r) => a + r.driveMs, 0);
  if (drives.length > 0)
    rows.push(
      row({
        metric: `${label}: launches driven to their end, ${CONCURRENCY} in flight (context)`,
        value: (launches / driveMs) * 1000,
        unit: 'launches/s',
        fmt: (v) => fmtRate(v, 'launches'),
      }),
    );
  const last = s.checkpoints.at(-1)!;
  rows.push(
    row({
      metric: `${label}: never out of memory under --max-old-space-size=${HEAP_LIMIT_MB}, up to ${k(last)}`,
      value: failure ? 0 : 1,
      unit: 'bool',
      fmt: (v) => (v ? 'yes' : `no: ${failure ?? ''}`.slice(0, 160)),
      checks: [{ label: 'no process fails', ok: !failure && bootAt(last) !== undefined }],
    }),
  );
  return rows;
}

export const soakSection: SectionDef = {
  name: 'soak',
  title: 'soak: memory, disk and boot time against history, file store and JetStream',
  async run(ctx: SectionContext): Promise<SectionOutput> {
    const s = soakSettings(ctx.quick);
    const rows: Row[] = [];
    const data: Record<string, unknown> = { settings: { ...s, heapLimitMb: HEAP_LIMIT_MB } };
    const notes: string[] = [];
    for (const store of s.stores) {
      if (store === 'nats' && !NATS_SERVER) {
        notes.push('JetStream: skipped, nats-server is not on the PATH.');
        continue;
      }
      const { reports, failure } = await runStore(ctx, store, s);
      rows.push(...soakRows(store, s, reports, failure));
      data[store] = { reports, ...(failure ? { failure } : {}) };
      if (failure) notes.push(`${store}: FAILED ${failure}`);
    }
    notes.push(
      `Each step is a new process (node --max-old-space-size=${HEAP_LIMIT_MB}) running createWhere on buildPorts' ports (JetStream: the same wiring with a ${PURGE_GRACE_MS} ms purge grace instead of 10 min) and the Fly fake (immediate): it opens and boots on the history the previous step left, drives its share of launches (${CONCURRENCY} in flight, at most ${k(s.chunk)} per process) to their end, runs the retention pass (Retention.run) until a pass has nothing left to move (JetStream: the grace between passes) and exits. Steps: ${soakSteps(s.checkpoints, s.chunk).map(k).join(' → ')}.`,
      `Retention: WM_RETENTION=${s.env.WM_RETENTION}, WM_RETENTION_MAX_FINISHED=${s.env.WM_RETENTION_MAX_FINISHED} (finished actors; a launch and its VM are two), WM_COMPACT_INTERVAL=${s.env.WM_COMPACT_INTERVAL} (the service's own timer also runs during the drive). Floor column = the ${k(s.checkpoints[0]!)} checkpoint of the same run; ratio = value ÷ it; floors of the kind "empty store", "raw read" are rows of their own.`,
      '"heap while running" includes the finished actors the runtime keeps in memory for 10 min (every launch of that process: the soak runs days of traffic in minutes); "heap after boot" is the history-dependent figure. Heap = V8 heapUsed + arrayBuffers (the file store\'s index is typed arrays) after gc().',
    );
    return { rows, notes, data };
  },
};
