/**
 * Assembles the landing app from its ports: the runtime and its effect runner, the services, and
 * both HTTP apps; then starts and stops them in order. main.ts passes real adapters; tests pass
 * in-memory ones, the Fly fake and a manual clock.
 */
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { CapacityLedger } from '../ports/capacity.js';
import type { Clock, Timers } from '../ports/clock.js';
import type { Leases, Presence } from '../ports/coordination.js';
import type { EventStore } from '../ports/eventStore.js';
import type { FlyMachines } from '../ports/flyMachines.js';
import type { Ids } from '../ports/ids.js';
import type { ActorRuntime } from '../runtime/actorRuntime.js';
import { errorMessage } from '../shared/errors.js';
import type { Logger } from '../shared/log.js';
import { buildPrivateApp, buildPublicApp, type WhereServices } from './app.js';
import type { WhereConfig } from './config.js';
import { WhereMetrics } from './metrics.js';
import type { AutospawnDriver } from './services/autospawn.js';
import { restoreHolds } from './services/capacity.js';
import { Cluster } from './services/cluster.js';
import { Fleet } from './services/fleet.js';
import type { Launches } from './services/launches.js';
import type { LaunchTimesFeed } from './services/launchTimesFeed.js';
import type { PoolDriver } from './services/pool.js';
import type { Reconciler } from './services/reconciler.js';
import type { Retention } from './services/retention.js';
import {
  buildRuntime,
  buildServices,
  snapshotLoop,
  type BootState,
  type SnapshotLoop,
} from './systemParts.js';

export interface WherePorts {
  store: EventStore;
  ledger: CapacityLedger;
  leases: Leases;
  presence: Presence;
  fly: FlyMachines;
  clock: Clock;
  timers: Timers;
  ids: Ids;
  log: Logger;
  /**
   * Where this instance keeps its boot snapshot, and which store it belongs to (ADR 0015). Absent:
   * no snapshots (a store that does not outlive the process has nothing to boot from).
   */
  snapshot?: { path: string; store: string };
  /** Releases the adapters (connections, files) after everything else stopped. */
  close?: () => Promise<void>;
  /** With NATS: whether its connection is up now (the wm_nats_connected gauge). */
  natsConnected?: () => boolean;
}

export interface WhereOptions {
  /** Folder with the browser bundles (default `dist/web` under the working directory). */
  assetsDir?: string;
  random?: () => number;
  /** Cluster heartbeat period (default 2 s). */
  beatMs?: number;
  /**
   * This app's metrics (ADR 0016), when the caller also gave its Fly client their observer;
   * default: a registry of its own.
   */
  metrics?: WhereMetrics;
}

export interface WhereSystem {
  services: WhereServices;
  publicApp: FastifyInstance;
  privateApp: FastifyInstance;
  /** Boot the runtime and the services; listen when `listen` is true (default). */
  start(listen?: boolean): Promise<{ publicUrl?: string; privateUrl?: string }>;
  stop(): Promise<void>;
}

export function loadAssets(dir: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  if (!existsSync(dir)) return out;
  for (const f of readdirSync(dir))
    if (/\.(js|css|map)$/.test(f)) out.set(f, readFileSync(join(dir, f)));
  return out;
}

/** The parts that start and stop drive, in the order createWhere built them. */
interface WhereParts {
  cfg: WhereConfig;
  ports: WherePorts;
  state: BootState;
  cluster: Cluster;
  metrics: WhereMetrics;
  runtime: ActorRuntime;
  fleet: Fleet;
  snapshot: SnapshotLoop;
  retention: Retention;
  launchTimes: LaunchTimesFeed;
  launches: Launches;
  reconciler: Reconciler;
  autospawn: AutospawnDriver;
  pool: PoolDriver;
  publicApp: FastifyInstance;
  privateApp: FastifyInstance;
}

