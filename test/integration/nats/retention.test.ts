/**
 * JetStream retention on real nats-servers (ADR 0014): compact() moves closed streams past retention
 * to the archive stream and out of the live one, concurrently from two instances and through kill -9.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import {
  JetStreamEventStore,
  POSITION_HEADER,
  VERSION_HEADER,
  type CompactionStep,
  type JetStreamEventStoreOptions,
} from '../../../src/adapters/nats/jetStreamEventStore.js';
import type { EventEnvelope } from '../../../src/events/envelope.js';
import { StreamArchivedError } from '../../../src/shared/errors.js';
import { NatsServer } from '../../support/natsServer.js';
import { aStream, anEvent } from '../../support/events.js';
import { NATS_SERVER, needs } from '../../support/require.js';
import { collect, connectTo, drainAll, logger } from './helpers.js';

const HAVE_NATS = needs('nats-server', NATS_SERVER);
const HOUR = 3_600_000;

let streamNo = 0;
/** A live stream and archive of its own per test, so counts are this test's alone. */
function freshStreams(): { name: string; subjectPrefix: string } {
  const n = `${process.pid}x${streamNo++}`;
  return { name: `RT_${n}`, subjectPrefix: `rt${n}.events` };
}

/** `n` facts for `stream`, the last one closing it at `closedAt` when given. */
function facts(stream: string, n: number, closedAt?: number): EventEnvelope[] {
  const base = closedAt ?? Date.now();
  return Array.from({ length: n }, (_, i) => {
    const e = anEvent(stream, 'presence.changed', { visitors: i, roll: 0 }, base - (n - 1 - i));
    return closedAt !== undefined && i === n - 1 ? { ...e, meta: { closes: true as const } } : e;
  });
}

interface Stored {
  subject: string;
  id: string;
  version: number;
  position?: number;
}

/** Every message a JetStream stream holds, by sequence (a small stream: one get per sequence). */
async function contents(nc: NatsConnection, name: string): Promise<Stored[]> {
  const jsm = await jetstreamManager(nc);
  const info = await jsm.streams.info(name);
  const out: Stored[] = [];
  if (info.state.messages === 0) return out;
  for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
    const m = await jsm.streams.getMessage(name, { seq });
    if (!m) continue; // purged
    const pos = m.header.get(POSITION_HEADER);
    out.push({
      subject: m.subject,
      id: m.json<{ id: string }>().id,
      version: Number(m.header.get(VERSION_HEADER)),
      ...(pos ? { position: Number(pos) } : {}),
    });
  }
  return out;
}

/** A store over `stream` (and its archive) on `nc`. */
const open = async (
  nc: NatsConnection,
  stream: { name: string; subjectPrefix: string },
  extra: Partial<JetStreamEventStoreOptions> = {},
) => JetStreamEventStore.open(nc, { logger, stream, ...extra });

const ids = (xs: readonly { id: string }[]): string[] => xs.map((x) => x.id);

