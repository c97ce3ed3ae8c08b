/**
 * A Useless Machine as the rest of the system reads it: its state (a union the compiler checks),
 * its phase from the chart's tags, and what the map, the dashboard and the reconciler read. Pure.
 */
import type { SnapshotFrom } from 'xstate';
import type { VmContext, VmMachine, VmPhase } from './vm.machine.js';
import { topState, type StateNameOf } from '../state.js';

export type VmSnapshot = SnapshotFrom<VmMachine>;
/** `unknown` (no fact yet), `created`, `started`, `listening`, `stopping`, `destroyed`. */
export type VmState = StateNameOf<VmMachine>;

const PHASES: readonly VmPhase[] = ['created', 'started', 'listening', 'stopping', 'destroyed'];

/** Its context (read-only), with its state and phase. */
export interface VmActorView extends Readonly<VmContext> {
  readonly state: VmState;
  /** False once the machine is destroyed (its stream is closed). */
  readonly open: boolean;
  /** Its phase on the map; undefined before any fact named it (`unknown`, `machineId` empty). */
  readonly phase: VmPhase | undefined;
}

/** A machine the map can show: it has a phase. */
export type VmPublic = VmActorView & { readonly phase: VmPhase };

export function vmView(snapshot: VmSnapshot): VmActorView {
  return {
    ...snapshot.context,
    state: topState(snapshot.value),
    open: snapshot.status === 'active',
    phase: PHASES.find((p) => snapshot.hasTag(p)),
  };
}

export function vmPublic(snapshot: VmSnapshot): VmPublic | undefined {
  const view = vmView(snapshot);
  return view.phase === undefined ? undefined : { ...view, phase: view.phase };
}
