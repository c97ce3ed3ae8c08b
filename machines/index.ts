/**
 * The public surface of the charts: each chart with its stream prefix, the facts it takes, the
 * intents still outstanding in a snapshot (re-driven at boot), what the runtime reads of any
 * snapshot (deadlines, launch, owner, region) and its typed view for everyone else. Pure.
 */
import type { AnyStateMachine, SnapshotFrom } from 'xstate';
import {
  launchMachine,
  LAUNCH_CHART,
  LAUNCH_FACTS,
  slotUntil,
  createParams,
} from './launch/launch.machine.js';
import { launchSummary, launchView, type LaunchActorView } from './launch/launch.view.js';
import { vmMachine, VM_CHART, VM_FACTS, vmHold } from './vm/vm.machine.js';
import { vmView, type VmActorView } from './vm/vm.view.js';
import {
  autospawnerMachine,
  AUTOSPAWNER_CHART,
  AUTOSPAWNER_FACTS,
} from './autospawner/autospawner.machine.js';
import { autospawnerView, type AutospawnerActorView } from './autospawner/autospawner.view.js';
import { poolMachine, POOL_CHART, POOL_FACTS } from './pool/pool.machine.js';
import { poolView, type PoolActorView } from './pool/pool.view.js';
import type { Effect, EffectParams, TimerTable } from './effects.js';
import type { FactType } from './facts.js';
import type { StreamKind } from './vocabulary.js';

export * from './facts.js';
export * from './effects.js';
export * from './vocabulary.js';
export * from './flyStates.js';
export * from './state.js';
export * from './launch/launch.machine.js';
export * from './launch/launch.view.js';
export * from './vm/vm.machine.js';
export * from './vm/vm.view.js';
export * from './autospawner/autospawner.machine.js';
export * from './autospawner/autospawner.view.js';
export * from './pool/pool.machine.js';
export * from './pool/pool.view.js';

/**
 * A chart as the runtime drives it. The runtime is generic over charts: it reads a snapshot only
 * through these accessors, and services read one only through `view`.
 */
export interface Chart<M extends AnyStateMachine = AnyStateMachine, V = unknown> {
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
  /** Its deadlines, the one record of them: the runtime's real timers follow this (ADR 0003). */
  timers(snapshot: SnapshotFrom<M>): TimerTable;
  /** The launch it belongs to, once known (a launch is its own): facts about a machine reach it. */
  launchOf(snapshot: SnapshotFrom<M>): string | undefined;
  /** The instance that drives it while alive (a launch: the one that accepted it), if any. */
  owner(snapshot: SnapshotFrom<M>): string | undefined;
  /** The region it is in, once known. */
  region(snapshot: SnapshotFrom<M>): string | undefined;
  /** The W3C traceparent of the work it belongs to, when it carries one (a launch's). */
  trace(snapshot: SnapshotFrom<M>): string | undefined;
  /** What everyone else reads of it: its state as a union of names, tags and context, typed. */
  view(snapshot: SnapshotFrom<M>): V;
}

/** Every chart keeps its deadlines in `context.timers` (ADR 0003). */
const timersOf = (s: { context: { timers: TimerTable } }) => s.context.timers;
const none = () => undefined;
/** An empty string in a context means "not known yet". */
const known = (s: string | undefined) => (s === '' ? undefined : s);

const awaitIntent = (
  p: { machineId: string; launchId: string | undefined },
  state: 'started' | 'destroyed',
): Effect => ({
  type: 'awaitMachine',
  params: { machineId: p.machineId, launchId: p.launchId, state },
});