describe.skipIf(!HAVE_NATS)('JetStream retention: compaction to the archive stream', () => {
  let server: NatsServer;
  beforeAll(async () => {
    server = await NatsServer.start();
  });
  afterAll(async () => {
    await server?.cleanup();
  });

  it('archives only closed streams past retention, keeps open and recent ones, and boot reads only what is live', async () => {
    const nc = await connectTo(server.url, 'retention');
    const names = freshStreams();
    // Our clock runs an hour ahead of the server's, so archived copies are past the 10 min grace.
    const now = Date.now() + HOUR;
    const store = await open(nc, names, {
      retention: { maxAgeMs: HOUR },
      now: () => now,
      unavailableAfterMs: 5_000,
    });
    try {
      const openS = aStream('launch');
      const recent = aStream('launch');
      const old = aStream('vm');
      const openFacts = facts(openS, 3);
      const recentFacts = facts(recent, 4, now - 10 * 60_000);
      const oldFacts = facts(old, 5, now - 2 * HOUR);
      await store.append(openS, openFacts, { expectedVersion: 0 });
      await store.append(recent, recentFacts, { expectedVersion: 0 });
      // Written last: the live stream's last_seq is purged, and reads must still end.
      const oldEnd = await store.append(old, oldFacts, { expectedVersion: 0 });

      const first = await store.compact();
      expect(first).toMatchObject({ droppedStreams: 1, droppedEvents: 5, copiedStreams: 2 });
      expect(first.keptEvents).toBe(7);

      expect(await store.status(old)).toBe('archived');
      expect(await store.status(recent)).toBe('live');
      expect(await store.status(openS)).toBe('live');
      expect(await store.status(aStream('launch'))).toBe('unknown');
      expect(await store.read(old)).toEqual([]);
      expect(ids(await store.read(recent))).toEqual(ids(recentFacts));
      expect(ids(await store.read(openS))).toEqual(ids(openFacts));

      // Boot reads the live stream only: none of the archived facts, all of the others.
      const booted = await collect(store.readAll(0));
      expect(ids(booted).sort()).toEqual(ids([...openFacts, ...recentFacts]).sort());

      // The archive holds the old stream once, byte-equal ids, versions and original positions,
      // and the recent closed one (copied ahead of time, still live); never the open one.
      const archive = await contents(nc, `${names.name}_ARCHIVE`);
      const oldArchived = archive.filter((m) => m.subject.endsWith(old));
      expect(ids(oldArchived)).toEqual(ids(oldFacts));
      expect(oldArchived.map((m) => m.version)).toEqual([1, 2, 3, 4, 5]);
      expect(oldArchived.at(-1)!.position).toBe(oldEnd.position);
      expect(archive.filter((m) => m.subject.endsWith(openS))).toEqual([]);

      // Idempotent: a second pass finds nothing more to do.
      expect(await store.compact()).toMatchObject({ droppedStreams: 0, copiedStreams: 0 });
      expect(await contents(nc, `${names.name}_ARCHIVE`)).toHaveLength(archive.length);
    } finally {
      await store.close();
      await drainAll(nc);
    }
  });

  it('keeps only the newest maxClosedStreams, and waits for the grace after the copy before purging', async () => {
    const nc = await connectTo(server.url, 'count');
    const names = freshStreams();
    let now = Date.now();
    const store = await open(nc, names, {
      retention: { maxClosedStreams: 1 },
      now: () => now,
    });
    try {
      const [a, b, c] = [aStream('launch'), aStream('launch'), aStream('launch')];
      await store.append(b, facts(b, 2, now - 2000), { expectedVersion: 0 });
      await store.append(a, facts(a, 2, now - 3000), { expectedVersion: 0 });
      await store.append(c, facts(c, 2, now - 1000), { expectedVersion: 0 });

      // Due by count at once, but the copies were just made: nothing leaves the live stream yet.
      expect(await store.compact()).toMatchObject({ droppedStreams: 0, copiedStreams: 3 });
      expect(await store.status(a)).toBe('live');

      now += 11 * 60_000;
      expect(await store.compact()).toMatchObject({ droppedStreams: 2, copiedStreams: 0 });
      expect(await store.status(a)).toBe('archived');
      expect(await store.status(b)).toBe('archived');
      expect(await store.status(c)).toBe('live'); // the most recently closed
    } finally {
      await store.close();
      await drainAll(nc);
    }
  });

  it('refuses an append to an archived stream, from a fresh actor or from a writer whose cache predates the purge', async () => {
    const [ncA, ncB] = await Promise.all([connectTo(server.url, 'a'), connectTo(server.url, 'b')]);
    const names = freshStreams();
    const now = Date.now() + HOUR;
    const a = await open(ncA, names, { retention: { maxAgeMs: HOUR }, now: () => now });
    const b = await open(ncB, names);
    try {
      const s = aStream('vm');
      const two = facts(s, 2);
      await b.append(s, [two[0]!], { expectedVersion: 0 }); // b now knows the head
      await b.append(s, [{ ...two[1]!, meta: { closes: true } }], { expectedVersion: 1 });
      const before = await b.read(s);
      // Make it old: a closing fact two hours before our clock.
      const s2 = aStream('vm');
      await b.append(s2, facts(s2, 2, now - 2 * HOUR), { expectedVersion: 0 });
      await a.append(s, [], { expectedVersion: 2 }); // a sees it too
      expect(before).toHaveLength(2);

      expect((await a.compact()).droppedStreams).toBe(1);
      expect(await b.status(s2)).toBe('archived');

      // A fresh actor (expects an empty stream) and b (its cached head says version 2).
      await expect(b.append(s2, facts(s2, 1), { expectedVersion: 0 })).rejects.toBeInstanceOf(
        StreamArchivedError,
      );
      await expect(b.append(s2, facts(s2, 1), { expectedVersion: 2 })).rejects.toBeInstanceOf(
        StreamArchivedError,
      );
      await expect(a.append(s2, [], { expectedVersion: 2 })).rejects.toBeInstanceOf(
        StreamArchivedError,
      );
      expect(await a.read(s2)).toEqual([]);
      expect(await a.status(s2)).toBe('archived');
      // The closed but retained stream still conflicts as before (the runtime then catches up).
      await expect(b.append(s, facts(s, 1), { expectedVersion: 0 })).rejects.toMatchObject({
        code: 'VERSION_CONFLICT',
      });
    } finally {
      await a.close();
      await b.close();
      await drainAll(ncA, ncB);
    }
  });

  it('two instances compacting at once lose nothing and double nothing, live or archived', async () => {
    const [ncA, ncB] = await Promise.all([connectTo(server.url, 'a'), connectTo(server.url, 'b')]);
    const names = freshStreams();
    const now = Date.now() + HOUR;
    const opts = { retention: { maxAgeMs: HOUR }, now: () => now };
    const a = await open(ncA, names, opts);
    const b = await open(ncB, names, opts);
    try {
      const closed = Array.from({ length: 30 }, () => aStream('launch'));
      const live = Array.from({ length: 5 }, () => aStream('vm'));
      const all = new Map<string, EventEnvelope[]>();
      for (const [i, s] of closed.entries()) all.set(s, facts(s, 4, now - 2 * HOUR + i));
      for (const s of live) all.set(s, facts(s, 3));
      for (const [s, evs] of all) await a.append(s, evs, { expectedVersion: 0 });

      const [ra, rb] = await Promise.all([a.compact(), b.compact()]);
      expect(ra.droppedEvents + rb.droppedEvents).toBe(30 * 4);

      const liveMsgs = await contents(ncA, names.name);
      const archived = await contents(ncA, `${names.name}_ARCHIVE`);
      expect(ids(liveMsgs).sort()).toEqual(live.flatMap((s) => ids(all.get(s)!)).sort());
      expect(ids(archived).sort()).toEqual(closed.flatMap((s) => ids(all.get(s)!)).sort());
      for (const s of closed) {
        const mine = archived.filter((m) => m.subject.endsWith(s));
        expect(mine.map((m) => m.version)).toEqual([1, 2, 3, 4]);
      }
    } finally {
      await a.close();
      await b.close();
      await drainAll(ncA, ncB);
    }
  });
});

