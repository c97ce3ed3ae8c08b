/**
 * A 3-node JetStream cluster on loopback: the event store and the capacity ledger with replicas 3
 * keep working when the node leading the event stream is SIGKILLed, and lose nothing.
 */
import { describe, expect, it } from 'vitest';
import { jetstreamManager } from '@nats-io/jetstream';
import { JetStreamEventStore } from '../../../src/adapters/nats/jetStreamEventStore.js';
import { NatsCapacityLedger } from '../../../src/adapters/nats/natsKv.js';
import type { StoredEvent } from '../../../src/events/envelope.js';
import { NatsCluster, processAlive } from '../../support/natsServer.js';
import { aStream } from '../../support/events.js';
import { NATS_SERVER, needs } from '../../support/require.js';
import { collect, connectTo, drainAll, ev, logger } from './helpers.js';

const HAVE_NATS = needs('nats-server', NATS_SERVER);
const T0 = Date.UTC(2026, 0, 1);

describe.skipIf(!HAVE_NATS)('NATS adapters on a 3-node cluster', () => {
  it(
    'store and ledger with replicas 3 survive the stream leader being killed',
    { timeout: 120_000 },
    async () => {
      const cluster = await NatsCluster.start(3);
      const pids = cluster.servers.map((s) => s.pid!);
      const nc = await connectTo(cluster.urls, 'cluster-writer');
      const ncR = await connectTo(cluster.urls, 'cluster-reader');
      try {
        // Every instance opens the store with the same config (a different one would update the stream).
        const streamCfg = { replicas: 3 };
        const store = await JetStreamEventStore.open(nc, {
          logger,
          stream: streamCfg,
          requestTimeoutMs: 2000,
        });
        const reader = await JetStreamEventStore.open(ncR, { logger, stream: streamCfg });
        const ledger = await NatsCapacityLedger.open(nc, {
          logger,
          replicas: 3,
          key: 'cluster-cap',
        });

        const info = await (await jetstreamManager(nc)).streams.info('WM_EVENTS');
        expect(info.config.num_replicas).toBe(3);
        expect(info.cluster?.replicas).toHaveLength(2);
        const leader = info.cluster?.leader;
        expect(leader).toBeDefined();

        const streams = [aStream('launch'), aStream('vm'), aStream('launch')];
        const mine = new Set(streams);
        const seen: StoredEvent[] = [];
        const stop = reader.subscribe(0, (e) => {
          if (mine.has(e.stream)) seen.push(e);
        });
        const appended = new Map(streams.map((s) => [s, [] as string[]]));
        const appendRound = async (n: number) => {
          for (let i = 0; i < n; i++) {
            const s = streams[i % streams.length]!;
            const e = ev(s, i);
            const r = await store.append(s, [e], { expectedVersion: appended.get(s)!.length });
            appended.get(s)!.push(e.id);
            expect(r.version).toBe(appended.get(s)!.length);
          }
        };

        await appendRound(30);
        expect((await ledger.reserve('before', 2, T0, T0 + 60_000)).ok).toBe(true);

        // Kill the node that leads the event stream: the other two elect a new leader.
        const victim = cluster.servers.find((s) => s.serverName === leader)!;
        await victim.kill();
        expect(processAlive(pids[cluster.servers.indexOf(victim)]!)).toBe(false);

        await appendRound(30);
        expect((await ledger.reserve('after', 2, T0, T0 + 60_000)).ok).toBe(true);
        expect((await ledger.reserve('over', 2, T0, T0 + 60_000)).ok).toBe(false);

        for (const s of streams) {
          const back = await store.read(s);
          expect(back.map((e) => e.id)).toEqual(appended.get(s));
          expect(back.map((e) => e.version)).toEqual(appended.get(s)!.map((_, i) => i + 1));
        }
        const all = (await collect(reader.readAll(0))).filter((e) => mine.has(e.stream));
        expect(all).toHaveLength(60);
        await expect.poll(() => seen.length, { timeout: 30_000 }).toBeGreaterThanOrEqual(60);
        expect(seen.map((e) => e.id)).toEqual(all.map((e) => e.id));
        const after = await (await jetstreamManager(nc)).streams.info('WM_EVENTS');
        expect(after.cluster?.leader).not.toBe(leader);
        stop();
        await store.close();
        await reader.close();
      } finally {
        await drainAll(nc, ncR);
        await cluster.cleanup();
      }
      expect(pids.filter(processAlive)).toEqual([]);
    },
  );
});
