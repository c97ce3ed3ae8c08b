/**
 * State names as types: the union of a chart's top-level state names is read from the chart itself,
 * so code outside `machines/` compares against names the compiler checks (rename a state, and every
 * comparison with the old name stops compiling). Pure.
 */
import type { AnyStateMachine, StateValue, StateValueFrom } from 'xstate';

/** The top-level name in a state value: `'idle'`, or `'waitingReady'` for `{ waitingReady: … }`. */
export type TopStateName<V> = V extends string ? V : keyof V & string;

/** The names of a chart's top-level states. */
export type StateNameOf<M extends AnyStateMachine> = TopStateName<StateValueFrom<M>>;

/** The top-level state of a snapshot's value. */
export function topState<V extends StateValue>(value: V): TopStateName<V> {
  // A compound value has exactly one key at the top: the active child of the root.
  return (typeof value === 'string' ? value : Object.keys(value)[0]) as TopStateName<V>;
}
