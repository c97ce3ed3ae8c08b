/**
 * The fact generators of the chart model tests: for a snapshot, every fact that could arrive next
 * (and the abstraction that says when two snapshots are the same). Shared by the model tests and
 * the golden-history recorder, so both explore the same paths.
 */
import type { SnapshotFrom } from 'xstate';
import type { AutospawnerMachine } from '../../machines/autospawner/autospawner.machine.js';
import type { ChartEvent } from '../../machines/facts.js';
import type { LaunchMachine } from '../../machines/launch/launch.machine.js';
import type { VmMachine } from '../../machines/vm/vm.machine.js';
import type { PoolMachineLogic } from '../../machines/pool/pool.machine.js';
import { T0 } from '../support/charts.js';
import { fact } from './harness.js';

export const LAUNCH_ID = '01JZ0000000000000000000003';
export const LAUNCH_MACHINE = 'aaaaaaaaaaaaaa';
export const VM_LAUNCH_ID = '01JZ0000000000000000000004';
export const VM_MACHINE = 'bbbbbbbbbbbbbb';
export const AUTOSPAWN_INTERVAL = 60_000;

export function launchEvents(s: SnapshotFrom<LaunchMachine>): ChartEvent[] {
  const c = s.context;
  const t = Math.max(T0, c.updatedAt) + 1000;
  const out: ChartEvent[] = [
    fact(
      'launch.requested',
      {
        launchId: LAUNCH_ID,
        region: 'fra',
        source: 'dash',
        owner: 'i1',
        readyTimeoutMs: 20_000,
        ttlMs: 60_000,
      },
      T0,
      1,
    ),
    fact('capacity.reserved', { launchId: LAUNCH_ID, live: 1, limit: 2 }, t, 2),
    fact('capacity.exhausted', { launchId: LAUNCH_ID, live: 2, limit: 2 }, t, 3),
    fact(
      'fly.machineCreated',
      {
        machineId: LAUNCH_MACHINE,
        launchId: LAUNCH_ID,
        region: 'fra',
        instanceId: 'I1',
        state: 'created',
        createdAt: t,
      },
      t,
      4,
    ),
    fact(
      'fly.createFailed',
      { launchId: LAUNCH_ID, status: 0, message: 'timeout', machineMayExist: true },
      t,
      5,
    ),
    fact(
      'fly.createFailed',
      { launchId: LAUNCH_ID, status: 429, message: 'slow down', machineMayExist: false },
      t,
      6,
    ),
    fact(
      'fly.machineObserved',
      { machineId: LAUNCH_MACHINE, state: 'started', region: 'fra' },
      t,
      7,
    ),
    fact(
      'fly.machineObserved',
      { machineId: LAUNCH_MACHINE, state: 'stopped', region: 'fra' },
      t,
      8,
    ),
    fact(
      'fly.machineObserved',
      { machineId: LAUNCH_MACHINE, state: 'destroyed', region: 'fra' },
      t,
      9,
    ),
    fact('fly.machineGone', { machineId: LAUNCH_MACHINE, launchId: LAUNCH_ID }, t, 10),
    fact('fly.machineDestroyed', { machineId: LAUNCH_MACHINE, launchId: LAUNCH_ID }, t, 11),
    fact('vm.listening', { machineId: LAUNCH_MACHINE, launchId: LAUNCH_ID, region: 'fra' }, t, 12),
    fact(
      'vm.stopping',
      { machineId: LAUNCH_MACHINE, launchId: LAUNCH_ID, reason: 'finished' },
      t,
      13,
    ),
    fact(
      'fly.machineObserved',
      { machineId: LAUNCH_MACHINE, state: 'started', region: 'fra', launchId: LAUNCH_ID },
      t,
      18,
    ),
    fact(
      'launch.regionFull',
      { launchId: LAUNCH_ID, region: 'fra', status: 412, message: 'insufficient_capacity' },
      t,
      19,
    ),
    fact(
      'fly.createFailed',
      { launchId: LAUNCH_ID, status: 412, message: 'no capacity', machineMayExist: false },
      t,
      20,
    ),
    fact(
      'fly.machineCreated',
      {
        machineId: LAUNCH_MACHINE,
        launchId: LAUNCH_ID,
        region: 'ams',
        instanceId: 'I1',
        state: 'created',
        createdAt: t,
      },
      t,
      21,
    ),
    fact('fly.noMachineFound', { launchId: LAUNCH_ID, settled: true }, t, 16),
    fact('fly.noMachineFound', { launchId: LAUNCH_ID, settled: false }, t, 17),
  ];
  if (c.timers.ready !== undefined)
    out.push(
      fact(
        'clock.readyElapsed',
        { key: 'ready', due: c.timers.ready, roll: 0.5 },
        c.timers.ready,
        14,
      ),
    );
  if (c.timers.cleanup !== undefined)
    out.push(
      fact(
        'clock.cleanupElapsed',
        { key: 'cleanup', due: c.timers.cleanup, roll: 0.5 },
        c.timers.cleanup,
        15,
      ),
    );
  return out;
}

