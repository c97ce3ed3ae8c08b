/**
 * The JetStream event store's plumbing, shared by its appends, feeds and retention: the clients,
 * retries through disconnects, readers' cleanup, decoding a stored message, and scans of a
 * sequence range through ordered consumers.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import {
  jetstream,
  jetstreamManager,
  type Consumer,
  type ConsumerMessages,
  type JetStreamClient,
  type JetStreamManager,
} from '@nats-io/jetstream';
import { decodeEventJson, type StoredEvent } from '../../events/envelope.js';
import { errorMessage, EventDecodeError, StoreUnavailableError } from '../../shared/errors.js';
import type { Logger } from '../../shared/log.js';
import type { EventStreamConfig } from './connection.js';
import { asUnavailable, isConnectionGone, retryTransient, sleep } from './retry.js';
import { streamForSubject } from './subjects.js';

/** Header holding the event's version in its actor stream (1..n). */
export const VERSION_HEADER = 'WM-Version';
/** On an archived copy: the position (live stream sequence) the fact had. */
export const POSITION_HEADER = 'WM-Position';
export const MSG_ID_HEADER = 'Nats-Msg-Id';

/** A reader that hears nothing this long checks that the message it waits for still exists. */
const IDLE_RECHECK_MS = 3_000;

export interface IoOptions {
  logger: Logger;
  /** How long an operation keeps retrying through a disconnect before StoreUnavailableError. */
  unavailableAfterMs: number;
  /** Timeout of one JetStream request (a publish and its ack). */
  requestTimeoutMs: number;
  /** Called for each stored message that does not decode, after it is logged and skipped. */
  onDecodeError?: (err: EventDecodeError, where: { subject: string; position: number }) => void;
}

/** One message of a scan: its sequence, its text, and its event when it decodes. */
export interface Scanned {
  readonly seq: number;
  readonly text: string;
  readonly event?: StoredEvent;
}

export class JetStreamIo {
  readonly js: JetStreamClient;
  readonly log: Logger;
  readonly unavailableAfterMs: number;
  readonly requestTimeoutMs: number;
  /** Set when the store closes: retries stop at once. */
  closed = false;
  private jsmPromise: Promise<JetStreamManager> | undefined;
  private readonly cleanups = new Set<Promise<unknown>>();

  constructor(
    readonly nc: NatsConnection,
    readonly config: EventStreamConfig,
    private readonly opts: IoOptions,
  ) {
    this.log = opts.logger.child({ component: 'jetstream-store', stream: config.name });
    this.unavailableAfterMs = opts.unavailableAfterMs;
    this.requestTimeoutMs = opts.requestTimeoutMs;
    this.js = jetstream(nc, { timeout: this.requestTimeoutMs });
  }

  /** The filter of every actor stream in the live stream. */
  get allSubjects(): string {
    return `${this.config.subjectPrefix}.>`;
  }

  jsm(): Promise<JetStreamManager> {
    this.jsmPromise ??= jetstreamManager(this.nc, {
      timeout: this.requestTimeoutMs,
      checkAPI: false,
    });
    return this.jsmPromise;
  }

  /** Run an idempotent JetStream request, retrying transient failures until `unavailableAfterMs`. */
  retrying<T>(what: string, op: () => Promise<T>): Promise<T> {
    return retryTransient(what, Date.now() + this.unavailableAfterMs, op, {
      isClosed: () => this.closed || this.nc.isClosed(),
      onRetry: (err) => this.log.warn({ err: errorMessage(err) }, `retrying: ${what}`),
    });
  }

  /** Delete a finished reader's consumer without waiting (its inactivity threshold is the backstop). */
  forget(consumer: Consumer): void {
    if (this.nc.isClosed()) return;
    const p = consumer
      .delete()
      .catch(() => false)
      .finally(() => this.cleanups.delete(p));
    this.cleanups.add(p);
  }

  /** Resolves once every consumer deletion under way has finished. */
  async settled(): Promise<void> {
    await Promise.all([...this.cleanups]);
  }

  /** Sequence of the last message on `filter` in the live stream (0: none). */
  async lastSeqOn(filter: string): Promise<number> {
    const jsm = await this.jsm();
    const last = await this.retrying(`find the last message on ${filter}`, () =>
      jsm.streams.getMessage(this.config.name, { last_by_subj: filter }),
    );
    return last?.seq ?? 0;
  }

  /** Decode one stored message; a bad one is logged, reported and returned without an event. */
  decode(
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

  /**
   * Every message on `filter` with a sequence in [startSeq, endSeq], decoded (a message that does
   * not decode comes back without `event`, already reported), through an ordered consumer deleted
   * afterwards. The end is a sequence known to exist, not the consumer's `pending` count: server
   * 2.9.10 miscounts pending for some filtered consumers (seen here: off by one), so a scan that
   * waited for pending 0 could wait forever, and one that trusted a short count would stop early.
   */
  async *scan(
    filter: string,
    startSeq: number,
    endSeq: number,
    batch: number,
  ): AsyncGenerator<Scanned> {
    let next = startSeq;
    let lastProgress = Date.now();
    for (let reopen = 0; next <= endSeq; reopen++) {
      if (reopen > 0) {
        // Retention may have purged the end (or everything after `next`) meanwhile: end at the last
        // message that still exists, so a read never waits for a message that is gone.
        endSeq = Math.min(endSeq, await this.lastSeqOn(filter));
        if (next > endSeq) return;
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
        // Heard nothing for a while: reopen, which first checks the end still exists (see above).
        // A read that makes no progress for unavailableAfterMs across reopens fails.
        const arm = () => {
          clearTimeout(watchdog);
          watchdog = setTimeout(() => messages.stop(), IDLE_RECHECK_MS);
        };
        arm();
        for await (const m of messages) {
          arm();
          if (m.seq < next) continue;
          next = m.seq + 1;
          lastProgress = Date.now();
          const text = m.string();
          yield {
            seq: m.seq,
            text,
            ...this.decode(m.subject, m.seq, m.headers?.get(VERSION_HEADER), text),
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
}

/** Call `fn` when the consumer reports missed idle heartbeats (its server stopped serving it). */
export function onHeartbeatsMissed(messages: ConsumerMessages, fn: () => void): void {
  void (async () => {
    for await (const status of messages.status()) {
      if (status.type === 'heartbeats_missed') fn();
    }
  })().catch(() => undefined);
}

export function parseVersion(raw: string | undefined): number | undefined {
  if (raw === undefined || !/^[1-9][0-9]{0,15}$/.test(raw)) return undefined;
  return Number(raw);
}
