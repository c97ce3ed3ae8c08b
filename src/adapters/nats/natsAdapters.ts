/**
 * The one way to open the NATS adapters, for production, test rigs and benches alike: one
 * connection, the JetStream event store and the KV ledger, leases and presence on it; close()
 * releases them all.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import type { CapacityLedger } from '../../ports/capacity.js';
import type { Leases, Presence } from '../../ports/coordination.js';
import type { Logger } from '../../shared/log.js';
import type { RetentionRule } from '../retention.js';
import { connectNats, type EventStreamOptions, type NatsConnectOptions } from './connection.js';
import { JetStreamEventStore } from './jetStreamEventStore.js';
import { NatsCapacityLedger, NatsLeases, NatsPresence } from './natsKv.js';

export interface NatsAdaptersOptions {
  /** `NATS_URL`: one URL or a comma-separated list (a cluster). */
  url: string;
  /** Connection name shown by the server, e.g. `where-<instance>`. */
  name: string;
  logger: Logger;
  auth?: NatsConnectOptions['auth'];
  /** Keep retrying the first connect instead of failing at once. Default false. */
  waitOnFirstConnect?: boolean;
  /** The event stream and its archive (name, replicas, bounds); defaults in connection.ts. */
  stream?: EventStreamOptions;
  /** What the event store's compact() archives (ADR 0014); without it compaction does nothing. */
  retention?: RetentionRule;
  /** The clock retention is measured against. Default Date.now. */
  now?: () => number;
  /** The archive copy's age before a purge (see PURGE_GRACE_MS); only a soak bench lowers it. */
  purgeGraceMs?: number;
}

export interface NatsAdapters {
  readonly nc: NatsConnection;
  readonly store: JetStreamEventStore;
  readonly ledger: CapacityLedger;
  readonly leases: Leases;
  readonly presence: Presence;
  /** Whether the connection is up now: false from a disconnect until the next reconnect. */
  connected(): boolean;
  /** Stop the store's feeds, then drain the connection. */
  close(): Promise<void>;
}

export async function openNatsAdapters(opts: NatsAdaptersOptions): Promise<NatsAdapters> {
  const servers = opts.url
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const nc = await connectNats({
    servers,
    name: opts.name,
    logger: opts.logger,
    ...(opts.waitOnFirstConnect ? { waitOnFirstConnect: true } : {}),
    ...(opts.auth ? { auth: opts.auth } : {}),
  });
  try {
    const store = await JetStreamEventStore.open(nc, {
      logger: opts.logger,
      ...(opts.stream ? { stream: opts.stream } : {}),
      ...(opts.retention ? { retention: opts.retention } : {}),
      ...(opts.now ? { now: opts.now } : {}),
      ...(opts.purgeGraceMs === undefined ? {} : { purgeGraceMs: opts.purgeGraceMs }),
    });
    // The KV buckets take the event stream's replicas.
    const kv = { logger: opts.logger, replicas: store.config.replicas };
    const [ledger, leases, presence] = await Promise.all([
      NatsCapacityLedger.open(nc, kv),
      NatsLeases.open(nc, kv),
      NatsPresence.open(nc, kv),
    ]);
    let up = true;
    void (async () => {
      for await (const s of nc.status()) {
        if (s.type === 'disconnect') up = false;
        else if (s.type === 'reconnect') up = true;
      }
    })().catch(() => undefined);
    return {
      nc,
      store,
      ledger,
      leases,
      presence,
      connected: () => up && !nc.isClosed(),
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
