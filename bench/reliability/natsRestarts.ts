/**
 * G3 figures: actor streams appended at a steady rate through JetStreamEventStore while a private
 * nats-server is SIGKILLed and restarted (same port, same store dir) again and again; afterwards
 * every acknowledged append is checked against what the stream holds (each msg id once, versions
 * gap-free per actor stream) and against what a live subscriber saw.
 * `node --import tsx bench/reliability/natsRestarts.ts` (CI: test/integration/reliability/natsRestarts.test.ts)
 */
import { jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { connectNats } from '../../src/adapters/nats/connection.js';
import { JetStreamEventStore } from '../../src/adapters/nats/jetStreamEventStore.js';
import type { StoredEvent } from '../../src/events/envelope.js';
import { StoreUnavailableError, VersionConflictError } from '../../src/shared/errors.js';
import { silentLogger } from '../../src/shared/log.js';
import { aStream, anEvent } from '../../test/support/events.js';
import { NatsServer } from '../../test/support/natsServer.js';
import { isMain, table, type Row } from './lib.js';

export interface NatsRestartsOptions {
  /** How long events are issued. */
  durationMs: number;
  /** Events issued per second, all streams together. */
  ratePerS: number;
  /** kill -9 + restart of the server, spread over the duration. */
  kills: number;
  /** Actor streams appended to at the same time (each serially, as the runtime does per actor). */
  concurrentStreams?: number;
  /** Events per actor stream before it is finished and a new one starts. */
  eventsPerStream?: number;
  /** Writer connections the streams are spread over. */
  writers?: number;
  seed?: number;
}

export interface NatsRestartsResult {
  durationMs: number;
  issued: number;
  acked: number;
  /** Kills carried out, and how long each outage lasted (kill to accepting again), ms. */
  kills: number;
  outagesMs: number[];
  /** Appends in flight when the server was killed (issued before the kill, acknowledged after it). */
  inFlightAtKill: number;
  /** Appends that failed with StoreUnavailableError and were tried again with the same event. */
  retriedUnavailable: number;
  /** Appends answered with a version conflict (a retried append whose first try was stored). */
  conflicts: number;
  /** Achieved rate of acknowledged appends while issuing, per second. */
  ackedPerS: number;
  streams: number;
  /** Our events in the stream after the run (read back through a fresh connection). */
  stored: number;
  /** Messages in the JetStream stream (all of them ours: the server is private). */
  streamMessages: number;
  /** Acknowledged events not in the stream. */
  lost: number;
  /** Msg ids stored more than once. */
  storedTwice: number;
  /** Stored events never acknowledged to a writer. */
  unacked: number;
  /** Actor streams whose versions are not 1..n, or whose order differs from the acks. */
  gappedStreams: number;
  /** Live subscriber: events seen, seen twice, missing, out of store order. */
  feedSeen: number;
  feedDuplicates: number;
  feedMissing: number;
  feedReordered: number;
  /** Any error other than the two above (should be none). */
  errors: string[];
}

const logger = silentLogger();

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, Math.max(0, ms)));

function connect(url: string, name: string): Promise<NatsConnection> {
  return connectNats({
    servers: url,
    name,
    logger,
    reconnectTimeWaitMs: 100,
    reconnectJitterMs: 100,
  });
}

interface Acked {
  id: string;
  stream: string;
  version: number;
  /** When the append was first tried and when it was acknowledged (epoch ms). */
  from: number;
  to: number;
}

/** One actor stream: its events appended one after another, each retried until acknowledged. */
interface Actor {
  stream: string;
  store: JetStreamEventStore;
  version: number;
  issued: number;
  chain: Promise<void>;
}

