/**
 * What a launch's Useless Machine is made of: the same image as this app started with the VM
 * command, its own callback key, where to call home, its TTL and idle time, and metadata that
 * names its launch (so a create can be found again, and an orphan recognised).
 */
import type { LaunchSource } from '../../machines/facts.js';
import type { CreateMachineInput } from '../ports/flyMachines.js';
import { deriveLaunchKey, derivePoolKey } from '../shared/callbackAuth.js';
import { METADATA } from '../runtime/effects.js';
import type { WhereConfig } from './config.js';

export const VM_PORT = 4040;
export const CALLBACK_PATH = '/api/machine_status';
export const POOL_CLAIM_PATH = '/api/pool_claim';

/** The config a spec needs; without `vm.idleMs` the VM keeps its own default idle time. */
export type SpecConfig = Pick<WhereConfig, 'callback' | 'publicUrl'> & {
  vm: Omit<WhereConfig['vm'], 'idleMs'> & Partial<Pick<WhereConfig['vm'], 'idleMs'>>;
};

export function machineSpec(
  cfg: SpecConfig,
  p: {
    launchId: string;
    region: string;
    source: LaunchSource;
    ttlMs: number;
    owner: string;
    traceparent?: string;
  },
): CreateMachineInput {
  return {
    // Names are unique per app: a second create for this launch (a re-drive racing the first,
    // or two instances both driving it) gets a 409 from Fly instead of making a second machine.
    name: machineName(p.launchId),
    region: p.region,
    image: cfg.vm.image,
    cmd: cfg.vm.cmd,
    env: {
      PORT: String(VM_PORT),
      WM_LAUNCH_ID: p.launchId,
      WM_CALLBACK_KEY: deriveLaunchKey(cfg.callback.secret, p.launchId),
      WM_CALLBACK_URL: `${cfg.callback.baseUrl}${CALLBACK_PATH}`,
      WM_CALLBACK_FALLBACK_URL: `${cfg.callback.fallbackUrl}${CALLBACK_PATH}`,
      WM_TTL_MS: String(p.ttlMs),
      // A ready machine nobody reaches switches itself off after this, not at its TTL.
      ...(cfg.vm.idleMs !== undefined ? { WM_IDLE_MS: String(cfg.vm.idleMs) } : {}),
      WM_HOME_URL: cfg.publicUrl,
      WM_SOURCE: p.source,
      // The VM sends it with its callbacks, continuing the launch's trace.
      ...(p.traceparent ? { WM_TRACEPARENT: p.traceparent } : {}),
    },
    metadata: {
      [METADATA.launchId]: p.launchId,
      [METADATA.source]: p.source,
      [METADATA.owner]: p.owner,
      ...(p.traceparent ? { [METADATA.traceparent]: p.traceparent } : {}),
    },
    guest: { cpuKind: 'shared', cpus: 1, memoryMb: 256 },
    internalPort: VM_PORT,
    autoDestroy: true,
    // Exit 0 (done) is final; a crash is retried twice, then the ready deadline or TTL cleans up.
    restart: { policy: 'on-failure', maxRetries: 2 },
    stop: { signal: 'SIGTERM', timeoutS: 10 },
  };
}

/**
 * A machine for a region's warm pool (ADR 0022): created stopped (skip_launch), with no launch, no
 * callback key and no TTL in its env. It knows only its name, region and pool key (which signs its
 * request for a claim), and where to ask; the claim tells it the rest.
 */
export function poolMachineSpec(
  cfg: SpecConfig,
  p: { region: string; image: string; name: string },
): CreateMachineInput {
  return {
    name: p.name,
    region: p.region,
    image: p.image,
    cmd: cfg.vm.cmd,
    skipLaunch: true,
    env: {
      PORT: String(VM_PORT),
      WM_POOL_REGION: p.region,
      WM_POOL_NAME: p.name,
      WM_POOL_KEY: derivePoolKey(cfg.callback.secret, p.name),
      WM_POOL_CLAIM_URL: `${cfg.callback.baseUrl}${POOL_CLAIM_PATH}`,
      WM_POOL_CLAIM_FALLBACK_URL: `${cfg.callback.fallbackUrl}${POOL_CLAIM_PATH}`,
      WM_CALLBACK_URL: `${cfg.callback.baseUrl}${CALLBACK_PATH}`,
      WM_CALLBACK_FALLBACK_URL: `${cfg.callback.fallbackUrl}${CALLBACK_PATH}`,
      ...(cfg.vm.idleMs !== undefined ? { WM_IDLE_MS: String(cfg.vm.idleMs) } : {}),
      WM_HOME_URL: cfg.publicUrl,
    },
    metadata: { [METADATA.pool]: p.region, [METADATA.poolImage]: p.image },
    guest: { cpuKind: 'shared', cpus: 1, memoryMb: 256 },
    internalPort: VM_PORT,
    // Consumed, not returned: a claimed machine is destroyed when its VM exits, like a created one.
    autoDestroy: true,
    restart: { policy: 'on-failure', maxRetries: 2 },
    stop: { signal: 'SIGTERM', timeoutS: 10 },
  };
}

export function machineName(launchId: string): string {
  return `wm-${launchId.toLowerCase()}`;
}

export function vmUrl(cfg: Pick<WhereConfig, 'vm'>, machineId: string): string {
  return `${cfg.vm.publicUrl}/machine?instance=${encodeURIComponent(machineId)}`;
}
