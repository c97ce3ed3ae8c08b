/**
 * The fact catalogue: every event type an actor can take, with a zod schema for its payload.
 * Pure: imports only zod. Facts are `<source>.<pastTense>`; each one is documented in docs/events.md.
 * A schema change that old streams cannot satisfy needs a new type or a new version, never an edit.
 */
import { z } from 'zod';
import {
  LAUNCH_SOURCES,
  MACHINE_ID_PATTERN,
  REGION_PATTERN,
  TRACEPARENT_PATTERN,
  ULID_PATTERN,
  type LaunchSource,
} from './vocabulary.js';

export const launchId = z.string().regex(ULID_PATTERN, 'a launch id is a ULID');
export const machineId = z
  .string()
  .regex(MACHINE_ID_PATTERN, 'a machine id is 8–32 lowercase letters or digits');
export const regionCode = z.string().regex(REGION_PATTERN, 'a region is three lowercase letters');
export const launchSource = z.enum(LAUNCH_SOURCES);
export type { LaunchSource };
const ms = z.number().int().nonnegative();
const positiveMs = z.number().int().positive();

/** Timer keys. A timer firing is the fact `clock.<key>Elapsed`. */
export const TIMER_KEYS = [
  'ready',
  'cleanup',
  'ttl',
  'stop',
  'spawn',
  'inactivity',
  'refill',
] as const;
export type TimerKey = (typeof TIMER_KEYS)[number];
export const timerFactType = (key: TimerKey) => `clock.${key}Elapsed` as const;

/** A pooled machine's image reference (registry/repo:tag or @digest). */
const poolImage = z.string().min(1).max(256);
/** A pooled machine's name: chosen before its create, so a re-driven create finds it again. */
const poolName = z
  .string()
  .regex(/^wm-pool-[a-z]{3}-[a-z0-9]{1,40}$/, 'a pooled machine is named wm-pool-<region>-<id>');
/** Why a pooled machine left the pool without being claimed. */
export const POOL_RETIRE_REASONS = ['oldImage', 'overTarget', 'claimFailed', 'gone'] as const;
export type PoolRetireReason = (typeof POOL_RETIRE_REASONS)[number];

const clockFact = z.strictObject({
  key: z.enum(TIMER_KEYS),
  /** The deadline the timer was armed for: a stale timer (re-armed since) no longer matches. */
  due: ms,
  /** A uniform random number in [0, 1): the only randomness a chart ever sees. */
  roll: z.number().min(0).lt(1),
});

/**
 * `fly.createFailed` was stored with `retryable` before the field got the name of what it means
 * (`machineMayExist`; `retryable` elsewhere means "the same call may succeed again"). Old events
 * decode into the new field; one that carries both is left for the schema to refuse.
 */
function upcastCreateFailed(data: unknown): unknown {
  if (typeof data !== 'object' || data === null) return data;
  if (!('retryable' in data) || 'machineMayExist' in data) return data;
  const { retryable, ...rest } = data;
  return { ...rest, machineMayExist: retryable };
}

