/**
 * nats-server is SIGKILLed (twice) in the middle of a stream of appends and started again on the
 * same port and store: no acknowledged event is lost, none is stored twice (a publish retried after
 * a lost ack is deduplicated by its msg id), and a live subscriber sees every event once, in order.
 */
import { describe, expect, it } from 'vitest';
import { JetStreamEventStore } from '../../../src/adapters/nats/jetStreamEventStore.js';
import type { StoredEvent } from '../../../src/events/envelope.js';
import { StoreUnavailableError } from '../../../src/shared/errors.js';
import { NatsCapacityLedger } from '../../../src/adapters/nats/natsKv.js';
import { NatsServer } from '../../support/natsServer.js';
import { aStream } from '../../support/events.js';
import { NATS_SERVER, needs } from '../../support/require.js';
import { collect, connectTo, drainAll, ev, logger } from './helpers.js';

const HAVE_NATS = needs('nats-server', NATS_SERVER);

const WRITERS = 3;
const STREAMS_PER_WRITER = 4;
const EVENTS_PER_WRITER = 150;
const KILL_AT = [120, 300]; // acknowledged appends after which the server is killed

describe.skipIf(!HAVE_NATS)('event store across nats-server crashes', () => {
  it(
    'keeps every acknowledged event exactly once and the feed gap-free through kill -9 and restart',
    { timeout: 120_000 },
    async () => {
      const server = await NatsServer.start();
      const ncW = await connectTo(server.url, 'writer');
      const ncR = await connectTo(server.url, 'reader');
      try {
        const writer = await JetStreamEventStore.open(ncW, {
          logger,
          requestTimeoutMs: 1000,
          unavailableAfterMs: 30_000,
        });
        const reader = await JetStreamEventStore.open(ncR, { logger });
        const ours = new Set<string>();
        const seen: StoredEvent[] = [];
        const stopFeed = reader.subscribe(0, (e) => {
          if (ours.has(e.stream)) seen.push(e);
        });

        const acked: { id: string; stream: string; version: number; position: number }[] = [];
        const restarts: Promise<void>[] = [];
        let unavailable = 0;
        const writerLoop = async () => {
          const streams = Array.from({ length: STREAMS_PER_WRITER }, () => aStream('launch'));
          for (const s of streams) ours.add(s);
          const versions = new Map(streams.map((s) => [s, 0]));
          for (let i = 0; i < EVENTS_PER_WRITER; i++) {
            const s = streams[i % streams.length]!;
            const e = ev(s, i);
            const expected = versions.get(s)!;
            // What the runtime does with an append that failed for lack of a store: try the same event again.
            for (;;) {
              try {
                const r = await writer.append(s, [e], { expectedVersion: expected });
                expect(r.version).toBe(expected + 1);
                versions.set(s, r.version);
                acked.push({ id: e.id, stream: s, version: r.version, position: r.position });
                break;
              } catch (err) {
                if (!(err instanceof StoreUnavailableError)) throw err;
                unavailable++;
              }
            }
            // Crash the server right here, with the other writers' publishes in flight.
            if (KILL_AT.includes(acked.length)) restarts.push(server.restart());
          }
        };
        await Promise.all(Array.from({ length: WRITERS }, writerLoop));
        await Promise.all(restarts);
        expect(restarts).toHaveLength(KILL_AT.length);
        const total = WRITERS * EVENTS_PER_WRITER;
        expect(acked).toHaveLength(total);

        // What the server holds, read through a fresh connection.
        const ncCheck = await connectTo(server.url, 'check');
        const check = await JetStreamEventStore.open(ncCheck, { logger, ownsConnection: true });
        const stored = (await collect(check.readAll(0))).filter((e) => ours.has(e.stream));
        await check.close();

        const count = new Map<string, number>();
        for (const e of stored) count.set(e.id, (count.get(e.id) ?? 0) + 1);
        expect(acked.filter((a) => count.get(a.id) !== 1)).toEqual([]); // none lost, none twice
        expect(stored).toHaveLength(total);
        const byStream = new Map<string, StoredEvent[]>();
        for (const e of stored) byStream.set(e.stream, [...(byStream.get(e.stream) ?? []), e]);
        for (const [s, evs] of byStream) {
          expect(evs.map((e) => e.version)).toEqual(evs.map((_, i) => i + 1));
          expect(evs.map((e) => e.id)).toEqual(
            acked.filter((a) => a.stream === s).map((a) => a.id),
          );
        }

        // The live feed rode out both crashes: every event, once, in store order.
        await expect.poll(() => seen.length, { timeout: 30_000 }).toBeGreaterThanOrEqual(total);
        expect(seen.map((e) => e.id)).toEqual(stored.map((e) => e.id));
        const positions = seen.map((e) => e.position);
        expect(positions.every((p, i) => i === 0 || p > positions[i - 1]!)).toBe(true);
        stopFeed();
        await writer.close();
        await reader.close();
        // Not asserted (it depends on timing), but worth seeing when this test is read in a log.
        if (unavailable > 0)
          process.stderr.write(
            `crash test: ${unavailable} appends waited past unavailableAfterMs\n`,
          );
      } finally {
        await drainAll(ncW, ncR);
        await server.cleanup();
      }
    },
  );
  it('fails appends, reads and KV calls with StoreUnavailableError when the server stays down', async () => {
    const server = await NatsServer.start();
    const nc = await connectTo(server.url, 'outage');
    try {
      const store = await JetStreamEventStore.open(nc, {
        logger,
        requestTimeoutMs: 500,
        unavailableAfterMs: 1500,
      });
      const ledger = await NatsCapacityLedger.open(nc, {
        logger,
        requestTimeoutMs: 500,
        unavailableAfterMs: 1500,
      });
      const s = aStream('vm');
      await store.append(s, [ev(s)], { expectedVersion: 0 });
      await server.kill();
      // Never silently lost: each call waits a bounded time, then says so with a typed error.
      const outcomes = await Promise.allSettled([
        store.append(s, [ev(s)], { expectedVersion: 1 }),
        store.read(s),
        collect(store.readAll(0)),
        ledger.reserve('h', 1, 0, 1),
      ]);
      for (const o of outcomes) {
        expect(o.status).toBe('rejected');
        if (o.status === 'rejected') expect(o.reason).toBeInstanceOf(StoreUnavailableError);
      }
      await store.close();
    } finally {
      await drainAll(nc).catch(() => undefined);
      await nc.close();
      await server.cleanup();
    }
  });
});
