/**
 * The EventStore contract: every adapter (memory, file, JetStream) runs this same suite.
 * A fake that passes it can stand in for the real store in any other test.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { EventStore } from '../../src/ports/eventStore.js';
import type { StoredEvent } from '../../src/events/envelope.js';
import { VersionConflictError } from '../../src/shared/errors.js';
import { aStream, anEvent } from '../support/events.js';

export interface StoreHarness {
  store: EventStore;
  /** Close and open the same storage again (durability); omit when the store is not durable. */
  reopen?: () => Promise<EventStore>;
  cleanup?: () => Promise<void>;
}

export function eventStoreContract(
  name: string,
  make: () => Promise<StoreHarness>,
  opts: { durable?: boolean } = {},
): void {
  describe(`EventStore contract: ${name}`, () => {
    let h: StoreHarness;
    beforeEach(async () => {
      h = await make();
    });
    afterEach(async () => {
      await h.store.close();
      await h.cleanup?.();
    });

    it('reads back appended events in order with versions 1..n', async () => {
      const s = aStream();
      const evs = [anEvent(s), anEvent(s), anEvent(s)];
      const r = await h.store.append(s, evs, { expectedVersion: 0 });
      expect(r.version).toBe(3);
      const back = await h.store.read(s);
      expect(back.map((e) => e.id)).toEqual(evs.map((e) => e.id));
      expect(back.map((e) => e.version)).toEqual([1, 2, 3]);
      expect(back[0]!.data).toEqual(evs[0]!.data);
      expect(back[0]!.at).toBe(evs[0]!.at);
    });

    it('reports the new version after each append, and accepts it as the next expected version', async () => {
      const s = aStream();
      expect((await h.store.append(s, [anEvent(s)], { expectedVersion: 0 })).version).toBe(1);
      expect(
        (await h.store.append(s, [anEvent(s), anEvent(s)], { expectedVersion: 1 })).version,
      ).toBe(3);
      expect((await h.store.append(s, [anEvent(s)], { expectedVersion: 3 })).version).toBe(4);
      const back = await h.store.read(s);
      expect(back.map((e) => e.version)).toEqual([1, 2, 3, 4]);
    });

    it('reads an unknown stream as empty', async () => {
      expect(await h.store.read(aStream())).toEqual([]);
    });

    it('reads after a version', async () => {
      const s = aStream();
      await h.store.append(s, [anEvent(s), anEvent(s), anEvent(s)], { expectedVersion: 0 });
      const tail = await h.store.read(s, 2);
      expect(tail.map((e) => e.version)).toEqual([3]);
    });

    it('rejects an append with a stale expected version and stores nothing', async () => {
      const s = aStream();
      await h.store.append(s, [anEvent(s)], { expectedVersion: 0 });
      const stale = anEvent(s);
      await expect(h.store.append(s, [stale], { expectedVersion: 0 })).rejects.toBeInstanceOf(
        VersionConflictError,
      );
      const back = await h.store.read(s);
      expect(back.map((e) => e.id)).not.toContain(stale.id);
      expect(back).toHaveLength(1);
    });

    it('rejects creating a stream that exists, and appending to one that does not', async () => {
      const s = aStream();
      await expect(h.store.append(s, [anEvent(s)], { expectedVersion: 1 })).rejects.toBeInstanceOf(
        VersionConflictError,
      );
      await h.store.append(s, [anEvent(s)], { expectedVersion: 0 });
      await expect(h.store.append(s, [anEvent(s)], { expectedVersion: 0 })).rejects.toBeInstanceOf(
        VersionConflictError,
      );
    });

    it('lets exactly one of many concurrent writers win each version', async () => {
      const s = aStream();
      await h.store.append(s, [anEvent(s)], { expectedVersion: 0 });
      const attempts = Array.from({ length: 8 }, () =>
        h.store.append(s, [anEvent(s)], { expectedVersion: 1 }),
      );
      const results = await Promise.allSettled(attempts);
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      for (const r of results) {
        if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(VersionConflictError);
      }
      expect(await h.store.read(s)).toHaveLength(2);
    });

    it('stores an event id once: a repeated append is a no-op', async () => {
      const s = aStream();
      const e = anEvent(s);
      await h.store.append(s, [e], { expectedVersion: 0 });
      const again = await h.store.append(s, [e], { expectedVersion: 1 });
      expect(again.version).toBe(1);
      // Even with the old expected version (a retried publish whose ack was lost).
      const retried = await h.store.append(s, [e], { expectedVersion: 0 });
      expect(retried.version).toBe(1);
      expect(await h.store.read(s)).toHaveLength(1);
    });

    it('keeps streams independent', async () => {
      const a = aStream();
      const b = aStream();
      await h.store.append(a, [anEvent(a)], { expectedVersion: 0 });
      await h.store.append(b, [anEvent(b), anEvent(b)], { expectedVersion: 0 });
      expect(await h.store.read(a)).toHaveLength(1);
      expect(await h.store.read(b)).toHaveLength(2);
    });

    it('reads everything in store order with increasing positions', async () => {
      const a = aStream();
      const b = aStream();
      const start = await lastPosition(h.store);
      const e1 = anEvent(a);
      const e2 = anEvent(b);
      const e3 = anEvent(a);
      await h.store.append(a, [e1], { expectedVersion: 0 });
      await h.store.append(b, [e2], { expectedVersion: 0 });
      await h.store.append(a, [e3], { expectedVersion: 1 });
      const all: StoredEvent[] = [];
      for await (const e of h.store.readAll(start)) all.push(e);
      expect(all.map((e) => e.id)).toEqual([e1.id, e2.id, e3.id]);
      const positions = all.map((e) => e.position);
      expect([...positions].sort((x, y) => x - y)).toEqual(positions);
      expect(new Set(positions).size).toBe(3);
      // readAll after a position skips what came before it.
      const after: string[] = [];
      for await (const e of h.store.readAll(all[0]!.position)) after.push(e.id);
      expect(after).toEqual([e2.id, e3.id]);
    });

    it('feeds subscribers every later append, in order, from any writer', async () => {
      const s = aStream();
      const start = await lastPosition(h.store);
      const seen: string[] = [];
      const stop = h.store.subscribe(start, (e) => {
        if (e.stream === s) seen.push(e.id);
      });
      const evs = [anEvent(s), anEvent(s), anEvent(s)];
      await h.store.append(s, [evs[0]!], { expectedVersion: 0 });
      await h.store.append(s, [evs[1]!, evs[2]!], { expectedVersion: 1 });
      await expect.poll(() => seen.length, { timeout: 5000 }).toBe(3);
      expect(seen).toEqual(evs.map((e) => e.id));
      stop();
      await h.store.append(s, [anEvent(s)], { expectedVersion: 3 });
      await new Promise((r) => setTimeout(r, 100));
      expect(seen).toHaveLength(3);
    });

    if (opts.durable)
      it('keeps every event across a reopen', async () => {
        if (!h.reopen) throw new Error(`${name} claims durability but gives no reopen()`);
        const s = aStream();
        const evs = [anEvent(s), anEvent(s)];
        await h.store.append(s, evs, { expectedVersion: 0 });
        h.store = await h.reopen();
        const back = await h.store.read(s);
        expect(back.map((e) => e.id)).toEqual(evs.map((e) => e.id));
        await h.store.append(s, [anEvent(s)], { expectedVersion: 2 });
        expect(await h.store.read(s)).toHaveLength(3);
        // Dedupe survives the reopen too.
        await h.store.append(s, [evs[0]!], { expectedVersion: 3 });
        expect(await h.store.read(s)).toHaveLength(3);
      });
  });
}

async function lastPosition(store: EventStore): Promise<number> {
  let last = 0;
  for await (const e of store.readAll()) last = e.position;
  return last;
}
