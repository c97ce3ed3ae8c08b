/**
 * Effect intents: what a chart asks the world to do, as data. The runtime executes them after the
 * fact that caused them is stored; their outcomes come back as new facts. Pure: types only.
 */
import type { LaunchSource, PoolRetireReason, TimerKey } from './facts.js';

export interface EffectParams {
  /** Take a cap slot for a launch → `capacity.reserved` or `capacity.exhausted`. */
  reserveCapacity: { launchId: string; until: number };
  /** Keep a slot for a machine that exists (refreshes `until`). No result fact. */
  holdCapacity: { holder: string; until: number };
  /** Give a slot back. No result fact. */
  releaseCapacity: { holder: string };
  /**
   * Create the Useless Machine of a launch → `fly.machineCreated` or `fly.createFailed`.
   * Idempotent by launch id: a re-driven create first looks for a machine with its `launch_id`.
   */
  createMachine: {
    launchId: string;
    region: string;
    source: LaunchSource;
    ttlMs: number;
    /** The launch's trace, carried into the create and on to the VM (docs/adr/0021). */
    traceparent?: string;
    /** Regions already found full for this launch: a re-driven create does not try them again. */
    exclude?: readonly string[];
  };
  /** Watch a machine until it reaches a state → `fly.machineObserved` or `fly.machineGone`. */
  awaitMachine: { machineId: string; launchId?: string; state: 'started' | 'destroyed' };
  /**
   * Destroy a machine (forcefully) → `fly.machineDestroyed` or `fly.destroyFailed`. Without a
   * machine id, destroys every machine carrying the launch's `launch_id` metadata.
   */
  destroyMachine: { machineId?: string; launchId?: string };
  /** Start a launch on the autospawner's behalf (a `launch.requested` with source `auto`). */
  spawnLaunch: { launchId: string; region: string };
  /**
   * Create a stopped machine for a region's warm pool (Fly's skip_launch) → `pool.machineAdded` or
   * `pool.createFailed`. Idempotent by name: a re-driven create first looks for the named machine.
   */
  createPooled: { region: string; image: string; name: string };
  /** Destroy pooled machines that leave the pool unclaimed → `pool.machineRetired` for each. */
  retirePooled: { region: string; machines: { machineId: string; reason: PoolRetireReason }[] };
  /** Stop an unclaimed pooled machine found running (it stays in the pool). No result fact. */
  stopPooled: { region: string; machineId: string };
}

export type EffectType = keyof EffectParams;

export type Effect = { [K in EffectType]: { type: K; params: EffectParams[K] } }[EffectType];

export const EFFECT_TYPES: readonly EffectType[] = [
  'reserveCapacity',
  'holdCapacity',
  'releaseCapacity',
  'createMachine',
  'awaitMachine',
  'destroyMachine',
  'spawnLaunch',
  'createPooled',
  'retirePooled',
  'stopPooled',
];

/**
 * The action implementations a chart's `setup()` declares: empty, because a chart only *names*
 * its effects; the runtime reads them from `transition()`'s result and never calls these.
 */
export const effectActions = {
  reserveCapacity: (_: unknown, _p: EffectParams['reserveCapacity']) => {},
  holdCapacity: (_: unknown, _p: EffectParams['holdCapacity']) => {},
  releaseCapacity: (_: unknown, _p: EffectParams['releaseCapacity']) => {},
  createMachine: (_: unknown, _p: EffectParams['createMachine']) => {},
  awaitMachine: (_: unknown, _p: EffectParams['awaitMachine']) => {},
  destroyMachine: (_: unknown, _p: EffectParams['destroyMachine']) => {},
  spawnLaunch: (_: unknown, _p: EffectParams['spawnLaunch']) => {},
  createPooled: (_: unknown, _p: EffectParams['createPooled']) => {},
  retirePooled: (_: unknown, _p: EffectParams['retirePooled']) => {},
  stopPooled: (_: unknown, _p: EffectParams['stopPooled']) => {},
};

/** Destroy an actor's own machine: by id when known, else every machine carrying its launch's id. */
export const destroyOwnMachine = {
  type: 'destroyMachine',
  params: ({
    context,
  }: {
    context: { machineId?: string | undefined; launchId?: string | undefined };
  }) => ({
    machineId: context.machineId,
    launchId: context.launchId,
  }),
} as const;

export function isEffect(action: { type: string }): action is Effect {
  return (EFFECT_TYPES as readonly string[]).includes(action.type);
}

/** The effects among the actions a step named, as plain intents (without XState's bookkeeping). */
export function effectsIn(actions: readonly { type: string; params?: unknown }[]): Effect[] {
  const out: Effect[] = [];
  // `isEffect` checked the type; the compiler cannot pair a type with its params across the union.
  for (const a of actions) if (isEffect(a)) out.push({ type: a.type, params: a.params } as Effect);
  return out;
}

/**
 * A chart's deadlines: absolute times (epoch ms) per timer key, kept in its context and nowhere
 * else. Arming is setting a key, disarming is removing it; the runtime keeps real timers in step
 * with this table after every fact and at boot, and a timer's firing is the fact
 * `clock.<key>Elapsed { key, due }` (a `due` that no longer matches the table is stale).
 */
export type TimerTable = Partial<Record<TimerKey, number>>;
