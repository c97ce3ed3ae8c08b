/**
 * The file store reads events from disk through its index: these are the cases the shared
 * contract does not reach — a subscriber joining while a flush is pending, readAll across a
 * compaction, and ids deduplicated across streams and reopens without holding them in memory.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { FileEventStore } from '../../../src/adapters/file/fileEventStore.js';
import type { StoredEvent } from '../../../src/events/envelope.js';
import { aStream, anEvent } from '../../support/events.js';

let dir: string;
const stores: FileEventStore[] = [];
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
  rmSync(dir, { recursive: true, force: true });
});
function open(opts: Parameters<typeof FileEventStore.open>[1] = {}): FileEventStore {
  dir ??= mkdtempSync(join(tmpdir(), 'wm-file-index-'));
  const s = FileEventStore.open(join(dir, 'events.log'), opts);
  stores.push(s);
  return s;
}

it('feeds a subscriber that joined during a pending flush each event once', async () => {
  dir = mkdtempSync(join(tmpdir(), 'wm-file-index-'));
  const s = open({ fsync: true });
  const a = aStream();
  const pending = s.append(a, [anEvent(a), anEvent(a)], { expectedVersion: 0 });
  // Written already, not yet flushed: the replay from disk gives it, the live feed must not again.
  const seen: number[] = [];
  s.subscribe(0, (e) => seen.push(e.version));
  await pending;
  await s.append(a, [anEvent(a)], { expectedVersion: 2 });
  expect(seen).toEqual([1, 2, 3]);
});

it('reads everything once, in order, while a compaction swaps the log between two batches', async () => {
  dir = mkdtempSync(join(tmpdir(), 'wm-file-index-'));
  const s = open({ fsync: false, retention: { maxClosedStreams: 0 } });
  const keep: string[] = [];
  // ~2 MB of open streams (several read batches) and one closed stream to archive.
  for (let i = 0; i < 1200; i++) {
    const st = aStream('launch');
    const evs = Array.from({ length: 5 }, () => anEvent(st));
    await s.append(st, evs, { expectedVersion: 0 });
    keep.push(...evs.map((e) => e.id));
  }
  const gone = aStream('launch');
  await s.append(gone, [{ ...anEvent(gone), meta: { closes: true } }], { expectedVersion: 0 });
  const read: StoredEvent[] = [];
  let compacted = false;
  for await (const e of s.readAll()) {
    read.push(e);
    if (!compacted) {
      compacted = true;
      expect((await s.compact()).droppedStreams).toBe(1);
    }
  }
  expect(read.map((e) => e.id)).toEqual(keep);
  const positions = read.map((e) => e.position);
  expect(new Set(positions).size).toBe(positions.length);
});

it('stores an id once across streams and reopens, confirming the id on disk', async () => {
  dir = mkdtempSync(join(tmpdir(), 'wm-file-index-'));
  let s = open({ fsync: false });
  const a = aStream();
  const b = aStream();
  const e = anEvent(a);
  await s.append(a, [e], { expectedVersion: 0 });
  // The same event offered to another stream is a no-op there too.
  expect((await s.append(b, [{ ...e, stream: b }], { expectedVersion: 0 })).version).toBe(0);
  expect(await s.read(b)).toEqual([]);
  await s.close();
  stores.splice(0);
  s = open({ fsync: false });
  expect((await s.append(a, [e], { expectedVersion: 0 })).version).toBe(1);
  // A new id is stored even though the pre-filter has seen many.
  const f = anEvent(a);
  expect((await s.append(a, [f], { expectedVersion: 1 })).version).toBe(2);
  expect((await s.read(a)).map((x) => x.id)).toEqual([e.id, f.id]);
});