export async function createWhere(
  cfg: WhereConfig,
  ports: WherePorts,
  opts: WhereOptions = {},
): Promise<WhereSystem> {
  const { clock, log } = ports;
  const cluster = new Cluster({
    instance: cfg.instance,
    leases: ports.leases,
    presence: ports.presence,
    clock,
    log,
    beatMs: opts.beatMs,
  });
  const state: BootState = { booted: false };

  // Without a caller's registry (tests, benches, many apps per process): no process-wide defaults,
  // whose event-loop monitor and GC observer would outlive the app.
  const metrics = opts.metrics ?? new WhereMetrics({ now: () => clock.now(), defaults: false });
  const { creates, runtime } = buildRuntime(cfg, ports, opts, cluster, metrics);
  const fleet = new Fleet(runtime, clock, () => cfg.maxMachines);
  const snapshot = snapshotLoop(cfg, ports, runtime, state);
  const built = buildServices(cfg, ports, opts, { cluster, metrics, runtime, fleet, creates });
  const { retention, launchTimes, launches, callbacks, reconciler, autospawn, pool, poolClaims } =
    built;
  wireEvents(state, cluster, fleet, autospawn, reconciler, pool);

  const services: WhereServices = {
    cfg,
    log,
    clock,
    runtime,
    cluster,
    fleet,
    launches,
    launchTimes,
    callbacks,
    autospawn,
    pool,
    poolClaims,
    reconciler,
    retention,
    assets: loadAssets(opts.assetsDir ?? join(process.cwd(), 'dist', 'web')),
    ready: () => state.booted,
    metrics,
  };
  metrics.attach({
    runtime,
    capacity: () => fleet.capacity(),
    sseClients: () => ({ fleet: fleet.visitors, launch: launches.streams }),
    isLeader: () => cluster.isLeader(),
    pools: () => pool.pools(),
    ...(ports.natsConnected ? { natsConnected: ports.natsConnected } : {}),
  });
  const publicApp = await buildPublicApp(services);
  const privateApp = await buildPrivateApp(services);

  const parts: WhereParts = {
    cfg,
    ports,
    state,
    cluster,
    metrics,
    runtime,
    fleet,
    snapshot,
    retention,
    launchTimes,
    launches,
    reconciler,
    autospawn,
    pool,
    publicApp,
    privateApp,
  };
  return {
    services,
    publicApp,
    privateApp,
    start: (listen = true) => startWhere(parts, listen),
    stop: () => stopWhere(parts),
  };
}

/**
 * Visitor counts feed the cluster and autospawn; a cluster change (leadership, peers) re-plans
 * autospawn and asks for a reconcile, but only once booted: before that the runtime is not folded.
 */
function wireEvents(
  state: BootState,
  cluster: Cluster,
  fleet: Fleet,
  autospawn: AutospawnDriver,
  reconciler: Reconciler,
  pool: PoolDriver,
): void {
  fleet.onVisitors((n) => {
    cluster.setLocalVisitors(n);
    void autospawn.sync();
  });
  cluster.onChange(() => {
    if (!state.booted) return;
    void autospawn.configure().then(() => autospawn.sync());
    // A new leader states the pools (a no-op when they already say what we would), and takes
    // back the pooled creates of instances that left.
    void pool.configure().then(() => pool.recoverLostCreates(false));
    reconciler.request();
  });
}

/** Joins the cluster, boots the runtime, then starts the drivers; listens last, once ready. */
async function startWhere(
  p: WhereParts,
  listen: boolean,
): Promise<{ publicUrl?: string; privateUrl?: string }> {
  const { cfg, ports, cluster, runtime, autospawn } = p;
  const { clock, log } = ports;
  await cluster.start();
  const from = await p.snapshot.file?.load();
  const report = await runtime.boot({
    ...(from ? { from } : {}),
    // Capacity holds and the fleet are rebuilt from the actors, restored or folded alike.
    beforeDrive: (open) =>
      restoreHolds(open, { ledger: ports.ledger, clock, log: log.child({ part: 'capacity' }) }),
  });
  p.fleet.resync();
  await p.launchTimes.boot();
  p.metrics.markLive();
  p.state.booted = true;
  await autospawn.configure();
  await autospawn.sync();
  await p.pool.configure();
  await p.pool.recoverLostCreates(true);
  p.pool.start();
  p.reconciler.start();
  autospawn.start();
  p.retention.start();
  p.snapshot.arm();
  log.info(
    { instance: cfg.instance, region: cfg.region, leader: cluster.isLeader(), ...report },
    'landing app ready',
  );
  if (!listen) return {};
  const publicUrl = await p.publicApp.listen({ host: cfg.public.host, port: cfg.public.port });
  const privateUrl = await p.privateApp.listen({
    host: cfg.private.host,
    port: cfg.private.port,
  });
  return { publicUrl, privateUrl };
}

/**
 * Stops in reverse dependency order: listeners first, adapters last. Each step runs even when an
 * earlier one failed, so one stuck part does not leak the rest.
 */
async function stopWhere(p: WhereParts): Promise<void> {
  p.state.booted = false;
  const steps: [string, () => Promise<unknown> | void][] = [
    ['public listener', () => p.publicApp.close()],
    ['private listener', () => p.privateApp.close()],
    ['reconciler', () => p.reconciler.stop()],
    ['autospawn', () => p.autospawn.stop()],
    ['pool', () => p.pool.stop()],
    ['retention', () => p.retention.stop()],
    ['fleet', () => p.fleet.close()],
    ['launch streams', () => p.launches.close()],
    ['launch times', () => p.launchTimes.stop()],
    ['runtime', () => p.runtime.close()],
    ['metrics', () => p.metrics.close()],
    ['snapshot', () => p.snapshot.finish()],
    ['cluster', () => p.cluster.stop()],
    ['adapters', () => p.ports.close?.()],
  ];
  for (const [what, step] of steps) {
    try {
      await step();
    } catch (err) {
      p.ports.log.warn({ err: errorMessage(err), what }, 'error while stopping');
    }
  }
}
