/**
 * Boot from a snapshot plus the tail (ADR 0015): the same actors as a full read, over random
 * histories; a doubtful snapshot means a full read with the same result; only the tail is read.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import fc from 'fast-check';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryEventStore } from '../../../src/adapters/memory/memoryEventStore.js';
import { ManualClock } from '../../../src/adapters/system/manualClock.js';
import { UlidIds } from '../../../src/adapters/system/ulidIds.js';
import type { StoredEvent } from '../../../src/events/envelope.js';
import type { EventStore } from '../../../src/ports/eventStore.js';
import {
  ActorRuntime,
  type ActorRecord,
  type EffectRunner,
  type Fact,
} from '../../../src/runtime/actorRuntime.js';
import {
  SnapshotFile,
  decodeSnapshot,
  encodeSnapshot,
  type BootSnapshot,
} from '../../../src/runtime/snapshot.js';
import { silentLogger } from '../../../src/shared/log.js';

const T0 = Date.UTC(2026, 5, 1);
const STORE = 'memory';
const runtimes: ActorRuntime[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const r of runtimes.splice(0)) await r.close(100);
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const launchId = (i: number) => `01JZ00000000000000000000${String(i).padStart(2, '0')}`;
const machineId = (i: number) => `m${String(i).padStart(10, '0')}`;

/** Reservations succeed unless the roll says the cap is full; every other effect answers nothing. */
const runner: EffectRunner = async (effect) => {
  if (effect.type !== 'reserveCapacity') return [];
  const id = (effect.params as { launchId: string }).launchId;
  const full = id.endsWith('7');
  return [
    {
      type: full ? 'capacity.exhausted' : 'capacity.reserved',
      data: { launchId: id, live: full ? 8 : 1, limit: 8 },
    },
  ];
};

function runtime(
  store: EventStore,
  clock: ManualClock,
  runEffect: EffectRunner = runner,
  drives?: () => boolean,
) {
  const rt = new ActorRuntime({
    ...(drives ? { drives } : {}),
    store,
    clock,
    timers: clock,
    ids: new UlidIds(clock),
    log: silentLogger(),
    instance: 'i1',
    runEffect,
    random: () => 0.5,
  });
  runtimes.push(rt);
  return rt;
}

type Step =
  | { k: 'launch' | 'created' | 'started' | 'listening' | 'stopping' | 'destroyed'; i: number }
  | { k: 'advance'; ms: number };

function factsOf(s: Step, now: number): Fact[] {
  if (s.k === 'advance') return [];
  const L = launchId(s.i);
  const M = machineId(s.i);
  switch (s.k) {
    case 'launch':
      return [
        {
          type: 'launch.requested',
          data: {
            launchId: L,
            region: 'ams',
            source: 'button',
            owner: 'i1',
            readyTimeoutMs: 30_000,
            ttlMs: 120_000,
          },
        },
      ];
    case 'created':
      return [
        {
          type: 'fly.machineCreated',
          data: {
            machineId: M,
            launchId: L,
            region: 'ams',
            instanceId: 'I',
            state: 'created',
            source: 'button',
            ttlMs: 120_000,
            createdAt: now,
          },
        },
      ];
    case 'started':
      return [
        { type: 'fly.machineObserved', data: { machineId: M, state: 'started', region: 'ams' } },
      ];
    case 'listening':
      return [{ type: 'vm.listening', data: { machineId: M, launchId: L, region: 'ams' } }];
    case 'stopping':
      return [{ type: 'vm.stopping', data: { machineId: M, launchId: L, reason: 'finished' } }];
    case 'destroyed':
      return [
        { type: 'fly.machineObserved', data: { machineId: M, state: 'destroyed', region: 'ams' } },
      ];
  }
}

const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ k: fc.constant('launch' as const), i: fc.nat(11) }) },
  {
    weight: 8,
    arbitrary: fc.record({
      k: fc.constantFrom(
        'created' as const,
        'started' as const,
        'listening' as const,
        'stopping' as const,
        'destroyed' as const,
      ),
      i: fc.nat(11),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      k: fc.constant('advance' as const),
      ms: fc.integer({ min: 1_000, max: 90_000 }),
    }),
  },
);

