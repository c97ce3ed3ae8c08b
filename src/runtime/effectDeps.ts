/**
 * What the effect runner works with: the ports it calls, its settings, the metadata it puts on
 * machines, and the registry of creates in flight (the reconciler reads it too).
 */
import type { LaunchSource } from '../../machines/index.js';
import type { CapacityLedger } from '../ports/capacity.js';
import type { Clock } from '../ports/clock.js';
import type { CreateMachineInput, FlyMachines } from '../ports/flyMachines.js';
import type { Logger } from '../shared/log.js';
import type { Fact } from './actorTypes.js';
import type { PoolClaimer } from './poolClaims.js';

/** Metadata keys on every machine we create (Fly lists machines by them). */
export const METADATA = {
  launchId: 'launch_id',
  source: 'source',
  owner: 'owner',
  traceparent: 'traceparent',
  /** A pooled machine's region (ADR 0022): the reconciler knows it by this. */
  pool: 'pool',
  /** The image a pooled machine was made of (a deploy retires the older ones). */
  poolImage: 'pool_image',
} as const;

export interface EffectDeps {
  fly: FlyMachines;
  ledger: CapacityLedger;
  clock: Clock;
  log: Logger;
  /** The cap on live machines (read at each reservation, so it can change at run time). */
  maxMachines: () => number;
  /** The create request for a launch's machine (image, env with its callback key, metadata…). */
  machineSpec: (p: {
    launchId: string;
    region: string;
    source: LaunchSource;
    ttlMs: number;
    owner: string;
    /** The create's trace position, passed to the VM (docs/adr/0021). */
    traceparent?: string;
  }) => CreateMachineInput;
  /**
   * The create request of a pooled machine (skip_launch, the pool's metadata, its pool key), when
   * the app keeps warm pools (ADR 0022).
   */
  poolSpec?: (p: { region: string; image: string; name: string }) => CreateMachineInput;
  /** Takes a ready machine from the launch's regional pool before a create (ADR 0022). */
  claimPooled?: PoolClaimer;
  /** What an autospawned launch is started with (its region and id come from the spawn intent). */
  autoLaunch: { owner: string; readyTimeoutMs: number; ttlMs: number };
  /** Rounds of Fly's 60 s wait before giving up on seeing a state (the charts' deadlines cover the rest). */
  waitRounds?: { started: number; destroyed: number };
  /** How often a create with an unknown outcome is re-tried (after checking it made nothing). */
  createAttempts?: number;
  /**
   * The pause between attempts at a remote call (default: real time, realTime.ts: the API is paced
   * in the world's time even when the domain's clock is simulated).
   */
  sleep?: (ms: number) => Promise<void>;
  /** The registry of creates in flight (default: one of its own). */
  creates?: InFlightCreates;
}

/** The settings with their defaults filled in. */
export type Settled<D extends EffectDeps> = D &
  Required<Pick<EffectDeps, 'waitRounds' | 'createAttempts' | 'sleep' | 'creates'>>;

/**
 * The creates running in this process, per launch id. A sweep that finds no machine for a launch
 * may conclude "none will appear" only if no create of that launch is still on its way.
 */
export type InFlightCreates = Map<string, Promise<Fact[]>>;

/** Fly's words, cut to what a fact may carry. */
export const clip = (s: string) => (s.length > 500 ? `${s.slice(0, 497)}...` : s);
