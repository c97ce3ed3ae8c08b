/**
 * JetStream-specific behaviour of the event store beyond the port contract: stream version ⇄ subject
 * sequence mapping across many interleaved streams and writers, retried batches, dedupe past the
 * window, junk on event subjects, stream config and isolation, closing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { headers, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { ensureStream, eventStreamConfig } from '../../../src/adapters/nats/connection.js';
import {
  JetStreamEventStore,
  VERSION_HEADER,
} from '../../../src/adapters/nats/jetStreamEventStore.js';
import { InvalidStreamNameError } from '../../../src/adapters/nats/subjects.js';
import type { StoredEvent } from '../../../src/events/envelope.js';
import {
  EventDecodeError,
  StoreUnavailableError,
  VersionConflictError,
} from '../../../src/shared/errors.js';
import { NatsServer } from '../../support/natsServer.js';
import { aStream } from '../../support/events.js';
import { NATS_SERVER, needs } from '../../support/require.js';
import { collect, connectTo, drainAll, ev, logger } from './helpers.js';

const HAVE_NATS = needs('nats-server', NATS_SERVER);

describe.skipIf(!HAVE_NATS)('JetStreamEventStore on nats-server', () => {
  let server: NatsServer;
  let ncA: NatsConnection;
  let ncB: NatsConnection;
  let a: JetStreamEventStore;
  let b: JetStreamEventStore;

  beforeAll(async () => {
    server = await NatsServer.start();
    [ncA, ncB] = await Promise.all([connectTo(server.url, 'a'), connectTo(server.url, 'b')]);
    a = await JetStreamEventStore.open(ncA, { logger });
    b = await JetStreamEventStore.open(ncB, { logger });
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    if (ncA && ncB) await drainAll(ncA, ncB);
    await server?.cleanup();
  });

  it('maps versions 1..n onto subject sequences across many interleaved streams and two writers', async () => {
    const streams = Array.from({ length: 12 }, (_, i) => aStream(i % 2 ? 'vm' : 'launch'));
    const appended = new Map<string, string[]>(streams.map((s) => [s, []]));
    const positions: number[] = [];
    // Round-robin: every append lands between other streams' appends, and the two stores take
    // turns, so each one's cached head is often stale and must be re-learnt from the server.
    for (let round = 0; round < 8; round++) {
      for (const [i, s] of streams.entries()) {
        const writer = (round + i) % 2 ? a : b;
        const batch = round % 3 === 2 ? [ev(s), ev(s)] : [ev(s)];
        const before = appended.get(s)!.length;
        const r = await writer.append(s, batch, { expectedVersion: before });
        appended.get(s)!.push(...batch.map((e) => e.id));
        expect(r.version).toBe(before + batch.length);
        positions.push(r.position);
      }
    }
    expect([...positions].sort((x, y) => x - y)).toEqual(positions);

    for (const s of streams) {
      const back = await (s.length % 2 ? a : b).read(s);
      const ids = appended.get(s)!;
      expect(back.map((e) => e.id)).toEqual(ids);
      expect(back.map((e) => e.version)).toEqual(ids.map((_, i) => i + 1));
      expect((await a.read(s, ids.length - 2)).map((e) => e.version)).toEqual([
        ids.length - 1,
        ids.length,
      ]);
    }

    // readAll sees the same events in position order, each with its own stream's version.
    const all = (await collect(a.readAll(positions[0]! - 1))).filter((e) => appended.has(e.stream));
    expect(all).toHaveLength([...appended.values()].reduce((n, ids) => n + ids.length, 0));
    const perStream = new Map<string, number>();
    for (const e of all) {
      const v = (perStream.get(e.stream) ?? 0) + 1;
      perStream.set(e.stream, v);
      expect(e.version).toBe(v);
      expect(e.id).toBe(appended.get(e.stream)![v - 1]);
    }
  });

  it('lets one writer per version win across connections; losers get VersionConflictError', async () => {
    const s = aStream('vm');
    for (let v = 0; v < 6; v++) {
      const results = await Promise.allSettled([
        a.append(s, [ev(s)], { expectedVersion: v }),
        b.append(s, [ev(s)], { expectedVersion: v }),
        a.append(s, [ev(s)], { expectedVersion: v }),
      ]);
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      for (const r of results)
        if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(VersionConflictError);
    }
    expect((await b.read(s)).map((e) => e.version)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('completes a retried batch whose first events were already stored, storing none twice', async () => {
    const s = aStream('launch');
    const [e1, e2, e3] = [ev(s), ev(s), ev(s)];
    await a.append(s, [e1, e2], { expectedVersion: 0 });
    // The retry of the whole batch (say the writer crashed after two acks) from another instance.
    const r = await b.append(s, [e1, e2, e3], { expectedVersion: 0 });
    expect(r.version).toBe(3);
    const back = await a.read(s);
    expect(back.map((e) => e.id)).toEqual([e1.id, e2.id, e3.id]);
    expect(back.map((e) => e.version)).toEqual([1, 2, 3]);
  });

  it('learns the head from the server when another instance appended since', async () => {
    const s = aStream('vm');
    await a.append(s, [ev(s)], { expectedVersion: 0 });
    await b.append(s, [ev(s)], { expectedVersion: 1 });
    // a last saw version 1; the caller knows it is 2 now.
    await expect(a.append(s, [ev(s)], { expectedVersion: 2 })).resolves.toMatchObject({
      version: 3,
    });
    await expect(a.append(s, [ev(s)], { expectedVersion: 2 })).rejects.toBeInstanceOf(
      VersionConflictError,
    );
  });

  it('refuses stream names that are not <chart>.<id> before building a subject', async () => {
    for (const bad of ['launch.*', 'vm.>', 'vm.a.b', 'other.x', 'launch.', 'launch.a b']) {
      await expect(
        a.append(bad, [ev('vm.placeholder')], { expectedVersion: 0 }),
      ).rejects.toBeInstanceOf(InvalidStreamNameError);
      await expect(a.read(bad)).rejects.toBeInstanceOf(InvalidStreamNameError);
    }
  });

  it('skips junk published raw onto event subjects, reporting each as EventDecodeError, in reads and feeds', async () => {
    const decodeErrors: EventDecodeError[] = [];
    const nc = await connectTo(server.url, 'junk-reader');
    const store = await JetStreamEventStore.open(nc, {
      logger,
      ownsConnection: true,
      onDecodeError: (e) => decodeErrors.push(e),
    });
    const raw = jetstream(ncA);
    const start = (await jetstreamManager(ncA).then((m) => m.streams.info('WM_EVENTS'))).state
      .last_seq;
    const live: StoredEvent[] = [];
    const stop = store.subscribe(start, (e) => live.push(e));
    try {
      const s = aStream('vm');
      const good1 = ev(s);
      await a.append(s, [good1], { expectedVersion: 0 });
      const withVersion = headers();
      withVersion.set(VERSION_HEADER, '2');
      await raw.publish(`wm.events.${s}`, 'not json {'); // no header, not JSON
      await raw.publish(`wm.events.${s}`, JSON.stringify({ hello: 'world' }), {
        headers: withVersion,
      }); // wrong shape
      await raw.publish('wm.events.launch.x.y.z', JSON.stringify(good1)); // not an actor subject
      await raw.publish(`wm.events.${aStream('vm')}`, JSON.stringify({ ...good1, id: ev(s).id }), {
        headers: withVersion,
      }); // wrong stream inside
      // The stream's head is junk now: the next append still finds version 1 and its true last sequence.
      const good2 = ev(s);
      await expect(a.append(s, [good2], { expectedVersion: 1 })).resolves.toMatchObject({
        version: 2,
      });

      expect((await store.read(s)).map((e) => [e.id, e.version])).toEqual([
        [good1.id, 1],
        [good2.id, 2],
      ]);
      const all = await collect(store.readAll(start));
      expect(all.map((e) => e.id)).toEqual([good1.id, good2.id]);
      await expect.poll(() => live.length, { timeout: 20_000 }).toBe(2);
      expect(live.map((e) => e.id)).toEqual([good1.id, good2.id]);
      expect(decodeErrors.length).toBeGreaterThanOrEqual(4 * 3 - 2); // each junk seen by read/readAll/feed
      for (const err of decodeErrors) expect(err).toBeInstanceOf(EventDecodeError);
    } finally {
      stop();
      await store.close();
    }
  });

  it('stores an event once even when it is retried after the dedupe window has passed', async () => {
    const nc = await connectTo(server.url, 'short-window');
    const store = await JetStreamEventStore.open(nc, {
      logger,
      ownsConnection: true,
      stream: { name: 'WM_SHORT', subjectPrefix: 'wmshort.events', duplicateWindowMs: 500 },
    });
    try {
      const s = aStream('launch');
      const e = ev(s);
      await store.append(s, [e], { expectedVersion: 0 });
      // Wait (by polling, not sleeping) until the server forgets a msg id published after e.
      const js = jetstream(nc);
      await js
        .publish('wmshort.events.probe', '', { msgID: `probe-${e.id}` })
        .catch(() => undefined);
      await expect
        .poll(
          async () =>
            (
              await js
                .publish('wmshort.events.probe', '', { msgID: `probe-${e.id}` })
                .catch(() => ({ duplicate: true }))
            ).duplicate,
          {
            timeout: 20_000,
            interval: 200,
          },
        )
        .toBe(false);
      const again = await store.append(s, [e], { expectedVersion: 0 });
      expect(again.version).toBe(1);
      expect(await store.read(s)).toHaveLength(1);
    } finally {
      await store.close();
    }
  });

  it('keeps stores on different stream names and prefixes apart, and updates a stream config in place', async () => {
    const nc = await connectTo(server.url, 'isolated');
    try {
      const other = await JetStreamEventStore.open(nc, {
        logger,
        stream: { name: 'WM_OTHER', subjectPrefix: 'wmother.events' },
      });
      const s = aStream('vm');
      await other.append(s, [ev(s)], { expectedVersion: 0 });
      expect(await a.read(s)).toEqual([]);
      expect(await other.read(s)).toHaveLength(1);
      await other.close();

      // Idempotent: same config twice is fine; a changed max age is applied to the live stream.
      const cfg = eventStreamConfig({ name: 'WM_OTHER', subjectPrefix: 'wmother.events' });
      await ensureStream(nc, cfg);
      const updated = await ensureStream(nc, { ...cfg, maxAgeMs: 3_600_000 });
      expect(updated.config.max_age).toBe(3_600_000 * 1_000_000);
      expect(updated.config.duplicate_window).toBe(120_000 * 1_000_000);
      expect(updated.config.subjects).toEqual(['wmother.events.>']);
      expect(updated.state.messages).toBe(1);
    } finally {
      await drainAll(nc);
    }
  });

  it('delivers to a live subscriber from a middle position, and a throwing subscriber does not stop the feed', async () => {
    const s = aStream('vm');
    const first = await a.append(s, [ev(s), ev(s)], { expectedVersion: 0 });
    const got: StoredEvent[] = [];
    const stop = b.subscribe(first.position - 1, (e) => {
      if (e.stream !== s) return;
      got.push(e);
      if (got.length === 1) throw new Error('subscriber bug');
    });
    try {
      await a.append(s, [ev(s)], { expectedVersion: 2 });
      await expect.poll(() => got.length, { timeout: 20_000 }).toBe(2);
      expect(got.map((e) => e.version)).toEqual([2, 3]);
    } finally {
      stop();
    }
  });

  it('after close: stops its feeds and refuses work with StoreUnavailableError; an owned connection is drained', async () => {
    const nc = await connectTo(server.url, 'closing');
    const store = await JetStreamEventStore.open(nc, { logger, ownsConnection: true });
    const seen: string[] = [];
    store.subscribe(0, (e) => seen.push(e.id));
    await store.close();
    expect(nc.isClosed()).toBe(true);
    const s = aStream();
    await expect(store.append(s, [ev(s)], { expectedVersion: 0 })).rejects.toBeInstanceOf(
      StoreUnavailableError,
    );
    await expect(store.read(s)).rejects.toBeInstanceOf(StoreUnavailableError);
  });
});