export const launchAbstract = (s: SnapshotFrom<LaunchMachine>) => ({
  value: s.value,
  machine: s.context.machineId !== undefined,
  instance: s.context.instanceId !== undefined,
  reason: s.context.reason,
  attempts: s.context.cleanupAttempts,
  timers: Object.keys(s.context.timers).sort(),
});

export function vmEvents(s: SnapshotFrom<VmMachine>): ChartEvent[] {
  const c = s.context;
  const t = Math.max(T0, c.updatedAt) + 1000;
  const out: ChartEvent[] = [
    fact(
      'fly.machineCreated',
      {
        machineId: VM_MACHINE,
        launchId: VM_LAUNCH_ID,
        region: 'gru',
        instanceId: 'I',
        state: 'created',
        source: 'auto',
        ttlMs: 60_000,
        createdAt: t,
      },
      t,
      1,
    ),
    fact(
      'fly.machineCreated',
      {
        machineId: VM_MACHINE,
        launchId: VM_LAUNCH_ID,
        region: 'gru',
        instanceId: 'I',
        state: 'started',
        source: 'auto',
        ttlMs: 60_000,
        createdAt: t,
      },
      t,
      2,
    ),
    fact('fly.machineObserved', { machineId: VM_MACHINE, state: 'starting', region: 'gru' }, t, 3),
    fact('fly.machineObserved', { machineId: VM_MACHINE, state: 'started', region: 'gru' }, t, 4),
    fact('fly.machineObserved', { machineId: VM_MACHINE, state: 'stopped', region: 'gru' }, t, 5),
    fact('fly.machineObserved', { machineId: VM_MACHINE, state: 'destroyed', region: 'gru' }, t, 6),
    fact('vm.listening', { machineId: VM_MACHINE, launchId: VM_LAUNCH_ID, region: 'gru' }, t, 7),
    fact('vm.stopping', { machineId: VM_MACHINE, launchId: VM_LAUNCH_ID, reason: 'ttl' }, t, 8),
    fact('fly.machineGone', { machineId: VM_MACHINE }, t, 9),
    fact('fly.machineDestroyed', { machineId: VM_MACHINE }, t, 10),
    fact(
      'fly.destroyFailed',
      { machineId: VM_MACHINE, status: 404, message: 'gone', retryable: false },
      t,
      11,
    ),
    fact(
      'fly.destroyFailed',
      { machineId: VM_MACHINE, status: 500, message: 'oops', retryable: true },
      t,
      12,
    ),
    fact(
      'reconcile.orphanFound',
      { machineId: VM_MACHINE, launchId: VM_LAUNCH_ID, why: 'noLiveLaunch' },
      t,
      13,
    ),
  ];
  if (c.timers.ttl !== undefined)
    out.push(
      fact(
        'clock.ttlElapsed',
        { key: 'ttl', due: c.timers.ttl, roll: 0.5 },
        Math.max(t, c.timers.ttl),
        14,
      ),
    );
  if (c.timers.stop !== undefined)
    out.push(
      fact(
        'clock.stopElapsed',
        { key: 'stop', due: c.timers.stop, roll: 0.5 },
        Math.max(t, c.timers.stop),
        15,
      ),
    );
  return out;
}

export const vmAbstract = (s: SnapshotFrom<VmMachine>) => ({
  value: s.value,
  attempts: Math.min(s.context.destroyAttempts, 2),
  timers: Object.keys(s.context.timers).sort(),
});

export function autospawnerEvents(s: SnapshotFrom<AutospawnerMachine>): ChartEvent[] {
  const c = s.context;
  const t = T0 + 1000 * (c.spawns + 1);
  const out: ChartEvent[] = [
    fact(
      'autospawner.configured',
      {
        intervalMs: AUTOSPAWN_INTERVAL,
        inactivityMs: 5 * AUTOSPAWN_INTERVAL,
        regions: ['ams', 'sin'],
        enabled: true,
      },
      t,
      1,
    ),
    fact(
      'autospawner.configured',
      {
        intervalMs: AUTOSPAWN_INTERVAL,
        inactivityMs: 5 * AUTOSPAWN_INTERVAL,
        regions: ['ams', 'sin'],
        enabled: false,
      },
      t,
      2,
    ),
    fact('autospawner.switched', { on: true, by: 'test' }, t, 3),
    fact('autospawner.switched', { on: false, by: 'test' }, t, 4),
    fact('presence.changed', { visitors: 0, roll: 0.5 }, t, 5),
    fact('presence.changed', { visitors: 2, roll: 0.9 }, t, 6),
  ];
  if (c.timers.spawn !== undefined)
    out.push(
      fact(
        'clock.spawnElapsed',
        { key: 'spawn', due: c.timers.spawn, roll: 0.1 },
        Math.max(t, c.timers.spawn),
        7,
      ),
    );
  if (c.timers.inactivity !== undefined)
    out.push(
      fact(
        'clock.inactivityElapsed',
        { key: 'inactivity', due: c.timers.inactivity, roll: 0.5 },
        Math.max(t, c.timers.inactivity),
        8,
      ),
    );
  return out;
}

