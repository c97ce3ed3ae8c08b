/** The vm chart: facts in any order, only forward, and always a deadline until destroyed. */
import { describe, expect, it } from 'vitest';
import {
  vmMachine,
  DEFAULT_TTL_MS,
  STOP_GRACE_MS,
  TTL_GRACE_MS,
} from '../../../machines/vm/vm.machine.js';
import { vmPublic } from '../../../machines/vm/vm.view.js';
import { T0, ev, fold, effectsOf } from '../../support/charts.js';

const L = '01JZ0000000000000000000002';
const M = '0123456789abcd';
const created = (at = T0) =>
  ev(
    'fly.machineCreated',
    {
      machineId: M,
      launchId: L,
      region: 'syd',
      instanceId: 'I',
      state: 'created',
      source: 'button',
      ttlMs: 600_000,
      createdAt: at,
    },
    at,
  );
const observed = (state: string, at: number) =>
  ev('fly.machineObserved', { machineId: M, state, region: 'syd' }, at);
const listening = (at: number) =>
  ev('vm.listening', { machineId: M, launchId: L, region: 'syd' }, at);
const stopping = (at: number) =>
  ev('vm.stopping', { machineId: M, launchId: L, reason: 'finished' }, at);
const gone = (at: number) => ev('fly.machineGone', { machineId: M }, at);

