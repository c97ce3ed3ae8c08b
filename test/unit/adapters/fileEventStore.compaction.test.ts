/**
 * The file store's retention and compaction, in process: what is kept and archived, that kept
 * events keep their versions and positions, appends during a compaction, status() of archived
 * streams, archive rotation and the bound on remembered names. Kills mid-compaction are in
 * test/process/crash/fileStore.compaction.test.ts.
 */
import {
  appendFileSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  FileEventStore,
  StreamArchivedError,
  type FileEventStoreOptions,
} from '../../../src/adapters/file/fileEventStore.js';
import type { EventEnvelope, StoredEvent } from '../../../src/events/envelope.js';
import { aStream, anEvent } from '../../support/events.js';

const T0 = Date.UTC(2026, 5, 1);
let dir: string;
const stores: FileEventStore[] = [];
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
  rmSync(dir, { recursive: true, force: true });
});

function open(opts: FileEventStoreOptions = {}): FileEventStore {
  dir ??= mkdtempSync(join(tmpdir(), 'wm-file-compact-'));
  const s = FileEventStore.open(join(dir, 'events.log'), { fsync: false, ...opts });
  stores.push(s);
  return s;
}

async function reopen(
  s: FileEventStore,
  opts: FileEventStoreOptions = {},
): Promise<FileEventStore> {
  await s.close();
  stores.splice(stores.indexOf(s), 1);
  return open(opts);
}

/** A stream of `n` facts at `at`…; the last one closes it when `closed`. */
function facts(stream: string, n: number, at: number, closed: boolean): EventEnvelope[] {
  return Array.from({ length: n }, (_, i) => {
    const e = anEvent(stream, undefined, undefined, at + i);
    return closed && i === n - 1 ? { ...e, meta: { closes: true as const } } : e;
  });
}

async function all(s: FileEventStore): Promise<StoredEvent[]> {
  const out: StoredEvent[] = [];
  for await (const e of s.readAll()) out.push(e);
  return out;
}

/** Every event id in the archive segments beside the log. */
function archivedIds(): string[] {
  return readdirSync(dir)
    .filter((f) => /^events\.archive\.\d+\.log$/.test(f))
    .flatMap((f) =>
      readFileSync(join(dir, f), 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => (JSON.parse(l.slice(9)) as { id: string }).id),
    );
}

const strip = (e: StoredEvent) => ({ id: e.id, stream: e.stream, v: e.version, p: e.position });

