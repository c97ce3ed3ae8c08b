/**
 * Builds the landing app's real adapters from its configuration: the embedded default (a file
 * event store, in-process coordination) or, with NATS_URL, JetStream and KV shared by every
 * instance. Fly's API (or the local emulator) either way. Nothing else differs.
 */
import { join } from 'node:path';
import { FlyMachinesHttp } from '../adapters/fly/client.js';
import type { FlyCallObserver } from '../adapters/fly/request.js';
import { FileEventStore, type FileEventStoreOptions } from '../adapters/file/fileEventStore.js';
import {
  MemoryCapacityLedger,
  MemoryLeases,
  MemoryPresence,
} from '../adapters/memory/memoryCoordination.js';
import { openNatsAdapters, type NatsAdapters } from '../adapters/nats/natsAdapters.js';
import type { RetentionRule } from '../adapters/retention.js';
import { SystemTimers, systemClock } from '../adapters/system/systemClock.js';
import { UlidIds } from '../adapters/system/ulidIds.js';
import type { Clock } from '../ports/clock.js';
import type { Logger } from '../shared/log.js';
import type { WhereConfig } from './config.js';
import type { WherePorts } from './system.js';

/**
 * What the stores' retention pass (the retention service, every WM_COMPACT_INTERVAL) archives
 * (ADR 0013, 0014), measured against the app's clock, the one that stamps the facts.
 */
function retentionOptions(
  cfg: WhereConfig,
  clock: Clock,
): { retention: RetentionRule; now: () => number } {
  const { maxAgeMs, maxFinished } = cfg.retention;
  return {
    retention: {
      maxAgeMs,
      ...(maxFinished === undefined ? {} : { maxClosedStreams: maxFinished }),
    },
    now: () => clock.now(),
  };
}

/** The file store's options: its torn-record warning and retention (ADR 0013). Tests use it too. */
export function fileStoreOptions(
  cfg: WhereConfig,
  clock: Clock,
  log: Logger,
): FileEventStoreOptions {
  const { archiveSegments } = cfg.retention;
  return {
    onTornRecord: (t) =>
      log.warn(t, 'dropped a torn record at the end of the event log (a crash mid-write)'),
    ...retentionOptions(cfg, clock),
    ...(archiveSegments === undefined ? {} : { archive: { keepSegments: archiveSegments } }),
  };
}

/** The NATS adapters as WherePorts takes them. */
export type NatsPorts = Pick<WherePorts, 'store' | 'ledger' | 'leases' | 'presence'> &
  Required<Pick<WherePorts, 'close' | 'natsConnected'>>;

/**
 * The NATS adapters of an instance configured with NATS_URL, and their connection: production, the
 * multi-region test rigs and the soak bench all open them here, with the same options.
 * `purgeGraceMs` is for a bench that compresses days into minutes (production keeps 10 min, ADR
 * 0014).
 */
export async function openNatsPorts(
  cfg: WhereConfig,
  log: Logger,
  clock: Clock = systemClock,
  tuning: { purgeGraceMs?: number } = {},
): Promise<{ ports: NatsPorts; nc: NatsAdapters['nc'] }> {
  const nats = cfg.nats;
  if (!nats) throw new Error('openNatsPorts: the configuration has no NATS_URL');
  const adapters = await openNatsAdapters({
    url: nats.url,
    name: `where-${cfg.instance}`,
    logger: log,
    // Wait for NATS rather than exit and restart in a loop: the instance starts listening (and
    // passes its health check) as soon as NATS answers.
    waitOnFirstConnect: true,
    ...(nats.auth ? { auth: nats.auth } : {}),
    stream: { name: nats.stream, replicas: nats.replicas, archive: nats.archive },
    // The same retention as the file store's (ADR 0014): closed streams go to the archive stream.
    ...retentionOptions(cfg, clock),
    ...tuning,
  });
  const { store, ledger, leases, presence } = adapters;
  return {
    nc: adapters.nc,
    ports: {
      store,
      ledger,
      leases,
      presence,
      close: () => adapters.close(),
      // For the wm_nats_connected gauge.
      natsConnected: () => adapters.connected(),
    },
  };
}

export async function buildPorts(
  cfg: WhereConfig,
  log: Logger,
  /** The metrics' observer of Fly API calls (ADR 0016). */
  extra: { flyObserver?: FlyCallObserver } = {},
): Promise<WherePorts> {
  const clock = systemClock;
  const common = {
    clock,
    timers: new SystemTimers(clock),
    ids: new UlidIds(),
    log,
    fly: new FlyMachinesHttp({
      baseUrl: cfg.fly.baseUrl,
      token: cfg.fly.token,
      app: cfg.fly.vmApp,
      logger: log.child({ part: 'fly' }),
      ...(extra.flyObserver ? { observer: extra.flyObserver } : {}),
    }),
  };
  if (!cfg.nats) {
    const store = FileEventStore.open(
      join(cfg.dataDir, 'events.log'),
      fileStoreOptions(cfg, clock, log),
    );
    return {
      ...common,
      store,
      snapshot: { path: join(cfg.dataDir, 'snapshot.json'), store: 'file' },
      ledger: new MemoryCapacityLedger(),
      leases: new MemoryLeases(),
      presence: new MemoryPresence(),
      close: () => store.close(),
    };
  }
  const { ports } = await openNatsPorts(cfg, log, clock);
  return {
    ...common,
    ...ports,
    // Each instance folds the whole stream, so each keeps its own snapshot on its own disk.
    snapshot: {
      path: join(cfg.dataDir, `snapshot.${cfg.instance}.json`),
      store: `nats:${cfg.nats.stream}`,
    },
  };
}
