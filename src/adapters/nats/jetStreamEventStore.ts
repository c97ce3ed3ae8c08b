/**
 * Adapter: EventStore on JetStream. One subject per actor stream (`wm.events.<chart>.<id>`); each
 * message carries its stream version in the `WM-Version` header, its position is the stream-wide
 * sequence. Appends use `Nats-Msg-Id = event.id` (dedupe) and `expect.lastSubjectSequence` (one
 * writer wins: jetStreamAppend.ts); reads and feeds use ordered consumers, which resume from the
 * last sequence seen (jetStreamIo.ts, jetStreamFeed.ts). compact() copies finished actors to the
 * archive stream and purges them from the live one once retention no longer keeps them; appends to
 * such a stream throw StreamArchivedError (jetStreamRetention.ts, ADR 0014).
 */
import type { NatsConnection } from '@nats-io/transport-node';
import type { EventEnvelope, StoredEvent } from '../../events/envelope.js';
import type { AppendResult, EventStore, StreamStatus } from '../../ports/eventStore.js';
import { errorMessage, StoreUnavailableError, type EventDecodeError } from '../../shared/errors.js';
import type { Logger } from '../../shared/log.js';
import type { RetentionRule } from '../retention.js';
import {
  ensureStream,
  eventStreamConfig,
  type EventStreamConfig,
  type EventStreamOptions,
} from './connection.js';
import { JetStreamAppender } from './jetStreamAppend.js';
import { LiveFeeds } from './jetStreamFeed.js';
import { StreamHeads } from './jetStreamHeads.js';
import { JetStreamIo } from './jetStreamIo.js';
import {
  JetStreamRetention,
  type CompactionStep,
  type JetStreamCompactionResult,
} from './jetStreamRetention.js';
import { subjectForStream } from './subjects.js';

export { POSITION_HEADER, VERSION_HEADER } from './jetStreamIo.js';
export {
  PURGE_GRACE_MS,
  type CompactionStep,
  type JetStreamCompactionResult,
} from './jetStreamRetention.js';

export interface JetStreamEventStoreOptions {
  logger: Logger;
  /** Stream name, subject prefix, replicas, retention; defaults in connection.ts. */
  stream?: EventStreamOptions;
  /** How long an operation keeps retrying through a disconnect before StoreUnavailableError. Default 30 s. */
  unavailableAfterMs?: number;
  /** Timeout of one JetStream request (a publish and its ack). Default 5 s. */
  requestTimeoutMs?: number;
  /** Called for each stored message that does not decode, after it is logged and skipped. */
  onDecodeError?: (err: EventDecodeError, where: { subject: string; position: number }) => void;
  /** Drain the connection in close(). Default false: whoever made the connection closes it. */
  ownsConnection?: boolean;
  /** Which closed streams `compact()` keeps live; without it, compaction does nothing. */
  retention?: RetentionRule;
  /** The clock retention is measured against. Default Date.now. */
  now?: () => number;
  /** See PURGE_GRACE_MS. Tests lower it; production keeps the default. */
  purgeGraceMs?: number;
  /** Test seam: awaited at each point of a compaction (the crash test kills the server there). */
  onCompactionStep?: (step: CompactionStep, stream: string) => void | Promise<void>;
}

export class JetStreamEventStore implements EventStore {
  readonly config: EventStreamConfig;
  private readonly io: JetStreamIo;
  private readonly heads: StreamHeads;
  private readonly appender: JetStreamAppender;
  private readonly feeds: LiveFeeds;
  private readonly retention: JetStreamRetention;
  private closed = false;
  private stopStatusWatch: () => void = () => undefined;
  private compacting: Promise<JetStreamCompactionResult> | undefined;

  private constructor(
    private readonly nc: NatsConnection,
    config: EventStreamConfig,
    private readonly opts: JetStreamEventStoreOptions,
  ) {
    this.config = config;
    this.io = new JetStreamIo(nc, config, {
      logger: opts.logger,
      unavailableAfterMs: opts.unavailableAfterMs ?? 30_000,
      requestTimeoutMs: opts.requestTimeoutMs ?? 5_000,
      ...(opts.onDecodeError ? { onDecodeError: opts.onDecodeError } : {}),
    });
    this.heads = new StreamHeads(this.io);
    this.appender = new JetStreamAppender(this.io, this.heads, (s, v) => this.read(s, v));
    this.feeds = new LiveFeeds(this.io);
    this.retention = new JetStreamRetention(this.io, this.heads, opts);
    this.watchReconnects();
  }

