/**
 * A launch as the rest of the system reads it: its state (a union the compiler checks), its public
 * status from the chart's tags, and the facts services and visitors may see. Pure.
 */
import type { SnapshotFrom } from 'xstate';
import type { LaunchContext, LaunchMachine } from './launch.machine.js';
import { topState, type StateNameOf } from '../state.js';
import { LAUNCH_STATUSES, type LaunchStatus } from '../vocabulary.js';

export type { LaunchStatus };
export type LaunchSnapshot = SnapshotFrom<LaunchMachine>;
/** `idle`, `requested`, `creating`, `waitingReady`, `redirect`, `cleanup`, `failed`, `destroyed`. */
export type LaunchState = StateNameOf<LaunchMachine>;

/** Its context (read-only), with its state and status. */
export interface LaunchActorView extends Readonly<LaunchContext> {
  readonly state: LaunchState;
  /** False once the launch is over (its stream is closed). */
  readonly open: boolean;
  /** What a visitor is told; undefined only before the request (`idle`). */
  readonly status: LaunchStatus | undefined;
}

/** A launch a visitor can be shown: it has a status. */
export type LaunchPublic = LaunchActorView & { readonly status: LaunchStatus };

export function launchStatusOf(snapshot: LaunchSnapshot): LaunchStatus | undefined {
  return LAUNCH_STATUSES.find((t) => snapshot.hasTag(t));
}

export function launchView(snapshot: LaunchSnapshot): LaunchActorView {
  return {
    ...snapshot.context,
    state: topState(snapshot.value),
    open: snapshot.status === 'active',
    status: launchStatusOf(snapshot),
  };
}

export function launchPublic(snapshot: LaunchSnapshot): LaunchPublic | undefined {
  const view = launchView(snapshot);
  return view.status === undefined ? undefined : { ...view, status: view.status };
}

/** The few fields a per-change reader needs (the metrics), without copying the whole context. */
export interface LaunchSummary {
  readonly state: LaunchState;
  readonly open: boolean;
  readonly region: string;
  readonly source: LaunchContext['source'];
  readonly reason: LaunchContext['reason'];
}

export function launchSummary(snapshot: LaunchSnapshot): LaunchSummary {
  const { region, source, reason } = snapshot.context;
  return {
    state: topState(snapshot.value),
    open: snapshot.status === 'active',
    region,
    source,
    reason,
  };
}