describe('vm chart', () => {
  it('given no machine, when one is created, then it is adopted with its TTL armed and its launch slot held', () => {
    const r = fold(vmMachine, [created()]);
    expect(r.snapshot.value).toBe('created');
    expect(r.snapshot.context).toMatchObject({
      machineId: M,
      region: 'syd',
      launchId: L,
      source: 'button',
      createdAt: T0,
    });
    const ttl = T0 + 600_000 + TTL_GRACE_MS;
    expect(r.effects).toEqual([
      { type: 'holdCapacity', params: { holder: L, until: ttl + STOP_GRACE_MS } },
    ]);
    expect(r.snapshot.context.timers).toEqual({ ttl });
  });

  it('given a listening machine, when earlier phases arrive late, then it only moves forward', () => {
    const r = fold(vmMachine, [
      listening(T0 + 900),
      created(T0 + 1000),
      observed('started', T0 + 1100),
      observed('created', T0 + 1200),
    ]);
    expect(r.steps.map((s) => s.accepted)).toEqual([true, false, false, false]);
    expect(vmPublic(r.snapshot)?.phase).toBe('listening');
  });

  it('given a started machine, when it is observed stopped and then gone, then it watches it through stopping to destroyed and releases its slot', () => {
    const r = fold(vmMachine, [
      created(),
      observed('started', T0 + 500),
      observed('stopped', T0 + 9000),
    ]);
    expect(r.snapshot.value).toBe('stopping');
    expect(effectsOf(r.effects, 'awaitMachine')).toEqual([
      { type: 'awaitMachine', params: { machineId: M, launchId: L, state: 'destroyed' } },
    ]);
    expect(r.snapshot.context.timers.stop).toBe(T0 + 9000 + STOP_GRACE_MS);
    const end = fold(vmMachine, [gone(T0 + 10_000)], r.snapshot);
    expect(end.snapshot.value).toBe('destroyed');
    expect(end.snapshot.status).toBe('done');
    expect(end.effects).toEqual([{ type: 'releaseCapacity', params: { holder: L } }]);
    expect(end.snapshot.context.timers).toEqual({});
  });

  it('given a listening machine, when its TTL elapses, then it is destroyed and forced again with growing backoff', () => {
    const ttl = T0 + 600_000 + TTL_GRACE_MS;
    let r = fold(vmMachine, [
      created(),
      listening(T0 + 1000),
      ev('clock.ttlElapsed', { key: 'ttl', due: ttl, roll: 0.1 }, ttl),
    ]);
    expect(r.snapshot.value).toBe('stopping');
    expect(effectsOf(r.effects, 'destroyMachine')).toEqual([
      { type: 'destroyMachine', params: { machineId: M, launchId: L } },
    ]);
    const dues: number[] = [];
    for (let i = 0; i < 6; i++) {
      const due = r.snapshot.context.timers.stop!;
      dues.push(due);
      r = fold(
        vmMachine,
        [ev('clock.stopElapsed', { key: 'stop', due, roll: 0.5 }, due)],
        r.snapshot,
      );
      expect(effectsOf(r.effects, 'destroyMachine')).toHaveLength(1);
    }
    const gaps = dues.slice(1).map((d, i) => d - dues[i]!);
    expect(gaps.every((g, i) => i === 0 || g >= gaps[i - 1]!)).toBe(true);
    expect(Math.max(...gaps)).toBeLessThanOrEqual(10 * 60_000);
    expect(r.snapshot.value).toBe('stopping');
  });

  it('given a stopping machine, when the destroy fails, then a 404 counts as destroyed and a retryable 503 is not taken as a fact', () => {
    const base = fold(vmMachine, [created(), stopping(T0 + 5000)]);
    const failed = fold(
      vmMachine,
      [
        ev(
          'fly.destroyFailed',
          { machineId: M, status: 503, message: 'busy', retryable: true },
          T0 + 6000,
        ),
      ],
      base.snapshot,
    );
    expect(failed.steps[0]!.accepted).toBe(false);
    const gone404 = fold(
      vmMachine,
      [
        ev(
          'fly.destroyFailed',
          { machineId: M, status: 404, message: 'not_found', retryable: false },
          T0 + 6000,
        ),
      ],
      base.snapshot,
    );
    expect(gone404.snapshot.value).toBe('destroyed');
  });

  it('given no launch record, when the API reports a machine, then it is adopted as foreign with the default TTL and a slot of its own', () => {
    const r = fold(vmMachine, [
      ev(
        'fly.machineObserved',
        { machineId: M, state: 'started', region: 'ord', createdAt: T0 - 1000 },
        T0,
      ),
    ]);
    expect(vmPublic(r.snapshot)).toMatchObject({
      phase: 'started',
      source: 'foreign',
      region: 'ord',
      createdAt: T0 - 1000,
    });
    expect(r.snapshot.context.timers.ttl).toBe(T0 - 1000 + DEFAULT_TTL_MS + TTL_GRACE_MS);
    expect(effectsOf(r.effects, 'holdCapacity')[0]!.params.holder).toBe(`vm:${M}`);
  });

  it('given a created machine, when it is reported as an orphan, then it is destroyed at once', () => {
    const r = fold(vmMachine, [
      created(),
      ev('reconcile.orphanFound', { machineId: M, launchId: L, why: 'noLiveLaunch' }, T0 + 100),
    ]);
    expect(r.snapshot.value).toBe('stopping');
    expect(effectsOf(r.effects, 'destroyMachine')).toHaveLength(1);
  });

  it('given no machine, when a fact does not name a live machine, then no stream starts', () => {
    for (const e of [
      gone(T0),
      stopping(T0),
      ev('fly.machineDestroyed', { machineId: M }, T0),
      ev('reconcile.orphanFound', { machineId: M, why: 'pastTtl' }, T0),
    ]) {
      expect(fold(vmMachine, [e]).steps[0]!.accepted).toBe(false);
    }
  });

  it('given a stopping machine, when "stopping" or an orphan report comes again, then nothing is recorded and no second watch starts', () => {
    const base = fold(vmMachine, [created(), stopping(T0 + 5000)]);
    const again = fold(
      vmMachine,
      [
        stopping(T0 + 6000),
        ev('reconcile.orphanFound', { machineId: M, launchId: L, why: 'noLiveLaunch' }, T0 + 7000),
      ],
      base.snapshot,
    );
    expect(again.steps.map((s) => s.accepted)).toEqual([false, false]);
    expect(again.effects).toEqual([]);
  });

  it('given a created machine, when a fact names another machine, then it is ignored', () => {
    const r = fold(vmMachine, [
      created(),
      ev('fly.machineGone', { machineId: 'ffff0000ffff00' }, T0 + 100),
    ]);
    expect(r.steps[1]!.accepted).toBe(false);
  });
});
