/**
 * The decider: XState's pure `transition()` for a hot loop. `transition(machine, snapshot, event)`
 * from 'xstate' builds a new actor and system on every call, which measured 3–4× the cost of the
 * step itself (docs/adr/0017-decider-fast-path.md); this keeps one inert scope per chart instead.
 * Sound because the charts spawn no children, use no delayed events and run no action here (the
 * scope only collects what the step names), so nothing outlives a call in the shared scope.
 * `test/model` proves each step equals the public `transition()` and `initialTransition()` on every
 * generated path of every chart.
 */
import {
  createActor,
  type AnyMachineSnapshot,
  type AnyStateMachine,
  type EventObject,
  type ExecutableActionObject,
  type Snapshot,
} from 'xstate';

/** The next snapshot and the actions the step named, as `transition()` returns them. */
/** The scope a machine's own `transition()` takes (XState's inert scope has the same fields). */
type MachineScope = Parameters<AnyStateMachine['transition']>[2];

export type Step = [AnyMachineSnapshot, ExecutableActionObject[]];

export interface Decider {
  initial(): Step;
  next(snapshot: AnyMachineSnapshot, event: EventObject): Step;
  /** A snapshot from its persisted form (a boot snapshot's actor). */
  restore(persisted: Snapshot<unknown>): AnyMachineSnapshot;
}

export function decider(machine: AnyStateMachine): Decider {
  let sink: ExecutableActionObject[] = [];
  const self = createActor(machine);
  // The same fields XState's own inert scope has: nothing is executed, every action is collected.
  const scope: MachineScope = {
    self,
    id: '',
    sessionId: '',
    system: self.system,
    logger: () => {},
    defer: () => {},
    emit: () => {},
    stopChild: () => {},
    actionExecutor: (action) => {
      sink.push(action);
    },
  };
  const run = (step: () => AnyMachineSnapshot): Step => {
    sink = [];
    const snapshot = step();
    const actions = sink;
    sink = [];
    return [snapshot, actions];
  };
  return {
    initial: () => run(() => machine.getInitialSnapshot(scope)),
    next: (snapshot, event) => run(() => machine.transition(snapshot, event, scope)),
    restore: (persisted) => machine.restoreSnapshot(persisted, scope),
  };
}

/** One decider per chart, made on first use. */
export class Deciders {
  private readonly byChart = new Map<string, Decider>();

  of(chart: { readonly id: string; readonly machine: AnyStateMachine }): Decider {
    let d = this.byChart.get(chart.id);
    if (!d) this.byChart.set(chart.id, (d = decider(chart.machine)));
    return d;
  }

  /** The snapshot after each of an actor's facts (one it could not take leaves it as it was). */
  replay(
    chart: { readonly id: string; readonly machine: AnyStateMachine },
    events: readonly EventObject[],
  ): AnyMachineSnapshot[] {
    const d = this.of(chart);
    let [snap] = d.initial();
    return events.map((ev) => {
      if (snap.status === 'active' && snap.can(ev)) [snap] = d.next(snap, ev);
      return snap;
    });
  }
}
