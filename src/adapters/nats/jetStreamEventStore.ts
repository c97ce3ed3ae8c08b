/**
 * Adapter: EventStore on JetStream. One subject per actor stream (`wm.events.<chart>.<id>`); each
 * message carries its stream version in the `WM-Version` header, its position is the stream-wide
 * sequence. Appends use `Nats-Msg-Id = event.id` (dedupe) and `expect.lastSubjectSequence` (one
 * writer wins); reads and feeds use ordered consumers, which resume from the last sequence seen.
 */
import { headers, type NatsConnection } from '@nats-io/transport-node';
import {
  JetStreamApiError,
  jetstream,
  jetstreamManager,
  type Consumer,
  type ConsumerMessages,
  type JetStreamClient,
  type JetStreamManager,
  type PubAck,
} from '@nats-io/jetstream';
import { decodeEventJson, type EventEnvelope, type StoredEvent } from '../../events/envelope.js';
import type { AppendResult, EventStore } from '../../ports/eventStore.js';
import {
  errorMessage,
  EventDecodeError,
  StoreUnavailableError,
  VersionConflictError,
} from '../../shared/errors.js';
import type { Logger } from '../../shared/log.js';
import { ensureStream, eventStreamConfig, type EventStreamConfig } from './connection.js';
import { asUnavailable, isConnectionGone, retryTransient, sleep } from './retry.js';
import { streamForSubject, subjectForStream } from './subjects.js';

/** Header holding the event's version in its actor stream (1..n). */
export const VERSION_HEADER = 'WM-Version';

/**
 * An expected subject sequence no subject can ever have: sent when the caller's expected version is
 * stale, so the server still applies msg-id dedupe (checked first) and otherwise rejects the append.
 */
const NEVER_A_SEQUENCE = Number.MAX_SAFE_INTEGER;
/** How many stream heads (version → last subject sequence) to remember. */
const HEAD_CACHE_SIZE = 10_000;

export interface JetStreamEventStoreOptions {
  logger: Logger;
  /** Stream name, subject prefix, replicas, retention; defaults in connection.ts. */
  stream?: Partial<EventStreamConfig>;
  /** How long an operation keeps retrying through a disconnect before StoreUnavailableError. Default 30 s. */
  unavailableAfterMs?: number;
  /** Timeout of one JetStream request (a publish and its ack). Default 5 s. */
  requestTimeoutMs?: number;
  /** Called for each stored message that does not decode, after it is logged and skipped. */
  onDecodeError?: (err: EventDecodeError, where: { subject: string; position: number }) => void;
  /** Drain the connection in close(). Default false: whoever made the connection closes it. */
  ownsConnection?: boolean;
}

interface Head {
  /** Version of the last (valid) event of the actor stream; 0 when empty. */
  readonly version: number;
  /** Stream sequence of the subject's last message; 0 when empty. */
  readonly seq: number;
}

interface Feed {
  stopped: boolean;
  last: number;
  messages: ConsumerMessages | undefined;
  wake: (() => void) | undefined;
  done: Promise<void>;
}

export class JetStreamEventStore implements EventStore {
  readonly config: EventStreamConfig;
  private readonly js: JetStreamClient;
  private readonly log: Logger;
  private readonly heads = new Map<string, Head>();
  private readonly feeds = new Set<Feed>();
  private readonly cleanups = new Set<Promise<unknown>>();
  private readonly unavailableAfterMs: number;
  private readonly requestTimeoutMs: number;
  private jsmPromise: Promise<JetStreamManager> | undefined;
  private closed = false;
  private stopStatusWatch: () => void = () => undefined;

