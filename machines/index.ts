/**
 * The public surface of the charts: each chart with its stream prefix, the facts it takes, the
 * intents still outstanding in a snapshot (re-driven at boot), and its public view. Pure.
 */
import type { AnyStateMachine, SnapshotFrom } from 'xstate';
import {
  launchMachine,
  LAUNCH_CHART,
  LAUNCH_FACTS,
  CAPACITY_GRACE_MS,
} from './launch/launch.machine.js';
import { launchPublic } from './launch/launch.view.js';
import { vmMachine, VM_CHART, VM_FACTS, vmHold } from './vm/vm.machine.js';
import { vmPublic } from './vm/vm.view.js';
import {
  autospawnerMachine,
  AUTOSPAWNER_CHART,
  AUTOSPAWNER_FACTS,
} from './autospawner/autospawner.machine.js';
import type { Effect, EffectParams } from './effects.js';
import type { FactType } from './facts.js';
import type { StreamKind } from './vocabulary.js';

export * from './facts.js';
export * from './effects.js';
export * from './vocabulary.js';
export * from './flyStates.js';
export * from './launch/launch.machine.js';
export * from './launch/launch.view.js';
export * from './vm/vm.machine.js';
export * from './vm/vm.view.js';
export * from './autospawner/autospawner.machine.js';

export interface Chart<M extends AnyStateMachine = AnyStateMachine> {
  /** Stream prefix: `launch` for `launch.<id>`. */
  readonly kind: StreamKind;
  /** Chart id and version, stored in every event's meta. */
  readonly id: string;
  readonly machine: M;
  readonly facts: readonly FactType[];
  /**
   * Effects a snapshot is still waiting on (their result fact has not arrived). After a crash
   * between storing a fact and running its effects, boot runs these again; each is idempotent.
   */
  outstanding(snapshot: SnapshotFrom<M>): Effect[];
  /**
   * The cap slot a snapshot stands for, if any: a launch that was granted one and may still have a
   * machine, a machine that may still exist. The ledger is rebuilt from these at boot, so a crash
   * cannot hand out slots that live machines still hold (ADR 0010).
   */
  holds(snapshot: SnapshotFrom<M>): EffectParams['holdCapacity'][];
}

export const launchChart: Chart<typeof launchMachine> = {
  kind: 'launch',
  id: LAUNCH_CHART,
  machine: launchMachine,
  facts: LAUNCH_FACTS,
  outstanding(s) {
    const c = s.context;
    if (s.matches('requested')) {
      return [
        {
          type: 'reserveCapacity',
          params: {
            launchId: c.launchId,
            until: c.requestedAt + c.readyTimeoutMs + c.ttlMs + CAPACITY_GRACE_MS,
          },
        },
      ];
    }
    if (s.matches('creating')) {
      return [
        {
          type: 'createMachine',
          params: { launchId: c.launchId, region: c.region, source: c.source, ttlMs: c.ttlMs },
        },
      ];
    }
    if (s.matches({ waitingReady: 'created' }) && c.machineId) {
      return [
        {
          type: 'awaitMachine',
          params: { machineId: c.machineId, launchId: c.launchId, state: 'started' },
        },
      ];
    }
    if (s.matches('cleanup')) {
      return [{ type: 'destroyMachine', params: { machineId: c.machineId, launchId: c.launchId } }];
    }
    return [];
  },
  holds(s) {
    // `requested` holds nothing yet: its re-driven reservation asks the ledger again, and a slot
    // restored here would make that ask succeed over the cap.
    if (s.status !== 'active' || s.matches('idle') || s.matches('requested')) return [];
    const c = s.context;
    return [
      {
        holder: c.launchId,
        until: c.requestedAt + c.readyTimeoutMs + c.ttlMs + CAPACITY_GRACE_MS,
      },
    ];
  },
};

export const vmChart: Chart<typeof vmMachine> = {
  kind: 'vm',
  id: VM_CHART,
  machine: vmMachine,
  facts: VM_FACTS,
  outstanding(s) {
    const c = s.context;
    if (s.matches('stopping')) {
      return [
        {
          type: 'awaitMachine',
          params: { machineId: c.machineId, launchId: c.launchId, state: 'destroyed' },
        },
      ];
    }
    return [];
  },
  holds: (s) => vmHold(s),
};

export const autospawnerChart: Chart<typeof autospawnerMachine> = {
  kind: 'autospawner',
  id: AUTOSPAWNER_CHART,
  machine: autospawnerMachine,
  facts: AUTOSPAWNER_FACTS,
  outstanding: () => [],
  holds: () => [],
};

export const CHARTS = { launch: launchChart, vm: vmChart, autospawner: autospawnerChart } as const;
export type ChartKind = keyof typeof CHARTS;

export { launchPublic, vmPublic };
