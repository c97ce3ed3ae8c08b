/**
 * Model-based test of the vm chart: 100 % of states and transitions (asserted), and on every path:
 * from adoption until destruction a deadline is armed (no machine outlives its actor), a destroyed
 * machine's slot is released, and folding equals running live.
 */
import { describe, expect, it } from 'vitest';
import { vmMachine } from '../../machines/vm/vm.machine.js';
import { vmPublic } from '../../machines/vm/vm.view.js';
import { expectDeciderAgrees, expectFullCoverage, explore } from './harness.js';
import { vmAbstract, vmEvents } from './generators.js';

const M = 'bbbbbbbbbbbbbb';

const paths = explore(vmMachine, { events: vmEvents, abstract: vmAbstract });

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
      const armed = s.context.timers;
      if (s.matches('unknown') || s.matches('destroyed')) expect(armed).toEqual({});
      else expect(armed.ttl ?? armed.stop).toBeDefined();
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