describe('file store compaction', () => {
  it('keeps open streams and the newest closed ones, archives the rest, and changes no kept event', async () => {
    dir = mkdtempSync(join(tmpdir(), 'wm-file-compact-'));
    let s = open({ retention: { maxClosedStreams: 2 } });
    const closed = [aStream('launch'), aStream('launch'), aStream('launch'), aStream('launch')];
    const openOne = aStream('vm');
    // Interleaved, so kept events' positions have gaps after compaction.
    await s.append(openOne, facts(openOne, 2, T0, false), { expectedVersion: 0 });
    for (const [i, c] of closed.entries())
      await s.append(c, facts(c, 3, T0 + i * 10_000, true), { expectedVersion: 0 });
    const before = (await all(s)).map(strip);

    const r = await s.compact();
    expect(r).toMatchObject({ generation: 1, droppedStreams: 2, droppedEvents: 6, keptEvents: 8 });
    const kept = new Set([openOne, closed[2], closed[3]]);
    const after = (await all(s)).map(strip);
    expect(after).toEqual(before.filter((e) => kept.has(e.stream)));
    for (const c of closed.slice(0, 2)) {
      expect(s.status(c)).toBe('archived');
      expect(await s.read(c)).toEqual([]);
    }
    expect(s.status(closed[3]!)).toBe('live');
    expect(s.status(aStream())).toBe('unknown');
    // The archive holds exactly what left, and no id is in both.
    const gone = before.filter((e) => !kept.has(e.stream)).map((e) => e.id);
    expect(archivedIds().sort()).toEqual([...gone].sort());
    expect(after.filter((e) => gone.includes(e.id))).toEqual([]);

    // All of it survives a reopen, status() included, and appends carry on after the last position.
    s = await reopen(s);
    expect((await all(s)).map(strip)).toEqual(after);
    expect(s.status(closed[0]!)).toBe('archived');
    const res = await s.append(openOne, [anEvent(openOne)], { expectedVersion: 2 });
    expect(res).toEqual({ version: 3, position: before.at(-1)!.p + 1 });
  });

  it('archives by age, measured by the closing fact against the given clock', async () => {
    let now = T0 + 60_000;
    const s = open({ retention: { maxAgeMs: 30_000 }, now: () => now });
    const old = aStream('launch');
    const recent = aStream('launch');
    await s.append(old, facts(old, 2, T0, true), { expectedVersion: 0 });
    await s.append(recent, facts(recent, 2, T0 + 40_000, true), { expectedVersion: 0 });
    expect((await s.compact()).droppedStreams).toBe(1);
    expect([s.status(old), s.status(recent)]).toEqual(['archived', 'live']);
    now += 60_000;
    expect((await s.compact()).droppedStreams).toBe(1);
    expect(s.status(recent)).toBe('archived');
  });

  it('keeps everything without retention settings, and a closed stream that grew again is open', async () => {
    const s = open();
    const a = aStream('launch');
    await s.append(a, facts(a, 2, T0, true), { expectedVersion: 0 });
    expect((await s.compact()).droppedStreams).toBe(0);
    const s2 = await reopen(s, { retention: { maxClosedStreams: 0 } });
    await s2.append(a, [anEvent(a)], { expectedVersion: 2 });
    expect((await s2.compact()).droppedStreams).toBe(0);
    expect(await s2.read(a)).toHaveLength(3);
  });

  it('refuses appends to archived streams, and to streams being archived', async () => {
    const s = open({ retention: { maxClosedStreams: 0 } });
    const a = aStream('launch');
    const b = aStream('launch');
    await s.append(a, facts(a, 2, T0, true), { expectedVersion: 0 });
    let during: Promise<unknown> | undefined;
    const s2 = await reopen(s, {
      retention: { maxClosedStreams: 0 },
      onCompactionStep: (step) => {
        if (step === 'copying' && !during)
          during = s2.append(a, [anEvent(a)], { expectedVersion: 2 }).catch((e: unknown) => e);
      },
    });
    await s2.append(b, facts(b, 1, T0, false), { expectedVersion: 0 });
    await s2.compact();
    expect(await during).toBeInstanceOf(StreamArchivedError);
    await expect(s2.append(a, [anEvent(a)], { expectedVersion: 0 })).rejects.toBeInstanceOf(
      StreamArchivedError,
    );
    // On a live stream a retried append of a stored event is still the usual no-op.
    const e = anEvent(b);
    await s2.append(b, [e], { expectedVersion: 1 });
    expect((await s2.append(b, [e], { expectedVersion: 1 })).version).toBe(2);
  });

  it('goes on taking appends while it compacts, and feeds them to subscribers once, in order', async () => {
    const s0 = open();
    const streams = Array.from({ length: 400 }, () => aStream('launch'));
    // Enough records for several copy slices, so the appends land between them.
    for (const [i, st] of streams.entries())
      await s0.append(st, facts(st, 8, T0 + i * 100, i % 4 !== 0), { expectedVersion: 0 });
    const pending: Promise<unknown>[] = [];
    const live = aStream('vm');
    let v = 0;
    const s = await reopen(s0, {
      retention: { maxClosedStreams: 10 },
      onCompactionStep: (step) => {
        if (step === 'copying' || step === 'copied' || step === 'live-synced')
          pending.push(s.append(live, [anEvent(live)], { expectedVersion: v++ }));
      },
    });
    const lastBefore = (await all(s)).at(-1)!.position;
    const seen: number[] = [];
    s.subscribe(lastBefore, (e) => seen.push(e.position));
    await s.compact();
    await Promise.all(pending);
    const mine = await s.read(live);
    expect(mine.map((e) => e.version)).toEqual(Array.from({ length: v }, (_, i) => i + 1));
    expect(mine.map((e) => e.position)).toEqual(seen);
    expect(seen[0]).toBe(lastBefore + 1);
    // Another append after the swap goes to the new log and is read back from it.
    await s.append(live, [anEvent(live)], { expectedVersion: v });
    const s2 = await reopen(s);
    expect(seen).toHaveLength(v + 1);
    expect((await s2.read(live)).map((e) => e.position)).toEqual(seen);
    // Open streams all stayed: 100 of them, plus the 10 newest closed and the live one.
    expect((await s2.compact()).keptStreams).toBe(111);
  });

  it('never hands out a position again, even when the last event was archived', async () => {
    const s = open({ retention: { maxClosedStreams: 0 } });
    const a = aStream('launch');
    const r = await s.append(a, facts(a, 3, T0, true), { expectedVersion: 0 });
    await s.compact();
    expect(await all(s)).toEqual([]);
    const b = aStream('launch');
    expect((await s.append(b, [anEvent(b)], { expectedVersion: 0 })).position).toBe(r.position + 1);
    const s2 = await reopen(s, { retention: { maxClosedStreams: 0 } });
    await s2.compact();
    const c = aStream('launch');
    expect((await s2.append(c, [anEvent(c)], { expectedVersion: 0 })).position).toBe(
      r.position + 2,
    );
  });

  it('rotates archive segments and forgets the oldest names past its bound', async () => {
    const opts = {
      retention: { maxClosedStreams: 0 },
      archive: { keepSegments: 2, rememberStreams: 2 },
    };
    let s = open(opts);
    const names: string[] = [];
    for (let round = 0; round < 3; round++) {
      const st = aStream('launch');
      names.push(st);
      await s.append(st, facts(st, 2, T0, true), { expectedVersion: 0 });
      await s.compact();
    }
    const files = readdirSync(dir).filter((f) => f.includes('.archive.'));
    expect(files.filter((f) => f.endsWith('.log')).sort()).toEqual([
      'events.archive.2.log',
      'events.archive.3.log',
    ]);
    expect(names.map((n) => s.status(n))).toEqual(['unknown', 'archived', 'archived']);
    s = await reopen(s, opts);
    expect(names.map((n) => s.status(n))).toEqual(['unknown', 'archived', 'archived']);
  });

  it('drops a torn record written after a compaction marker', async () => {
    const s = open({ retention: { maxClosedStreams: 0 } });
    const a = aStream('launch');
    const b = aStream('vm');
    await s.append(a, facts(a, 2, T0, true), { expectedVersion: 0 });
    await s.append(b, facts(b, 2, T0, false), { expectedVersion: 0 });
    await s.compact();
    await s.close();
    stores.splice(0);
    appendFileSync(join(dir, 'events.log'), '0000abcd {"id":"torn');
    const torn: number[] = [];
    const s2 = open({ onTornRecord: (t) => torn.push(t.line) });
    expect(torn).toHaveLength(1);
    expect(await s2.read(b)).toHaveLength(2);
    await s2.append(b, [anEvent(b)], { expectedVersion: 2 });
    expect(await s2.read(b)).toHaveLength(3);
  });

  it('on open, discards what a compaction left before its commit', async () => {
    const s = open();
    const a = aStream('launch');
    await s.append(a, facts(a, 2, T0, true), { expectedVersion: 0 });
    await s.close();
    stores.splice(0);
    // A compaction that died after committing its archive, before renaming its new log.
    const line = readFileSync(join(dir, 'events.log'), 'utf8');
    writeFileSync(join(dir, 'events.archive.1.log'), line);
    writeFileSync(join(dir, 'events.archive.1.names'), Buffer.alloc(8));
    writeFileSync(join(dir, 'events.log.compact'), '');
    const s2 = open();
    expect(readdirSync(dir).filter((f) => f !== 'events.log' && f !== 'events.log.lock')).toEqual(
      [],
    );
    expect(await s2.read(a)).toHaveLength(2);
    expect(s2.status(a)).toBe('live');
  });
});
