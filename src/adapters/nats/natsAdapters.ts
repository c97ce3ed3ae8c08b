/**
 * One call for a composition root: connect to NATS once and open every NATS adapter on that
 * connection (event store, capacity ledger, leases, presence); close() releases them all.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import type { EventStore } from '../../ports/eventStore.js';
import type { CapacityLedger } from '../../ports/capacity.js';
import type { Leases, Presence } from '../../ports/coordination.js';
import type { Logger } from '../../shared/log.js';
import { connectNats } from './connection.js';
import { JetStreamEventStore, type JetStreamEventStoreOptions } from './jetStreamEventStore.js';
import { NatsCapacityLedger, NatsLeases, NatsPresence } from './natsKv.js';

export interface NatsAdaptersOptions {
  /** `NATS_URL`: one URL or a comma-separated list (a cluster). */
  url: string;
  /** Connection name, e.g. `where-<region>-<instance>`. */
  name: string;
  logger: Logger;
  /** Event stream name (`WM_NATS_STREAM`). Default `WM_EVENTS`. */
  stream?: string;
  /** Replicas of the event stream and the KV buckets (`WM_NATS_REPLICAS`). Default 1. */
  replicas?: number;
  /** What the event store's compact() archives (ADR 0014); without it compaction does nothing. */
  retention?: JetStreamEventStoreOptions['retention'];
  /** The archive stream's bounds (`WM_NATS_ARCHIVE_MAX_AGE`, `WM_NATS_ARCHIVE_MAX_BYTES`). */
  archive?: { maxAgeMs?: number; maxBytes?: number };
}

export interface NatsAdapters {
  readonly nc: NatsConnection;
  readonly store: EventStore;
  readonly ledger: CapacityLedger;
  readonly leases: Leases;
  readonly presence: Presence;
  /** Stop feeds and subscriptions, then drain the connection. */
  close(): Promise<void>;
}

export async function openNatsAdapters(opts: NatsAdaptersOptions): Promise<NatsAdapters> {
  const servers = opts.url
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const nc = await connectNats({ servers, name: opts.name, logger: opts.logger });
  try {
    const replicas = opts.replicas ?? 1;
    const kv = { logger: opts.logger, replicas };
    const store = await JetStreamEventStore.open(nc, {
      logger: opts.logger,
      stream: {
        replicas,
        ...(opts.stream ? { name: opts.stream } : {}),
        ...(opts.archive ? { archive: opts.archive } : {}),
      },
      ...(opts.retention ? { retention: opts.retention } : {}),
    });
    const [ledger, leases, presence] = await Promise.all([
      NatsCapacityLedger.open(nc, kv),
      NatsLeases.open(nc, kv),
      NatsPresence.open(nc, kv),
    ]);
    return {
      nc,
      store,
      ledger,
      leases,
      presence,
      async close() {
        await store.close();
        if (!nc.isClosed()) await nc.drain();
      },
    };
  } catch (err) {
    await nc.close();
    throw err;
  }
}
