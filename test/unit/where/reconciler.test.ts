/**
 * The reconciler on a manual clock, with the real runtime, effect runner, fleet projection and the
 * Fly fake: an API error changes nothing and later runs still happen; listed machines are adopted
 * (foreign ones as 'foreign'); vanished ones are marked gone after the list grace; orphans with our
 * metadata are destroyed. And the debounce under it: leading edge, one trailing run, the gap.
 */
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { FakeFlyMachines } from '../../../src/adapters/fly/fakeFlyMachines.js';
import { MemoryEventStore } from '../../../src/adapters/memory/memoryEventStore.js';
import { MemoryCapacityLedger } from '../../../src/adapters/memory/memoryCoordination.js';
import { ManualClock } from '../../../src/adapters/system/manualClock.js';
import { UlidIds } from '../../../src/adapters/system/ulidIds.js';
import type { CreateMachineInput, FlyMachines } from '../../../src/ports/flyMachines.js';
import { ActorRuntime } from '../../../src/runtime/actorRuntime.js';
import { createEffectRunner } from '../../../src/runtime/effects.js';
import { silentLogger } from '../../../src/shared/log.js';
import { machineSpec } from '../../../src/where/machineSpec.js';
import { Debounced } from '../../../src/where/services/debounce.js';
import { Fleet } from '../../../src/where/services/fleet.js';
import { LIST_GRACE_MS, Reconciler } from '../../../src/where/services/reconciler.js';

const GAP = 5000;
const MAX = 8;
const log = silentLogger();

