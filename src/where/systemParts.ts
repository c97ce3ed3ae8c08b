/**
 * The construction half of system.ts: the runtime with its effect runner, the boot-snapshot loop
 * and the services over the runtime. Split out only to keep system.ts short; createWhere calls
 * these in its construction order, which they must keep.
 */
import type { Cluster } from './services/cluster.js';
import type { Fleet } from './services/fleet.js';
import type { WhereConfig } from './config.js';
import type { WhereOptions, WherePorts } from './system.js';
import { ActorRuntime } from '../runtime/actorRuntime.js';
import { createEffectRunner, type InFlightCreates } from '../runtime/effects.js';
import { SnapshotFile } from '../runtime/snapshot.js';
import { machineSpec, poolMachineSpec } from './machineSpec.js';
import { poolClaimer } from '../runtime/poolClaims.js';
import { PoolDriver } from './services/pool.js';
import { PoolClaimDesk } from './services/poolClaimDesk.js';
import type { WhereMetrics } from './metrics.js';
import { AutospawnDriver } from './services/autospawn.js';
import { Callbacks } from './services/callbacks.js';
import { Launches } from './services/launches.js';
import { LaunchTimesFeed, launchTimesPath } from './services/launchTimesFeed.js';
import { Reconciler } from './services/reconciler.js';
import { Retention } from './services/retention.js';

/** Whether the runtime has booted; shared by readiness, cluster changes and the snapshot timer. */
export interface BootState {
  booted: boolean;
}

/** The effect runner and the actor runtime it serves; the cluster decides which actors it drives. */
export function buildRuntime(
  cfg: WhereConfig,
  ports: WherePorts,
  opts: WhereOptions,
  cluster: Cluster,
  metrics: WhereMetrics,
): { creates: InFlightCreates; runtime: ActorRuntime } {
  const { clock, log } = ports;
  // Shared with the reconciler: a launch whose create is still on its way here is not given up.
  const creates: InFlightCreates = new Map();
  // The claimer reads and appends to the pool actors of the runtime built just below.
  const built: { runtime?: ActorRuntime } = {};
  const claimPooled = poolClaimer({
    fly: ports.fly,
    clock,
    pool: (stream) => built.runtime?.actor(stream),
    dispatch: (fact) => built.runtime!.dispatch(fact),
    onClaim: (region, result) => metrics.poolClaim(region, result),
  });
  const runEffect = createEffectRunner({
    creates,
    fly: ports.fly,
    ledger: ports.ledger,
    clock,
    log: log.child({ part: 'effects' }),
    maxMachines: () => cfg.maxMachines,
    machineSpec: (p) => machineSpec(cfg, p),
    poolSpec: (p) => poolMachineSpec(cfg, p),
    claimPooled,
    autoLaunch: { owner: cfg.instance, readyTimeoutMs: cfg.readyTimeoutMs, ttlMs: cfg.ttl.autoMs },
  });
  const runtime = new ActorRuntime({
    store: metrics.instrumentStore(ports.store),
    clock,
    timers: ports.timers,
    ids: ports.ids,
    log: log.child({ part: 'runtime' }),
    instance: cfg.instance,
    runEffect,
    drives: (r) => cluster.drives(r),
    ...(opts.random ? { random: opts.random } : {}),
  });
  built.runtime = runtime;
  cluster.attach(runtime);
  return { creates, runtime };
}

const SNAPSHOT_TIMER = 'where/snapshot';

/** Periodic boot snapshots (ADR 0015); every method is a no-op when snapshots are off. */
export interface SnapshotLoop {
  file: SnapshotFile | undefined;
  /** Schedules the next save; each save re-arms while the app is booted. */
  arm(): void;
  /** Cancels the timer and saves once more, so the next boot reads a short tail. */
  finish(): Promise<void>;
}

