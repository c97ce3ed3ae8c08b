/** The launch chart, rule by rule: given facts, then the state, tags and effects. */
import { describe, expect, it } from 'vitest';
import {
  launchMachine,
  CLEANUP_RETRY_MS,
  MAX_CLEANUP_ATTEMPTS,
} from '../../../machines/launch/launch.machine.js';
import { launchPublic, launchStatusOf } from '../../../machines/launch/launch.view.js';
import { T0, ev, fold, effectsOf } from '../../support/charts.js';

const L = '01JZ0000000000000000000001';
const M = 'abcdef0123456789';
const requested = ev(
  'launch.requested',
  {
    launchId: L,
    region: 'ams',
    source: 'button',
    owner: 'i1',
    readyTimeoutMs: 30_000,
    ttlMs: 600_000,
  },
  T0,
);
const reserved = ev('capacity.reserved', { launchId: L, live: 1, limit: 8 }, T0 + 5);
const created = (at = T0 + 500, machineId = M) =>
  ev(
    'fly.machineCreated',
    { machineId, launchId: L, region: 'ams', instanceId: 'INST1', state: 'created', createdAt: at },
    at,
  );
const started = (at = T0 + 900) =>
  ev('fly.machineObserved', { machineId: M, state: 'started', region: 'ams' }, at);
const listening = (at = T0 + 1200, machineId = M) =>
  ev('vm.listening', { machineId, launchId: L, region: 'ams' }, at);
const gone = (at: number) => ev('fly.machineGone', { machineId: M, launchId: L }, at);
const readyDue = (at = T0 + 30_000) =>
  ev('clock.readyElapsed', { key: 'ready', due: T0 + 30_000, roll: 0.3 }, at);

