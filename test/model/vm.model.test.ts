/**
 * Model-based test of the vm chart: 100 % of states and transitions (asserted), and on every path:
 * from adoption until destruction a deadline is armed (no machine outlives its actor), a destroyed
 * machine's slot is released, and folding equals running live.
 */
import { describe, expect, it } from 'vitest';
import type { SnapshotFrom } from 'xstate';
import { vmMachine, type VmMachine } from '../../machines/vm/vm.machine.js';
import { vmPublic } from '../../machines/vm/vm.view.js';
import type { ChartEvent } from '../../machines/facts.js';
import { T0 } from '../support/charts.js';
import { armedTimers, expectDeciderAgrees, expectFullCoverage, explore, fact } from './harness.js';

const L = '01JZ0000000000000000000004';
const M = 'bbbbbbbbbbbbbb';

const e = fact;

function eventsFor(s: SnapshotFrom<VmMachine>): ChartEvent[] {
  const c = s.context;
  const t = Math.max(T0, c.updatedAt) + 1000;
  const out: ChartEvent[] = [
    e(
      'fly.machineCreated',
      {
        machineId: M,
        launchId: L,
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
    e(
      'fly.machineCreated',
      {
        machineId: M,
        launchId: L,
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
    e('fly.machineObserved', { machineId: M, state: 'starting', region: 'gru' }, t, 3),
    e('fly.machineObserved', { machineId: M, state: 'started', region: 'gru' }, t, 4),
    e('fly.machineObserved', { machineId: M, state: 'stopped', region: 'gru' }, t, 5),
    e('fly.machineObserved', { machineId: M, state: 'destroyed', region: 'gru' }, t, 6),
    e('vm.listening', { machineId: M, launchId: L, region: 'gru' }, t, 7),
    e('vm.stopping', { machineId: M, launchId: L, reason: 'ttl' }, t, 8),
    e('fly.machineGone', { machineId: M }, t, 9),
    e('fly.machineDestroyed', { machineId: M }, t, 10),
    e('fly.destroyFailed', { machineId: M, status: 404, message: 'gone', retryable: false }, t, 11),
    e('fly.destroyFailed', { machineId: M, status: 500, message: 'oops', retryable: true }, t, 12),
    e('reconcile.orphanFound', { machineId: M, launchId: L, why: 'noLiveLaunch' }, t, 13),
  ];
  if (c.timers.ttl !== undefined)
    out.push(
      e(
        'clock.ttlElapsed',
        { key: 'ttl', due: c.timers.ttl, roll: 0.5 },
        Math.max(t, c.timers.ttl),
        14,
      ),
    );
  if (c.timers.stop !== undefined)
    out.push(
      e(
        'clock.stopElapsed',
        { key: 'stop', due: c.timers.stop, roll: 0.5 },
        Math.max(t, c.timers.stop),
        15,
      ),
    );
  return out;
}

const abstract = (s: SnapshotFrom<VmMachine>) => ({
  value: s.value,
  attempts: Math.min(s.context.destroyAttempts, 2),
  timers: Object.keys(s.context.timers).sort(),
});

const paths = explore(vmMachine, { events: eventsFor, abstract });

describe('vm chart model', () => {
  it('generates paths that reach every state and take every transition', () => {
    expectFullCoverage(vmMachine, paths as never);
  });

  it("steps through the runtime's decider exactly as through XState's transition()", () => {
    expectDeciderAgrees(vmMachine, paths as never);
  });

  describe.each(paths.map((p) => [p.description, p] as const))('path %s', (_d, p) => {
    it('folds to the same snapshot as the live actor', () => {
      expect(vmMachine.getPersistedSnapshot(p.folded.snapshot)).toEqual(
        vmMachine.getPersistedSnapshot(p.live),
      );
    });

    it('always has a deadline armed between adoption and destruction', () => {
      const s = p.folded.snapshot;
      if (s.matches('unknown') || s.matches('destroyed')) {
        expect(armedTimers(p.folded.steps)).toEqual({});
      } else {
        const armed = armedTimers(p.folded.steps);
        expect(armed.ttl ?? armed.stop).toBeDefined();
        expect(armed).toEqual(s.context.timers);
      }
    });

    it('holds a slot once while the machine lives and releases it when destroyed', () => {
      const holds = p.folded.effects.filter((ef) => ef.type === 'holdCapacity');
      const releases = p.folded.effects.filter((ef) => ef.type === 'releaseCapacity');
      const s = p.folded.snapshot;
      expect(holds.length).toBe(s.matches('unknown') ? 0 : 1);
      expect(releases.length).toBe(s.matches('destroyed') ? 1 : 0);
    });

    it('only ever asks to destroy its own machine, and watches a stopping one', () => {
      for (const ef of p.folded.effects) {
        if (ef.type === 'destroyMachine' || ef.type === 'awaitMachine')
          expect(ef.params.machineId).toBe(M);
      }
      const s = p.folded.snapshot;
      if (s.matches('stopping'))
        expect(p.folded.effects.some((ef) => ef.type === 'awaitMachine')).toBe(true);
      if (!s.matches('unknown')) expect(vmPublic(s)?.machineId).toBe(M);
    });
  });
});
