/**
 * Helpers for chart tests: build chart events, fold them the way the runtime does (skipping what a
 * snapshot cannot take), and collect the effects each step names.
 */
import {
  initialTransition,
  transition,
  type AnyMachineSnapshot,
  type AnyStateMachine,
  type SnapshotFrom,
} from 'xstate';
import { monotonicFactory } from 'ulid';
import { isEffect, type Effect } from '../../machines/effects.js';
import type { ChartEvent, FactData, FactType } from '../../machines/facts.js';

const ulid = monotonicFactory();
export const T0 = Date.UTC(2026, 5, 1, 12, 0, 0);

export function ev<T extends FactType>(type: T, data: FactData<T>, at: number): ChartEvent<T> {
  return { ...(data as object), type, at, eventId: ulid(at) } as ChartEvent<T>;
}

export interface Folded<M extends AnyStateMachine> {
  snapshot: SnapshotFrom<M>;
  /** Effects of every accepted event, in order. */
  effects: Effect[];
  /** Per input event: accepted, and the effects it produced. */
  steps: { event: ChartEvent; accepted: boolean; effects: Effect[] }[];
}

export function fold<M extends AnyStateMachine>(
  machine: M,
  events: readonly ChartEvent[],
  from?: SnapshotFrom<M>,
): Folded<M> {
  const logic = machine as AnyStateMachine;
  let snapshot: AnyMachineSnapshot =
    (from as AnyMachineSnapshot | undefined) ?? initialTransition(logic)[0];
  const all: Effect[] = [];
  const steps: Folded<M>['steps'] = [];
  for (const event of events) {
    // A finished actor takes no more facts (its stream is closed), whatever its root handlers say.
    if (snapshot.status !== 'active' || !snapshot.can(event)) {
      steps.push({ event, accepted: false, effects: [] });
      continue;
    }
    const [next, actions] = transition(logic, snapshot, event);
    const effects = actions
      .filter(isEffect)
      .map((a) => ({ type: a.type, params: a.params }) as unknown as Effect);
    snapshot = next;
    all.push(...effects);
    steps.push({ event, accepted: true, effects });
  }
  return { snapshot: snapshot as SnapshotFrom<M>, effects: all, steps };
}

export const effectsOf = <K extends Effect['type']>(effects: readonly Effect[], type: K) =>
  effects.filter((e): e is Extract<Effect, { type: K }> => e.type === type);
