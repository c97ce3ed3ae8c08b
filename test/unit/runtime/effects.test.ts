/** The effect runner against the Fly fake: creates are idempotent by launch, outcomes become facts. */
import { describe, expect, it } from 'vitest';
import { initialTransition } from 'xstate';
import { FakeFlyMachines } from '../../../src/adapters/fly/fakeFlyMachines.js';
import { MemoryCapacityLedger } from '../../../src/adapters/memory/memoryCoordination.js';
import { systemClock } from '../../../src/adapters/system/systemClock.js';
import { createEffectRunner } from '../../../src/runtime/effects.js';
import type { ActorRecord, EffectContext } from '../../../src/runtime/actorRuntime.js';
import { launchChart } from '../../../machines/index.js';
import { silentLogger } from '../../../src/shared/log.js';
import { machineSpec } from '../../../src/where/machineSpec.js';
import { testConfig } from '../../support/whereRig.js';

const L = '01JZ0000000000000000000077';
const cfg = testConfig();

function rig(fly = new FakeFlyMachines()) {
  const run = createEffectRunner({
    fly,
    ledger: new MemoryCapacityLedger(),
    clock: systemClock,
    log: silentLogger(),
    maxMachines: () => 8,
    machineSpec: (p) => machineSpec(cfg, p),
    autoLaunch: { owner: 'x', readyTimeoutMs: 1000, ttlMs: 1000 },
    sleep: async () => {},
  });
  const [snapshot] = initialTransition(launchChart.machine);
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
  });
  const create = (redrive = false) =>
    run(
      {
        type: 'createMachine',
        params: { launchId: L, region: 'ams', source: 'button', ttlMs: 60_000 },
      },
      ctx(redrive),
    );
  return { fly, create };
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
      data: { status: 429, retryable: false },
    });
    const lost = rig(new FakeFlyMachines().failNext('create', { status: 503, message: 'busy' }, 5));
    expect((await lost.create())[0]).toMatchObject({
      type: 'fly.createFailed',
      data: { status: 503, retryable: true },
    });
    expect(lost.fly.ledger()).toHaveLength(0);
  });
});