async function play(rt: ActorRuntime, clock: ManualClock, steps: readonly Step[]): Promise<void> {
  for (const s of steps) {
    if (s.k === 'advance') clock.advance(s.ms);
    else for (const f of factsOf(s, clock.now())) await rt.dispatch(f);
    await rt.settled();
  }
}

/** Everything boot puts in a record that a snapshot must reproduce. */
function view(rt: ActorRuntime) {
  return rt
    .actors()
    .map((r: ActorRecord) => ({
      stream: r.stream,
      chart: r.chart.id,
      version: r.version,
      state: r.chart.machine.getPersistedSnapshot(r.snapshot),
      status: r.snapshot.status,
      recent: r.recent,
      touchedAt: r.touchedAt,
    }))
    .sort((a, b) => a.stream.localeCompare(b.stream));
}

/** A store that counts what readAll yields (boot's reads). */
class CountingStore implements EventStore {
  yielded = 0;
  constructor(private readonly inner: EventStore) {}
  read(stream: string, after?: number) {
    return this.inner.read(stream, after);
  }
  append(...a: Parameters<EventStore['append']>) {
    return this.inner.append(...a);
  }
  async *readAll(after?: number): AsyncIterable<StoredEvent> {
    for await (const e of this.inner.readAll(after)) {
      this.yielded++;
      yield e;
    }
  }
  subscribe(after: number, on: (e: StoredEvent) => void) {
    return this.inner.subscribe(after, on);
  }
  close() {
    return this.inner.close();
  }
}

/** Play `before`, snapshot (through the file format), play `after`; return store, clock, snapshot. */
async function history(before: readonly Step[], after: readonly Step[], follower = false) {
  const store = new MemoryEventStore();
  const clock = new ManualClock(T0);
  const writer = runtime(store, clock);
  await writer.boot();
  // Another instance folding the same store through its feed: its snapshot may be taken while
  // facts it was fed are still queued, and must then cover only what it has folded.
  const other = follower
    ? runtime(
        store,
        clock,
        async () => [],
        () => false,
      )
    : undefined;
  await other?.boot();
  await play(writer, clock, before.slice(0, -1));
  const last = before.at(-1);
  if (last) {
    if (last.k === 'advance') clock.advance(last.ms);
    else for (const f of factsOf(last, clock.now())) await writer.dispatch(f);
  }
  const state = (other ?? writer).snapshotState();
  await writer.settled();
  expect(state).toBeDefined();
  const text = encodeSnapshot(state!, { store: STORE, takenAt: clock.now() });
  await play(writer, clock, after);
  await writer.close(100);
  await other?.close(100);
  const decoded = decodeSnapshot(text, { store: STORE });
  if (!decoded.ok) throw new Error(decoded.why);
  return { store, clock, text, snap: decoded.snapshot, position: state!.position };
}

async function bootBoth(store: EventStore, clock: ManualClock, snap: BootSnapshot | undefined) {
  const full = runtime(store, clock, async () => []);
  const fullReport = await full.boot();
  const counted = new CountingStore(store);
  const quick = runtime(counted, clock, async () => []);
  const quickReport = await quick.boot(snap ? { from: snap } : {});
  return { full, quick, fullReport, quickReport, counted };
}