export const autospawnerAbstract = (s: SnapshotFrom<AutospawnerMachine>) => ({
  value: s.value,
  visitors: s.context.visitors > 0,
  enabled: s.context.enabled,
  configured: s.context.intervalMs === AUTOSPAWN_INTERVAL,
  spawned: Math.min(s.context.spawns, 2),
  timers: Object.keys(s.context.timers).sort(),
});

export const POOL_REGION = 'ams';
export const POOL_IMAGES = ['registry.fly.io/where:v1', 'registry.fly.io/where:v2'] as const;
export const POOL_LAUNCH_ID = '01JZ0000000000000000000005';

/** A machine id the pool has not seen (ids of retired machines may come back: Fly reuses none). */
const poolMachineId = (n: number) => `poolm${n.toString().padStart(4, '0')}`;

export function poolEvents(s: SnapshotFrom<PoolMachineLogic>): ChartEvent[] {
  const c = s.context;
  const t = Math.max(T0, c.updatedAt) + 1000;
  const image = c.image || POOL_IMAGES[0];
  const ids = Object.keys(c.machines);
  const next = poolMachineId(ids.length + c.claims + c.failures * 7);
  const out: ChartEvent[] = [
    fact('pool.configured', { region: POOL_REGION, target: 2, image: POOL_IMAGES[0] }, t, 1),
    fact('pool.configured', { region: POOL_REGION, target: 1, image: POOL_IMAGES[1] }, t, 2),
    fact('pool.configured', { region: POOL_REGION, target: 0, image }, t, 3),
    // The reconciler adopts a pooled machine the pool never heard of: current image, or old.
    fact(
      'pool.machineAdded',
      { region: POOL_REGION, machineId: next, name: 'wm-pool-ams-adopted', instanceId: 'I', image },
      t,
      4,
    ),
    fact(
      'pool.machineAdded',
      {
        region: POOL_REGION,
        machineId: next,
        name: 'wm-pool-ams-stale',
        instanceId: 'I',
        image: image === POOL_IMAGES[0] ? POOL_IMAGES[1] : POOL_IMAGES[0],
      },
      t,
      5,
    ),
  ];
  if (c.creating) {
    out.push(
      fact(
        'pool.machineAdded',
        { region: POOL_REGION, machineId: next, name: c.creating, instanceId: 'I', image },
        t,
        6,
      ),
      fact(
        'pool.createFailed',
        { region: POOL_REGION, name: c.creating, status: 429, message: 'slow down' },
        t,
        7,
      ),
      fact('pool.createLost', { region: POOL_REGION, name: c.creating }, t, 15),
    );
  }
  const ready = ids.find((id) => c.machines[id]!.state === 'ready');
  const claimed = ids.find((id) => c.machines[id]!.state === 'claimed');
  const retiring = ids.find((id) => c.machines[id]!.state === 'retiring');
  for (const [i, id] of [ready, claimed].entries()) {
    if (!id) continue;
    out.push(
      fact(
        'pool.machineClaimed',
        { region: POOL_REGION, machineId: id, launchId: POOL_LAUNCH_ID },
        t,
        8 + i,
      ),
    );
  }
  if (ready)
    out.push(fact('pool.machineFoundRunning', { region: POOL_REGION, machineId: ready }, t, 10));
  for (const [i, id] of [ready, retiring, claimed].entries()) {
    if (!id) continue;
    out.push(
      fact(
        'pool.machineRetired',
        { region: POOL_REGION, machineId: id, reason: id === retiring ? 'oldImage' : 'gone' },
        t,
        11 + i,
      ),
    );
  }
  if (c.timers.refill !== undefined)
    out.push(
      fact(
        'clock.refillElapsed',
        { key: 'refill', due: c.timers.refill, roll: 0.5 },
        Math.max(t, c.timers.refill),
        14,
      ),
    );
  return out;
}

export const poolAbstract = (s: SnapshotFrom<PoolMachineLogic>) => {
  const n = { ready: 0, claimed: 0, retiring: 0 };
  for (const m of Object.values(s.context.machines)) n[m.state]++;
  return {
    value: s.value,
    ready: Math.min(n.ready, 2),
    claimed: Math.min(n.claimed, 1),
    retiring: Math.min(n.retiring, 1),
    failures: Math.min(s.context.failures, 1),
    target: s.context.target,
    image: s.context.image,
    timers: Object.keys(s.context.timers).sort(),
  };
};
