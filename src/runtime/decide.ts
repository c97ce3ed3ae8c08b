/**
 * `transition()` for a hot loop: the same pure step as XState's, with one reusable inert actor
 * scope per chart instead of a new actor and system on every call (which was most of the cost of
 * folding a fact). Charts here spawn no children and use no delayed events, so nothing outlives a
 * call in the shared scope; `test/model` checks the results equal XState's own `transition()` on
 * every generated path.
 */
import {
  createActor,
  initialTransition,
  transition,
  type AnyMachineSnapshot,
  type AnyStateMachine,
  type EventObject,
} from 'xstate';

export type Step = [AnyMachineSnapshot, { type: string; params?: unknown }[]];

export interface Decider {
  initial(): Step;
  next(snapshot: AnyMachineSnapshot, event: EventObject): Step;
}

export function decider(machine: AnyStateMachine): Decider {
  if (process.env.WM_DECIDER === 'public')
    return {
      initial: () => initialTransition(machine) as Step,
      next: (s, e) => transition(machine, s, e) as Step,
    };
  let sink: { type: string; params?: unknown }[] = [];
  const self = createActor(machine);
  const scope = {
    self,
    defer: () => {},
    id: '',
    logger: () => {},
    sessionId: '',
    stopChild: () => {},
    system: self.system,
    emit: () => {},
    actionExecutor: (action: { type: string; params?: unknown }) => {
      sink.push(action);
    },
  } as unknown as Parameters<AnyStateMachine['transition']>[2];
  const run = (f: () => AnyMachineSnapshot): Step => {
    sink = [];
    const snapshot = f();
    const actions = sink;
    sink = [];
    return [snapshot, actions];
  };
  return {
    initial: () => run(() => machine.getInitialSnapshot(scope) as AnyMachineSnapshot),
    next: (snapshot, event) =>
      run(() => machine.transition(snapshot, event, scope) as AnyMachineSnapshot),
  };
}