export const launchChart: Chart<typeof launchMachine, LaunchActorView> & {
  /** The few fields a per-change reader needs, without copying the context (the metrics). */
  summary: typeof launchSummary;
} = {
  kind: 'launch',
  id: LAUNCH_CHART,
  machine: launchMachine,
  facts: LAUNCH_FACTS,
  outstanding(s) {
    const c = s.context;
    if (s.matches('requested'))
      return [{ type: 'reserveCapacity', params: { launchId: c.launchId, until: slotUntil(c) } }];
    if (s.matches('creating')) {
      return [{ type: 'createMachine', params: createParams(c) }];
    }
    if (s.matches({ waitingReady: 'created' }) && c.machineId)
      return [awaitIntent({ machineId: c.machineId, launchId: c.launchId }, 'started')];
    if (s.matches('cleanup'))
      return [{ type: 'destroyMachine', params: { machineId: c.machineId, launchId: c.launchId } }];
    return [];
  },
  holds(s) {
    // `requested` holds nothing yet: its re-driven reservation asks the ledger again, and a slot
    // restored here would make that ask succeed over the cap.
    if (s.status !== 'active' || s.matches('idle') || s.matches('requested')) return [];
    return [{ holder: s.context.launchId, until: slotUntil(s.context) }];
  },
  timers: timersOf,
  launchOf: (s) => known(s.context.launchId),
  trace: (s) => s.context.traceparent,
  owner: (s) => known(s.context.owner),
  region: (s) => known(s.context.region),
  view: launchView,
  summary: launchSummary,
};

export const vmChart: Chart<typeof vmMachine, VmActorView> = {
  kind: 'vm',
  id: VM_CHART,
  machine: vmMachine,
  facts: VM_FACTS,
  outstanding: (s) => (s.matches('stopping') ? [awaitIntent(s.context, 'destroyed')] : []),
  holds: (s) => vmHold(s),
  timers: timersOf,
  launchOf: (s) => s.context.launchId,
  trace: none,
  // Driven with its launch while that lives, else by the leader (src/where/services/cluster.ts).
  owner: none,
  region: (s) => known(s.context.region),
  view: vmView,
};

/** One per cluster, driven by the leader: no launch, owner, region or cap slot of its own. */
export const autospawnerChart: Chart<typeof autospawnerMachine, AutospawnerActorView> = {
  kind: 'autospawner',
  id: AUTOSPAWNER_CHART,
  machine: autospawnerMachine,
  facts: AUTOSPAWNER_FACTS,
  outstanding: () => [],
  holds: () => [],
  timers: timersOf,
  launchOf: none,
  trace: none,
  owner: none,
  region: none,
  view: autospawnerView,
};

/**
 * One per region, driven by the leader. Its machines hold no cap slot while stopped: a claimed one
 * is held by the launch that claimed it (after its `capacity.reserved`, like a create).
 */
export const poolChart: Chart<typeof poolMachine, PoolActorView> = {
  kind: 'pool',
  id: POOL_CHART,
  machine: poolMachine,
  facts: POOL_FACTS,
  outstanding(s) {
    const c = s.context;
    const out: Effect[] = [];
    if (s.matches('creating') && c.creating)
      out.push({
        type: 'createPooled',
        params: { region: c.region, image: c.image, name: c.creating },
      });
    const retiring = Object.entries(c.machines)
      .filter(([, m]) => m.state === 'retiring')
      .map(([machineId, m]) => ({ machineId, reason: m.reason ?? ('oldImage' as const) }));
    if (retiring.length > 0)
      out.push({ type: 'retirePooled', params: { region: c.region, machines: retiring } });
    return out;
  },
  holds: () => [],
  timers: timersOf,
  launchOf: none,
  trace: none,
  owner: none,
  region: (s) => known(s.context.region),
  view: poolView,
};

export const CHARTS = {
  launch: launchChart,
  vm: vmChart,
  autospawner: autospawnerChart,
  pool: poolChart,
} as const;
export type ChartKind = keyof typeof CHARTS;
/** The typed view of an actor of a kind (`ViewOf<'launch'>` is `LaunchActorView`). */
export type ViewOf<K extends ChartKind> = ReturnType<(typeof CHARTS)[K]['view']>;
