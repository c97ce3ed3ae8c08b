/**
 * Model-based test of the warm pool chart: 100 % of states and transitions (asserted); on every
 * path at most one create is in flight, a claim only ever takes a ready machine (so no machine is
 * claimed twice), a claimed machine is never retired, the ready machines of the current image never
 * exceed the target once a step settles, the refill deadline is armed exactly while a create is out
 * or backing off, and folding equals running live.
 */
import { initialTransition, transition, type SnapshotFrom } from 'xstate';
import { describe, expect, it } from 'vitest';
import {
  poolMachine,
  readyMachines,
  type PoolEvent,
  type PoolMachineLogic,
} from '../../machines/pool/pool.machine.js';
import { effectsIn } from '../../machines/effects.js';
import { expectDeciderAgrees, expectFullCoverage, explore } from './harness.js';
import { poolAbstract, poolEvents } from './generators.js';

const paths = explore(poolMachine, { events: poolEvents, abstract: poolAbstract });

/** Every accepted step of a path: the snapshot before, the fact, the snapshot after, its intents. */
function stepsOf(all: (typeof paths)[number]['events']) {
  const events = all as PoolEvent[];
  let [snap] = initialTransition(poolMachine);
  const out: {
    before: SnapshotFrom<PoolMachineLogic>;
    event: PoolEvent;
    after: SnapshotFrom<PoolMachineLogic>;
    effects: ReturnType<typeof effectsIn>;
  }[] = [];
  for (const event of events) {
    if (!snap.can(event)) continue;
    const [next, actions] = transition(poolMachine, snap, event);
    out.push({ before: snap, event, after: next, effects: effectsIn(actions) });
    snap = next;
  }
  return out;
}

describe('pool chart model', () => {
  it('generates paths that reach every state and take every transition', () => {
    expect(paths.length).toBeGreaterThan(20);
    expectFullCoverage(poolMachine, paths as never);
  });

  it("steps through the runtime's decider exactly as through XState's transition()", () => {
    expectDeciderAgrees(poolMachine, paths as never);
  });

  describe.each(paths.map((p) => [p.description, p] as const))('path %s', (_d, p) => {
    const steps = stepsOf(p.events);

    it('folds to the same snapshot as the live actor', () => {
      expect(poolMachine.getPersistedSnapshot(p.folded.snapshot)).toEqual(
        poolMachine.getPersistedSnapshot(p.live),
      );
    });

    it('keeps at most one create in flight, named by the fact that asked for it', () => {
      for (const st of steps) {
        const creates = st.effects.filter((e) => e.type === 'createPooled');
        expect(creates.length).toBeLessThanOrEqual(1);
        if (creates.length === 1) {
          // A create goes out only when none is out, or in the step that ends the one that was.
          const was = st.before.context.creating;
          const ends =
            st.event.type === 'clock.refillElapsed' ||
            ((st.event.type === 'pool.machineAdded' ||
              st.event.type === 'pool.createFailed' ||
              st.event.type === 'pool.createLost') &&
              st.event.name === was);
          expect(was === undefined || ends).toBe(true);
          expect(creates[0]!.params).toMatchObject({ name: st.after.context.creating });
          expect(st.after.context.creating).toContain(st.event.eventId.toLowerCase());
        }
        expect(st.after.context.creating !== undefined).toBe(st.after.matches('creating'));
      }
    });

    it('claims only a ready machine and never retires a claimed one', () => {
      for (const st of steps) {
        if (st.event.type === 'pool.machineClaimed') {
          expect(st.before.context.machines[st.event.machineId]?.state).toBe('ready');
          expect(st.after.context.machines[st.event.machineId]?.state).toBe('claimed');
        }
        for (const e of st.effects)
          if (e.type === 'retirePooled')
            for (const m of e.params.machines) {
              // Ready before, or adopted (already stale) by this very step.
              expect(['ready', undefined]).toContain(
                st.before.context.machines[m.machineId]?.state,
              );
              expect(st.after.context.machines[m.machineId]?.state).toBe('retiring');
            }
      }
    });

    it('settles every step with no more ready machines than the target', () => {
      for (const st of steps) {
        const c = st.after.context;
        expect(readyMachines(c).length).toBeLessThanOrEqual(c.target);
        for (const m of Object.values(c.machines))
          if (m.state === 'ready') expect(m.image).toBe(c.image);
      }
    });

    it('arms its refill deadline exactly while a create is out or backing off', () => {
      for (const st of steps) {
        const armed = st.after.context.timers.refill !== undefined;
        expect(armed).toBe(st.after.matches('creating') || st.after.matches('backoff'));
      }
    });
  });
});