describe('launch chart', () => {
  it('given a new launch, when it is requested, then it reserves a slot and arms the ready deadline', () => {
    const r = fold(launchMachine, [requested]);
    expect(r.snapshot.value).toBe('requested');
    expect(launchStatusOf(r.snapshot)).toBe('requested');
    expect(r.effects).toEqual([
      {
        type: 'reserveCapacity',
        params: { launchId: L, until: T0 + 30_000 + 600_000 + 5 * 60_000 },
      },
    ]);
    expect(r.snapshot.context.timers).toEqual({ ready: T0 + 30_000 });
  });

  it('given a granted launch, when its machine is created, starts, listens and is gone, then it passes every status to done, disarms the ready deadline and gives the slot back', () => {
    const r = fold(launchMachine, [
      requested,
      reserved,
      created(),
      started(),
      listening(),
      gone(T0 + 60_000),
    ]);
    expect(r.steps.every((s) => s.accepted)).toBe(true);
    expect(
      r.steps.map((s) =>
        launchStatusOf(
          fold(
            launchMachine,
            r.steps.slice(0, r.steps.indexOf(s) + 1).map((x) => x.event),
          ).snapshot,
        ),
      ),
    ).toEqual(['requested', 'requested', 'created', 'started', 'ready', 'done']);
    expect(effectsOf(r.effects, 'createMachine')).toEqual([
      {
        type: 'createMachine',
        params: { launchId: L, region: 'ams', source: 'button', ttlMs: 600_000 },
      },
    ]);
    expect(effectsOf(r.effects, 'awaitMachine')).toEqual([
      { type: 'awaitMachine', params: { machineId: M, launchId: L, state: 'started' } },
    ]);
    // The ready deadline is disarmed as soon as the VM is ready.
    expect(
      fold(launchMachine, [requested, reserved, created(), started(), listening()]).snapshot.context
        .timers,
    ).toEqual({});
    expect(effectsOf(r.effects, 'releaseCapacity')).toEqual([
      { type: 'releaseCapacity', params: { holder: L } },
    ]);
    expect(r.snapshot.status).toBe('done');
    expect(r.snapshot.context.timers).toEqual({});
  });

  it('given a reserved launch, when ready arrives before the create response, then it redirects and records the late response without effects', () => {
    const r = fold(launchMachine, [requested, reserved, listening(T0 + 800)]);
    expect(r.snapshot.value).toBe('redirect');
    expect(r.snapshot.context.machineId).toBe(M);
    expect(r.snapshot.context.timers).toEqual({});
    const late = fold(launchMachine, [created(T0 + 4000)], r.snapshot);
    expect(late.steps[0]!.accepted).toBe(true);
    expect(late.snapshot.value).toBe('redirect');
    expect(late.snapshot.context.instanceId).toBe('INST1');
    expect(late.effects).toEqual([]);
  });

  it('given a launch in progress, when facts arrive twice or late, then the repeats are ignored and one machine is created', () => {
    const r = fold(launchMachine, [
      requested,
      reserved,
      reserved,
      created(),
      created(T0 + 600),
      listening(),
      listening(T0 + 1300),
      started(T0 + 1400),
    ]);
    expect(r.steps.map((s) => s.accepted)).toEqual([
      true,
      true,
      false,
      true,
      false,
      true,
      false,
      false,
    ]);
    expect(effectsOf(r.effects, 'createMachine')).toHaveLength(1);
  });

  it('given a launch waiting for ready, when some other machine reports ready, then it keeps waiting', () => {
    const r = fold(launchMachine, [
      requested,
      reserved,
      created(),
      listening(T0 + 1200, 'ffffffff00000000'),
    ]);
    expect(r.snapshot.matches('waitingReady')).toBe(true);
  });

  it('given a requested launch, when capacity is exhausted, then it fails with "capacity" and creates or releases nothing', () => {
    const r = fold(launchMachine, [
      requested,
      ev('capacity.exhausted', { launchId: L, live: 8, limit: 8 }, T0 + 3),
    ]);
    expect(r.snapshot.value).toBe('failed');
    expect(launchPublic(r.snapshot)).toMatchObject({ status: 'failed', reason: 'capacity' });
    expect(effectsOf(r.effects, 'createMachine')).toEqual([]);
    expect(effectsOf(r.effects, 'releaseCapacity')).toEqual([]);
  });

  it('given a reserved launch, when the create is refused with a 429 or another status, then it fails with "rateLimited" or "flyError" and gives the slot back', () => {
    for (const [status, reason] of [
      [429, 'rateLimited'],
      [422, 'flyError'],
    ] as const) {
      const r = fold(launchMachine, [
        requested,
        reserved,
        ev(
          'fly.createFailed',
          { launchId: L, status, message: 'no', machineMayExist: false },
          T0 + 100,
        ),
      ]);
      expect(r.snapshot.value).toBe('failed');
      expect(r.snapshot.context.reason).toBe(reason);
      expect(effectsOf(r.effects, 'releaseCapacity')).toHaveLength(1);
    }
  });

  it('given a reserved launch, when the create outcome is unknown, then it sweeps for a machine and arms the cleanup retry', () => {
    const r = fold(launchMachine, [
      requested,
      reserved,
      ev(
        'fly.createFailed',
        { launchId: L, status: 0, message: 'timeout', machineMayExist: true },
        T0 + 100,
      ),
    ]);
    expect(r.snapshot.value).toBe('cleanup');
    expect(launchStatusOf(r.snapshot)).toBe('failed');
    expect(effectsOf(r.effects, 'destroyMachine')).toEqual([
      { type: 'destroyMachine', params: { machineId: undefined, launchId: L } },
    ]);
    expect(r.snapshot.context.timers).toEqual({ cleanup: T0 + 100 + CLEANUP_RETRY_MS });
  });

  it('given a created machine, when the ready deadline passes, then it destroys the machine and, once destroyed, fails and gives the slot back', () => {
    const r = fold(launchMachine, [requested, reserved, created(), readyDue()]);
    expect(r.snapshot.value).toBe('cleanup');
    expect(r.snapshot.context.reason).toBe('readyTimeout');
    expect(effectsOf(r.effects, 'destroyMachine')).toEqual([
      { type: 'destroyMachine', params: { machineId: M, launchId: L } },
    ]);
    const done = fold(
      launchMachine,
      [ev('fly.machineDestroyed', { machineId: M, launchId: L }, T0 + 31_000)],
      r.snapshot,
    );
    expect(done.snapshot.value).toBe('failed');
    expect(effectsOf(done.effects, 'releaseCapacity')).toEqual([
      { type: 'releaseCapacity', params: { holder: L } },
    ]);
    expect(done.snapshot.context.timers).toEqual({});
  });

  it('given a launch that gave up, when its create finishes late, then it destroys that machine too', () => {
    const r = fold(launchMachine, [requested, reserved, readyDue(), created(T0 + 40_000)]);
    expect(r.snapshot.value).toBe('cleanup');
    expect(effectsOf(r.effects, 'destroyMachine')).toEqual([
      { type: 'destroyMachine', params: { machineId: undefined, launchId: L } },
      { type: 'destroyMachine', params: { machineId: M, launchId: L } },
    ]);
  });

  it('given a launch creating its machine, when a stale ready deadline fires, then it is ignored', () => {
    const r = fold(launchMachine, [
      requested,
      reserved,
      ev('clock.readyElapsed', { key: 'ready', due: T0 + 1, roll: 0 }, T0 + 30_000),
    ]);
    expect(r.steps.at(-1)!.accepted).toBe(false);
    expect(r.snapshot.value).toBe('creating');
  });

  it('given a cleanup in progress, when each retry deadline elapses, then it retries the destroy up to the attempt limit, then fails and gives the slot back', () => {
    let r = fold(launchMachine, [requested, reserved, readyDue()]);
    let at = T0 + 30_000;
    for (let i = 1; i < MAX_CLEANUP_ATTEMPTS; i++) {
      at += CLEANUP_RETRY_MS;
      r = fold(
        launchMachine,
        [ev('clock.cleanupElapsed', { key: 'cleanup', due: at, roll: 0 }, at)],
        r.snapshot,
      );
      expect(r.snapshot.value).toBe('cleanup');
      expect(effectsOf(r.effects, 'destroyMachine')).toHaveLength(1);
    }
    at += CLEANUP_RETRY_MS;
    r = fold(
      launchMachine,
      [ev('clock.cleanupElapsed', { key: 'cleanup', due: at, roll: 0 }, at)],
      r.snapshot,
    );
    expect(r.snapshot.value).toBe('failed');
    expect(effectsOf(r.effects, 'releaseCapacity')).toHaveLength(1);
  });

  it('given a created machine, when it stops before it was ready, then the launch cleans up with reason "machineLost"', () => {
    const r = fold(launchMachine, [
      requested,
      reserved,
      created(),
      ev('vm.stopping', { machineId: M, launchId: L, reason: 'signal' }, T0 + 2000),
    ]);
    expect(r.snapshot.value).toBe('cleanup');
    expect(r.snapshot.context.reason).toBe('machineLost');
  });

  it('given its region is full, when the machine is made in a nearby one, then the launch keeps why and where, and a re-drive skips the full region', () => {
    const full = ev(
      'launch.regionFull',
      { launchId: L, region: 'ams', status: 412, message: 'insufficient_capacity' },
      T0 + 300,
    );
    const waiting = fold(launchMachine, [requested, reserved, full]);
    expect(waiting.snapshot.value).toBe('creating');
    expect(waiting.snapshot.context.fullRegions).toEqual(['ams']);
    // The same fact twice (a re-driven create) keeps the list as it was.
    expect(
      fold(launchMachine, [requested, reserved, full, full]).snapshot.context.fullRegions,
    ).toEqual(['ams']);
    const elsewhere = ev(
      'fly.machineCreated',
      {
        machineId: M,
        launchId: L,
        region: 'fra',
        instanceId: 'I',
        state: 'created',
        createdAt: T0 + 600,
      },
      T0 + 600,
    );
    const r = fold(launchMachine, [requested, reserved, full, elsewhere]);
    expect(r.snapshot.value).toMatchObject({ waitingReady: expect.anything() });
    expect(r.snapshot.context.placedIn).toBe('fra');
    expect(launchPublic(r.snapshot)?.region).toBe('ams');
    // A machine made in its own region is not "placed elsewhere".
    expect(
      fold(launchMachine, [requested, reserved, created()]).snapshot.context.placedIn,
    ).toBeUndefined();
  });

  it('given every region tried is full, when the create fails with 412, then the launch fails with reason noCapacity and gives its slot back', () => {
    const r = fold(launchMachine, [
      requested,
      reserved,
      ev(
        'fly.createFailed',
        { launchId: L, status: 412, message: 'full', machineMayExist: false },
        T0 + 700,
      ),
    ]);
    expect(r.snapshot.value).toBe('failed');
    expect(r.snapshot.context.reason).toBe('noCapacity');
    expect(r.effects.map((e) => e.type)).toContain('releaseCapacity');
  });
});
