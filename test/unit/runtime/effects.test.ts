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
  const create = (redrive = false) =>
    runEffect(
      {
        type: 'createMachine',
        params: { launchId: L, region: 'ams', source: 'button', ttlMs: 60_000 },
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
