/**
 * The autospawner as the rest of the system reads it: its state (a union the compiler checks), its
 * configuration and its spawn loop. Pure.
 */
import type { SnapshotFrom } from 'xstate';
import type { AutospawnerContext, AutospawnerMachine } from './autospawner.machine.js';
import { topState, type StateNameOf } from '../state.js';

export type AutospawnerSnapshot = SnapshotFrom<AutospawnerMachine>;
/** `off` (switched off), `idle` (nobody watching), `active` (spawning). */
export type AutospawnerState = StateNameOf<AutospawnerMachine>;

/** Its context (read-only), with its state and the region it spawns in next. */
export interface AutospawnerActorView extends Readonly<AutospawnerContext> {
  readonly state: AutospawnerState;
  readonly nextRegion: string | undefined;
}

export function autospawnerView(snapshot: AutospawnerSnapshot): AutospawnerActorView {
  const c = snapshot.context;
  return {
    ...c,
    state: topState(snapshot.value),
    nextRegion: c.regions[c.nextIndex % c.regions.length],
  };
}