describe.skipIf(!HAVE_NATS)('JetStream retention through kill -9 of nats-server', () => {
  /**
   * Kill the server at the `nth` time compaction reaches `step`, leave it down until the pass fails,
   * restart it on the same store dir, and check: every fact in the live stream or the archive, none
   * twice in either; then a new instance's pass leaves each fact in exactly one of them.
   */
  // Each stream is copied (3 facts), verified, then purged, one stream after another; the last
  // number is how many facts are then in both places (copied, not yet purged).
  const killAt: [CompactionStep, number, number][] = [
    ['copying', 8, 1], // mid-copy of the third stream: the archive holds part of it
    ['copied', 5, 3], // the fifth stream copied, not purged
    ['purging', 3, 3], // two streams purged, the third's purge not yet sent
    ['purged', 9, 0], // nine streams moved, the tenth not yet touched
  ];
  for (const [step, nth, inBoth] of killAt) {
    it(
      `loses and doubles nothing when the server dies at ${step} #${nth}`,
      {
        timeout: 120_000,
      },
      async () => {
        const server = await NatsServer.start();
        const names = freshStreams();
        const now = Date.now() + HOUR;
        const retention = { maxAgeMs: HOUR };
        let nc = await connectTo(server.url, 'crash');
        try {
          const setup = await open(nc, names);
          const all = new Map<string, EventEnvelope[]>();
          for (let i = 0; i < 20; i++) {
            const s = aStream('launch');
            all.set(s, facts(s, 3, now - 2 * HOUR + i));
          }
          const openS = Array.from({ length: 4 }, () => aStream('vm'));
          for (const s of openS) all.set(s, facts(s, 2));
          for (const [s, evs] of all) await setup.append(s, evs, { expectedVersion: 0 });
          await setup.close();

          let seen = 0;
          let killed = false;
          const doomed = await open(nc, names, {
            retention,
            now: () => now,
            unavailableAfterMs: 1_500,
            requestTimeoutMs: 500,
            onCompactionStep: async (at) => {
              if (at !== step || ++seen !== nth) return;
              killed = true;
              await server.kill();
            },
          });
          await expect(doomed.compact()).rejects.toThrow();
          expect(killed).toBe(true);
          await doomed.close();
          await nc.close(); // its server is down: nothing to drain

          await server.start();
          nc = await connectTo(server.url, 'after');
          const check = async (exactlyOnce: boolean): Promise<number> => {
            const live = ids(await contents(nc, names.name));
            const archived = ids(await contents(nc, `${names.name}_ARCHIVE`));
            expect(new Set(live).size).toBe(live.length);
            // The CAS chain on the archive subject means not even a crash doubles an archived fact.
            expect(new Set(archived).size).toBe(archived.length);
            const everywhere = new Set([...live, ...archived]);
            for (const evs of all.values())
              for (const e of evs) expect(everywhere.has(e.id)).toBe(true);
            if (exactlyOnce) {
              expect(live.length + archived.length).toBe(everywhere.size);
              for (const s of openS) for (const e of all.get(s)!) expect(live).toContain(e.id);
            }
            return live.length + archived.length - everywhere.size;
          };
          // The kill really fell inside a compaction: this many facts are in both places.
          expect(await check(false)).toBe(inBoth);

          const again = await open(nc, names, { retention, now: () => now });
          try {
            await again.compact();
            await check(true);
            for (const s of all.keys())
              expect(await again.status(s)).toBe(openS.includes(s) ? 'live' : 'archived');
            expect(await collect(again.readAll(0))).toHaveLength(openS.length * 2);
          } finally {
            await again.close();
          }
        } finally {
          if (!nc.isClosed()) await nc.close();
          await server.cleanup();
        }
      },
    );
  }
});
