/**
 * The runtime loop with in-memory adapters, a manual clock and a scripted effect runner: what gets
 * stored, what runs, in what order, and what survives a restart.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryEventStore } from '../../../src/adapters/memory/memoryEventStore.js';
import { ManualClock } from '../../../src/adapters/system/manualClock.js';
import { UlidIds } from '../../../src/adapters/system/ulidIds.js';
import { ActorRuntime, type EffectRunner, type Fact } from '../../../src/runtime/actorRuntime.js';
import { StreamArchivedError } from '../../../src/shared/errors.js';
import { silentLogger } from '../../../src/shared/log.js';
import type { Effect } from '../../../machines/effects.js';
import type { EventStore } from '../../../src/ports/eventStore.js';

const L = '01JZ0000000000000000000010';
const M = 'cccccccccccccc';

interface Rig {
  rt: ActorRuntime;
  clock: ManualClock;
  store: EventStore;
  ran: { effect: Effect; redrive: boolean; stream: string }[];
}

const runtimes: ActorRuntime[] = [];
afterEach(async () => {
  for (const r of runtimes.splice(0)) await r.close(100);
});

/** A runner that records effects and answers from a script (default: the happy path). */
function scripted(
  ran: Rig['ran'],
  script: Partial<Record<Effect['type'], (e: Effect) => Fact[]>> = {},
): EffectRunner {
  const defaults: Partial<Record<Effect['type'], (e: Effect) => Fact[]>> = {
    reserveCapacity: (e) => [
      {
        type: 'capacity.reserved',
        data: { launchId: (e.params as { launchId: string }).launchId, live: 1, limit: 8 },
      },
    ],
  };
  return async (effect, ctx) => {
    ran.push({ effect, redrive: ctx.redrive, stream: ctx.stream });
    const f = script[effect.type] ?? defaults[effect.type];
    return f ? f(effect) : [];
  };
}

async function rig(
  opts: {
    store?: EventStore;
    clock?: ManualClock;
    script?: Parameters<typeof scripted>[1];
    instance?: string;
  } = {},
): Promise<Rig> {
  const clock = opts.clock ?? new ManualClock(Date.UTC(2026, 5, 1));
  const store = opts.store ?? new MemoryEventStore();
  const ran: Rig['ran'] = [];
  const rt = new ActorRuntime({
    store,
    clock,
    timers: clock,
    ids: new UlidIds(clock),
    log: silentLogger(),
    instance: opts.instance ?? 'i1',
    runEffect: scripted(ran, opts.script),
    random: () => 0.25,
  });
  runtimes.push(rt);
  await rt.boot();
  return { rt, clock, store, ran };
}

const request = (readyTimeoutMs = 30_000): Fact<'launch.requested'> => ({
  type: 'launch.requested',
  data: {
    launchId: L,
    region: 'ams',
    source: 'button',
    owner: 'i1',
    readyTimeoutMs,
    ttlMs: 600_000,
  },
});

