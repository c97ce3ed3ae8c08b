/**
 * A region's warm pool as the rest of the system reads it: its state, target and image, its
 * machines with their states, and the ready ones a launch may claim (oldest first). Pure.
 */
import type { SnapshotFrom } from 'xstate';
import {
  readyMachines,
  type PoolContext,
  type PoolMachineLogic,
  type PoolMachineState,
} from './pool.machine.js';
import { topState, type StateNameOf } from '../state.js';

export type PoolSnapshot = SnapshotFrom<PoolMachineLogic>;
/** `unconfigured`, `steady` (nothing in flight), `creating` (one create out), `backoff`. */
export type PoolState = StateNameOf<PoolMachineLogic>;

export interface PoolActorView extends Readonly<PoolContext> {
  readonly state: PoolState;
  /** Ready machines of the current image, oldest first: the ones a launch may claim. */
  readonly ready: readonly string[];
  /** Machines per state; `warming` is the create in flight. */
  readonly counts: Readonly<Record<PoolMachineState | 'warming', number>>;
}

export function poolView(snapshot: PoolSnapshot): PoolActorView {
  const c = snapshot.context;
  const counts = { ready: 0, claimed: 0, retiring: 0, warming: c.creating ? 1 : 0 };
  for (const m of Object.values(c.machines)) counts[m.state]++;
  return { ...c, state: topState(snapshot.value), ready: readyMachines(c), counts };
}