interface Rig {
  clock: ManualClock;
  fly: FakeFlyMachines;
  store: MemoryEventStore;
  ledger: MemoryCapacityLedger;
  runtime: ActorRuntime;
  fleet: Fleet;
  reconciler: Reconciler;
  /** Every effect and timer-fired fact has run its course. */
  settle(): Promise<void>;
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function rig(
  opts: {
    fly?: FlyMachines;
    clock?: ManualClock;
    fake?: FakeFlyMachines;
    leader?: () => boolean;
  } = {},
): Promise<Rig> {
  const clock = opts.clock ?? new ManualClock(Date.UTC(2026, 5, 1, 12));
  const fake = opts.fake ?? new FakeFlyMachines({ clock, timers: clock });
  const fly = opts.fly ?? fake;
  const store = new MemoryEventStore();
  const ledger = new MemoryCapacityLedger();
  const cfg = {
    vm: {
      image: 'wheremachines:test',
      cmd: ['node', 'dist/useless.mjs'],
      publicUrl: 'http://useless-machine.localhost:8080',
    },
    callback: {
      baseUrl: 'http://127.0.0.1:4001',
      fallbackUrl: 'http://127.0.0.1:4001',
      secret: 's'.repeat(40),
    },
    publicUrl: 'http://localhost:8080',
  };
  const runEffect = createEffectRunner({
    fly,
    ledger,
    clock,
    log,
    maxMachines: () => MAX,
    machineSpec: (p) => machineSpec(cfg, p),
    autoLaunch: { owner: 'i1', readyTimeoutMs: 60_000, ttlMs: 60_000 },
    sleep: async () => {},
  });
  const runtime = new ActorRuntime({
    store,
    clock,
    timers: clock,
    ids: new UlidIds(clock),
    log,
    instance: 'i1',
    runEffect,
    random: () => 0.5,
  });
  await runtime.boot();
  const fleet = new Fleet(runtime, clock, () => MAX);
  const reconciler = new Reconciler({
    fly,
    runtime,
    clock,
    timers: clock,
    log,
    minGapMs: GAP,
    intervalMs: 3_600_000,
    ttl: { buttonMs: 600_000, autoMs: 60_000 },
    isLeader: opts.leader ?? (() => true),
  });
  cleanups.push(async () => {
    reconciler.stop();
    fleet.close();
    clock.clearAll();
    await runtime.close(100);
  });
  const settle = async () => {
    await reconciler.idle();
    await runtime.settled();
  };
  return { clock, fly: fake, store, ledger, runtime, fleet, reconciler, settle };
}

/** A machine made behind the app's back (another tool, a crashed instance, a console user). */
function external(fly: FakeFlyMachines, metadata: Record<string, string> = {}, region = 'ord') {
  const input: CreateMachineInput = {
    region,
    image: 'someone/else:1',
    env: {},
    metadata,
    internalPort: 8080,
    autoDestroy: true,
    restart: { policy: 'no' },
    stop: { signal: 'SIGTERM', timeoutS: 10 },
  };
  return fly.create(input);
}

const fleetIds = (r: Rig) =>
  r.fleet
    .machines()
    .map((m) => m.machineId)
    .sort();

/** A button launch through the runtime, settled with its machine started. */
async function startLaunch(r: Rig, launchId: string): Promise<string> {
  await r.runtime.dispatch({
    type: 'launch.requested',
    data: {
      launchId,
      region: 'fra',
      source: 'button',
      owner: 'i1',
      readyTimeoutMs: 60_000,
      ttlMs: 600_000,
    },
  });
  await r.settle();
  const rec = r.runtime.actor(`launch.${launchId}`)!;
  expect(rec.snapshot.hasTag('started')).toBe(true);
  return (rec.snapshot.context as { machineId: string }).machineId;
}

describe('the reconciler', () => {
  it('adopts listed machines: ours with their source, foreign ones as foreign, each holding a cap slot', async () => {
    const r = await rig();
    const foreign = await external(r.fly);
    const auto = await external(r.fly, { source: 'auto' }, 'syd');
    const report = await r.reconciler.runOnce();
    await r.settle();
    expect(report).toMatchObject({ ok: true, listed: 2, observed: 2, orphans: 0, gone: 0 });
    expect(r.fleet.machines()).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          machineId: foreign.id,
          region: 'ord',
          status: 'started',
          source: 'foreign',
        }),
        expect.objectContaining({
          machineId: auto.id,
          region: 'syd',
          status: 'started',
          source: 'auto',
        }),
      ]),
    );
    expect(r.fleet.capacity()).toEqual({ live: 2, limit: MAX });
    expect((await r.ledger.holds(r.clock.now())).map((h) => h.holder).sort()).toEqual(
      [`vm:${auto.id}`, `vm:${foreign.id}`].sort(),
    );
    // Adopted machines get a deadline: nothing here outlives its actor.
    expect(r.runtime.pendingTimers(`vm.${foreign.id}`).has('ttl')).toBe(true);
    // Seeing them again is no news.
    const again = await r.reconciler.runOnce();
    expect(again).toMatchObject({ ok: true, listed: 2, observed: 0 });
  });

  it('keeps the fleet and the count as they are when the API fails, and runs again later', async () => {
    const r = await rig();
    const ids = [(await external(r.fly)).id, (await external(r.fly, {}, 'ams')).id].sort();
    await r.reconciler.runOnce();
    await r.settle();
    expect(fleetIds(r)).toEqual(ids);
    const holds = await r.ledger.holds(r.clock.now());
    const events = (await r.store.read(`vm.${ids[0]}`)).length;

    // Every kind of failure, long after the machines' list grace: nothing is lost or lowered.
    r.clock.advance(LIST_GRACE_MS + 1);
    for (const failure of [
      { status: 0 },
      { status: 500 },
      { status: 503 },
      { status: 429 },
      { status: 401 },
      { status: 404 },
    ]) {
      r.fly.failNext('list', failure);
      const report = await r.reconciler.runOnce();
      expect(report).toMatchObject({ ok: false, gone: 0 });
      expect(report.error).toBeTruthy();
      await r.settle();
      expect(fleetIds(r)).toEqual(ids);
      expect(r.fleet.capacity()).toEqual({ live: 2, limit: MAX });
      expect(await r.ledger.holds(r.clock.now())).toEqual(holds);
      expect((await r.store.read(`vm.${ids[0]}`)).length).toBe(events);
    }

    // Through the debounced path: a failed run, then the next request still runs, and works.
    r.fly.failNext('list', { status: 502 });
    const lists = r.fly.count('list');
    r.reconciler.request();
    await r.settle();
    expect(r.reconciler.last).toMatchObject({ ok: false });
    r.clock.advance(GAP);
    r.reconciler.request();
    await r.settle();
    expect(r.fly.count('list')).toBe(lists + 2);
    expect(r.reconciler.last).toMatchObject({ ok: true, listed: 2 });
    expect(fleetIds(r)).toEqual(ids);
  });

  it('keeps running after a run that throws (not an API error)', async () => {
    const clock = new ManualClock(Date.UTC(2026, 5, 1, 12));
    const fake = new FakeFlyMachines({ clock, timers: clock });
    let explode = 1;
    // A list that answers garbage once: the run crashes inside, the loop must survive.
    const flaky: FlyMachines = {
      create: (input) => fake.create(input),
      get: (id) => fake.get(id),
      wait: (id, state, o) => fake.wait(id, state, o),
      stop: (id, o) => fake.stop(id, o),
      destroy: (id, o) => fake.destroy(id, o),
      start: (id) => fake.start(id),
      update: (id, input, o) => fake.update(id, input, o),
      getMetadata: (id) => fake.getMetadata(id),
      setMetadata: (id, k, v) => fake.setMetadata(id, k, v),
      deleteMetadata: (id, k) => fake.deleteMetadata(id, k),
      list: async (filter) => {
        if (explode-- > 0)
          return [{ id: 'aaaaaaaaaaaaaa', state: 'started', region: 'ams' }] as never;
        return fake.list(filter);
      },
    };
    const r = await rig({ clock, fake, fly: flaky });
    const m = await external(fake);
    r.reconciler.request();
    await r.settle();
    expect(r.reconciler.runs).toBe(1);
    clock.advance(GAP);
    r.reconciler.request();
    await r.settle();
    expect(r.reconciler.runs).toBe(2);
    expect(r.reconciler.last).toMatchObject({ ok: true, listed: 1 });
    expect(fleetIds(r)).toEqual([m.id]);
  });

  it('marks a machine gone once the list has lacked it beyond the list grace (or Fly says it is gone)', async () => {
    const r = await rig();
    const m = await external(r.fly);
    await r.reconciler.runOnce();
    await r.settle();
    expect(fleetIds(r)).toEqual([m.id]);

    // Missing from a list while still young and alive (the list may lag a create): it stays.
    const list = r.fly.list.bind(r.fly);
    r.fly.list = async () => [];
    expect(await r.reconciler.runOnce()).toMatchObject({ ok: true, listed: 0, gone: 0 });
    expect(fleetIds(r)).toEqual([m.id]);
    // Asking for it fails too: an API error proves nothing either.
    r.fly.failNext('get', { status: 503 });
    await r.fly.destroy(m.id);
    expect(await r.reconciler.runOnce()).toMatchObject({ ok: true, listed: 0, gone: 0 });
    expect(fleetIds(r)).toEqual([m.id]);
    r.fly.list = list;

    r.clock.advance(LIST_GRACE_MS);
    expect(await r.reconciler.runOnce()).toMatchObject({ ok: true, gone: 1 });
    await r.settle();
    expect(r.fleet.machines()).toEqual([]);
    expect(r.fleet.capacity().live).toBe(0);
    expect(r.runtime.actor(`vm.${m.id}`)?.snapshot.status).toBe('done');
    expect(await r.ledger.holds(r.clock.now())).toEqual([]);
    expect((await r.store.read(`vm.${m.id}`)).at(-1)!.type).toBe('fly.machineGone');
    // Gone is gone: the next run has nothing to say.
    expect(await r.reconciler.runOnce()).toMatchObject({ gone: 0 });
  });

  it('marks a machine that said it was stopping gone as soon as the list lacks it, grace or not', async () => {
    const r = await rig();
    const m = await external(r.fly);
    await r.reconciler.runOnce();
    await r.settle();
    // Its own watch learns nothing (the API keeps failing it); only the reconciler can tell.
    r.fly.failNext('wait', { status: 503 }, 5);
    await r.runtime.dispatch({ type: 'vm.stopping', data: { machineId: m.id, reason: 'ttl' } });
    await r.settle();
    expect(r.runtime.actor(`vm.${m.id}`)?.snapshot.value).toBe('stopping');
    // On its way out and no longer listed: gone, without waiting out the grace kept for creates.
    await r.fly.destroy(m.id);
    expect(await r.reconciler.runOnce()).toMatchObject({ ok: true, gone: 1 });
    await r.settle();
    expect(r.runtime.actor(`vm.${m.id}`)?.snapshot.status).toBe('done');
    expect(await r.ledger.holds(r.clock.now())).toEqual([]);
  });

  it("destroys machines carrying a launch id whose launch is unknown or over, and leaves a live launch's machine alone", async () => {
    const r = await rig();
    // A live launch: its machine is ours and wanted.
    const liveLaunch = '01JZ00000000000000000000A1';
    const liveMachine = await startLaunch(r, liveLaunch);
    // A launch that is over (Fly refused its create), and a machine claiming it anyway.
    const overLaunch = '01JZ00000000000000000000B2';
    r.fly.failNext('create', { status: 422, message: 'invalid config' });
    await r.runtime.dispatch({
      type: 'launch.requested',
      data: {
        launchId: overLaunch,
        region: 'ams',
        source: 'button',
        owner: 'i1',
        readyTimeoutMs: 60_000,
        ttlMs: 600_000,
      },
    });
    await r.settle();
    expect(r.runtime.actor(`launch.${overLaunch}`)?.snapshot.status).toBe('done');
    const ofOver = await external(r.fly, { launch_id: overLaunch, source: 'button', owner: 'i1' });
    // A launch nobody here ever heard of (a crashed instance's, a stale store).
    const ofUnknown = await external(
      r.fly,
      { launch_id: '01JZ00000000000000000000C3', source: 'auto', owner: 'gone-1' },
      'nrt',
    );
    // Metadata that is not a launch id is not ours to judge.
    const junk = await external(r.fly, { launch_id: 'not-a-ulid' });

    const report = await r.reconciler.runOnce();
    await r.settle();
    expect(report).toMatchObject({ ok: true, listed: 4, orphans: 2 });
    const state = (id: string) => r.fly.ledger().find((m) => m.id === id)!.state;
    expect(state(ofOver.id)).toBe('destroyed');
    expect(state(ofUnknown.id)).toBe('destroyed');
    expect(state(liveMachine)).toBe('started');
    expect(state(junk.id)).toBe('started');
    expect(
      r.fly.calls
        .filter((c) => c.op === 'destroy')
        .map((c) => c.machineId)
        .sort(),
    ).toEqual([ofOver.id, ofUnknown.id].sort());
    for (const id of [ofOver.id, ofUnknown.id]) {
      const types = (await r.store.read(`vm.${id}`)).map((e) => e.type);
      expect(types).toEqual([
        'fly.machineObserved',
        'reconcile.orphanFound',
        'fly.machineDestroyed',
      ]);
    }
    expect(fleetIds(r)).toEqual([liveMachine, junk.id].sort());
    expect(r.runtime.actor(`launch.${liveLaunch}`)?.snapshot.hasTag('started')).toBe(true);

    // Once destroyed they are simply absent: no second destroy.
    const again = await r.reconciler.runOnce();
    await r.settle();
    expect(again).toMatchObject({ orphans: 0 });
    expect(r.fly.count('destroy')).toBe(2);
  });

  it('calls the API on the leading edge, folds a burst into one trailing run at the gap, and not at all when not the leader', async () => {
    const r = await rig();
    r.reconciler.request();
    expect(r.fly.count('list')).toBe(1);
    for (let i = 0; i < 10; i++) {
      r.clock.advance(100);
      r.reconciler.request();
    }
    await r.settle();
    expect(r.fly.count('list')).toBe(1);
    r.clock.advance(GAP - 1001);
    await r.settle();
    expect(r.fly.count('list')).toBe(1);
    r.clock.advance(1);
    await r.settle();
    expect(r.fly.count('list')).toBe(2);
    r.clock.advance(10 * GAP);
    await r.settle();
    expect(r.fly.count('list')).toBe(2);

    let leader = false;
    const follower = await rig({ leader: () => leader });
    follower.reconciler.request();
    follower.clock.advance(GAP);
    await follower.settle();
    expect(follower.fly.count('list')).toBe(0);
    leader = true;
    follower.reconciler.request();
    expect(follower.fly.count('list')).toBe(1);
  });
});