export function snapshotLoop(
  cfg: WhereConfig,
  ports: WherePorts,
  runtime: ActorRuntime,
  state: BootState,
): SnapshotLoop {
  const { clock, log } = ports;
  // Boot snapshots (ADR 0015): the open actors and the position they cover, so boot reads the tail.
  const file =
    ports.snapshot && cfg.snapshotIntervalMs > 0
      ? new SnapshotFile({
          ...ports.snapshot,
          log: log.child({ part: 'snapshot' }),
          now: () => clock.now(),
        })
      : undefined;
  const arm = (): void => {
    if (!file) return;
    ports.timers.set(SNAPSHOT_TIMER, clock.now() + cfg.snapshotIntervalMs, () => {
      void file.save(runtime.snapshotState()).finally(() => {
        if (state.booted) arm();
      });
    });
  };
  const finish = async (): Promise<void> => {
    if (!file) return;
    ports.timers.clear(SNAPSHOT_TIMER);
    await file.save(runtime.snapshotState());
  };
  return { file, arm, finish };
}

/** The services over the runtime, built in dependency order. */
export function buildServices(
  cfg: WhereConfig,
  ports: WherePorts,
  opts: WhereOptions,
  core: {
    cluster: Cluster;
    metrics: WhereMetrics;
    runtime: ActorRuntime;
    fleet: Fleet;
    creates: InFlightCreates;
  },
) {
  const { clock, log } = ports;
  const { cluster, metrics, runtime, fleet, creates } = core;
  const retention = new Retention({
    store: ports.store,
    clock,
    timers: ports.timers,
    log: log.child({ part: 'retention' }),
    cfg: cfg.retention,
  });
  // Before Launches: its change listener then finds each launch's timeline already folded.
  const launchTimes = new LaunchTimesFeed({
    runtime,
    store: ports.store,
    clock,
    timers: ports.timers,
    log: log.child({ part: 'launchTimes' }),
    broadcast: (chunk) => fleet.broadcast(chunk),
    // Saved beside the boot snapshot, as often (ADR 0015): a boot then reads only the tail.
    file:
      ports.snapshot && cfg.snapshotIntervalMs > 0
        ? {
            path: launchTimesPath(ports.snapshot.path),
            store: ports.snapshot.store,
            everyMs: cfg.snapshotIntervalMs,
          }
        : undefined,
  });
  const launches = new Launches({
    runtime,
    clock,
    ids: ports.ids,
    cfg,
    retention,
    times: launchTimes,
  });
  const callbacks = new Callbacks({ runtime, launches, clock, secret: cfg.callback.secret });
  const reconciler = new Reconciler({
    fly: ports.fly,
    runtime,
    clock,
    timers: ports.timers,
    log: log.child({ part: 'reconciler' }),
    minGapMs: cfg.reconcile.minGapMs,
    intervalMs: cfg.reconcile.intervalMs,
    ttl: cfg.ttl,
    isLeader: () => cluster.isLeader(),
    ledger: ports.ledger,
    creates,
    drives: (r) => cluster.drives(r),
    onRun: (r) => metrics.reconciled(r),
  });
  const autospawn = new AutospawnDriver({
    runtime,
    clock,
    log: log.child({ part: 'autospawn' }),
    cfg: cfg.autospawn,
    isLeader: () => cluster.isLeader(),
    visitors: () => cluster.totalVisitors(),
    ...(opts.random ? { random: opts.random } : {}),
  });
  const pool = new PoolDriver({
    runtime,
    log: log.child({ part: 'pool' }),
    cfg: cfg.pool,
    image: cfg.vm.image,
    isLeader: () => cluster.isLeader(),
    instance: cfg.instance,
    isAlive: (i) => cluster.isAlive(i),
    clock,
  });
  const poolClaims = new PoolClaimDesk({
    runtime,
    clock,
    secret: cfg.callback.secret,
    idleMs: cfg.vm.idleMs,
  });
  return { retention, launchTimes, launches, callbacks, reconciler, autospawn, pool, poolClaims };
}
