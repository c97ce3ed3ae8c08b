/**
 * Model-based test of the launch chart: paths reach 100 % of its states and transitions (asserted),
 * and every path keeps the invariants: a machine we made is destroyed (or a destroy is pending),
 * a slot we took is given back, a non-final state always has a deadline or an expected fact, and
 * folding the path's events gives the snapshot a live actor reached.
 */
import { describe, expect, it } from 'vitest';
import type { SnapshotFrom } from 'xstate';
import { launchMachine, type LaunchMachine } from '../../machines/launch/launch.machine.js';
import { launchStatusOf } from '../../machines/launch/launch.view.js';
import type { ChartEvent } from '../../machines/facts.js';
import { T0 } from '../support/charts.js';
import {
  armedTimers,
  expectDeciderAgrees,
  expectFullCoverage,
  explore,
  fact,
  type ModelPath,
} from './harness.js';

const L = '01JZ0000000000000000000003';
const M = 'aaaaaaaaaaaaaa';

const e = fact;

function eventsFor(s: SnapshotFrom<LaunchMachine>): ChartEvent[] {
  const c = s.context;
  const t = Math.max(T0, c.updatedAt) + 1000;
  const out: ChartEvent[] = [
    e(
      'launch.requested',
      {
        launchId: L,
        region: 'fra',
        source: 'dash',
        owner: 'i1',
        readyTimeoutMs: 20_000,
        ttlMs: 60_000,
      },
      T0,
      1,
    ),
    e('capacity.reserved', { launchId: L, live: 1, limit: 2 }, t, 2),
    e('capacity.exhausted', { launchId: L, live: 2, limit: 2 }, t, 3),
    e(
      'fly.machineCreated',
      {
        machineId: M,
        launchId: L,
        region: 'fra',
        instanceId: 'I1',
        state: 'created',
        createdAt: t,
      },
      t,
      4,
    ),
    e('fly.createFailed', { launchId: L, status: 0, message: 'timeout', retryable: true }, t, 5),
    e(
      'fly.createFailed',
      { launchId: L, status: 429, message: 'slow down', retryable: false },
      t,
      6,
    ),
    e('fly.machineObserved', { machineId: M, state: 'started', region: 'fra' }, t, 7),
    e('fly.machineObserved', { machineId: M, state: 'stopped', region: 'fra' }, t, 8),
    e('fly.machineObserved', { machineId: M, state: 'destroyed', region: 'fra' }, t, 9),
    e('fly.machineGone', { machineId: M, launchId: L }, t, 10),
    e('fly.machineDestroyed', { machineId: M, launchId: L }, t, 11),
    e('vm.listening', { machineId: M, launchId: L, region: 'fra' }, t, 12),
    e('vm.stopping', { machineId: M, launchId: L, reason: 'finished' }, t, 13),
    e('fly.machineObserved', { machineId: M, state: 'started', region: 'fra', launchId: L }, t, 18),
    e('fly.noMachineFound', { launchId: L, settled: true }, t, 16),
    e('fly.noMachineFound', { launchId: L, settled: false }, t, 17),
  ];
  if (c.timers.ready !== undefined)
    out.push(
      e('clock.readyElapsed', { key: 'ready', due: c.timers.ready, roll: 0.5 }, c.timers.ready, 14),
    );
  if (c.timers.cleanup !== undefined)
    out.push(
      e(
        'clock.cleanupElapsed',
        { key: 'cleanup', due: c.timers.cleanup, roll: 0.5 },
        c.timers.cleanup,
        15,
      ),
    );
  return out;
}

const abstract = (s: SnapshotFrom<LaunchMachine>) => ({
  value: s.value,
  machine: s.context.machineId !== undefined,
  instance: s.context.instanceId !== undefined,
  reason: s.context.reason,
  attempts: s.context.cleanupAttempts,
  timers: Object.keys(s.context.timers).sort(),
});

const paths = explore(launchMachine, { events: eventsFor, abstract });