export async function runNatsRestarts(opts: NatsRestartsOptions): Promise<NatsRestartsResult> {
  const concurrent = opts.concurrentStreams ?? 20;
  const perStream = opts.eventsPerStream ?? 10;
  const writers = opts.writers ?? 3;
  const random = mulberry32(opts.seed ?? 1);
  const server = await NatsServer.start();
  const conns: NatsConnection[] = [];
  const stores: JetStreamEventStore[] = [];
  const errors: string[] = [];
  try {
    for (let i = 0; i < writers; i++) {
      const nc = await connect(server.url, `g3-writer-${i}`);
      conns.push(nc);
      stores.push(
        await JetStreamEventStore.open(nc, {
          logger,
          requestTimeoutMs: 1000,
          unavailableAfterMs: 30_000,
        }),
      );
    }
    const ncFeed = await connect(server.url, 'g3-feed');
    conns.push(ncFeed);
    const feedStore = await JetStreamEventStore.open(ncFeed, { logger });
    stores.push(feedStore);
    const seen: StoredEvent[] = [];
    const stopFeed = feedStore.subscribe(0, (e) => seen.push(e));

    const acked: Acked[] = [];
    let retriedUnavailable = 0;
    let conflicts = 0;
    let issued = 0;
    let streamsMade = 0;
    /** Set at a kill's time: the next append to start fires it at once (its publish in flight). */
    let killWanted: (() => void) | undefined;

    const newActor = (): Actor => ({
      stream: aStream('launch'),
      store: stores[streamsMade++ % writers]!,
      version: 0,
      issued: 0,
      chain: Promise.resolve(),
    });
    const appendOne = async (a: Actor, visitors: number): Promise<void> => {
      const e = anEvent(a.stream, 'presence.changed', { visitors, roll: 0 });
      const expected = a.version;
      const from = Date.now();
      for (;;) {
        try {
          const pending = a.store.append(a.stream, [e], { expectedVersion: expected });
          const kill = killWanted;
          killWanted = undefined;
          kill?.();
          const r = await pending;
          if (r.version !== expected + 1)
            errors.push(`${a.stream}: acked at version ${r.version}, expected ${expected + 1}`);
          a.version = r.version;
          acked.push({ id: e.id, stream: a.stream, version: r.version, from, to: Date.now() });
          return;
        } catch (err) {
          if (err instanceof StoreUnavailableError) {
            // What the runtime does with an append that failed for lack of a store: the same event again.
            retriedUnavailable++;
            continue;
          }
          if (err instanceof VersionConflictError) {
            // Our own earlier try may have been stored: it then counts as acknowledged, once.
            conflicts++;
            const stored = await a.store.read(a.stream, expected);
            const mine = stored.find((s) => s.id === e.id);
            if (mine) {
              a.version = mine.version;
              acked.push({
                id: e.id,
                stream: a.stream,
                version: mine.version,
                from,
                to: Date.now(),
              });
              return;
            }
          }
          errors.push(`${a.stream}: ${err instanceof Error ? err.message : String(err)}`);
          return;
        }
      }
    };

    // The kill schedule: evenly spread, each moved by up to ±20 % of a slot (seeded).
    const slot = opts.durationMs / Math.max(1, opts.kills);
    const killAt = Array.from(
      { length: opts.kills },
      (_, i) => (i + 0.5) * slot + (random() - 0.5) * 0.4 * slot,
    );
    const outagesMs: number[] = [];
    const killedAt: number[] = [];
    let kills = 0;
    const start = Date.now();
    const killer = (async () => {
      for (const at of killAt) {
        await sleep(start + at - Date.now());
        await new Promise<void>((resolve) => (killWanted = resolve));
        // No wait: SIGKILL goes out while that publish is on its way (sent or queued, unacknowledged).
        const t0 = Date.now();
        killedAt.push(t0);
        await server.restart();
        outagesMs.push(Date.now() - t0);
        kills++;
      }
    })();

    const actors: Actor[] = Array.from({ length: concurrent }, newActor);
    const all: Actor[] = [...actors];
    const total = Math.round((opts.durationMs / 1000) * opts.ratePerS);
    for (let i = 0; i < total; i++) {
      await sleep(start + (i * 1000) / opts.ratePerS - Date.now());
      const k = i % concurrent;
      let a = actors[k]!;
      if (a.issued >= perStream) {
        a = actors[k] = newActor();
        all.push(a);
      }
      a.issued++;
      issued++;
      const n = a.issued;
      a.chain = a.chain.then(() => appendOne(a, n));
    }
    const issuedFor = Date.now() - start;
    const ackedWhileIssuing = acked.length;
    await killer;
    await Promise.all(all.map((a) => a.chain));

    // What the server holds, read through a fresh connection.
    const ncCheck = await connect(server.url, 'g3-check');
    const check = await JetStreamEventStore.open(ncCheck, { logger });
    const ours = new Set(all.map((a) => a.stream));
    const stored: StoredEvent[] = [];
    for await (const e of check.readAll(0)) if (ours.has(e.stream)) stored.push(e);
    const jsm = await jetstreamManager(ncCheck);
    const streamMessages = (await jsm.streams.info(check.config.name)).state.messages;
    await check.close();
    await ncCheck.drain();

    const count = new Map<string, number>();
    for (const e of stored) count.set(e.id, (count.get(e.id) ?? 0) + 1);
    const ackedIds = new Set(acked.map((a) => a.id));
    const byStream = new Map<string, StoredEvent[]>();
    for (const e of stored) {
      const list = byStream.get(e.stream);
      if (list) list.push(e);
      else byStream.set(e.stream, [e]);
    }
    const ackedByStream = new Map<string, string[]>();
    for (const a of acked) {
      const list = ackedByStream.get(a.stream);
      if (list) list.push(a.id);
      else ackedByStream.set(a.stream, [a.id]);
    }
    let gappedStreams = 0;
    for (const [s, ids] of ackedByStream) {
      const evs = byStream.get(s) ?? [];
      const gapFree = evs.every((e, i) => e.version === i + 1);
      const sameOrder = evs.length === ids.length && evs.every((e, i) => e.id === ids[i]);
      if (!gapFree || !sameOrder) gappedStreams++;
    }

    // The live feed rode out every crash: each event once, in store order.
    const deadline = Date.now() + 30_000;
    const oursSeen = () => seen.filter((e) => ours.has(e.stream));
    while (oursSeen().length < stored.length && Date.now() < deadline) await sleep(100);
    stopFeed();
    const feed = oursSeen();
    const feedCount = new Map<string, number>();
    for (const e of feed) feedCount.set(e.id, (feedCount.get(e.id) ?? 0) + 1);
    const storeOrder = new Map(stored.map((e, i) => [e.id, i]));
    let feedReordered = 0;
    for (let i = 1; i < feed.length; i++)
      if ((storeOrder.get(feed[i]!.id) ?? -1) <= (storeOrder.get(feed[i - 1]!.id) ?? -1))
        feedReordered++;

    return {
      durationMs: issuedFor,
      issued,
      acked: acked.length,
      kills,
      outagesMs,
      inFlightAtKill: acked.filter((a) => killedAt.some((k) => a.from <= k && a.to > k)).length,
      retriedUnavailable,
      conflicts,
      ackedPerS: (ackedWhileIssuing / issuedFor) * 1000,
      streams: all.length,
      stored: stored.length,
      streamMessages,
      lost: acked.filter((a) => !count.has(a.id)).length,
      storedTwice: [...count.values()].filter((n) => n > 1).length,
      unacked: stored.filter((e) => !ackedIds.has(e.id)).length,
      gappedStreams,
      feedSeen: feed.length,
      feedDuplicates: [...feedCount.values()].filter((n) => n > 1).length,
      feedMissing: stored.filter((e) => !feedCount.has(e.id)).length,
      feedReordered,
      errors,
    };
  } finally {
    for (const s of stores) await s.close().catch(() => undefined);
    for (const nc of conns) if (!nc.isClosed()) await nc.close().catch(() => undefined);
    await server.cleanup();
  }
}