describe('ActorRuntime', () => {
  it('stores a fact, then runs its effects, and feeds their outcome back in', async () => {
    const { rt, store, ran } = await rig();
    const [out] = await rt.dispatch(request());
    expect(out).toMatchObject({ accepted: true, stream: `launch.${L}` });
    await rt.settled();
    const events = await store.read(`launch.${L}`);
    expect(events.map((e) => e.type)).toEqual(['launch.requested', 'capacity.reserved']);
    expect(events.map((e) => e.version)).toEqual([1, 2]);
    expect(events[1]!.meta.causationId).toBe(events[0]!.id);
    expect(ran.map((r) => r.effect.type)).toEqual(['reserveCapacity', 'createMachine']);
    expect(rt.actor(`launch.${L}`)?.snapshot.value).toBe('creating');
  });

  it('stores nothing for a fact the actor cannot take', async () => {
    const { rt, store } = await rig();
    const out = await rt.dispatch({
      type: 'capacity.reserved',
      data: { launchId: L, live: 1, limit: 8 },
    });
    expect(out).toEqual([{ accepted: false, stream: `launch.${L}`, why: 'cannotTake' }]);
    expect(await store.read(`launch.${L}`)).toEqual([]);
    expect(rt.actor(`launch.${L}`)).toBeUndefined();
  });

  it('routes a machine fact to the machine and to the launch that made it', async () => {
    const { rt, store } = await rig();
    await rt.dispatch(request());
    await rt.settled();
    const outs = await rt.dispatch({
      type: 'fly.machineCreated',
      data: {
        machineId: M,
        launchId: L,
        region: 'ams',
        instanceId: 'I',
        state: 'created',
        source: 'button',
        ttlMs: 600_000,
        createdAt: Date.UTC(2026, 5, 1),
      },
    });
    expect(outs.map((o) => [o.stream, o.accepted])).toEqual([
      [`vm.${M}`, true],
      [`launch.${L}`, true],
    ]);
    // A later fact that names only the machine still reaches the launch, through the machine's actor.
    const later = await rt.dispatch({
      type: 'fly.machineObserved',
      data: { machineId: M, state: 'started', region: 'ams' },
    });
    expect(later.map((o) => o.stream)).toEqual([`vm.${M}`, `launch.${L}`]);
    expect(rt.actor(`launch.${L}`)?.snapshot.hasTag('started')).toBe(true);
    expect((await store.read(`vm.${M}`)).length).toBe(2);
  });

  it('serialises concurrent facts on one actor: versions stay gap-free and duplicates drop', async () => {
    const { rt, store } = await rig({ script: { reserveCapacity: () => [] } });
    await rt.dispatch(request());
    const facts = Array.from({ length: 10 }, () =>
      rt.dispatch({ type: 'capacity.reserved', data: { launchId: L, live: 1, limit: 8 } }),
    );
    const outs = (await Promise.all(facts)).flat();
    expect(outs.filter((o) => o.accepted)).toHaveLength(1);
    const versions = (await store.read(`launch.${L}`)).map((e) => e.version);
    expect(versions).toEqual([1, 2]);
  });

  it('fires a deadline at its time with the deadline it was armed for, and ignores it once moved on', async () => {
    const { rt, clock, store } = await rig({ script: { createMachine: () => [] } });
    const t0 = clock.now();
    await rt.dispatch(request(30_000));
    await rt.settled();
    expect(rt.pendingTimers(`launch.${L}`).get('ready')).toBe(t0 + 30_000);
    clock.advance(29_999);
    await rt.settled();
    expect(rt.actor(`launch.${L}`)?.snapshot.value).toBe('creating');
    clock.advance(1);
    await rt.settled();
    const last = (await store.read(`launch.${L}`)).at(-1)!;
    expect(last.type).toBe('clock.readyElapsed');
    expect(last.data).toMatchObject({ key: 'ready', due: t0 + 30_000, roll: 0.25 });
    expect(Date.parse(last.at)).toBe(t0 + 30_000);
    expect(rt.actor(`launch.${L}`)?.snapshot.value).toBe('cleanup');
  });

  it('disarms a deadline the chart cancelled', async () => {
    const { rt, clock, store } = await rig({ script: { createMachine: () => [] } });
    await rt.dispatch(request(30_000));
    await rt.settled();
    await rt.dispatch({ type: 'vm.listening', data: { machineId: M, launchId: L, region: 'ams' } });
    expect(rt.pendingTimers(`launch.${L}`).size).toBe(0);
    clock.advance(60_000);
    await rt.settled();
    expect((await store.read(`launch.${L}`)).some((e) => e.type === 'clock.readyElapsed')).toBe(
      false,
    );
  });

  it('rebuilds every actor at boot, re-arms its deadline at the original time, and re-drives what was outstanding', async () => {
    const store = new MemoryEventStore();
    const clock = new ManualClock(Date.UTC(2026, 5, 1));
    const t0 = clock.now();
    const a = await rig({ store, clock, script: { createMachine: () => [] } });
    await a.rt.dispatch(request(30_000));
    await a.rt.settled();
    await a.rt.close(10);
    clock.clearAll(); // the first process is gone, and its timers with it
    clock.advance(10_000);

    const b = await rig({ store, clock, script: { createMachine: () => [] } });
    expect(b.rt.actor(`launch.${L}`)?.snapshot.value).toBe('creating');
    expect(b.rt.actor(`launch.${L}`)?.version).toBe(2);
    expect(b.ran).toEqual([
      {
        effect: {
          type: 'createMachine',
          params: { launchId: L, region: 'ams', source: 'button', ttlMs: 600_000 },
        },
        redrive: true,
        stream: `launch.${L}`,
      },
    ]);
    expect(b.rt.pendingTimers(`launch.${L}`).get('ready')).toBe(t0 + 30_000);
    clock.advance(20_000);
    await b.rt.settled();
    const fired = (await store.read(`launch.${L}`)).find((e) => e.type === 'clock.readyElapsed');
    expect(fired?.data).toMatchObject({ due: t0 + 30_000 });
  });

  it('fires an overdue deadline at once after a restart', async () => {
    const store = new MemoryEventStore();
    const clock = new ManualClock(Date.UTC(2026, 5, 1));
    const a = await rig({ store, clock, script: { createMachine: () => [] } });
    await a.rt.dispatch(request(5_000));
    await a.rt.settled();
    await a.rt.close(10);
    clock.clearAll();
    clock.advance(60_000);
    const b = await rig({ store, clock, script: { createMachine: () => [] } });
    clock.advance(0);
    await b.rt.settled();
    expect(b.rt.actor(`launch.${L}`)?.snapshot.value).toBe('cleanup');
  });

  it('lets two instances on one store race on an actor: one wins, the other learns and decides again', async () => {
    const store = new MemoryEventStore();
    const clock = new ManualClock(Date.UTC(2026, 5, 1));
    const a = await rig({ store, clock, instance: 'a', script: { reserveCapacity: () => [] } });
    const b = await rig({ store, clock, instance: 'b', script: { reserveCapacity: () => [] } });
    await a.rt.dispatch(request());
    await b.rt.settled();
    // b folded a's fact from the store feed.
    expect(b.rt.actor(`launch.${L}`)?.version).toBe(1);
    const reserved: Fact = { type: 'capacity.reserved', data: { launchId: L, live: 1, limit: 8 } };
    const [ra, rb] = await Promise.all([a.rt.dispatch(reserved), b.rt.dispatch(reserved)]);
    expect([ra[0]!.accepted, rb[0]!.accepted].filter(Boolean)).toHaveLength(1);
    await a.rt.settled();
    await b.rt.settled();
    expect((await store.read(`launch.${L}`)).map((e) => e.type)).toEqual([
      'launch.requested',
      'capacity.reserved',
    ]);
    expect(a.rt.actor(`launch.${L}`)?.snapshot.value).toBe('creating');
    expect(b.rt.actor(`launch.${L}`)?.snapshot.value).toBe('creating');
  });

  it('notifies listeners after the fact is stored, for local and folded changes alike', async () => {
    const store = new MemoryEventStore();
    const a = await rig({ store, instance: 'a', script: { reserveCapacity: () => [] } });
    const b = await rig({ store, instance: 'b', script: { reserveCapacity: () => [] } });
    const seen: string[] = [];
    b.rt.onChange((c) =>
      seen.push(`${c.event.type}@${c.event.version}:${c.local ? 'local' : 'remote'}`),
    );
    await a.rt.dispatch(request());
    await b.rt.settled();
    expect(seen).toEqual(['launch.requested@1:remote']);
  });

  it('refuses facts for a finished actor', async () => {
    const { rt } = await rig({
      script: {
        reserveCapacity: (e) => [
          {
            type: 'capacity.exhausted',
            data: { launchId: (e.params as { launchId: string }).launchId, live: 8, limit: 8 },
          },
        ],
      },
    });
    await rt.dispatch(request());
    await rt.settled();
    expect(rt.actor(`launch.${L}`)?.snapshot.value).toBe('failed');
    const out = await rt.dispatch({
      type: 'capacity.reserved',
      data: { launchId: L, live: 1, limit: 8 },
    });
    expect(out[0]).toMatchObject({ accepted: false, why: 'finished' });
  });

  it('marks the fact that finishes an actor, skips finished streams at boot, and still refuses late facts for them', async () => {
    const store = new MemoryEventStore();
    const clock = new ManualClock(Date.UTC(2026, 5, 1));
    const exhausted: Parameters<typeof scripted>[1] = {
      reserveCapacity: (e) => [
        {
          type: 'capacity.exhausted',
          data: { launchId: (e.params as { launchId: string }).launchId, live: 8, limit: 8 },
        },
      ],
    };
    const a = await rig({ store, clock, script: exhausted });
    await a.rt.dispatch(request());
    await a.rt.settled();
    const history = await store.read(`launch.${L}`);
    expect(history.map((e) => [e.type, e.meta.closes ?? false])).toEqual([
      ['launch.requested', false],
      ['capacity.exhausted', true],
    ]);
    await a.rt.close(10);
    const b = await rig({ store, clock, script: exhausted });
    expect(b.rt.actor(`launch.${L}`)).toBeUndefined();
    // Its story is still there for whoever asks.
    expect((await b.rt.replay(`launch.${L}`)).at(-1)?.snapshot.value).toBe('failed');
    // A late fact for it is refused (the new record conflicts, catches up, finds it finished).
    const late = await b.rt.dispatch({ type: 'launch.requested', data: request().data });
    expect(late[0]).toMatchObject({ accepted: false, why: 'finished' });
    expect(await store.read(`launch.${L}`)).toHaveLength(2);
  });

  it('waits for an actor to reach a condition', async () => {
    const { rt } = await rig();
    const waiting = rt.waitFor(`launch.${L}`, (r) => r.snapshot.matches('creating'), 1000);
    await rt.dispatch(request());
    expect((await waiting)?.snapshot.value).toBe('creating');
    expect(
      await rt.waitFor(`launch.${L}`, (r) => r.snapshot.matches('redirect'), 20),
    ).toBeUndefined();
  });

  it('replays any stream to its snapshot at every version', async () => {
    const { rt } = await rig({ script: { createMachine: () => [] } });
    await rt.dispatch(request());
    await rt.settled();
    const steps = await rt.replay(`launch.${L}`);
    expect(steps.map((s): unknown[] => [s.event.version, s.snapshot.value as unknown])).toEqual([
      [1, 'requested'],
      [2, 'creating'],
    ]);
  });
});

describe('a fact for a stream that retention archived', () => {
  it('is refused as late (finished), not thrown, and nothing runs', async () => {
    class ArchivingStore extends MemoryEventStore {
      override append(...args: Parameters<MemoryEventStore['append']>) {
        if (args[0] === `vm.${M}`) return Promise.reject(new StreamArchivedError(args[0]));
        return super.append(...args);
      }
    }
    const { rt, ran } = await rig({ store: new ArchivingStore() });
    const out = await rt.dispatch({
      type: 'fly.machineObserved',
      data: { machineId: M, state: 'started', region: 'ams' },
    });
    expect(out).toEqual([{ accepted: false, stream: `vm.${M}`, why: 'finished' }]);
    expect(ran).toEqual([]);
  });
});