function facts(p: ModelPath<LaunchMachine>) {
  return p.folded.steps.filter((s) => s.accepted).map((s) => s.event);
}

describe('launch chart model', () => {
  it('generates paths that reach every state and take every transition', () => {
    expectFullCoverage(launchMachine, paths as never);
    expect(paths.length).toBeGreaterThan(20);
  });

  it("steps through the runtime's decider exactly as through XState's transition()", () => {
    expectDeciderAgrees(launchMachine, paths as never);
  });

  describe.each(paths.map((p) => [p.description, p] as const))('path %s', (_d, p) => {
    it('folds to the same snapshot as the live actor', () => {
      expect(launchMachine.getPersistedSnapshot(p.folded.snapshot)).toEqual(
        launchMachine.getPersistedSnapshot(p.live),
      );
    });

    it('destroys any machine it may have made before it ends', () => {
      const fs = facts(p);
      const mayExist = fs.some(
        (f) =>
          f.type === 'fly.machineCreated' ||
          f.type === 'vm.listening' ||
          (f.type === 'fly.createFailed' && f.retryable),
      );
      const confirmedGone = fs.some(
        (f) =>
          f.type === 'fly.machineGone' ||
          f.type === 'fly.machineDestroyed' ||
          (f.type === 'fly.machineObserved' && f.state === 'destroyed') ||
          (f.type === 'fly.createFailed' && !f.retryable) ||
          (f.type === 'fly.noMachineFound' && f.settled),
      );
      const s = p.folded.snapshot;
      if (s.status === 'done' && mayExist && !confirmedGone) {
        expect(p.folded.effects.some((ef) => ef.type === 'destroyMachine')).toBe(true);
      }
      if (s.matches('cleanup')) {
        // Still failing: a destroy was asked for and a retry is armed.
        expect(p.folded.effects.some((ef) => ef.type === 'destroyMachine')).toBe(true);
        expect(s.context.timers.cleanup).toBeDefined();
      }
    });

    it('gives back a slot it took, unless its machine may live on (whose actor then holds and releases it)', () => {
      const fs = facts(p);
      const reserved = fs.some((f) => f.type === 'capacity.reserved');
      const s = p.folded.snapshot;
      const released = p.folded.effects.some((ef) => ef.type === 'releaseCapacity');
      const machineGone = fs.some(
        (f) =>
          f.type === 'fly.machineGone' ||
          f.type === 'fly.machineDestroyed' ||
          (f.type === 'fly.machineObserved' && f.state === 'destroyed'),
      );
      if (s.status === 'done' && reserved) {
        if (s.context.machineId === undefined || machineGone) expect(released).toBe(true);
        // A machine that may still exist keeps its slot: the launch must not have released it.
        else expect(released).toBe(false);
      }
      // Never gives back a slot it never asked for.
      if (!p.folded.effects.some((ef) => ef.type === 'reserveCapacity')) {
        expect(p.folded.effects.some((ef) => ef.type === 'releaseCapacity')).toBe(false);
      }
    });

    it('has a deadline or an expected fact in every non-final state', () => {
      const s = p.folded.snapshot;
      if (s.status === 'done' || s.matches('idle'))
        return expect(Object.keys(s.context.timers)).toEqual([]);
      if (s.matches('redirect')) {
        // Its machine's own actor (and TTL) will report the destruction this state waits for.
        return expect(s.context.machineId).toBeDefined();
      }
      expect(Object.keys(s.context.timers).length).toBeGreaterThan(0);
    });

    it('keeps the armed timers and its recorded deadlines in step, never arming the past', () => {
      expect(armedTimers(p.folded.steps)).toEqual(p.folded.snapshot.context.timers);
      for (const step of p.folded.steps) {
        for (const ef of step.effects)
          if (ef.type === 'scheduleTimer')
            expect(ef.params.at).toBeGreaterThanOrEqual(step.event.at);
      }
    });

    it('shows a public status in every state but idle', () => {
      const s = p.folded.snapshot;
      if (!s.matches('idle')) expect(launchStatusOf(s)).toBeDefined();
    });
  });
});
