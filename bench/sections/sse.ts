/**
 * Section `sse`: fleet-stream fan-out to 10k concurrent clients on one landing-app instance. The
 * server (bench/sse/server.ts) and the clients (bench/sse/clients.ts) are separate child
 * processes: the box allows ~20k descriptors per process, and 10k server sockets plus 10k client
 * sockets in one process would not fit. A fleet change is made through the runtime (a machine
 * observed started → the Fleet's `machine` frame, then its `capacity` frame); each client stamps
 * when its copy of the `machine` frame arrives. The floor is a plain node:http server writing the
 * very same frame bytes to 10k open responses, with the same client process, in the same run.
 */
import { defer } from '../lib/cleanup.js';
import { forkTs, type IpcChild } from '../lib/child.js';
import type { SectionContext, SectionDef, SectionOutput } from '../lib/context.js';
import { atMost, row } from '../lib/report.js';
import { fmtBytes, fmtMs, maxOf, p50, p99, summarize } from '../lib/stats.js';
import type { ClientCmd, ClientMsg } from '../sse/clients.js';
import type { ServerCmd, ServerMsg } from '../sse/server.js';

type Mode = 'raw' | 'product';

interface ModeResult {
  mode: Mode;
  /** Per broadcast: time from the change to the last client's arrival. */
  toLast: number[];
  /** Every client's delivery latency, all broadcasts pooled. */
  perClient: number[];
  syncMs: number[];
  /** Of the synchronous work, the time in the fan-out loops (Fleet.broadcast / the raw write loop). */
  fanoutMs: number[];
  frames: number;
  missing: number;
  connectMs: number;
  rssPerConn: number;
  heapPerConn: number;
  serverFds: number;
  clientFds: number;
  /** Events the server's store took while the clients connected (product only). */
  eventsOnConnect: number;
  frameBytes: number;
}

const is =
  <T extends string>(type: T) =>
  <M extends { type: string }>(m: M): m is Extract<M, { type: T }> =>
    m.type === type;

async function runMode(
  mode: Mode,
  n: number,
  broadcasts: number,
  warmup: number,
  progress: (l: string) => void,
): Promise<ModeResult> {
  const base = process.hrtime.bigint();
  let server: IpcChild<ServerCmd, ServerMsg> | undefined;
  let clients: IpcChild<ClientCmd, ClientMsg> | undefined;
  const release = defer(`sse ${mode} processes`, async () => {
    await clients?.stop({ type: 'close' });
    await server?.stop({ type: 'stop' });
  });
  try {
    server = forkTs<ServerCmd, ServerMsg>('bench/sse/server.ts', [mode], `sse ${mode} server`);
    const { port } = await server.next(is('ready'));
    server.send({ type: 'base', base: base.toString() });
    server.send({ type: 'stats' });
    const before = await server.next(is('stats'));
    progress(`sse/${mode}: connecting ${n} clients`);
    clients = forkTs<ClientCmd, ClientMsg>(
      'bench/sse/clients.ts',
      [String(port), String(n), base.toString()],
      `sse ${mode} clients`,
    );
    const connected = await clients.next(
      (m): m is Extract<ClientMsg, { type: 'connected' | 'error' }> =>
        m.type === 'connected' || m.type === 'error',
      120_000,
    );
    if (connected.type === 'error') throw new Error(`clients: ${connected.message}`);
    await new Promise((r) => setTimeout(r, 500));
    server.send({ type: 'stats' });
    const after = await server.next(is('stats'));
    if (after.clients !== n) throw new Error(`server sees ${after.clients} clients, expected ${n}`);

    const toLast: number[] = [];
    const perClient: number[] = [];
    const syncMs: number[] = [];
    const fanoutMs: number[] = [];
    let frames = 0;
    let missing = 0;
    let frameBytes = 0;
    progress(`sse/${mode}: ${warmup} warm-up + ${broadcasts} broadcasts to ${n} clients`);
    for (let k = 1; k <= warmup + broadcasts; k++) {
      clients.send({ type: 'expect', k, timeoutMs: 15_000 });
      await clients.next(
        (m): m is Extract<ClientMsg, { type: 'armed' }> => m.type === 'armed' && m.k === k,
      );
      server.send({ type: 'change', k });
      const changed = await server.next(
        (m): m is Extract<ServerMsg, { type: 'changed' }> => m.type === 'changed' && m.k === k,
      );
      const got = await clients.next(
        (m): m is Extract<ClientMsg, { type: 'received' }> => m.type === 'received' && m.k === k,
        30_000,
      );
      if (k > warmup) {
        const lat = got.times.map((t) => t - changed.t0);
        toLast.push(maxOf(lat));
        perClient.push(...lat);
        syncMs.push(changed.syncMs);
        fanoutMs.push(changed.fanoutMs);
        frames = changed.frames;
        missing += got.missing;
        frameBytes = changed.bytes || frameBytes;
      }
      // Let the sockets drain and the heap settle between broadcasts.
      await new Promise((r) => setTimeout(r, 200));
    }
    return {
      mode,
      toLast,
      perClient,
      syncMs,
      fanoutMs,
      frames,
      missing,
      connectMs: connected.ms,
      rssPerConn: (after.rss - before.rss) / n,
      heapPerConn: (after.heapUsed - before.heapUsed) / n,
      serverFds: after.fds,
      clientFds: connected.fds,
      eventsOnConnect: after.storeEvents - before.storeEvents,
      frameBytes,
    };
  } finally {
    await release();
  }
}

