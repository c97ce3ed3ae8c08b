/**
 * Section `nats`: the event store on JetStream, with our own nats-server on a free port.
 * (a) cross-region propagation: instance A (a runtime on JetStreamEventStore) records a fact;
 *     instance B (the landing app on its own connection and store) folds it from its store feed and
 *     its Fleet writes the frame to an SSE client. Beside it, a raw core-NATS publish → subscribe
 *     between the same two connections, and (context) a raw JetStream publish → ordered consumer.
 * (b) boot replay of ~100k events (every 10th actor stream open) from JetStream into a runtime, beside a raw ordered consume
 *     (+ JSON.parse) of the same stream.
 */
import { request } from 'node:http';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { FakeFlyMachines } from '../../src/adapters/fly/fakeFlyMachines.js';
import { MemoryEventStore } from '../../src/adapters/memory/memoryEventStore.js';
import {
  MemoryCapacityLedger,
  MemoryLeases,
  MemoryPresence,
} from '../../src/adapters/memory/memoryCoordination.js';
import { connectNats, type NatsConnection } from '../../src/adapters/nats/connection.js';
import { JetStreamEventStore } from '../../src/adapters/nats/jetStreamEventStore.js';
import { SystemTimers, systemClock } from '../../src/adapters/system/systemClock.js';
import { UlidIds } from '../../src/adapters/system/ulidIds.js';
import type { StoredEvent } from '../../src/events/envelope.js';
import { parseEnv } from '../../src/shared/env.js';
import { silentLogger } from '../../src/shared/log.js';
import { toConfig, whereEnv } from '../../src/where/config.js';
import { createWhere } from '../../src/where/system.js';
import { NATS_SERVER } from '../../test/support/require.js';
import { NatsServer } from '../../test/support/natsServer.js';
import { defer } from '../lib/cleanup.js';
import type { SectionContext, SectionDef, SectionOutput } from '../lib/context.js';
import { atMost, row } from '../lib/report.js';
import {
  EVENTS_PER_LAUNCH,
  makeRuntimeRig,
  runLaunch,
  withOpenStreams,
} from '../lib/runtimeRig.js';
import { fmtMs, fmtRate, p50, p99, settleHeap, summarize } from '../lib/stats.js';

const log = silentLogger();
const REPLAY_STREAM = { name: 'WM_REPLAY', subjectPrefix: 'wm.replay' };

async function pool(
  total: number,
  concurrency: number,
  task: (i: number) => Promise<unknown>,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, total) }, async () => {
      while (next < total) await task(next++);
    }),
  );
}

/** ~100k events of whole launches: the runtime section's, or made now the same way. */
async function lifecycleEvents(ctx: SectionContext, launches: number): Promise<StoredEvent[]> {
  if (ctx.shared.lifecycleEvents && !ctx.quick) return ctx.shared.lifecycleEvents;
  ctx.progress(
    `nats: generating ${launches * EVENTS_PER_LAUNCH} events from ${launches} launches (memory store)`,
  );
  const store = new MemoryEventStore();
  const rig = makeRuntimeRig(store);
  await rig.runtime.boot();
  await pool(launches, 64, () => runLaunch(rig));
  await rig.runtime.settled();
  await rig.close();
  const out: StoredEvent[] = [];
  for await (const e of store.readAll()) out.push(e);
  return out;
}

/** Time of the first `data` chunk containing `marker` on an open SSE response. */
function sseWatcher(
  url: string,
): Promise<{ arrival(marker: string): Promise<number>; close(): void }> {
  return new Promise((resolve, reject) => {
    const waiting = new Map<string, (t: number) => void>();
    const req = request(url, { agent: false, headers: { accept: 'text/event-stream' } }, (res) => {
      if (res.statusCode !== 200) return reject(new Error(`fleet SSE answered ${res.statusCode}`));
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        const t = performance.now();
        for (const [marker, done] of waiting) {
          if (chunk.includes(marker)) {
            waiting.delete(marker);
            done(t);
          }
        }
      });
      resolve({
        arrival: (marker) =>
          new Promise<number>((ok, fail) => {
            const timer = setTimeout(() => {
              waiting.delete(marker);
              fail(new Error(`no frame with ${marker} within 10 s`));
            }, 10_000);
            waiting.set(marker, (t) => {
              clearTimeout(timer);
              ok(t);
            });
          }),
        close: () => req.destroy(),
      });
    });
    req.once('error', reject);
    req.end();
  });
}

