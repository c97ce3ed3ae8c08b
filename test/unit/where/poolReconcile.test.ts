/**
 * The reconciler and the warm pools, on a manual clock with the real runtime, effect runner and the
 * Fly fake: pooled machines are never orphans nor on the map; one found running unclaimed is
 * stopped; an unknown one is adopted, or retired when of an older image; one that vanished is gone
 * and replaced; one of a pool nobody configured is destroyed.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { poolChart, poolStream } from '../../../machines/index.js';
import { FakeFlyMachines } from '../../../src/adapters/fly/fakeFlyMachines.js';
import { MemoryEventStore } from '../../../src/adapters/memory/memoryEventStore.js';
import { MemoryCapacityLedger } from '../../../src/adapters/memory/memoryCoordination.js';
import { ManualClock } from '../../../src/adapters/system/manualClock.js';
import { UlidIds } from '../../../src/adapters/system/ulidIds.js';
import { ActorRuntime } from '../../../src/runtime/actorRuntime.js';
import { createEffectRunner } from '../../../src/runtime/effects.js';
import { silentLogger } from '../../../src/shared/log.js';
import { machineSpec, poolMachineSpec } from '../../../src/where/machineSpec.js';
import { Fleet } from '../../../src/where/services/fleet.js';
import { LIST_GRACE_MS, Reconciler } from '../../../src/where/services/reconciler.js';

const IMAGE = 'wheremachines:v2';
const log = silentLogger();
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function rig() {
  const clock = new ManualClock(Date.UTC(2026, 5, 1, 12));
  const fly = new FakeFlyMachines({ clock, timers: clock });
  const cfg = {
    vm: { image: IMAGE, cmd: ['node', 'dist/useless.mjs'], publicUrl: 'http://vm.localhost' },
    callback: {
      baseUrl: 'http://127.0.0.1:4001',
      fallbackUrl: 'http://127.0.0.1:4001',
      secret: 's'.repeat(40),
    },
    publicUrl: 'http://localhost:8080',
  };
  const runtime = new ActorRuntime({
    store: new MemoryEventStore(),
    clock,
    timers: clock,
    ids: new UlidIds(clock),
    log,
    instance: 'i1',
    runEffect: createEffectRunner({
      fly,
      ledger: new MemoryCapacityLedger(),
      clock,
      log,
      maxMachines: () => 8,
      machineSpec: (p) => machineSpec(cfg, p),
      poolSpec: (p) => poolMachineSpec(cfg, p),
      autoLaunch: { owner: 'i1', readyTimeoutMs: 60_000, ttlMs: 60_000 },
      sleep: async () => {},
    }),
    random: () => 0.5,
  });
  await runtime.boot();
  const fleet = new Fleet(runtime, clock, () => 8);
  const reconciler = new Reconciler({
    fly,
    runtime,
    clock,
    timers: clock,
    log,
    minGapMs: 0,
    intervalMs: 3_600_000,
    ttl: { buttonMs: 600_000, autoMs: 60_000 },
    isLeader: () => true,
  });
  cleanups.push(async () => {
    reconciler.stop();
    fleet.close();
    clock.clearAll();
    await runtime.close(100);
  });
  const pool = () => poolChart.view(runtime.actor(poolStream('fra'))!.snapshot as never);
  const reconcile = async () => {
    const report = await reconciler.runOnce();
    await runtime.settled();
    return report;
  };
  await runtime.dispatch({
    type: 'pool.configured',
    data: { region: 'fra', target: 2, image: IMAGE },
  });
  for (let i = 0; i < 10 && pool().ready.length < 2; i++) await runtime.settled();
  expect(pool().ready).toHaveLength(2);
  return { clock, fly, runtime, fleet, pool, reconcile };
}

/** A pooled machine made behind the pool's back (an instance that died mid-create, an old deploy). */
function stray(fly: FakeFlyMachines, name: string, metadata: Record<string, string>) {
  return fly.create({
    name,
    region: 'fra',
    image: metadata.pool_image ?? 'x',
    env: {},
    metadata,
    internalPort: 4040,
    autoDestroy: true,
    restart: { policy: 'no' },
    stop: { signal: 'SIGTERM', timeoutS: 10 },
    skipLaunch: true,
  });
}

describe('the reconciler and the warm pools', () => {
  it('never takes pooled machines for orphans or shows them on the map', async () => {
    const r = await rig();
    const report = await r.reconcile();
    expect(report).toMatchObject({ ok: true, orphans: 0, observed: 0 });
    expect(r.fly.live()).toHaveLength(2);
    expect(r.fleet.machines()).toEqual([]);
    expect(r.fleet.capacity().live).toBe(0);
    expect(r.runtime.actors('vm')).toEqual([]);
  });

  it('stops an unclaimed pooled machine found running; auto-destroyed, it is replaced', async () => {
    const r = await rig();
    const [id] = r.pool().ready;
    await r.fly.start(id!);
    expect(r.fly.live().find((m) => m.id === id)!.state).toBe('started');
    const report = await r.reconcile();
    expect(report.pools).toMatchObject({ stopped: 1 });
    expect(r.fly.count('stop')).toBe(1);
    expect(r.fly.live().some((m) => m.id === id)).toBe(false);
    for (let i = 0; i < 10 && r.pool().ready.length < 2; i++) await r.runtime.settled();
    expect(r.pool().ready).toHaveLength(2);
    expect(r.pool().ready).not.toContain(id);
  });

  it('adopts an unknown pooled machine of the current image, retires one of an older image', async () => {
    const r = await rig();
    // One ready machine leaves behind the pool's back, so there is room for an adopted one.
    const [lost] = r.pool().ready;
    await r.fly.destroy(lost!, { force: true });
    const current = await stray(r.fly, 'wm-pool-fra-current1', { pool: 'fra', pool_image: IMAGE });
    const old = await stray(r.fly, 'wm-pool-fra-old1', {
      pool: 'fra',
      pool_image: 'wheremachines:v1',
    });
    r.clock.advance(LIST_GRACE_MS + 1);
    const report = await r.reconcile();
    expect(report.pools).toMatchObject({ adopted: 2, gone: 1 });
    expect(r.pool().ready).toContain(current.id);
    expect(r.pool().machines[old.id]).toBeUndefined();
    expect(r.fly.live().some((m) => m.id === old.id)).toBe(false);
    expect(r.pool().ready).toHaveLength(2);
    expect(r.fly.live().some((m) => m.id === lost)).toBe(false);
  });

  it('replaces a pooled machine that vanished, once past the list grace', async () => {
    const r = await rig();
    const [gone] = r.pool().ready;
    await r.fly.destroy(gone!, { force: true });
    expect((await r.reconcile()).pools).toBeUndefined();
    r.clock.advance(LIST_GRACE_MS + 1);
    expect((await r.reconcile()).pools).toMatchObject({ gone: 1 });
    for (let i = 0; i < 10 && r.pool().ready.length < 2; i++) await r.runtime.settled();
    expect(r.pool().ready).toHaveLength(2);
    expect(r.pool().ready).not.toContain(gone);
  });

  it('destroys a pooled machine of a pool nobody configured', async () => {
    const r = await rig();
    const m = await stray(r.fly, 'wm-pool-syd-left1', { pool: 'syd', pool_image: IMAGE });
    const report = await r.reconcile();
    expect(report.pools).toMatchObject({ destroyed: 1 });
    expect(r.fly.live().some((x) => x.id === m.id)).toBe(false);
    expect(r.fly.live()).toHaveLength(2);
  });
});
