/**
 * Builds the landing app's real adapters from its configuration: the embedded default (a file
 * event store, in-process coordination) or, with NATS_URL, JetStream and KV shared by every
 * instance. Fly's API (or the local emulator) either way. Nothing else differs.
 */
import { join } from 'node:path';
import { FileEventStore, type FileEventStoreOptions } from '../adapters/file/fileEventStore.js';
import {
  MemoryCapacityLedger,
  MemoryLeases,
  MemoryPresence,
} from '../adapters/memory/memoryCoordination.js';
import { SystemTimers, systemClock } from '../adapters/system/systemClock.js';
import { UlidIds } from '../adapters/system/ulidIds.js';
import { connectNats, ensureStream, eventStreamConfig } from '../adapters/nats/connection.js';
import { JetStreamEventStore } from '../adapters/nats/jetStreamEventStore.js';
import { NatsCapacityLedger, NatsLeases, NatsPresence } from '../adapters/nats/natsKv.js';
import { FlyMachinesHttp, type FlyCallObserver } from '../adapters/fly/client.js';
import type { Clock } from '../ports/clock.js';
import type { Logger } from '../shared/log.js';
import type { WhereConfig } from './config.js';
import type { WherePorts } from './system.js';

/** The file store's options: its torn-record warning and retention (ADR 0013). Tests use it too. */
export function fileStoreOptions(
  cfg: WhereConfig,
  clock: Clock,
  log: Logger,
): FileEventStoreOptions {
  const { maxAgeMs, maxFinished, archiveSegments } = cfg.retention;
  return {
    onTornRecord: (t) =>
      log.warn(t, 'dropped a torn record at the end of the event log (a crash mid-write)'),
    // What compact() (the retention service, every WM_COMPACT_INTERVAL) archives; measured
    // against the app's clock, the one that stamps the facts.
    retention: {
      maxAgeMs,
      ...(maxFinished === undefined ? {} : { maxClosedStreams: maxFinished }),
    },
    now: () => clock.now(),
    ...(archiveSegments === undefined ? {} : { archive: { keepSegments: archiveSegments } }),
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
  // Wait for NATS rather than exit and restart in a loop: the instance starts listening (and
  // passes its health check) as soon as NATS answers.
  const nc = await connectNats({
    servers: cfg.nats.url.split(','),
    name: `where-${cfg.instance}`,
    logger: log,
    waitOnFirstConnect: true,
    ...(cfg.nats.auth ? { auth: cfg.nats.auth } : {}),
  });
  const stream = {
    name: cfg.nats.stream,
    replicas: cfg.nats.replicas,
    archive: cfg.nats.archive,
  };
  await ensureStream(nc, eventStreamConfig(stream), { logger: log });
  // The same retention as the file store's (ADR 0014): closed streams go to the archive stream.
  const { retention, now } = fileStoreOptions(cfg, clock, log);
  const store = await JetStreamEventStore.open(nc, {
    logger: log,
    stream,
    ...(retention ? { retention } : {}),
    ...(now ? { now } : {}),
  });
  const kv = { logger: log, replicas: cfg.nats.replicas };
  // For the wm_nats_connected gauge: down from a disconnect until the next reconnect.
  let natsUp = true;
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === 'disconnect') natsUp = false;
      else if (s.type === 'reconnect') natsUp = true;
    }
  })().catch(() => undefined);
  return {
    ...common,
    store,
    // Each instance folds the whole stream, so each keeps its own snapshot on its own disk.
    snapshot: {
      path: join(cfg.dataDir, `snapshot.${cfg.instance}.json`),
      store: `nats:${cfg.nats.stream}`,
    },
    ledger: await NatsCapacityLedger.open(nc, kv),
    leases: await NatsLeases.open(nc, kv),
    presence: await NatsPresence.open(nc, kv),
    close: async () => {
      await store.close();
      await nc.drain();
    },
    natsConnected: () => natsUp && !nc.isClosed(),
  };
}
