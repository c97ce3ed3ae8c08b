/** The public face of a launch: its status from the chart's tags, and the facts a visitor may see. Pure. */
import type { SnapshotFrom } from 'xstate';
import type { LaunchMachine } from './launch.machine.js';
import { LAUNCH_STATUSES, type FailureReason, type LaunchStatus } from '../vocabulary.js';
import type { LaunchSource } from '../facts.js';

export type { LaunchStatus };

const STATUS_TAGS: readonly LaunchStatus[] = LAUNCH_STATUSES;

export interface LaunchPublic {
  launchId: string;
  status: LaunchStatus;
  region: string;
  source: LaunchSource;
  owner: string;
  machineId: string | undefined;
  reason: FailureReason | undefined;
  detail: string | undefined;
  requestedAt: number;
  updatedAt: number;
}

export function launchStatusOf(snapshot: SnapshotFrom<LaunchMachine>): LaunchStatus | undefined {
  return STATUS_TAGS.find((t) => snapshot.hasTag(t));
}

export function launchPublic(snapshot: SnapshotFrom<LaunchMachine>): LaunchPublic | undefined {
  const status = launchStatusOf(snapshot);
  if (!status) return undefined;
  const c = snapshot.context;
  return {
    launchId: c.launchId,
    status,
    region: c.region,
    source: c.source,
    owner: c.owner,
    machineId: c.machineId,
    reason: c.reason,
    detail: c.detail,
    requestedAt: c.requestedAt,
    updatedAt: c.updatedAt,
  };
}
