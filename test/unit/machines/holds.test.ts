/** Which cap slot each chart's snapshot stands for: the ledger is rebuilt from these at boot. */
import { describe, expect, it } from 'vitest';
import {
  CAPACITY_GRACE_MS,
  launchChart,
  STOP_GRACE_MS,
  TTL_GRACE_MS,
  vmChart,
} from '../../../machines/index.js';
import { T0, ev, fold } from '../../support/charts.js';

const L = '01JZ0000000000000000000H01';
const M = 'aaaabbbbcccc01';
const requested = ev(
  'launch.requested',
  {
    launchId: L,
    region: 'ams',
    source: 'button',
    owner: 'i1',
    readyTimeoutMs: 15_000,
    ttlMs: 60_000,
  },
  T0,
);
const until = T0 + 15_000 + 60_000 + CAPACITY_GRACE_MS;

describe('launch holds', () => {
  it('given a requested launch, when its reservation is still pending, then it holds nothing', () => {
    expect(launchChart.holds(fold(launchChart.machine, [requested]).snapshot)).toEqual([]);
  });

  it('given a requested launch, when its reservation is granted and later it is sweeping, then it holds its slot throughout', () => {
    const granted = fold(launchChart.machine, [
      requested,
      ev('capacity.reserved', { launchId: L, live: 1, limit: 8 }, T0 + 1),
    ]);
    expect(launchChart.holds(granted.snapshot)).toEqual([{ holder: L, until }]);
    const sweeping = fold(
      launchChart.machine,
      [ev('clock.readyElapsed', { key: 'ready', due: T0 + 15_000, roll: 0 }, T0 + 15_000)],
      granted.snapshot,
    );
    expect(sweeping.snapshot.value).toBe('cleanup');
    expect(launchChart.holds(sweeping.snapshot)).toEqual([{ holder: L, until }]);
  });

  it('given a requested launch, when capacity is refused, then it holds nothing', () => {
    const refused = fold(launchChart.machine, [
      requested,
      ev('capacity.exhausted', { launchId: L, live: 8, limit: 8 }, T0 + 1),
    ]);
    expect(launchChart.holds(refused.snapshot)).toEqual([]);
  });
});

describe('vm holds', () => {
  const created = ev(
    'fly.machineCreated',
    {
      machineId: M,
      launchId: L,
      region: 'ams',
      instanceId: '01JZ0000000000000000000I01',
      state: 'created',
      source: 'button',
      ttlMs: 60_000,
      createdAt: T0,
    },
    T0,
  );

  it('given a machine, when created, destroyed or seen as foreign, then it holds its launch slot, nothing, or a slot of its own', () => {
    const live = fold(vmChart.machine, [created]);
    expect(vmChart.holds(live.snapshot)).toEqual([
      { holder: L, until: T0 + 60_000 + TTL_GRACE_MS + STOP_GRACE_MS },
    ]);
    const gone = fold(
      vmChart.machine,
      [ev('fly.machineDestroyed', { machineId: M, launchId: L }, T0 + 5)],
      live.snapshot,
    );
    expect(vmChart.holds(gone.snapshot)).toEqual([]);
    const foreign = fold(vmChart.machine, [
      ev('fly.machineObserved', { machineId: M, state: 'started', region: 'ams' }, T0),
    ]);
    expect(vmChart.holds(foreign.snapshot)).toEqual([
      { holder: `vm:${M}`, until: expect.any(Number) },
    ]);
  });

  it('given no facts, when the machine is unknown, then it holds nothing', () => {
    expect(vmChart.holds(fold(vmChart.machine, []).snapshot)).toEqual([]);
  });
});