  /** Ensure the stream exists with this config, then return a store over it. */
  static async open(
    nc: NatsConnection,
    opts: JetStreamEventStoreOptions,
  ): Promise<JetStreamEventStore> {
    const config = eventStreamConfig(opts.stream);
    await ensureStream(nc, config, {
      logger: opts.logger,
      timeoutMs: opts.unavailableAfterMs ?? 30_000,
    });
    return new JetStreamEventStore(nc, config, opts);
  }

  /**
   * After a reconnect, reopen every live feed from the last sequence it delivered. The ordered
   * consumer would recover by itself, but when its first check fails (JetStream still starting after
   * a server restart) it backs off for a whole pull expiry; reopening ourselves takes ~100 ms.
   */
  private watchReconnects(): void {
    const statuses = this.nc.status();
    this.stopStatusWatch = () => {
      if (hasStop(statuses)) statuses.stop();
    };
    void (async () => {
      try {
        for await (const s of statuses) if (s.type === 'reconnect') this.feeds.reopenAll();
      } catch (err) {
        this.io.log.warn({ err: errorMessage(err) }, 'connection status feed ended');
      }
    })();
  }

  private assertOpen(): void {
    if (this.closed) throw new StoreUnavailableError('the event store is closed');
  }

  async read(stream: string, afterVersion = 0): Promise<StoredEvent[]> {
    this.assertOpen();
    const subject = subjectForStream(this.config.subjectPrefix, stream);
    // The head says where the stream ends (and whether there is anything to read at all).
    const head = await this.heads.fetch(subject);
    if (head.seq === 0 || head.version <= afterVersion) return [];
    const out: StoredEvent[] = [];
    for await (const item of this.io.scan(subject, 1, head.seq, 256)) {
      if (item.event && item.event.version > afterVersion) out.push(item.event);
    }
    return out;
  }

  async *readAll(afterPosition = 0): AsyncIterable<StoredEvent> {
    this.assertOpen();
    const filter = this.io.allSubjects;
    // The last message that exists, not the stream's last_seq: that one may have been purged.
    const end = await this.io.lastSeqOn(filter);
    if (end <= afterPosition) return;
    for await (const item of this.io.scan(filter, afterPosition + 1, end, 1000)) {
      if (item.event) yield item.event;
    }
  }

  async append(
    stream: string,
    events: readonly EventEnvelope[],
    { expectedVersion }: { expectedVersion: number },
  ): Promise<AppendResult> {
    this.assertOpen();
    return await this.appender.append(stream, events, expectedVersion);
  }

  /**
   * `live` while the live stream holds the stream's subject; `archived` when only the archive does
   * (retention moved it: the app answers 410); `unknown` when neither does (never stored, or its
   * archived copy aged out of the archive).
   */
  async status(stream: string): Promise<StreamStatus> {
    this.assertOpen();
    const subject = subjectForStream(this.config.subjectPrefix, stream);
    if ((await this.heads.fetch(subject)).seq > 0) return 'live';
    return (await this.heads.archived(stream)) ? 'archived' : 'unknown';
  }

  /**
   * One retention pass (ADR 0014). Idempotent and safe from several instances at once: copies chain
   * on the archive subject's last sequence (a second copier conflicts or is deduplicated, never
   * doubles a fact), and a purge removes only what is at or below the verified closing fact. A crash
   * anywhere leaves a fact in the live stream, the archive or both, never neither; the next pass
   * finishes. One runs at a time per store: a call during another gets the running one.
   */
  compact(): Promise<JetStreamCompactionResult> {
    this.assertOpen();
    this.compacting ??= this.retention.run().finally(() => {
      this.compacting = undefined;
    });
    return this.compacting;
  }

  subscribe(afterPosition: number, onEvent: (event: StoredEvent) => void): () => void {
    this.assertOpen();
    return this.feeds.open(afterPosition, onEvent);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.io.closed = true;
    await this.compacting?.catch(() => undefined);
    await this.feeds.stopAll();
    await this.io.settled();
    this.stopStatusWatch();
    if (this.opts.ownsConnection && !this.nc.isClosed()) await this.nc.drain();
  }
}

function hasStop(x: object): x is { stop(): void } {
  return typeof (x as { stop?: unknown }).stop === 'function';
}
