/**
 * The warm pool through the landing app (in-memory store, Fly fake): a launch starts a pooled
 * machine instead of creating one and is ready, the pool refills, an empty pool falls back to a
 * create, stopped pooled machines take no cap slot, and two runtimes on one shared store never
 * claim the same machine.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { FakeFlyMachines } from '../../../src/adapters/fly/fakeFlyMachines.js';
import { MemoryEventStore } from '../../../src/adapters/memory/memoryEventStore.js';
import { ManualClock } from '../../../src/adapters/system/manualClock.js';
import { UlidIds } from '../../../src/adapters/system/ulidIds.js';
import { poolChart, poolStream } from '../../../machines/index.js';
import { ActorRuntime } from '../../../src/runtime/actorRuntime.js';
import { createEffectRunner } from '../../../src/runtime/effects.js';
import { poolClaimer } from '../../../src/runtime/poolClaims.js';
import { MemoryCapacityLedger } from '../../../src/adapters/memory/memoryCoordination.js';
import { silentLogger } from '../../../src/shared/log.js';
import { machineSpec, poolMachineSpec } from '../../../src/where/machineSpec.js';
import { openSse, type SseReader } from '../../support/sse.js';
import { launch, testConfig, whereRig, type WhereRig } from '../../support/whereRig.js';

let rig: WhereRig | undefined;
const readers: SseReader[] = [];
afterEach(async () => {
  for (const r of readers.splice(0)) r.close();
  await rig?.stop();
  rig = undefined;
});

const statuses = (r: SseReader) =>
  r.frames.filter((f) => f.event === 'launch').map((f) => (f.data as { status: string }).status);
const pooled = (fly: FakeFlyMachines) => fly.live().filter((m) => m.metadata.pool !== undefined);
const readyPooled = (fly: FakeFlyMachines) =>
  pooled(fly).filter((m) => m.state === 'created' && m.metadata.launch_id === undefined);

async function launchIn(r: WhereRig, region: string, ip?: string) {
  const res = await launch(r, { region }, ip ? { 'fly-client-ip': ip } : {});
  expect(res.status).toBe(202);
  const body = (await res.json()) as { launchId: string; events: string };
  const sse = await openSse(r.base + body.events);
  readers.push(sse);
  return { ...body, sse };
}

describe('a warm pool per region', () => {
  it('keeps its target stopped, a launch starts one of them and is ready, and the pool refills', async () => {
    rig = await whereRig({ WM_POOL: 'fra:2' });
    const fly = rig.fly;
    await expect.poll(() => readyPooled(fly).length).toBe(2);
    const stopped = readyPooled(fly).map((m) => m.id);
    const env = fly.inputOf(stopped[0]!)!.env;
    expect(fly.inputOf(stopped[0]!)!.skipLaunch).toBe(true);
    expect(env.WM_POOL_REGION).toBe('fra');
    expect(env.WM_POOL_KEY).toMatch(/^[0-9a-f]{64}$/);
    // No launch, no launch key: a pooled machine learns them from its claim.
    expect(env.WM_LAUNCH_ID).toBeUndefined();
    expect(env.WM_CALLBACK_KEY).toBeUndefined();

    const creates = fly.count('create');
    const l = await launchIn(rig, 'fra');
    await expect.poll(() => statuses(l.sse)).toEqual(['requested', 'created', 'started']);
    const mine = fly.live().find((m) => m.metadata.launch_id === l.launchId)!;
    expect(stopped).toContain(mine.id);
    expect(mine.state).toBe('started');
    expect(mine.metadata).toMatchObject({ source: 'button', owner: 'test-1', pool: 'fra' });

    const cb = await rig.callback({
      machineId: mine.id,
      launchId: l.launchId,
      region: 'fra',
      status: 'listening',
      at: new Date().toISOString(),
    });
    expect(cb.status).toBe(200);
    await expect.poll(() => statuses(l.sse).at(-1)).toBe('ready');
    // Refilled by one create (for the pool), none for the launch.
    await expect.poll(() => readyPooled(fly).length).toBe(2);
    expect(fly.count('create')).toBe(creates + 1);
    const metrics = await (await fetch(`${rig.priv}/metrics`)).text();
    expect(metrics).toMatch(/wm_pool_claims_total\{region="fra",result="claimed"\} 1/);
    expect(metrics).toMatch(/wm_pool_machines\{region="fra",state="ready"\} 2/);
  });

  it('falls back to a create when the pool is empty', async () => {
    rig = await whereRig({ WM_POOL: 'fra:1', WM_COOLDOWN_MS: '0' });
    const fly = rig.fly;
    await expect.poll(() => readyPooled(fly).length).toBe(1);
    // The refill after the first claim hangs: the pool stays empty for the second launch.
    const release = fly.holdNext('create');
    const first = await launchIn(rig, 'fra');
    await expect.poll(() => statuses(first.sse)).toContain('created');
    const second = await launchIn(rig, 'fra');
    await expect.poll(() => statuses(second.sse)).toContain('created');
    const made = fly.live().find((m) => m.metadata.launch_id === second.launchId)!;
    expect(made.metadata.pool).toBeUndefined();
    expect(fly.inputOf(made.id)!.env.WM_LAUNCH_ID).toBe(second.launchId);
    release();
    await expect.poll(() => readyPooled(fly).length).toBe(1);
    const metrics = await (await fetch(`${rig.priv}/metrics`)).text();
    expect(metrics).toMatch(/wm_pool_claims_total\{region="fra",result="empty"\} 1/);
  });

  it('creates as before when the start of a claimed machine fails, and retires that machine', async () => {
    rig = await whereRig({ WM_POOL: 'fra:1' });
    const fly = rig.fly;
    await expect.poll(() => readyPooled(fly).length).toBe(1);
    const [victim] = readyPooled(fly).map((m) => m.id);
    fly.failNext('start', { status: 500, message: 'host unavailable' });
    const l = await launchIn(rig, 'fra');
    await expect.poll(() => statuses(l.sse)).toContain('created');
    const mine = fly.live().filter((m) => m.metadata.launch_id === l.launchId);
    expect(mine).toHaveLength(1);
    expect(mine[0]!.id).not.toBe(victim);
    expect(mine[0]!.metadata.pool).toBeUndefined();
    await expect.poll(() => fly.live().some((m) => m.id === victim)).toBe(false);
    await expect.poll(() => readyPooled(fly).length).toBe(1);
  });

  it('takes no cap slot for stopped pooled machines', async () => {
    rig = await whereRig({ WM_POOL: 'fra:3', WM_MAX_MACHINES: '1' });
    await expect.poll(() => readyPooled(rig!.fly).length).toBe(3);
    expect(rig.system.services.fleet.capacity().live).toBe(0);
    const l = await launchIn(rig, 'fra');
    await expect.poll(() => statuses(l.sse)).toContain('created');
    expect(rig.system.services.fleet.capacity().live).toBe(1);
    // The cap is the launches': a second one is refused while the first lives.
    const res = await launch(rig, { region: 'fra' }, { 'fly-client-ip': '10.0.0.9' });
    expect(res.status).toBe(503);
  });

  it('retires machines of an older image when the image changes, and refills with the new one', async () => {
    const fly = new FakeFlyMachines();
    rig = await whereRig({ WM_POOL: 'fra:2', WM_VM_IMAGE: 'where:v1' }, { fly });
    await expect.poll(() => readyPooled(fly).length).toBe(2);
    const old = readyPooled(fly).map((m) => m.id);
    const store = rig.store;
    await rig.stop();
    // A deploy: the same store, the next image.
    rig = await whereRig({ WM_POOL: 'fra:2', WM_VM_IMAGE: 'where:v2' }, { fly, store });
    await expect
      .poll(() => readyPooled(fly).map((m) => fly.inputOf(m.id)!.image))
      .toEqual(['where:v2', 'where:v2']);
    for (const id of old) expect(fly.live().some((m) => m.id === id)).toBe(false);
  });
});

describe('the demand rule (WM_POOL_FOLLOW_DEMAND)', () => {
  it('keeps one machine in a region that had a launch, and the next launch there takes it', async () => {
    rig = await whereRig({ WM_POOL_FOLLOW_DEMAND: '1', WM_COOLDOWN_MS: '0' });
    const fly = rig.fly;
    expect(pooled(fly)).toEqual([]);
    const first = await launchIn(rig, 'syd');
    await expect.poll(() => statuses(first.sse)).toContain('created');
    // The launch was created (no pool yet); the region now keeps one.
    await expect.poll(() => readyPooled(fly).filter((m) => m.region === 'syd').length).toBe(1);
    const [warm] = readyPooled(fly);
    const second = await launchIn(rig, 'syd', '10.0.0.2');
    await expect.poll(() => statuses(second.sse)).toContain('created');
    expect(fly.live().find((m) => m.metadata.launch_id === second.launchId)!.id).toBe(warm!.id);
  });
});

describe('claims from two runtimes on one shared store', () => {
  it('never hand the same machine to two launches', async () => {
    const store = new MemoryEventStore();
    const fly = new FakeFlyMachines();
    const clock = new ManualClock(Date.UTC(2026, 5, 1));
    const cfg = testConfig();
    const log = silentLogger();
    const runtimes: ActorRuntime[] = [];
    for (const instance of ['a', 'b']) {
      const ref: { rt?: ActorRuntime } = {};
      const runEffect = createEffectRunner({
        fly,
        ledger: new MemoryCapacityLedger(),
        clock,
        log,
        maxMachines: () => 100,
        machineSpec: (p) => machineSpec(cfg, p),
        poolSpec: (p) => poolMachineSpec(cfg, p),
        autoLaunch: { owner: instance, readyTimeoutMs: 60_000, ttlMs: 60_000 },
        claimPooled: poolClaimer({
          fly,
          clock,
          pool: (s) => ref.rt?.actor(s),
          dispatch: (f) => ref.rt!.dispatch(f),
        }),
      });
      const rt = new ActorRuntime({
        store,
        clock,
        timers: clock,
        ids: new UlidIds(),
        log,
        instance,
        runEffect,
        // The pool is driven by `a` alone (the leader); both claim.
        drives: (r) => r.kind !== 'pool' || instance === 'a',
      });
      ref.rt = rt;
      await rt.boot();
      runtimes.push(rt);
    }
    const [a, b] = runtimes as [ActorRuntime, ActorRuntime];
    await a.dispatch({
      type: 'pool.configured',
      data: { region: 'fra', target: 4, image: cfg.vm.image },
    });
    const view = (rt: ActorRuntime) => {
      const rec = rt.actor(poolStream('fra'));
      return rec && poolChart.view(rec.snapshot as never);
    };
    // Both runtimes fold the pool; it fills one create at a time.
    for (let i = 0; i < 200 && (view(b)?.ready.length ?? 0) < 4; i++) {
      await a.settled();
      await b.settled();
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(view(a)!.ready).toHaveLength(4);
    expect(view(b)!.ready).toEqual(view(a)!.ready);

    // Eight launches, four on each runtime, all at once: each runtime picks the oldest ready
    // machine from its own view, so they collide on the same ones again and again.
    const launchIds = Array.from({ length: 8 }, (_, i) => `01JZ00000000000000000000${10 + i}`);
    await Promise.all(
      launchIds.map((launchId, i) =>
        (i % 2 ? b : a).dispatch({
          type: 'launch.requested',
          data: {
            launchId,
            region: 'fra',
            source: 'dash',
            owner: i % 2 ? 'b' : 'a',
            readyTimeoutMs: 60_000,
            ttlMs: 60_000,
          },
        }),
      ),
    );
    for (let i = 0; i < 200; i++) {
      await a.settled();
      await b.settled();
      const made = launchIds.filter((id) => fly.live().some((m) => m.metadata.launch_id === id));
      if (made.length === launchIds.length) break;
      await new Promise((r) => setTimeout(r, 5));
    }
    // Every launch has exactly one machine, and no machine carries two launches.
    const owners = new Map<string, string>();
    for (const id of launchIds) {
      const mine = fly.live().filter((m) => m.metadata.launch_id === id);
      expect(mine, id).toHaveLength(1);
      expect(owners.has(mine[0]!.id)).toBe(false);
      owners.set(mine[0]!.id, id);
    }
    const history = await store.read(poolStream('fra'));
    const claims = history.filter((e) => e.type === 'pool.machineClaimed');
    const claimed = claims.map((e) => (e.data as { machineId: string }).machineId);
    expect(new Set(claimed).size).toBe(claimed.length);
    // Some launches got pooled machines (a launch that lost every race created one instead).
    expect(claimed.length).toBeGreaterThan(0);
    for (const id of claimed) expect(owners.has(id)).toBe(true);
    await a.close(0);
    await b.close(0);
  });
});
