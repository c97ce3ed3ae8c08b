/** The effect runner against the Fly fake: creates are idempotent by launch, outcomes become facts. */
import { describe, expect, it } from 'vitest';
import { FakeFlyMachines } from '../../../src/adapters/fly/fakeFlyMachines.js';
import { MemoryCapacityLedger } from '../../../src/adapters/memory/memoryCoordination.js';
import { systemClock } from '../../../src/adapters/system/systemClock.js';
import { createEffectRunner } from '../../../src/runtime/effects.js';
import type { ActorRecord, EffectContext } from '../../../src/runtime/actorRuntime.js';
import { launchChart } from '../../../machines/index.js';
import { silentLogger } from '../../../src/shared/log.js';
import { machineSpec } from '../../../src/where/machineSpec.js';
import { testConfig } from '../../support/whereRig.js';
import { REGIONS, distanceKm, findRegion, nearestRegions } from '../../../src/shared/regions.js';
import { T0, ev, fold } from '../../support/charts.js';

const L = '01JZ0000000000000000000077';
const cfg = testConfig();

function rig(fly = new FakeFlyMachines()) {
  const runEffect = createEffectRunner({
    fly,
    ledger: new MemoryCapacityLedger(),
    clock: systemClock,
    log: silentLogger(),
    maxMachines: () => 8,
    machineSpec: (p) => machineSpec(cfg, p),
    autoLaunch: { owner: 'x', readyTimeoutMs: 1000, ttlMs: 1000 },
    sleep: async () => {},
  });
  // A launch waiting for its machine: requested, then granted a slot.
  const { snapshot } = fold(launchChart.machine, [
    ev(
      'launch.requested',
      {
        launchId: L,
        region: 'ams',
        source: 'button',
        owner: 'x',
        readyTimeoutMs: 15_000,
        ttlMs: 60_000,
      },
      T0,
    ),
    ev('capacity.reserved', { launchId: L, live: 1, limit: 8 }, T0 + 1),
  ]);
  const record: ActorRecord = {
    stream: `launch.${L}`,
    kind: 'launch',
    chart: launchChart,
    snapshot,
    version: 1,
    recent: [],
    touchedAt: 0,
  };
  const ctx = (redrive: boolean): EffectContext => ({
    stream: record.stream,
    record,
    cause: undefined,
    redrive,
    log: silentLogger(),
  });
  const create = (redrive = false, exclude?: string[]) =>
    runEffect(
      {
        type: 'createMachine',
        params: {
          launchId: L,
          region: 'ams',
          source: 'button',
          ttlMs: 60_000,
          ...(exclude ? { exclude } : {}),
        },
      },
      ctx(redrive),
    );
  /** The launch moves on (its deadline passed, it now sweeps for what it may have made). */
  const giveUp = () => {
    record.snapshot = fold(
      launchChart.machine,
      [ev('clock.readyElapsed', { key: 'ready', due: T0 + 15_000, roll: 0 }, T0 + 15_000)],
      record.snapshot as never,
    ).snapshot;
  };
  const run = (effect: Parameters<typeof runEffect>[0]) => runEffect(effect, ctx(false));
  return { fly, create, giveUp, record, run };
}

describe('effect runner: createMachine', () => {
  it('makes one machine however many creates race for one launch, and each reports that machine', async () => {
    const { fly, create } = rig();
    const results = await Promise.all([create(), create(true), create(), create(true)]);
    expect(fly.ledger()).toHaveLength(1);
    const ids = results.map((facts): string | undefined => {
      const f = facts[0];
      return f?.type === 'fly.machineCreated'
        ? (f.data as { machineId: string }).machineId
        : f?.type;
    });
    expect(new Set(ids)).toEqual(new Set([fly.ledger()[0]!.id]));
    expect(fly.ledger()[0]!.name).toBe(`wm-${L.toLowerCase()}`);
  });

  it('finds a machine whose create answered with an error after all (unknown outcome), without creating again', async () => {
    const fly = new FakeFlyMachines().failNext('create', {
      status: 0,
      message: 'timeout',
      commit: true,
    });
    const { create } = rig(fly);
    const [fact] = await create();
    expect(fact?.type).toBe('fly.machineCreated');
    expect(fly.ledger()).toHaveLength(1);
  });

  it('reports a refusal as a definite failure, and an unknown outcome with nothing found as one that may exist', async () => {
    const refused = rig(
      new FakeFlyMachines().failNext('create', { status: 429, message: 'slow down' }),
    );
    expect((await refused.create())[0]).toMatchObject({
      type: 'fly.createFailed',
      data: { status: 429, machineMayExist: false },
    });
    const lost = rig(new FakeFlyMachines().failNext('create', { status: 503, message: 'busy' }, 5));
    expect((await lost.create())[0]).toMatchObject({
      type: 'fly.createFailed',
      data: { status: 503, machineMayExist: true },
    });
    expect(lost.fly.ledger()).toHaveLength(0);
  });

  it('never sends a create once its launch has given up, even one already queued', async () => {
    const { fly, create, giveUp } = rig();
    const release = fly.holdNext('create');
    const pending = create();
    giveUp();
    release();
    // It says so (nothing was made), so a launch that sweeps need not wait for it.
    const withdrawn = {
      type: 'fly.createFailed',
      data: expect.objectContaining({ status: 0, machineMayExist: false }),
    };
    expect(await pending).toEqual([withdrawn]);
    expect(fly.ledger()).toHaveLength(0);
    // And a re-drive after that makes nothing either.
    expect(await create(true)).toEqual([withdrawn]);
    expect(fly.ledger()).toHaveLength(0);
  });

  it('gives a launch whose machine was already destroyed no second machine (its name is free again)', async () => {
    const { fly, create } = rig();
    const [first] = await create();
    const machineId = (first?.data as { machineId: string }).machineId;
    await fly.destroy(machineId, { force: true });
    const facts = await create(true);
    expect(facts).toEqual([
      expect.objectContaining({
        type: 'fly.createFailed',
        data: expect.objectContaining({ machineMayExist: false }),
      }),
    ]);
    expect(fly.ledger()).toHaveLength(1);
  });

  it('after an unknown outcome, finds a machine that was made and destroyed since, and makes no other', async () => {
    const fly = new FakeFlyMachines().failNext('create', { status: 503, commit: true });
    const { create } = rig(fly);
    // The first answer is lost; the machine is destroyed (say, by a sweep) before the lookup.
    const orig = fly.list.bind(fly);
    let once = true;
    fly.list = async (filter) => {
      if (once) {
        once = false;
        for (const m of fly.live()) await fly.destroy(m.id, { force: true });
      }
      return orig(filter);
    };
    const facts = await create();
    expect(facts[0]?.type).toBe('fly.createFailed');
    expect(fly.ledger()).toHaveLength(1);
  });

  it('a sweep that finds nothing says whether a create of the launch is still running here', async () => {
    const { fly, create, run } = rig();
    const sweep = () => run({ type: 'destroyMachine', params: { launchId: L } });
    expect(await sweep()).toEqual([
      { type: 'fly.noMachineFound', data: { launchId: L, settled: true } },
    ]);
    const release = fly.holdNext('create');
    const pending = create();
    expect(await sweep()).toEqual([
      { type: 'fly.noMachineFound', data: { launchId: L, settled: false } },
    ]);
    release();
    await pending;
    // What a sweep finds it reports before it acts (the machine's actor adopts it).
    expect(await sweep()).toEqual([
      expect.objectContaining({ type: 'fly.machineObserved' }),
      expect.objectContaining({ type: 'fly.machineDestroyed' }),
    ]);
  });
});

