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
import { ActorRuntime } from '../runtime/actorRuntime.js';
import { SnapshotFile } from '../runtime/snapshot.js';
import { createEffectRunner, type InFlightCreates } from '../runtime/effects.js';
import { errorMessage } from '../shared/errors.js';
import type { Logger } from '../shared/log.js';
import { buildPrivateApp, buildPublicApp, type WhereServices } from './app.js';
import type { WhereConfig } from './config.js';
import { machineSpec } from './machineSpec.js';
import { WhereMetrics } from './metrics.js';
import { AutospawnDriver } from './services/autospawn.js';
import { restoreHolds } from './services/capacity.js';
import { Callbacks } from './services/callbacks.js';
import { Cluster } from './services/cluster.js';
import { Fleet } from './services/fleet.js';
import { Launches } from './services/launches.js';
import { LaunchTimesFeed, launchTimesPath } from './services/launchTimesFeed.js';
import { Reconciler } from './services/reconciler.js';
import { Retention } from './services/retention.js';

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
  let booted = false;

  // Without a caller's registry (tests, benches, many apps per process): no process-wide defaults,
  // whose event-loop monitor and GC observer would outlive the app.
  const metrics = opts.metrics ?? new WhereMetrics({ now: () => clock.now(), defaults: false });
  const creates: InFlightCreates = new Map();
  const runEffect = createEffectRunner({
    creates,
    fly: ports.fly,
    ledger: ports.ledger,
    clock,
    log: log.child({ part: 'effects' }),
    maxMachines: () => cfg.maxMachines,
    machineSpec: (p) => machineSpec(cfg, p),
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
  cluster.attach(runtime);

  const fleet = new Fleet(runtime, clock, () => cfg.maxMachines);
  // Boot snapshots (ADR 0015): the open actors and the position they cover, so boot reads the tail.
  const snapshots =
    ports.snapshot && cfg.snapshotIntervalMs > 0
      ? new SnapshotFile({
          ...ports.snapshot,
          log: log.child({ part: 'snapshot' }),
          now: () => clock.now(),
        })
      : undefined;
  const SNAPSHOT_TIMER = 'where/snapshot';
  const armSnapshot = (): void => {
    if (!snapshots) return;
    ports.timers.set(SNAPSHOT_TIMER, clock.now() + cfg.snapshotIntervalMs, () => {
      void snapshots.save(runtime.snapshotState()).finally(() => {
        if (booted) armSnapshot();
      });
    });
  };
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

  fleet.onVisitors((n) => {
    cluster.setLocalVisitors(n);
    void autospawn.sync();
  });
  cluster.onChange(() => {
    if (!booted) return;
    void autospawn.configure().then(() => autospawn.sync());
    reconciler.request();
  });

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
    reconciler,
    retention,
    assets: loadAssets(opts.assetsDir ?? join(process.cwd(), 'dist', 'web')),
    ready: () => booted,
    metrics,
  };
  metrics.attach({
    runtime,
    capacity: () => fleet.capacity(),
    sseClients: () => ({ fleet: fleet.visitors, launch: launches.streams }),
    isLeader: () => cluster.isLeader(),
    ...(ports.natsConnected ? { natsConnected: ports.natsConnected } : {}),
  });
  const publicApp = await buildPublicApp(services);
  const privateApp = await buildPrivateApp(services);

  return {
    services,
    publicApp,
    privateApp,
    async start(listen = true) {
      await cluster.start();
      const from = await snapshots?.load();
      const report = await runtime.boot({
        ...(from ? { from } : {}),
        // Capacity holds and the fleet are rebuilt from the actors, restored or folded alike.
        beforeDrive: (open) =>
          restoreHolds(open, { ledger: ports.ledger, clock, log: log.child({ part: 'capacity' }) }),
      });
      fleet.resync();
      await launchTimes.boot();
      metrics.markLive();
      booted = true;
      await autospawn.configure();
      await autospawn.sync();
      reconciler.start();
      autospawn.start();
      retention.start();
      armSnapshot();
      log.info(
        { instance: cfg.instance, region: cfg.region, leader: cluster.isLeader(), ...report },
        'landing app ready',
      );
      if (!listen) return {};
      const publicUrl = await publicApp.listen({ host: cfg.public.host, port: cfg.public.port });
      const privateUrl = await privateApp.listen({
        host: cfg.private.host,
        port: cfg.private.port,
      });
      return { publicUrl, privateUrl };
    },
    async stop() {
      booted = false;
      const steps: [string, () => Promise<unknown> | void][] = [
        ['public listener', () => publicApp.close()],
        ['private listener', () => privateApp.close()],
        ['reconciler', () => reconciler.stop()],
        ['autospawn', () => autospawn.stop()],
        ['retention', () => retention.stop()],
        ['fleet', () => fleet.close()],
        ['launch streams', () => launches.close()],
        ['launch times', () => launchTimes.stop()],
        ['runtime', () => runtime.close()],
        ['metrics', () => metrics.close()],
        [
          'snapshot',
          async () => {
            if (!snapshots) return;
            ports.timers.clear(SNAPSHOT_TIMER);
            await snapshots.save(runtime.snapshotState());
          },
        ],
        ['cluster', () => cluster.stop()],
        ['adapters', () => ports.close?.()],
      ];
      for (const [what, step] of steps) {
        try {
          await step();
        } catch (err) {
          log.warn({ err: errorMessage(err), what }, 'error while stopping');
        }
      }
    },
  };
}
