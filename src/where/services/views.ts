/** Chart snapshots → the wire views browsers receive (src/where/wire.ts). */
import { traceIdOf } from '../../shared/trace.js';
import {
  launchPublic,
  vmPublic,
  type LaunchSnapshot,
  type VmSnapshot,
} from '../../../machines/index.js';
import { FAILURE_WORDS, type FleetMachine, type LaunchView } from '../wire.js';
import { vmUrl } from '../machineSpec.js';
import type { WhereConfig } from '../config.js';

const iso = (ms: number) => new Date(ms).toISOString();

export function toLaunchView(
  cfg: Pick<WhereConfig, 'vm'>,
  snapshot: LaunchSnapshot,
  version: number,
): LaunchView | undefined {
  const p = launchPublic(snapshot);
  if (!p) return undefined;
  const view: LaunchView = {
    launchId: p.launchId,
    status: p.status,
    region: p.region,
    source: p.source,
    at: iso(p.updatedAt),
    requestedAt: iso(p.requestedAt),
    version,
  };
  if (p.machineId) view.machineId = p.machineId;
  const traceId = traceIdOf(p.traceparent);
  if (traceId) view.traceId = traceId;
  if (p.placedIn && p.placedIn !== p.region) view.placedIn = p.placedIn;
  if (p.fullRegions) view.fullRegions = [...p.fullRegions];
  if (p.machineId && (p.status === 'ready' || p.status === 'done'))
    view.url = vmUrl(cfg, p.machineId);
  if (p.reason) {
    view.reason = p.reason;
    view.message = FAILURE_WORDS[p.reason];
  }
  return view;
}

export function toFleetMachine(snapshot: VmSnapshot): FleetMachine | undefined {
  const v = vmPublic(snapshot);
  if (!v || v.phase === 'destroyed') return undefined;
  const m: FleetMachine = {
    machineId: v.machineId,
    region: v.region,
    status: v.phase,
    source: v.source,
    createdAt: iso(v.createdAt),
    updatedAt: iso(v.updatedAt),
  };
  if (v.launchId) m.launchId = v.launchId;
  return m;
}
