/**
 * Which actors a fact concerns. A fact about a machine goes to that machine's actor and to the
 * launch that made it (named in the fact, or remembered by the machine's actor).
 */
import type { FactData, FactType } from '../../machines/facts.js';
import {
  AUTOSPAWNER_STREAM,
  launchStream,
  poolStream,
  vmStream,
} from '../../machines/vocabulary.js';

export function routeFact<T extends FactType>(
  type: T,
  data: FactData<T>,
  launchOfMachine: (machineId: string) => string | undefined,
): string[] {
  const d = data as Record<string, unknown>;
  const launchId = typeof d.launchId === 'string' ? d.launchId : undefined;
  const machineId = typeof d.machineId === 'string' ? d.machineId : undefined;
  switch (type) {
    case 'launch.requested':
    case 'launch.regionFull':
    case 'capacity.reserved':
    case 'capacity.exhausted':
    case 'fly.createFailed':
    case 'fly.noMachineFound':
      return launchId ? [launchStream(launchId)] : [];
    case 'autospawner.configured':
    case 'autospawner.switched':
    case 'presence.changed':
      return [AUTOSPAWNER_STREAM];
    case 'pool.configured':
    case 'pool.machineAdded':
    case 'pool.createFailed':
    case 'pool.createLost':
    case 'pool.machineClaimed':
    case 'pool.machineRetired':
    case 'pool.machineFoundRunning':
      // A region's pool only: the claimed machine's own actor starts with its `fly.machineCreated`.
      return typeof d.region === 'string' ? [poolStream(d.region)] : [];
    case 'fly.machineCreated':
    case 'fly.machineObserved':
    case 'fly.machineGone':
    case 'fly.machineDestroyed':
    case 'fly.destroyFailed':
    case 'vm.listening':
    case 'vm.stopping':
    case 'reconcile.orphanFound': {
      if (!machineId) return [];
      const owner = launchId ?? launchOfMachine(machineId);
      // The machine's actor first: a launch that follows it sees the machine's own record first.
      return owner ? [vmStream(machineId), launchStream(owner)] : [vmStream(machineId)];
    }
    default:
      // Timer facts belong to the stream that armed them and are never routed.
      return [];
  }
}
