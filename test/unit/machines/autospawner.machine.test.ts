/** The autospawner chart: spawn while watched, one loop, rotating regions, jittered interval. */
import { describe, expect, it } from 'vitest';
import { autospawnerMachine, jittered } from '../../../machines/autospawner/autospawner.machine.js';
import type { Effect } from '../../../machines/effects.js';
import { T0, ev, fold, effectsOf } from '../../support/charts.js';

const H = 60 * 60_000;
const config = ev(
  'autospawner.configured',
  { intervalMs: H, inactivityMs: 10 * 60_000, regions: ['ams', 'ord', 'syd'], enabled: true },
  T0,
);
const visitors = (n: number, at: number, roll = 0.5) =>
  ev('presence.changed', { visitors: n, roll }, at);
const spawnDue = (due: number, roll = 0.5) =>
  ev('clock.spawnElapsed', { key: 'spawn', due, roll }, due);

describe('autospawner chart', () => {
  it('given a configured spawner, when nobody watches, then it stays idle with no timers', () => {
    const r = fold(autospawnerMachine, [config, visitors(0, T0 + 1)]);
    expect(r.snapshot.value).toBe('idle');
    expect(r.snapshot.context.timers).toEqual({});
  });

  it('given no visitors, when the first visitor arrives, then it spawns at once and then every interval ±20 % in rotating regions', () => {
    let r = fold(autospawnerMachine, [config, visitors(1, T0 + 10)]);
    expect(r.snapshot.value).toBe('active');
    expect(r.snapshot.context.timers.spawn).toBe(T0 + 10);
    const regions: string[] = [];
    let due = r.snapshot.context.timers.spawn!;
    const rolls = [0, 0.999, 0.5, 0.25];
    for (const roll of rolls) {
      r = fold(autospawnerMachine, [spawnDue(due, roll)], r.snapshot);
      const spawn = effectsOf(r.effects, 'spawnLaunch');
      expect(spawn).toHaveLength(1);
      regions.push(spawn[0]!.params.region);
      expect(spawn[0]!.params.launchId).toBe(r.steps[0]!.event.eventId);
      const next = r.snapshot.context.timers.spawn!;
      expect(next - due).toBe(jittered(H, roll));
      expect(next - due).toBeGreaterThanOrEqual(0.8 * H);
      expect(next - due).toBeLessThanOrEqual(1.2 * H);
      due = next;
      // Keep the inactivity safety from firing: visitors re-stated.
      r = fold(autospawnerMachine, [visitors(1, due - 1)], r.snapshot);
    }
    expect(regions).toEqual(['ams', 'ord', 'syd', 'ams']);
  });

  it('given an active spawner, when visitors come and go, then one loop runs: armed once, no early spawn, only the current timer spawns', () => {
    let r = fold(autospawnerMachine, [config, visitors(1, T0), spawnDue(T0)]);
    const next = r.snapshot.context.timers.spawn!;
    // The spawn deadline is set once over these (when visitors come back), never re-armed.
    let armed = 0;
    const effects: Effect[] = [];
    for (const e of [
      visitors(2, T0 + 100),
      visitors(3, T0 + 200),
      visitors(0, T0 + 300),
      visitors(1, T0 + 400, 0.1),
      visitors(2, T0 + 500),
    ]) {
      const before = r.snapshot.context.timers.spawn;
      r = fold(autospawnerMachine, [e], r.snapshot);
      effects.push(...r.effects);
      const after = r.snapshot.context.timers.spawn;
      if (after !== undefined && after !== before) armed++;
    }
    expect(armed).toBe(1);
    // Coming back within the interval does not spawn early: the spawn waits for the interval.
    const due = r.snapshot.context.timers.spawn!;
    expect(due).toBe(T0 + jittered(H, 0.1));
    expect(due).not.toBe(next);
    expect(effectsOf(effects, 'spawnLaunch')).toEqual([]);
    // The first loop's timer is stale now; only the current one spawns.
    const stale = fold(autospawnerMachine, [spawnDue(next)], r.snapshot);
    expect(stale.steps[0]!.accepted).toBe(false);
    const fire = fold(autospawnerMachine, [spawnDue(due)], r.snapshot);
    expect(effectsOf(fire.effects, 'spawnLaunch')).toHaveLength(1);
  });

  it('given visitors, when they all leave, then it goes idle and cancels its timers', () => {
    const r = fold(autospawnerMachine, [config, visitors(1, T0), visitors(0, T0 + 1000)]);
    expect(r.snapshot.value).toBe('idle');
    expect(r.snapshot.context.timers).toEqual({});
  });

  it('given visitors, when presence is not re-stated for the inactivity period, then it goes idle with no visitors', () => {
    const r = fold(autospawnerMachine, [
      config,
      visitors(1, T0),
      ev(
        'clock.inactivityElapsed',
        { key: 'inactivity', due: T0 + 10 * 60_000, roll: 0 },
        T0 + 10 * 60_000,
      ),
    ]);
    expect(r.snapshot.value).toBe('idle');
    expect(r.snapshot.context.visitors).toBe(0);
  });

  it('given visitors, when switched off and back on at run time, then it drops its timers and spawns while off and is active again', () => {
    let r = fold(autospawnerMachine, [
      config,
      visitors(1, T0),
      ev('autospawner.switched', { on: false, by: 'dash' }, T0 + 5),
    ]);
    expect(r.snapshot.value).toBe('off');
    expect(r.snapshot.context.timers).toEqual({});
    r = fold(autospawnerMachine, [spawnDue(T0)], r.snapshot);
    expect(r.steps[0]!.accepted).toBe(false);
    r = fold(
      autospawnerMachine,
      [ev('autospawner.switched', { on: true, by: 'dash' }, T0 + 10)],
      r.snapshot,
    );
    // Visitors are still here: straight back to active.
    expect(r.snapshot.value).toBe('active');
  });
});