/** The goal's pass criterion on one run. */
export function g3Holds(r: NatsRestartsResult, kills: number): boolean {
  return (
    r.kills === kills &&
    r.errors.length === 0 &&
    r.acked === r.issued &&
    r.lost === 0 &&
    r.storedTwice === 0 &&
    r.unacked === 0 &&
    r.gappedStreams === 0 &&
    r.stored === r.acked &&
    r.streamMessages === r.acked &&
    r.feedDuplicates === 0 &&
    r.feedMissing === 0 &&
    r.feedReordered === 0
  );
}

export async function measure(): Promise<Row[]> {
  const kills = 10;
  const r = await runNatsRestarts({ durationMs: 60_000, ratePerS: 100, kills, seed: 3 });
  const outages = [...r.outagesMs].sort((a, b) => a - b);
  return [
    {
      goal: 'G3 NATS restarts',
      command:
        'node --import tsx bench/reliability/natsRestarts.ts (CI: test/integration/reliability/natsRestarts.test.ts)',
      figure:
        `${r.kills} × kill -9/restart in ${(r.durationMs / 1000).toFixed(0)} s at ${r.ackedPerS.toFixed(0)} acked events/s ` +
        `(${r.issued} issued over ${r.streams} actor streams, 3 writer connections; outages ${outages[0]}–${outages.at(-1)} ms): ` +
        `acked ${r.acked}, in stream ${r.stored} (stream holds ${r.streamMessages} msgs); lost ${r.lost}, msg ids stored twice ${r.storedTwice}, ` +
        `stored but never acked ${r.unacked}; streams with a version gap or out of ack order ${r.gappedStreams}; ` +
        `live feed: ${r.feedSeen} seen, ${r.feedDuplicates} twice, ${r.feedMissing} missing, ${r.feedReordered} reordered; ` +
        `appends in flight at a kill ${r.inFlightAtKill}, retried after StoreUnavailable ${r.retriedUnavailable}, version conflicts ${r.conflicts}, other errors ${r.errors.length}`,
      verdict: g3Holds(r, kills) ? 'PASS' : 'MISS',
    },
  ];
}

if (isMain(import.meta)) {
  const rows = await measure();
  console.log(table(rows));
}
