/**
 * The demand rule of the warm pools (WM_POOL_FOLLOW_DEMAND): a region with a launch in the last
 * hour keeps one machine, within WM_POOL_MAX after the configured pools, the most recent first;
 * an hour after its last launch it drains.
 */
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../../src/adapters/system/manualClock.js';
import { MemoryEventStore } from '../../../src/adapters/memory/memoryEventStore.js';
import { UlidIds } from '../../../src/adapters/system/ulidIds.js';
import { ActorRuntime } from '../../../src/runtime/actorRuntime.js';
import { silentLogger } from '../../../src/shared/log.js';
import { DEMAND_WINDOW_MS, PoolDriver } from '../../../src/where/services/pool.js';

async function driver(pools: { region: string; target: number }[], max: number) {
  const clock = new ManualClock(Date.UTC(2026, 5, 1, 12));
  const runtime = new ActorRuntime({
    store: new MemoryEventStore(),
    clock,
    timers: clock,
    ids: new UlidIds(clock),
    log: silentLogger(),
    instance: 'i1',
    // Pools and launches are folded; nothing they ask for is done here.
    runEffect: async () => [],
  });
  await runtime.boot();
  const d = new PoolDriver({
    runtime,
    log: silentLogger(),
    cfg: { regions: pools, max, followDemand: true },
    image: 'img:1',
    isLeader: () => true,
    instance: 'i1',
    isAlive: () => true,
    clock,
  });
  d.start();
  let n = 0;
  const launch = (region: string) =>
    runtime.dispatch({
      type: 'launch.requested',
      data: {
        launchId: `01JZ00000000000000000000${String(n++).padStart(2, '0')}`,
        region,
        source: 'button',
        owner: 'i1',
        readyTimeoutMs: 60_000,
        ttlMs: 60_000,
      },
    });
  const close = async () => {
    d.stop();
    clock.clearAll();
    await runtime.close(0);
  };
  return { clock, runtime, d, launch, close };
}

describe('the pools follow demand', () => {
  it('gives a region with a recent launch one machine, and drains it an hour later', async () => {
    const r = await driver([{ region: 'ams', target: 2 }], 10);
    await r.launch('syd');
    await r.runtime.settled();
    expect(Object.fromEntries(r.d.targets())).toEqual({ ams: 2, syd: 1 });
    await expect.poll(() => r.d.pool('syd')?.target).toBe(1);
    r.clock.advance(DEMAND_WINDOW_MS + 1);
    expect(Object.fromEntries(r.d.targets())).toEqual({ ams: 2 });
    await r.d.configure();
    expect(r.d.pool('syd')?.target).toBe(0);
    await r.close();
  });

  it('stays within WM_POOL_MAX after the configured pools, the most recent region first', async () => {
    const r = await driver([{ region: 'ams', target: 2 }], 3);
    await r.launch('syd');
    r.clock.advance(1000);
    await r.launch('nrt');
    r.clock.advance(1000);
    await r.launch('ams');
    expect(r.d.demandRegions()).toEqual(['ams', 'nrt', 'syd']);
    expect(Object.fromEntries(r.d.targets())).toEqual({ ams: 2, nrt: 1 });
    await r.close();
  });
});