export const natsSection: SectionDef = {
  name: 'nats',
  title: 'JetStream store: cross-region propagation, boot replay',
  async run(ctx: SectionContext): Promise<SectionOutput> {
    if (!NATS_SERVER) {
      return {
        rows: [],
        notes: [],
        data: {},
        skipped:
          'nats-server is not installed (apt-get install nats-server); this section needs a real broker',
      };
    }
    const q = ctx.quick;
    const SAMPLES = q ? 30 : 200;
    const CORE_SAMPLES = q ? 200 : 1000;
    const REPS = q ? 1 : 2;
    const rows: SectionOutput['rows'] = [];
    const notes: string[] = [];
    const data: Record<string, unknown> = {};

    const server = await NatsServer.start();
    const conns: NatsConnection[] = [];
    const connect = async (name: string) => {
      const nc = await connectNats({ servers: server.url, name, logger: log });
      conns.push(nc);
      return nc;
    };
    const closers: (() => Promise<void>)[] = [];
    const release = defer('nats section', async () => {
      while (closers.length > 0) await closers.pop()!().catch(() => undefined);
      for (const nc of conns) if (!nc.isClosed()) await nc.close().catch(() => undefined);
      await server.cleanup();
    });
    try {
      // ---- (a) propagation A → store → B → SSE ------------------------------------------------
      ctx.progress('nats: starting instance A (runtime) and instance B (landing app) on JetStream');
      const ncA = await connect('bench-a');
      const ncB = await connect('bench-b');
      const storeA = await JetStreamEventStore.open(ncA, { logger: log });
      const storeB = await JetStreamEventStore.open(ncB, { logger: log });
      closers.push(
        () => storeA.close(),
        () => storeB.close(),
      );
      const fly = new FakeFlyMachines();
      const rigA = makeRuntimeRig(storeA, { fly, instance: 'bench-a' });
      closers.push(() => rigA.close());
      await rigA.runtime.boot();
      const cfgB = toConfig(
        parseEnv(whereEnv, {
          WM_LOCAL: '1',
          LOG_LEVEL: 'silent',
          WM_INSTANCE_ID: 'bench-b',
          FLY_REGION: 'syd',
          HOST: '127.0.0.1',
          PORT: '0',
          PRIVATE_HOST: '127.0.0.1',
          PRIVATE_PORT: '0',
          WM_CALLBACK_SECRET: 'x'.repeat(40),
          DEBUG_TOKEN: 'debug-token-for-bench',
          WM_AUTOSPAWN: '0',
          WM_MAX_MACHINES: '1000',
          WM_RECONCILE_MIN_GAP_MS: '600000',
          WM_RECONCILE_INTERVAL_MS: '600000',
        }),
      );
      const systemB = await createWhere(cfgB, {
        store: storeB,
        ledger: new MemoryCapacityLedger(),
        leases: new MemoryLeases(),
        presence: new MemoryPresence(),
        fly,
        clock: systemClock,
        timers: new SystemTimers(systemClock),
        ids: new UlidIds(),
        log,
      });
      closers.push(() => systemB.stop());
      const urls = await systemB.start();
      const watcher = await sseWatcher(`${urls.publicUrl!}/events`);
      closers.push(async () => watcher.close());

      ctx.progress(`nats: ${SAMPLES} propagations A → B → SSE client`);
      const prop: number[] = [];
      const WARM = 20;
      for (let k = 1; k <= WARM + SAMPLES; k++) {
        const machineId = `natsk${k.toString().padStart(6, '0')}x`;
        const arrived = watcher.arrival(machineId);
        const t0 = performance.now();
        const applied = rigA.runtime.dispatch({
          type: 'fly.machineCreated',
          data: {
            machineId,
            region: 'ams',
            instanceId: 'i',
            state: 'started',
            createdAt: Date.now(),
          },
        });
        const t1 = await arrived;
        await applied;
        if (k > WARM) prop.push(t1 - t0);
        await new Promise((r) => setTimeout(r, 10));
      }

      ctx.progress(`nats: ${CORE_SAMPLES} raw core publish → subscribe`);
      const payload = JSON.stringify((await storeA.read(`vm.natsk000001x`))[0] ?? {});
      const core: number[] = [];
      {
        let resolveMsg: ((t: number) => void) | undefined;
        const sub = ncB.subscribe('bench.latency', {
          callback: () => resolveMsg?.(performance.now()),
        });
        await ncB.flush();
        for (let i = 0; i < 100 + CORE_SAMPLES; i++) {
          const got = new Promise<number>((r) => (resolveMsg = r));
          const t0 = performance.now();
          ncA.publish('bench.latency', payload);
          const t1 = await got;
          if (i >= 100) core.push(t1 - t0);
        }
        sub.unsubscribe();
      }

      ctx.progress(`nats: ${SAMPLES} raw JetStream publish → ordered consumer`);
      const jsFloor: number[] = [];
      {
        const jsm = await jetstreamManager(ncA);
        await jsm.streams.add({ name: 'BENCH_LAT', subjects: ['benchlat.>'] });
        const consumer = await jetstream(ncB).consumers.get('BENCH_LAT', {
          filter_subjects: 'benchlat.>',
        });
        const messages = await consumer.consume({ max_messages: 256 });
        let resolveMsg: ((t: number) => void) | undefined;
        const reading = (async () => {
          for await (const _m of messages) resolveMsg?.(performance.now());
        })();
        const js = jetstream(ncA);
        for (let i = 0; i < 20 + SAMPLES; i++) {
          const got = new Promise<number>((r) => (resolveMsg = r));
          const t0 = performance.now();
          const ack = js.publish('benchlat.x', payload);
          const t1 = await got;
          await ack;
          if (i >= 20) jsFloor.push(t1 - t0);
        }
        messages.stop();
        await reading;
        await jsm.streams.delete('BENCH_LAT');
      }

      const limit50 = 2 * p50(core) + 5;
      const limit99 = 2 * p99(core) + 5;
      rows.push(
        row({
          metric: "A records a fact → B's SSE client has the frame, p50",
          value: p50(prop),
          unit: 'ms',
          fmt: fmtMs,
          floor: p50(core),
          checks: [atMost(p50(prop), limit50, `≤ 2× floor + 5 ms (${fmtMs(limit50)})`)],
        }),
        row({
          metric: "A records a fact → B's SSE client has the frame, p99",
          value: p99(prop),
          unit: 'ms',
          fmt: fmtMs,
          floor: p99(core),
          checks: [atMost(p99(prop), limit99, `≤ 2× floor + 5 ms (${fmtMs(limit99)})`)],
        }),
        row({
          metric: '  context: raw JetStream publish → ordered consumer, p50',
          value: p50(jsFloor),
          unit: 'ms',
          fmt: fmtMs,
          floor: p50(core),
        }),
        row({
          metric: '  context: raw JetStream publish → ordered consumer, p99',
          value: p99(jsFloor),
          unit: 'ms',
          fmt: fmtMs,
          floor: p99(core),
        }),
      );
      data.propagation = {
        samples: SAMPLES,
        ms: summarize(prop),
        coreMs: summarize(core),
        jetstreamMs: summarize(jsFloor),
        payloadBytes: payload.length,
      };
      notes.push(
        `(a) ${SAMPLES} samples (after 20 warm-up), 10 ms apart; A = ActorRuntime on its own connection and JetStreamEventStore; B = createWhere on another connection and store, its Fleet writing to one SSE client over HTTP. t0 before A's dispatch (which appends with expect-last-sequence and awaits the ack). Floor = core NATS publish → subscription callback between the same two connections, ${CORE_SAMPLES} samples of the same ${payload.length} B event JSON. All in one process on loopback.`,
      );

      // ---- (b) boot replay from JetStream ------------------------------------------------------
      // Every 10th actor stream left open, so boot has live actors to fold (as runtime (c)).
      const events = withOpenStreams(
        await lifecycleEvents(ctx, q ? 300 : Math.ceil(100_000 / EVENTS_PER_LAUNCH)),
        10,
      ).events;
      ctx.progress(
        `nats: appending ${events.length} events to JetStream (stream ${REPLAY_STREAM.name})`,
      );
      const writer = await JetStreamEventStore.open(ncA, { logger: log, stream: REPLAY_STREAM });
      const byStream = new Map<string, StoredEvent[]>();
      for (const e of events) {
        const s = byStream.get(e.stream);
        if (s) s.push(e);
        else byStream.set(e.stream, [e]);
      }
      const streams = [...byStream.values()];
      const w0 = performance.now();
      await pool(streams.length, 256, async (i) => {
        for (const e of streams[i]!) {
          const { version, position: _p, ...envelope } = e;
          await writer.append(e.stream, [envelope], { expectedVersion: version - 1 });
        }
      });
      const writeMs = performance.now() - w0;
      await writer.close();
      const jsm = await jetstreamManager(ncA);
      const lastSeq = (await jsm.streams.info(REPLAY_STREAM.name)).state.last_seq;
      if (lastSeq !== events.length)
        throw new Error(`JetStream holds ${lastSeq} events, expected ${events.length}`);

      const rawConsume = async (): Promise<number> => {
        const nc = await connect('bench-raw');
        try {
          const t = performance.now();
          const consumer = await jetstream(nc).consumers.get(REPLAY_STREAM.name, {
            filter_subjects: `${REPLAY_STREAM.subjectPrefix}.>`,
          });
          const messages = await consumer.consume({ max_messages: 1000 });
          let n = 0;
          for await (const m of messages) {
            JSON.parse(m.string());
            n++;
            if (m.seq >= lastSeq) break;
          }
          const ms = performance.now() - t;
          messages.stop();
          await consumer.delete().catch(() => false);
          if (n !== events.length) throw new Error(`raw consume read ${n} of ${events.length}`);
          return ms;
        } finally {
          await nc.close();
        }
      };
      const runtimeBoot = async (): Promise<number> => {
        const nc = await connect('bench-boot');
        try {
          const t = performance.now();
          const store = await JetStreamEventStore.open(nc, { logger: log, stream: REPLAY_STREAM });
          // Folds the open actors but re-drives none: a re-drive would append facts that end them,
          // and every round must replay the same history.
          const rig = makeRuntimeRig(store, { drives: () => false });
          const report = await rig.runtime.boot();
          const ms = performance.now() - t;
          await rig.close();
          await store.close();
          if (report.events !== events.length)
            throw new Error(`runtime boot replayed ${report.events} of ${events.length}`);
          return ms;
        } finally {
          await nc.close();
        }
      };
      ctx.progress(
        `nats: replay ${events.length} events, ${REPS} rounds of raw consume / runtime boot`,
      );
      const raws: number[] = [];
      const boots: number[] = [];
      for (let r = 0; r < REPS; r++) {
        await settleHeap();
        raws.push(await rawConsume());
        await settleHeap();
        boots.push(await runtimeBoot());
      }
      const raw = Math.min(...raws);
      const boot = Math.min(...boots);
      rows.push(
        row({
          metric: `boot replay of ${events.length} events from JetStream`,
          value: boot,
          unit: 'ms',
          fmt: fmtMs,
          floor: raw,
          checks: [atMost(boot / raw, 2.5, '≤ 2.5× floor')],
        }),
        row({
          metric: '  context: appending them (256 actor streams in flight)',
          value: (events.length / writeMs) * 1000,
          unit: 'events/s',
          fmt: (v) => fmtRate(v, 'events'),
        }),
      );
      data.replay = {
        events: events.length,
        rawConsumeMs: raws,
        runtimeBootMs: boots,
        appendMs: writeMs,
      };
      notes.push(
        `(b) floor = new connection, ordered consumer on ${REPLAY_STREAM.subjectPrefix}.>, consume({max_messages: 1000}), JSON.parse of each message, until the last sequence; measured = new connection, JetStreamEventStore.open + ActorRuntime.boot (which reads through the store's own ordered consumer, decodes with zod, folds the open actors — every 10th stream — without re-driving them, so each round replays the same history). Best of ${REPS} alternating rounds each. nats-server ${server.url}, file storage, R1.`,
      );
    } finally {
      await release();
    }
    return { rows, notes, data };
  },
};