/** A job whose runs the test finishes by hand, recording when each started and how many overlap. */
function manualJob(clock: ManualClock) {
  const starts: number[] = [];
  const pending: (() => void)[] = [];
  let running = 0;
  let maxRunning = 0;
  const job = () => {
    starts.push(clock.now());
    running++;
    maxRunning = Math.max(maxRunning, running);
    return new Promise<void>((resolve) =>
      pending.push(() => {
        running--;
        resolve();
      }),
    );
  };
  /** Finish the run in progress and let its trailing edge be armed. */
  const finish = async () => {
    pending.shift()?.();
    for (let i = 0; i < 5; i++) await Promise.resolve();
  };
  return {
    job,
    starts,
    finish,
    get running() {
      return running;
    },
    get maxRunning() {
      return maxRunning;
    },
  };
}

describe('Debounced', () => {
  it('runs at once on the leading edge, once more at lastStart + gap for any number of requests meanwhile', async () => {
    const clock = new ManualClock(0);
    const j = manualJob(clock);
    const d = new Debounced(j.job, GAP, clock, clock, 'test');
    cleanups.push(() => d.stop());

    d.request();
    expect(j.starts).toEqual([0]);
    // Requests during the run collapse into one trailing run.
    clock.advance(1000);
    d.request();
    d.request();
    clock.advance(1000);
    d.request();
    expect(j.starts).toEqual([0]);
    await j.finish();
    clock.advance(GAP - 2000 - 1);
    expect(j.starts).toEqual([0]);
    clock.advance(1);
    expect(j.starts).toEqual([0, GAP]);
    await j.finish();
    // Nothing asked since: nothing runs.
    clock.advance(10 * GAP);
    expect(j.starts).toEqual([0, GAP]);

    // A request long after the last start runs at once again (a new leading edge).
    d.request();
    expect(j.starts).toEqual([0, GAP, 11 * GAP]);
    await j.finish();
    // Within the gap after a finished run: armed for lastStart + gap, the rest collapse into it.
    clock.advance(100);
    d.request();
    clock.advance(100);
    d.request();
    expect(j.starts).toHaveLength(3);
    clock.advance(GAP);
    expect(j.starts).toEqual([0, GAP, 11 * GAP, 12 * GAP]);
    await j.finish();
    expect(j.maxRunning).toBe(1);
  });

  it('never starts a run while one is in progress, even one longer than the gap', async () => {
    const clock = new ManualClock(0);
    const j = manualJob(clock);
    const d = new Debounced(j.job, GAP, clock, clock, 'test');
    cleanups.push(() => d.stop());
    d.request();
    d.request();
    clock.advance(3 * GAP);
    d.request();
    expect(j.starts).toEqual([0]);
    await j.finish();
    // Overdue at once (the manual clock fires due timers when it moves).
    clock.advance(0);
    expect(j.starts).toEqual([0, 3 * GAP]);
    await j.finish();
    expect(j.maxRunning).toBe(1);
  });

  it('stops for good: no trailing run after stop(), no run on request', async () => {
    const clock = new ManualClock(0);
    const j = manualJob(clock);
    const d = new Debounced(j.job, GAP, clock, clock, 'test');
    d.request();
    d.request();
    d.stop();
    await j.finish();
    clock.advance(10 * GAP);
    d.request();
    expect(j.starts).toEqual([0]);
    expect(clock.pending().size).toBe(0);
  });

  it('holds its invariants under any schedule of requests, time and finishing runs (fast-check)', async () => {
    type Op = { kind: 'request' } | { kind: 'advance'; ms: number } | { kind: 'finish' };
    const op: fc.Arbitrary<Op> = fc.oneof(
      fc.constant({ kind: 'request' as const }),
      fc.integer({ min: 0, max: 2 * GAP }).map((ms) => ({ kind: 'advance' as const, ms })),
      fc.constant({ kind: 'finish' as const }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(op, { maxLength: 60 }), async (ops) => {
        const clock = new ManualClock(0);
        const j = manualJob(clock);
        const d = new Debounced(j.job, GAP, clock, clock, 'prop');
        const requests: number[] = [];
        for (const o of ops) {
          if (o.kind === 'request') {
            requests.push(clock.now());
            d.request();
          } else if (o.kind === 'advance') clock.advance(o.ms);
          else await j.finish();
        }
        // Drain: finish runs and let time pass until nothing more happens.
        for (let i = 0; i < 10; i++) {
          await j.finish();
          clock.advance(GAP);
        }
        await j.finish();
        d.stop();
        // Never two at once; never two starts closer than the gap.
        expect(j.maxRunning).toBeLessThanOrEqual(1);
        for (let i = 1; i < j.starts.length; i++)
          expect(j.starts[i]! - j.starts[i - 1]!).toBeGreaterThanOrEqual(GAP);
        // Every request is served by a run that starts at or after it.
        for (const t of requests) expect(j.starts.some((s) => s >= t)).toBe(true);
        // And no run without a request.
        expect(j.starts.length).toBeLessThanOrEqual(requests.length);
      }),
      { numRuns: 300 },
    );
  });
});