  private constructor(
    private readonly nc: NatsConnection,
    config: EventStreamConfig,
    private readonly opts: JetStreamEventStoreOptions,
  ) {
    this.config = config;
    this.log = opts.logger.child({ component: 'jetstream-store', stream: config.name });
    this.unavailableAfterMs = opts.unavailableAfterMs ?? 30_000;
    this.requestTimeoutMs = opts.requestTimeoutMs ?? 5_000;
    this.js = jetstream(nc, { timeout: this.requestTimeoutMs });
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
        for await (const s of statuses) {
          if (s.type !== 'reconnect') continue;
          for (const feed of this.feeds) feed.messages?.stop();
        }
      } catch (err) {
        this.log.warn({ err: errorMessage(err) }, 'connection status feed ended');
      }
    })();
  }

  // ---- reads ---------------------------------------------------------------------------------

  async read(stream: string, afterVersion = 0): Promise<StoredEvent[]> {
    this.assertOpen();
    const subject = subjectForStream(this.config.subjectPrefix, stream);
    // The head says where the stream ends (and whether there is anything to read at all).
    const head = await this.fetchHead(subject);
    if (head.seq === 0 || head.version <= afterVersion) return [];
    const out: StoredEvent[] = [];
    for await (const item of this.scan(subject, 1, head.seq, 256)) {
      if (item.event && item.event.version > afterVersion) out.push(item.event);
    }
    return out;
  }

  async *readAll(afterPosition = 0): AsyncIterable<StoredEvent> {
    this.assertOpen();
    const jsm = await this.jsm();
    const info = await this.retrying('read the stream state', () =>
      jsm.streams.info(this.config.name),
    );
    const end = info.state.last_seq;
    if (end <= afterPosition) return;
    for await (const item of this.scan(
      `${this.config.subjectPrefix}.>`,
      afterPosition + 1,
      end,
      1000,
    )) {
      if (item.event) yield item.event;
    }
  }

  /**
   * Every message on `filter` with a sequence in [startSeq, endSeq], decoded (a message that does
   * not decode comes back without `event`, already reported), through an ordered consumer deleted
   * afterwards. The end is a sequence known to exist, not the consumer's `pending` count: server
   * 2.9.10 miscounts pending for some filtered consumers (seen here: off by one), so a scan that
   * waited for pending 0 could wait forever, and one that trusted a short count would stop early.
   */
  private async *scan(
    filter: string,
    startSeq: number,
    endSeq: number,
    batch: number,
  ): AsyncGenerator<{ seq: number; event?: StoredEvent }> {
    let next = startSeq;
    let lastProgress = Date.now();
    for (let reopen = 0; next <= endSeq; reopen++) {
      if (reopen > 0) {
        if (Date.now() - lastProgress > this.unavailableAfterMs) {
          throw new StoreUnavailableError(
            `cannot read ${filter}: no progress for ${this.unavailableAfterMs} ms`,
          );
        }
        await sleep(Math.min(1000, 50 * 2 ** reopen));
      }
      const consumer = await this.retrying(`open a reader on ${filter}`, () =>
        this.js.consumers.get(this.config.name, {
          filter_subjects: filter,
          opt_start_seq: next,
          inactive_threshold: 60_000,
        }),
      );
      let iter: ConsumerMessages | undefined;
      let watchdog: NodeJS.Timeout | undefined;
      try {
        // Pull expiry 2 s: idle heartbeats every second, so a dead consumer is noticed in ~2 s.
        const messages = await consumer.consume({ max_messages: batch, expires: 2_000 });
        iter = messages;
        // A consumer whose server died (a killed stream leader) can stay "known" to the cluster and
        // never deliver again: on missed heartbeats, open a new one from where we are.
        onHeartbeatsMissed(messages, () => messages.stop());
        // Last resort: a read that hears nothing for this long fails instead of waiting for ever.
        const arm = () => {
          clearTimeout(watchdog);
          watchdog = setTimeout(() => messages.stop(), this.unavailableAfterMs);
        };
        arm();
        for await (const m of messages) {
          arm();
          if (m.seq < next) continue;
          next = m.seq + 1;
          lastProgress = Date.now();
          yield {
            seq: m.seq,
            ...this.decode(m.subject, m.seq, m.headers?.get(VERSION_HEADER), m.string()),
          };
          if (m.seq >= endSeq) return;
        }
      } catch (err) {
        if (err instanceof StoreUnavailableError || isConnectionGone(err))
          throw asUnavailable(`read ${filter}`, err);
        this.log.warn({ err: errorMessage(err), filter, next }, 'reader failed; reopening');
      } finally {
        clearTimeout(watchdog);
        iter?.stop();
        this.forget(consumer);
      }
    }
  }

  // ---- appends -------------------------------------------------------------------------------

  async append(
    stream: string,
    events: readonly EventEnvelope[],
    opts: { expectedVersion: number },
  ): Promise<AppendResult> {
    this.assertOpen();
    const subject = subjectForStream(this.config.subjectPrefix, stream);
    const expected = opts.expectedVersion;
    if (!Number.isInteger(expected) || expected < 0)
      throw new RangeError(`expectedVersion must be an integer >= 0, got ${expected}`);
    if (events.length === 0) {
      const head = await this.fetchHead(subject);
      if (head.version !== expected) throw new VersionConflictError(stream, expected, head.version);
      return { version: head.version, position: head.seq };
    }

    let expectSeq = await this.seqOfVersion(subject, expected);
    let version = expected; // version of the message at expectSeq
    let position = 0;
    let stored = 0;
    let refreshed = false;
    for (let i = 0; i < events.length; i++) {
      const event = events[i]!;
      let ack: PubAck;
      try {
        ack = await this.publish(subject, { ...event, stream }, version + 1, expectSeq);
      } catch (err) {
        if (!isWrongLastSequence(err)) throw asUnavailable(`append to ${subject}`, err);
        const head = await this.fetchHead(subject);
        if (i === 0 && !refreshed && head.version === expected && head.seq !== expectSeq) {
          // Our cached head was behind (another instance appended and the caller knew): retry once.
          refreshed = true;
          expectSeq = head.seq;
          i--;
          continue;
        }
        // A retry of events stored long ago (beyond the dedupe window) is still a no-op.
        if (
          i === 0 &&
          head.version > expected &&
          (await this.allStored(stream, expected, events))
        ) {
          return { version: head.version, position: head.seq };
        }
        throw new VersionConflictError(stream, expected + i, head.version);
      }
      if (ack.duplicate) {
        // Stored before (a retried append): go on after the original, at its version. An id stored
        // on another stream is skipped, as the other adapters do.
        const original = await this.versionAt(subject, ack.seq);
        if (original !== undefined) {
          version = original;
          expectSeq = ack.seq;
          position = ack.seq;
        }
      } else {
        version += 1;
        expectSeq = ack.seq;
        position = ack.seq;
        stored++;
        this.noteHead(subject, { version, seq: ack.seq });
      }
    }
    if (stored === 0) {
      const head = await this.fetchHead(subject);
      return { version: head.version, position: head.seq };
    }
    return { version, position };
  }

  /** Publish one event, retrying through disconnects with the same msg id (so a retry is a dedupe). */
  private async publish(
    subject: string,
    event: EventEnvelope,
    version: number,
    expectSeq: number,
  ): Promise<PubAck> {
    const body = JSON.stringify(event);
    return this.retrying(`append to ${subject}`, () => {
      const h = headers();
      h.set(VERSION_HEADER, String(version));
      return this.js.publish(subject, body, {
        msgID: event.id,
        expect: { lastSubjectSequence: expectSeq },
        headers: h,
        timeout: this.requestTimeoutMs,
      });
    });
  }

  /** The subject sequence to expect for `version`, or NEVER_A_SEQUENCE when the stream is not at it. */
  private async seqOfVersion(subject: string, version: number): Promise<number> {
    if (version === 0) return 0;
    const cached = this.heads.get(subject);
    if (cached?.version === version) return cached.seq;
    if (cached && cached.version > version) return NEVER_A_SEQUENCE;
    const head = await this.fetchHead(subject);
    return head.version === version ? head.seq : NEVER_A_SEQUENCE;
  }

  /** The actor stream's last message (`last_by_subj`); a 404 means empty. */
  private async fetchHead(subject: string): Promise<Head> {
    const jsm = await this.jsm();
    const last = await this.retrying(`read the head of ${subject}`, () =>
      jsm.streams.getMessage(this.config.name, { last_by_subj: subject }),
    );
    if (!last) {
      const empty = { version: 0, seq: 0 };
      this.heads.delete(subject);
      return empty;
    }
    let version = this.decode(
      last.subject,
      last.seq,
      last.header.get(VERSION_HEADER),
      last.string(),
    ).event?.version;
    if (version === undefined) {
      // The last message is not an event (raw junk on the subject): the version is the last valid one's.
      version = 0;
      for await (const item of this.scan(subject, 1, last.seq, 256))
        if (item.event) version = item.event.version;
    }
    const head = { version, seq: last.seq };
    this.noteHead(subject, head, true);
    return head;
  }

  /** The version of the message at `seq` if it belongs to `subject`. */
  private async versionAt(subject: string, seq: number): Promise<number | undefined> {
    const jsm = await this.jsm();
    const msg = await this.retrying(`read message ${seq}`, () =>
      jsm.streams.getMessage(this.config.name, { seq }),
    );
    return msg?.subject === subject ? parseVersion(msg.header.get(VERSION_HEADER)) : undefined;
  }

  private async allStored(
    stream: string,
    afterVersion: number,
    events: readonly EventEnvelope[],
  ): Promise<boolean> {
    const ids = new Set((await this.read(stream, afterVersion)).map((e) => e.id));
    return events.every((e) => ids.has(e.id));
  }

  private noteHead(subject: string, head: Head, authoritative = false): void {
    const cur = this.heads.get(subject);
    if (cur && !authoritative && cur.seq >= head.seq) return;
    this.heads.delete(subject); // re-insert: the Map's order is the eviction order
    this.heads.set(subject, head);
    if (this.heads.size > HEAD_CACHE_SIZE) {
      const oldest = this.heads.keys().next();
      if (!oldest.done) this.heads.delete(oldest.value);
    }
  }

  // ---- live feed -----------------------------------------------------------------------------

  subscribe(afterPosition: number, onEvent: (event: StoredEvent) => void): () => void {
    this.assertOpen();
    const feed: Feed = {
      stopped: false,
      last: afterPosition,
      messages: undefined,
      wake: undefined,
      done: Promise.resolve(),
    };
    feed.done = this.runFeed(feed, onEvent);
    this.feeds.add(feed);
    return () => this.stopFeed(feed);
  }

  /**
   * Deliver every event after `feed.last`, in order, each once. Whenever the ordered consumer ends
   * (a reconnect, missed heartbeats, an error, the library giving up) this loop opens a new one from
   * `feed.last + 1` with a growing backoff, so the feed outlives any outage without a gap.
   */
  private async runFeed(feed: Feed, onEvent: (event: StoredEvent) => void): Promise<void> {
    let failures = 0;
    while (!feed.stopped) {
      let consumer: Consumer | undefined;
      try {
        consumer = await this.js.consumers.get(this.config.name, {
          filter_subjects: `${this.config.subjectPrefix}.>`,
          opt_start_seq: feed.last + 1,
        });
        if (feed.stopped) break;
        // Pull expiry 5 s: idle heartbeats every 2.5 s, so a consumer lost with its server (a killed
        // stream leader) is noticed and recreated within ~5 s even when our connection stays up.
        const messages = await consumer.consume({ max_messages: 256, expires: 5_000 });
        feed.messages = messages;
        // See scan(): a consumer stranded on a dead server is replaced, not waited for.
        onHeartbeatsMissed(messages, () => messages.stop());
        for await (const m of feed.messages) {
          failures = 0;
          if (feed.stopped) break;
          if (m.seq <= feed.last) continue;
          feed.last = m.seq;
          const { event } = this.decode(
            m.subject,
            m.seq,
            m.headers?.get(VERSION_HEADER),
            m.string(),
          );
          if (!event) continue;
          try {
            onEvent(event);
          } catch (err) {
            this.log.error(
              { err: errorMessage(err), position: m.seq },
              'event subscriber threw; the feed goes on',
            );
          }
        }
        if (!feed.stopped) this.log.info({ after: feed.last }, 'event feed reopening');
      } catch (err) {
        if (feed.stopped || this.nc.isClosed()) break;
        this.log.warn({ err: errorMessage(err), after: feed.last }, 'event feed failed; reopening');
      } finally {
        feed.messages?.stop();
        feed.messages = undefined;
        if (consumer) this.forget(consumer);
      }
      if (feed.stopped || this.nc.isClosed()) break;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(5000, 50 * 2 ** failures++));
        feed.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      feed.wake = undefined;
    }
  }

  private stopFeed(feed: Feed): void {
    if (feed.stopped) return;
    feed.stopped = true;
    feed.messages?.stop();
    feed.wake?.();
    this.feeds.delete(feed);
  }

  // ---- shared --------------------------------------------------------------------------------

  /** Decode one stored message; a bad one is logged, reported and returned without an event. */
  private decode(
    subject: string,
    seq: number,
    versionHeader: string | undefined,
    text: string,
  ): { event?: StoredEvent } {
    const stream = streamForSubject(this.config.subjectPrefix, subject);
    const version = parseVersion(versionHeader);
    let error: EventDecodeError | undefined;
    if (stream === undefined)
      error = new EventDecodeError(`subject ${subject} is not an actor stream`, subject);
    else if (version === undefined)
      error = new EventDecodeError(`no valid ${VERSION_HEADER} header`, text.slice(0, 200));
    else {
      const decoded = decodeEventJson(text);
      if (!decoded.ok) error = decoded.error;
      else if (decoded.event.stream !== stream) {
        error = new EventDecodeError(
          `event of stream ${decoded.event.stream} stored on ${subject}`,
          decoded.event.id,
        );
      } else return { event: { ...decoded.event, version, position: seq } };
    }
    this.log.warn(
      { subject, position: seq, code: error.code, err: error.message },
      'skipping a stored message that does not decode',
    );
    try {
      this.opts.onDecodeError?.(error, { subject, position: seq });
    } catch (err) {
      this.log.error({ err: errorMessage(err) }, 'onDecodeError threw');
    }
    return {};
  }

  /** Run an idempotent JetStream request, retrying transient failures until `unavailableAfterMs`. */
  private retrying<T>(what: string, op: () => Promise<T>): Promise<T> {
    return retryTransient(what, Date.now() + this.unavailableAfterMs, op, {
      isClosed: () => this.closed || this.nc.isClosed(),
      onRetry: (err) => this.log.warn({ err: errorMessage(err) }, `retrying: ${what}`),
    });
  }

  private jsm(): Promise<JetStreamManager> {
    this.jsmPromise ??= jetstreamManager(this.nc, {
      timeout: this.requestTimeoutMs,
      checkAPI: false,
    });
    return this.jsmPromise;
  }

  /** Delete a finished reader's consumer without waiting (its inactivity threshold is the backstop). */
  private forget(consumer: Consumer): void {
    if (this.nc.isClosed()) return;
    const p = consumer
      .delete()
      .catch(() => false)
      .finally(() => this.cleanups.delete(p));
    this.cleanups.add(p);
  }

  private assertOpen(): void {
    if (this.closed) throw new StoreUnavailableError('the event store is closed');
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const feeds = [...this.feeds];
    for (const feed of feeds) this.stopFeed(feed);
    await Promise.all(feeds.map((f) => f.done));
    await Promise.all([...this.cleanups]);
    this.stopStatusWatch();
    if (this.opts.ownsConnection && !this.nc.isClosed()) await this.nc.drain();
  }
}

/** Call `fn` when the consumer reports missed idle heartbeats (its server stopped serving it). */
function onHeartbeatsMissed(messages: ConsumerMessages, fn: () => void): void {
  void (async () => {
    for await (const status of messages.status()) {
      if (status.type === 'heartbeats_missed') fn();
    }
  })().catch(() => undefined);
}

function hasStop(x: object): x is { stop(): void } {
  return typeof (x as { stop?: unknown }).stop === 'function';
}

function parseVersion(raw: string | undefined): number | undefined {
  if (raw === undefined || !/^[1-9][0-9]{0,15}$/.test(raw)) return undefined;
  return Number(raw);
}

function isWrongLastSequence(err: unknown): boolean {
  return err instanceof JetStreamApiError && (err.code === 10071 || err.code === 10164);
}