describe('effect runner: a full region', () => {
  const FULL = { status: 412, message: 'insufficient_capacity: no capacity in region' };
  const [nearest, next] = nearestRegions('ams', 2) as [string, string];

  it('given Fly says the region is full, when the launch creates, then it records why and makes the machine in the nearest region', async () => {
    const fly = new FakeFlyMachines().failNext('create', FULL);
    const { create } = rig(fly);
    const facts = await create();
    expect(facts.map((f) => f.type)).toEqual(['launch.regionFull', 'fly.machineCreated']);
    expect(facts[0]!.data).toMatchObject({ launchId: L, region: 'ams', status: 412 });
    expect(facts[1]!.data).toMatchObject({ launchId: L, region: nearest });
    // One machine, in the nearest region, named for the launch like any other.
    expect(fly.ledger().map((m) => [m.region, m.name])).toEqual([
      [nearest, `wm-${L.toLowerCase()}`],
    ]);
  });

  it('given every region tried is full, when the launch creates, then nothing is made and it fails as a refusal (412)', async () => {
    const fly = new FakeFlyMachines().failNext('create', FULL, 3);
    const { create } = rig(fly);
    const facts = await create();
    expect(facts.map((f) => f.type)).toEqual([
      'launch.regionFull',
      'launch.regionFull',
      'launch.regionFull',
      'fly.createFailed',
    ]);
    expect(facts.slice(0, 3).map((f) => (f.data as { region: string }).region)).toEqual([
      'ams',
      nearest,
      next,
    ]);
    expect(facts[3]!.data).toMatchObject({ status: 412, machineMayExist: false });
    expect(fly.ledger()).toHaveLength(0);
  });

  it('given regions already found full, when the create is re-driven, then it starts past them', async () => {
    const fly = new FakeFlyMachines();
    const { create } = rig(fly);
    const facts = await create(false, ['ams', nearest]);
    expect(facts.map((f) => f.type)).toEqual(['fly.machineCreated']);
    expect(fly.ledger()[0]!.region).toBe(next);
  });

  it('given another refusal (not capacity), when the launch creates, then it does not move region', async () => {
    const fly = new FakeFlyMachines().failNext('create', { status: 422, message: 'bad config' });
    const { create } = rig(fly);
    const facts = await create();
    expect(facts.map((f) => f.type)).toEqual(['fly.createFailed']);
    expect(fly.ledger()).toHaveLength(0);
  });
});

describe('nearestRegions', () => {
  it('lists the nearest regions by great-circle distance, nearest first, never the region itself', () => {
    const near = nearestRegions('syd', 3);
    expect(near).toHaveLength(3);
    expect(near).not.toContain('syd');
    const from = findRegion('syd')!;
    const km = near.map((c) => distanceKm(from, findRegion(c)!));
    expect([...km].sort((a, b) => a - b)).toEqual(km);
    // No other region is nearer than the last one listed.
    for (const r of REGIONS)
      if (r.code !== 'syd' && !near.includes(r.code))
        expect(distanceKm(from, r)).toBeGreaterThanOrEqual(km.at(-1)!);
    expect(nearestRegions('zzz', 2)).toEqual([]);
    // Amsterdam to London is about 360 km on a sphere of radius 6371 km.
    expect(distanceKm(findRegion('ams')!, findRegion('lhr')!)).toBeGreaterThan(300);
    expect(distanceKm(findRegion('ams')!, findRegion('lhr')!)).toBeLessThan(420);
  });
});