export const sseSection: SectionDef = {
  name: 'sse',
  title: 'fleet SSE fan-out to 10k clients on one instance',
  async run(ctx: SectionContext): Promise<SectionOutput> {
    const n = Number(process.env.BENCH_SSE_CLIENTS ?? (ctx.quick ? 500 : 10_000));
    const broadcasts = ctx.quick ? 5 : 20;
    const warmup = 2;
    const raw = await runMode('raw', n, broadcasts, warmup, ctx.progress);
    const product = await runMode('product', n, broadcasts, warmup, ctx.progress);
    const lastP50 = p50(product.toLast);
    const lastP99 = p99(product.toLast);
    const rows = [
      row({
        metric: `change → last of ${n} clients has it, p50`,
        value: lastP50,
        unit: 'ms',
        fmt: fmtMs,
        floor: p50(raw.toLast),
        checks: [atMost(lastP50 / p50(raw.toLast), 1.5, '≤ 1.5× floor')],
      }),
      row({
        metric: `change → last of ${n} clients has it, p99`,
        value: lastP99,
        unit: 'ms',
        fmt: fmtMs,
        floor: p99(raw.toLast),
        checks: [atMost(lastP99 / p99(raw.toLast), 1.5, '≤ 1.5× floor')],
      }),
      row({
        metric: 'per-client delivery, p50 (all broadcasts)',
        value: p50(product.perClient),
        unit: 'ms',
        fmt: fmtMs,
        floor: p50(raw.perClient),
      }),
      row({
        metric: 'per-client delivery, p99 (all broadcasts)',
        value: p99(product.perClient),
        unit: 'ms',
        fmt: fmtMs,
        floor: p99(raw.perClient),
      }),
      row({
        metric: 'server synchronous work per change, p50',
        value: p50(product.syncMs),
        unit: 'ms',
        fmt: fmtMs,
        floor: p50(raw.syncMs),
      }),
      row({
        metric: `  of which fan-out loops (${product.frames} frames × ${n} writes), p50`,
        value: p50(product.fanoutMs),
        unit: 'ms',
        fmt: fmtMs,
        floor: p50(raw.fanoutMs),
      }),
      row({
        metric: 'server RSS per connection',
        value: product.rssPerConn,
        unit: 'bytes',
        fmt: fmtBytes,
        floor: raw.rssPerConn,
        checks: [atMost(product.rssPerConn / raw.rssPerConn, 1.5, '≤ 1.5× floor')],
      }),
      row({
        metric: 'server heap per connection',
        value: product.heapPerConn,
        unit: 'bytes',
        fmt: fmtBytes,
        floor: raw.heapPerConn,
      }),
      row({
        metric: `connect all ${n} clients`,
        value: product.connectMs,
        unit: 'ms',
        fmt: fmtMs,
        floor: raw.connectMs,
      }),
      row({
        metric: 'store events appended while they connected',
        value: product.eventsOnConnect,
        unit: 'events',
        fmt: (v) => v.toFixed(0),
      }),
    ];
    const lost = raw.missing + product.missing;
    return {
      rows,
      notes: [
        `server and clients are separate child processes (the fd limit here is ~20k per process): server fds ${product.serverFds} (floor ${raw.serverFds}), client process fds ${product.clientFds}. Clients are raw sockets in one process, batches of 250 connects.`,
        `${broadcasts} broadcasts (after ${warmup} warm-up), 200 ms apart; clock = process.hrtime (host-wide monotonic) in both processes; product t0 is taken before runtime.dispatch, floor t0 before the write loop. Frame: ${raw.frameBytes} B. p99 of ${broadcasts} is their maximum.`,
        'product = createWhere on in-memory ports (autospawn off, so its chart never spawns; its driver still reports visitors), one change = fly.machineObserved(started) for a new machine → `machine` frame then `capacity` frame to every client; the floor writes only the `machine` frame.',
        lost > 0
          ? `${lost} deliveries did not arrive within 15 s (raw ${raw.missing}, product ${product.missing})`
          : 'every client received every frame.',
      ],
      data: {
        n,
        broadcasts,
        raw: { ...raw, perClient: summarize(raw.perClient), toLastSummary: summarize(raw.toLast) },
        product: {
          ...product,
          perClient: summarize(product.perClient),
          toLastSummary: summarize(product.toLast),
        },
      },
    };
  },
};
