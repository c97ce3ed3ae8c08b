/**
 * Model-based test of the autospawner chart: 100 % of states and transitions (asserted); on every
 * path there is at most one spawn loop, spawns are at least 80 % of an interval apart, timers are
 * armed only while active, and folding equals running live.
 */
import { describe, expect, it } from 'vitest';
import { autospawnerMachine, JITTER } from '../../machines/autospawner/autospawner.machine.js';
import { expectDeciderAgrees, expectFullCoverage, explore } from './harness.js';
import { autospawnerAbstract, autospawnerEvents } from './generators.js';

const INTERVAL = 60_000;

const paths = explore(autospawnerMachine, {
  events: autospawnerEvents,
  abstract: autospawnerAbstract,
});

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
      const armed = s.context.timers;
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