describe('boot from a snapshot plus the tail', () => {
  it('ends with exactly the records a full read gives, over random histories', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(step, { maxLength: 60 }),
        fc.array(step, { maxLength: 60 }),
        fc.boolean(),
        async (before, after, follower) => {
          const { store, clock, snap } = await history(before, after, follower);
          const { full, quick, quickReport } = await bootBoth(store, clock, snap);
          expect(quickReport.fromSnapshot).toBe(true);
          expect(view(quick)).toEqual(view(full));
          await full.close(100);
          await quick.close(100);
        },
      ),
      { numRuns: 120, seed: 1015 },
    );
  });

  it('restores open actors without running effects, then re-drives exactly what a full read does', async () => {
    const steps: Step[] = [
      { k: 'launch', i: 1 },
      { k: 'launch', i: 2 },
      { k: 'created', i: 2 },
      { k: 'launch', i: 3 },
      { k: 'created', i: 3 },
      { k: 'started', i: 3 },
      { k: 'listening', i: 3 },
    ];
    const { store, clock, snap } = await history(steps, [
      { k: 'stopping', i: 3 },
      { k: 'launch', i: 4 },
    ]);
    const ran = { full: [] as string[], quick: [] as string[] };
    const full = runtime(
      store,
      clock,
      async (e, c) => (ran.full.push(`${c.stream}:${e.type}`), []),
    );
    await full.boot();
    const quick = runtime(
      store,
      clock,
      async (e, c) => (ran.quick.push(`${c.stream}:${e.type}`), []),
    );
    await quick.boot({ from: snap });
    expect(ran.quick.sort()).toEqual(ran.full.sort());
    expect(ran.full.length).toBeGreaterThan(0);
    expect([...quick.pendingTimers(`launch.${launchId(2)}`)]).toEqual([
      ...full.pendingTimers(`launch.${launchId(2)}`),
    ]);
  });

  it('drops a restored actor whose stream closes in the tail, and folds one first seen there', async () => {
    const { store, clock, snap } = await history(
      [
        { k: 'launch', i: 1 },
        { k: 'created', i: 1 },
        { k: 'listening', i: 1 },
        { k: 'stopping', i: 1 },
      ],
      [
        { k: 'destroyed', i: 1 },
        { k: 'launch', i: 2 },
      ],
    );
    expect(snap.records.map((r) => r.stream).sort()).toEqual([
      `launch.${launchId(1)}`,
      `vm.${machineId(1)}`,
    ]);
    const { full, quick } = await bootBoth(store, clock, snap);
    expect(quick.actor(`launch.${launchId(1)}`)).toBeUndefined();
    expect(quick.actor(`vm.${machineId(1)}`)).toBeUndefined();
    expect(quick.actor(`launch.${launchId(2)}`)?.snapshot.value).toBe('creating');
    expect(view(quick)).toEqual(view(full));
  });

  it('reads only the events after the snapshot position', async () => {
    const before: Step[] = [];
    for (let i = 0; i < 10; i++)
      before.push({ k: 'launch', i }, { k: 'created', i }, { k: 'listening', i });
    for (let i = 0; i < 8; i++) before.push({ k: 'stopping', i }, { k: 'destroyed', i });
    const after: Step[] = [
      { k: 'launch', i: 10 },
      { k: 'stopping', i: 8 },
    ];
    const { store, clock, snap, position } = await history(before, after);
    let total = 0;
    for await (const _ of store.readAll()) total++;
    const { quick, counted, quickReport, full } = await bootBoth(store, clock, snap);
    expect(total - position).toBeGreaterThan(0);
    expect(counted.yielded).toBe(total - position);
    expect(quickReport.events).toBe(total - position);
    expect(total).toBeGreaterThan(5 * counted.yielded);
    expect(view(quick)).toEqual(view(full));
  });

  it('falls back to a full read, logged at warn, for a corrupt, truncated, wrong-version or missing snapshot', async () => {
    const { store, clock, text } = await history(
      [
        { k: 'launch', i: 1 },
        { k: 'created', i: 1 },
        { k: 'launch', i: 2 },
        { k: 'launch', i: 7 },
      ],
      [
        { k: 'listening', i: 1 },
        { k: 'launch', i: 3 },
      ],
    );
    const dir = mkdtempSync(join(tmpdir(), 'wm-snap-'));
    dirs.push(dir);
    const path = join(dir, 'snapshot.json');
    const [header, body] = text.split('\n') as [string, string];
    const reheader = (b: string) => {
      const h = JSON.parse(header) as Record<string, unknown>;
      return `${JSON.stringify({ ...h, bytes: Buffer.byteLength(b), sha256: createHash('sha256').update(b).digest('hex') })}\n${b}\n`;
    };
    const parsed = JSON.parse(body) as { charts: Record<string, string>; format: number };
    const variants: [string, string | undefined][] = [
      ['missing', undefined],
      ['empty', ''],
      ['truncated', text.slice(0, Math.floor(text.length / 2))],
      ['last byte gone', text.slice(0, -2) + '\n'],
      ['a flipped byte', text.replace('"launch.', '"lbunch.')],
      ['header only', `${header}\n`],
      ['not json', 'garbage\n{]\n'],
      ['format 2', text.replace('{"format":1', '{"format":2')],
      ['body format 2', reheader(JSON.stringify({ ...parsed, format: 2 }))],
      [
        'another chart version',
        reheader(
          JSON.stringify({ ...parsed, charts: { ...parsed.charts, launch: 'launch.v0#0' } }),
        ),
      ],
      ['another store', reheader(JSON.stringify({ ...parsed, store: 'nats:OTHER' }))],
    ];
    const { full } = await bootBoth(store, clock, undefined);
    const expected = view(full);
    for (const [what, content] of variants) {
      rmSync(path, { force: true });
      if (content !== undefined) writeFileSync(path, content);
      const lines: { level: number; msg: string }[] = [];
      const log = pino(
        { level: 'info' },
        new Writable({
          write(chunk: Buffer, _enc, cb) {
            lines.push(JSON.parse(chunk.toString()) as { level: number; msg: string });
            cb();
          },
        }),
      );
      const file = new SnapshotFile({ path, store: STORE, log, now: () => clock.now() });
      const from = await file.load();
      expect(from, what).toBeUndefined();
      expect(
        lines.some((l) => l.level === 40 && /reading the whole store/.test(l.msg)),
        what,
      ).toBe(true);
      const rt = runtime(store, clock, async () => []);
      const report = await rt.boot(from ? { from } : {});
      expect(report.fromSnapshot, what).toBe(false);
      expect(view(rt), what).toEqual(expected);
      await rt.close(100);
    }
    // And the untouched file is trusted.
    writeFileSync(path, text);
    const file = new SnapshotFile({
      path,
      store: STORE,
      log: silentLogger(),
      now: () => clock.now(),
    });
    expect(await file.load()).toBeDefined();
    expect(readFileSync(path, 'utf8')).toBe(text);
  });

  it('falls back when the store contradicts the snapshot (a gap, or a stream it does not know)', async () => {
    const { store, clock, snap } = await history(
      [
        { k: 'launch', i: 1 },
        { k: 'created', i: 1 },
      ],
      [{ k: 'listening', i: 1 }],
    );
    // A snapshot claiming an older version of an actor than the tail continues from: a gap.
    const stale: BootSnapshot = {
      position: snap.position,
      records: snap.records.map((r) => ({ ...r, version: r.version - 1 })),
    };
    const { full, quick, quickReport } = await bootBoth(store, clock, stale);
    expect(quickReport.fromSnapshot).toBe(false);
    expect(view(quick)).toEqual(view(full));
    // A store that knows none of the snapshot's actors (another store's snapshot).
    const other = new MemoryEventStore();
    const probe = Object.assign(other, { status: () => 'unknown' as const });
    const rt = runtime(probe, clock, async () => []);
    const report = await rt.boot({ from: snap });
    expect(report.fromSnapshot).toBe(false);
    expect(rt.actors()).toEqual([]);
  });

  it('covers only positions whose facts are folded', async () => {
    const store = new MemoryEventStore();
    const clock = new ManualClock(T0);
    const rt = runtime(store, clock);
    expect(rt.snapshotState()).toBeUndefined();
    await rt.boot();
    await play(rt, clock, [{ k: 'launch', i: 1 }]);
    const s = rt.snapshotState()!;
    let last = 0;
    for await (const e of store.readAll()) last = e.position;
    expect(s.position).toBe(last);
    expect(s.records.map((r) => r.stream)).toEqual([`launch.${launchId(1)}`]);
  });
});
