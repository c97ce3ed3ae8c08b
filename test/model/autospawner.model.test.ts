/**
 * Model-based test of the autospawner chart: 100 % of states and transitions (asserted); on every
 * path there is at most one spawn loop, spawns are at least 80 % of an interval apart, timers are
 * armed only while active, and folding equals running live.
 */
import { describe, expect, it } from 'vitest';
import type { SnapshotFrom } from 'xstate';
import {
  autospawnerMachine,
  JITTER,
  type AutospawnerMachine,
} from '../../machines/autospawner/autospawner.machine.js';
import type { ChartEvent } from '../../machines/facts.js';
import { T0 } from '../support/charts.js';
import { armedTimers, expectDeciderAgrees, expectFullCoverage, explore, fact } from './harness.js';

const INTERVAL = 60_000;

const e = fact;

function eventsFor(s: SnapshotFrom<AutospawnerMachine>): ChartEvent[] {
  const c = s.context;
  const t = T0 + 1000 * (c.spawns + 1);
  const out: ChartEvent[] = [
    e(
      'autospawner.configured',
      { intervalMs: INTERVAL, inactivityMs: 5 * INTERVAL, regions: ['ams', 'sin'], enabled: true },
      t,
      1,
    ),
    e(
      'autospawner.configured',
      { intervalMs: INTERVAL, inactivityMs: 5 * INTERVAL, regions: ['ams', 'sin'], enabled: false },
      t,
      2,
    ),
    e('autospawner.switched', { on: true, by: 'test' }, t, 3),
    e('autospawner.switched', { on: false, by: 'test' }, t, 4),
    e('presence.changed', { visitors: 0, roll: 0.5 }, t, 5),
    e('presence.changed', { visitors: 2, roll: 0.9 }, t, 6),
  ];
  if (c.timers.spawn !== undefined)
    out.push(
      e(
        'clock.spawnElapsed',
        { key: 'spawn', due: c.timers.spawn, roll: 0.1 },
        Math.max(t, c.timers.spawn),
        7,
      ),
    );
  if (c.timers.inactivity !== undefined)
    out.push(
      e(
        'clock.inactivityElapsed',
        { key: 'inactivity', due: c.timers.inactivity, roll: 0.5 },
        Math.max(t, c.timers.inactivity),
        8,
      ),
    );
  return out;
}

const abstract = (s: SnapshotFrom<AutospawnerMachine>) => ({
  value: s.value,
  visitors: s.context.visitors > 0,
  enabled: s.context.enabled,
  configured: s.context.intervalMs === INTERVAL,
  spawned: Math.min(s.context.spawns, 2),
  timers: Object.keys(s.context.timers).sort(),
});

const paths = explore(autospawnerMachine, { events: eventsFor, abstract });

describe('autospawner chart model', () => {
  it('generates paths that reach every state and take every transition', () => {
    expectFullCoverage(autospawnerMachine, paths as never);
  });

  it("steps through the runtime's decider exactly as through XState's transition()", () => {
    expectDeciderAgrees(autospawnerMachine, paths as never);
  });

  describe.each(paths.map((p) => [p.description, p] as const))('path %s', (_d, p) => {
    it('folds to the same snapshot as the live actor', () => {
      expect(autospawnerMachine.getPersistedSnapshot(p.folded.snapshot)).toEqual(
        autospawnerMachine.getPersistedSnapshot(p.live),
      );
    });

    it('arms timers only while active, and exactly one spawn timer then', () => {
      const s = p.folded.snapshot;
      const armed = armedTimers(p.folded.steps);
      expect(armed).toEqual(s.context.timers);
      if (s.matches('active')) {
        expect(armed.spawn).toBeDefined();
        expect(armed.inactivity).toBeDefined();
      } else {
        expect(armed).toEqual({});
      }
    });

    it('spaces its spawns by at least the interval less the jitter', () => {
      const spawnTimes = p.folded.steps
        .filter((st) => st.effects.some((ef) => ef.type === 'spawnLaunch'))
        .map((st) => st.event.at);
      for (let i = 1; i < spawnTimes.length; i++) {
        expect(spawnTimes[i]! - spawnTimes[i - 1]!).toBeGreaterThanOrEqual(
          (1 - JITTER) * Math.min(INTERVAL, 2 * 60 * 60_000),
        );
      }
      for (const st of p.folded.steps) {
        expect(st.effects.filter((ef) => ef.type === 'spawnLaunch').length).toBeLessThanOrEqual(1);
      }
    });
  });
});
