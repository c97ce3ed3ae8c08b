/** The public face of a Useless Machine: what the map and the dashboard show. Pure. */
import type { SnapshotFrom } from 'xstate';
import type { VmMachine, VmPhase, VmSource } from './vm.machine.js';

const PHASES: readonly VmPhase[] = ['created', 'started', 'listening', 'stopping', 'destroyed'];

export interface VmPublic {
  machineId: string;
  region: string;
  phase: VmPhase;
  source: VmSource;
  launchId: string | undefined;
  createdAt: number;
  updatedAt: number;
  flyState: string | undefined;
}

export function vmPublic(snapshot: SnapshotFrom<VmMachine>): VmPublic | undefined {
  const phase = PHASES.find((p) => snapshot.hasTag(p));
  if (!phase) return undefined;
  const c = snapshot.context;
  return {
    machineId: c.machineId,
    region: c.region,
    phase,
    source: c.source,
    launchId: c.launchId,
    createdAt: c.createdAt,
    updatedAt: c.updatedAt,
    flyState: c.flyState,
  };
}