export const factSchemas = {
  'launch.requested': z.strictObject({
    launchId,
    region: regionCode,
    source: launchSource,
    /** The instance that accepted the launch and drives it (session affinity). */
    owner: z.string().min(1).max(64),
    readyTimeoutMs: positiveMs,
    ttlMs: positiveMs,
    /** The launch's W3C trace position, started at the request; absent in older facts. */
    traceparent: z.string().regex(TRACEPARENT_PATTERN, 'a W3C traceparent').optional(),
  }),
  /** Fly had no capacity in `region` for this launch's create: the next nearest is tried. */
  'launch.regionFull': z.strictObject({
    launchId,
    region: regionCode,
    status: z.number().int().min(0).max(599),
    message: z.string().max(500),
  }),
  'capacity.reserved': z.strictObject({ launchId, live: ms, limit: ms }),
  'capacity.exhausted': z.strictObject({ launchId, live: ms, limit: ms }),
  'fly.machineCreated': z.strictObject({
    machineId,
    launchId: launchId.optional(),
    region: regionCode,
    instanceId: z.string().max(64),
    state: z.string().max(32),
    source: launchSource.optional(),
    ttlMs: positiveMs.optional(),
    createdAt: ms,
    /** The machine came from the region's warm pool (claimed and started, not created). */
    pooled: z.boolean().optional(),
  }),
  'fly.createFailed': z.preprocess(
    upcastCreateFailed,
    z.strictObject({
      launchId,
      /** HTTP status from Fly; 0 when no answer came. */
      status: z.number().int().min(0).max(599),
      message: z.string().max(500),
      /** The outcome is unknown, so a machine may exist anyway: the launch sweeps for it. */
      machineMayExist: z.boolean(),
    }),
  ),
  /** What the API says a machine is doing (reconciler list, wait results). */
  'fly.machineObserved': z.strictObject({
    machineId,
    state: z.string().max(32),
    region: regionCode,
    launchId: launchId.optional(),
    source: launchSource.optional(),
    ttlMs: positiveMs.optional(),
    createdAt: ms.optional(),
  }),
  /**
   * A sweep for a launch's machines (by its `launch_id`) found none alive. `settled`: no create of
   * this launch was still running where the sweep ran, so nothing can appear after it.
   */
  'fly.noMachineFound': z.strictObject({ launchId, settled: z.boolean() }),
  /** The API no longer lists the machine, or answers 404 for it. */
  'fly.machineGone': z.strictObject({ machineId, launchId: launchId.optional() }),
  'fly.machineDestroyed': z.strictObject({ machineId, launchId: launchId.optional() }),
  'fly.destroyFailed': z.strictObject({
    machineId,
    launchId: launchId.optional(),
    status: z.number().int().min(0).max(599),
    message: z.string().max(500),
    retryable: z.boolean(),
  }),
  /** The VM's signed callback: its server answers its own health check. */
  'vm.listening': z.strictObject({
    machineId,
    launchId: launchId.optional(),
    region: regionCode,
    ttlMs: positiveMs.optional(),
  }),
  /** The VM's signed callback: it is about to exit. */
  'vm.stopping': z.strictObject({
    machineId,
    launchId: launchId.optional(),
    reason: z.enum(['finished', 'idle', 'ttl', 'signal']).optional(),
  }),
  /**
   * The reconciler found a machine carrying our metadata whose launch is over or unknown, or one
   * past its TTL: it must go.
   */
  'reconcile.orphanFound': z.strictObject({
    machineId,
    launchId: launchId.optional(),
    why: z.enum(['noLiveLaunch', 'pastTtl']),
  }),
  'clock.readyElapsed': clockFact,
  'clock.cleanupElapsed': clockFact,
  'clock.ttlElapsed': clockFact,
  'clock.stopElapsed': clockFact,
  'clock.spawnElapsed': clockFact,
  'clock.inactivityElapsed': clockFact,
  'clock.refillElapsed': clockFact,
  'autospawner.configured': z.strictObject({
    intervalMs: positiveMs,
    inactivityMs: positiveMs,
    regions: z.array(regionCode).min(1).max(64),
    enabled: z.boolean(),
  }),
  'autospawner.switched': z.strictObject({ on: z.boolean(), by: z.string().max(64) }),
  /** The leader's wish for a region's warm pool: how many stopped machines, of which image. */
  'pool.configured': z.strictObject({
    region: regionCode,
    target: z.number().int().min(0).max(100),
    image: poolImage,
  }),
  /** A pooled machine exists, created without starting (its create's answer, or adopted). */
  'pool.machineAdded': z.strictObject({
    region: regionCode,
    machineId,
    name: poolName,
    instanceId: z.string().max(64),
    image: poolImage,
  }),
  /** A pooled create failed (nothing made, or the reconciler will adopt what was). */
  'pool.createFailed': z.strictObject({
    region: regionCode,
    name: poolName,
    status: z.number().int().min(0).max(599),
    message: z.string().max(500),
  }),
  /**
   * The instance that sent a pooled create died with it in flight (it crashed, or the leader saw it
   * leave): the next create goes out now rather than at the create's deadline.
   */
  'pool.createLost': z.strictObject({ region: regionCode, name: poolName }),
  /** A launch took a ready pooled machine: the compare-and-set of the claim (ADR 0022). */
  'pool.machineClaimed': z.strictObject({ region: regionCode, machineId, launchId }),
  /** A pooled machine left the pool unclaimed (destroyed, or no longer listed). */
  'pool.machineRetired': z.strictObject({
    region: regionCode,
    machineId,
    reason: z.enum(POOL_RETIRE_REASONS),
  }),
  /** The reconciler found an unclaimed pooled machine running: it must be stopped. */
  'pool.machineFoundRunning': z.strictObject({ region: regionCode, machineId }),
  /** Visitors (open fleet streams) across the cluster; re-stated while visitors stay. */
  'presence.changed': z.strictObject({ visitors: ms, roll: z.number().min(0).lt(1) }),
} as const;

export type FactType = keyof typeof factSchemas;
export type FactData<T extends FactType> = z.infer<(typeof factSchemas)[T]>;

export const FACT_TYPES = Object.keys(factSchemas) as FactType[];

export function isFactType(type: string): type is FactType {
  return Object.hasOwn(factSchemas, type);
}

/**
 * What a chart receives: the fact's payload, its type, the time it happened (epoch ms) and its
 * event id. Nothing else: a chart never reads a clock or makes an id.
 */
export type ChartEvent<T extends FactType = FactType> = T extends FactType
  ? { type: T; at: number; eventId: string } & FactData<T>
  : never;
