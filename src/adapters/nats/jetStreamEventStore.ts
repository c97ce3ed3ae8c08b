/**
 * Adapter: EventStore on JetStream. One subject per actor stream (`wm.events.<chart>.<id>`); each
 * message carries its stream version in the `WM-Version` header, its position is the stream-wide
 * sequence. Appends use `Nats-Msg-Id = event.id` (dedupe) and `expect.lastSubjectSequence` (one
 * writer wins); reads and feeds use ordered consumers, which resume from the last sequence seen.
 * compact() copies finished actors to the archive stream and purges them from the live one once
 * retention no longer keeps them; appends to such a stream throw StreamArchivedError (ADR 0014).
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
  type StoredMsg,
} from '@nats-io/jetstream';
import { decodeEventJson, type EventEnvelope, type StoredEvent } from '../../events/envelope.js';
import type {
  AppendResult,
  CompactionSummary,
  EventStore,
  StreamStatus,
} from '../../ports/eventStore.js';
import {
  errorMessage,
  EventDecodeError,
  StoreUnavailableError,
  StreamArchivedError,
  VersionConflictError,
} from '../../shared/errors.js';
import type { Logger } from '../../shared/log.js';
import {
  ensureStream,
  eventStreamConfig,
  type EventStreamConfig,
  type EventStreamOptions,
} from './connection.js';
import { asUnavailable, isConnectionGone, retryTransient, sleep } from './retry.js';
import { streamForSubject, subjectForStream } from './subjects.js';

/** Header holding the event's version in its actor stream (1..n). */
export const VERSION_HEADER = 'WM-Version';
/** On an archived copy: the position (live stream sequence) the fact had. */
export const POSITION_HEADER = 'WM-Position';
const MSG_ID_HEADER = 'Nats-Msg-Id';

/**
 * How long a finished stream's archived copy must exist before its live subject may be purged. An
 * append that creates a stream checks the archive first and then publishes expecting an empty
 * subject; it could only start an archived stream over if the copy was made after its check and the
 * purge came before its publish, so the purge waits much longer than any append takes (ADR 0014).
 */
export const PURGE_GRACE_MS = 10 * 60_000;

/**
 * An expected subject sequence no subject can ever have: sent when the caller's expected version is
 * stale, so the server still applies msg-id dedupe (checked first) and otherwise rejects the append.
 */
const NEVER_A_SEQUENCE = Number.MAX_SAFE_INTEGER;
/** How many stream heads (version → last subject sequence) to remember. */
const HEAD_CACHE_SIZE = 10_000;
/** A reader that hears nothing this long checks that the message it waits for still exists. */
const IDLE_RECHECK_MS = 3_000;

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
  /**
   * Which closed streams (last fact `meta.closes`) `compact()` keeps live: those closed less than
   * `maxAgeMs` ago (by the closing fact's time) and only the `maxClosedStreams` most recently
   * closed. Open streams are always kept. Without either, compaction does nothing.
   */
  retention?: { maxAgeMs?: number; maxClosedStreams?: number };
  /** The clock retention is measured against. Default Date.now. */
  now?: () => number;
  /** See PURGE_GRACE_MS. Tests lower it; production keeps the default. */
  purgeGraceMs?: number;
  /** Test seam: awaited at each point of a compaction (the crash test kills the server there). */
  onCompactionStep?: (step: CompactionStep, stream: string) => void | Promise<void>;
}

/** The points of a compaction, per stream; the crash test kills the server at them. */
export type CompactionStep = 'copying' | 'copied' | 'purging' | 'purged';

export interface JetStreamCompactionResult extends CompactionSummary {
  /** Closed streams copied to the archive by this pass (before retention lets them go). */
  readonly copiedStreams: number;
  /** Messages of the live stream this pass read to find closed streams (after its cursor). */
  readonly scannedMessages: number;
}

/** A stream whose last fact closes it, as compaction found it in the live stream. */
interface ClosedStream {
  readonly stream: string;
  /** Live sequence and version of the closing fact, its id and time (ms). */
  readonly seq: number;
  readonly version: number;
  readonly id: string;
  readonly at: number;
  /** When its archived copy was stored (server time, ms); undefined until copied and verified. */
  copiedAt?: number;
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
  /** Closed streams found in the live stream, by subject; compaction's working set. */
  private readonly closedStreams = new Map<string, ClosedStream>();
  /** Live stream sequence compaction has scanned up to. */
  private scannedTo = 0;
  private compacting: Promise<JetStreamCompactionResult> | undefined;

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
    const filter = `${this.config.subjectPrefix}.>`;
    // The last message that exists, not the stream's last_seq: that one may have been purged.
    const end = await this.lastSeqOn(filter);
    if (end <= afterPosition) return;
    for await (const item of this.scan(filter, afterPosition + 1, end, 1000)) {
      if (item.event) yield item.event;
    }
  }

  /** Sequence of the last message on `filter` in the live stream (0: none). */
  private async lastSeqOn(filter: string): Promise<number> {
    const jsm = await this.jsm();
    const last = await this.retrying(`find the last message on ${filter}`, () =>
      jsm.streams.getMessage(this.config.name, { last_by_subj: filter }),
    );
    return last?.seq ?? 0;
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
  ): AsyncGenerator<{ seq: number; text: string; event?: StoredEvent }> {
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
      if (head.version !== expected) {
        if (head.seq === 0 && (await this.archivedHead(stream)))
          throw new StreamArchivedError(stream);
        throw new VersionConflictError(stream, expected, head.version);
      }
      return { version: head.version, position: head.seq };
    }
    // A purged subject would take "expect an empty subject" again: creating a stream first asks the
    // archive, and never publishes once the archive has it (its copy is never removed before the
    // purge, and the purge waits PURGE_GRACE_MS after the copy, far longer than this append takes).
    if (expected === 0 && (await this.archivedHead(stream))) {
      const head = await this.fetchHead(subject);
      if (head.seq === 0) throw new StreamArchivedError(stream);
      throw new VersionConflictError(stream, expected, head.version);
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
        // Emptied under us (our cached head was from before a purge): retention archived it.
        if (head.seq === 0 && (await this.archivedHead(stream)))
          throw new StreamArchivedError(stream);
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

  // ---- retention -----------------------------------------------------------------------------

  /**
   * `live` while the live stream holds the stream's subject; `archived` when only the archive does
   * (retention moved it: the app answers 410); `unknown` when neither does (never stored, or its
   * archived copy aged out of the archive).
   */
  async status(stream: string): Promise<StreamStatus> {
    this.assertOpen();
    const subject = subjectForStream(this.config.subjectPrefix, stream);
    if ((await this.fetchHead(subject)).seq > 0) return 'live';
    return (await this.archivedHead(stream)) ? 'archived' : 'unknown';
  }

  /** The archive's last message for `stream`: its sequence, version, msg id and store time. */
  private async archivedHead(
    stream: string,
  ): Promise<{ seq: number; version: number; id: string; time: number } | undefined> {
    const jsm = await this.jsm();
    const archive = this.config.archive;
    const subject = subjectForStream(archive.subjectPrefix, stream);
    const last: StoredMsg | null = await this.retrying(`read the archive of ${stream}`, () =>
      jsm.streams.getMessage(archive.name, { last_by_subj: subject }),
    );
    if (!last) return undefined;
    return {
      seq: last.seq,
      version: parseVersion(last.header.get(VERSION_HEADER)) ?? 0,
      id: last.header.get(MSG_ID_HEADER),
      time: last.time.getTime(),
    };
  }

  /**
   * One retention pass (ADR 0014). Finds the streams whose last fact closes them (reading only what
   * the live stream gained since the last pass), copies each to the archive stream, verifies the
   * copy, and purges from the live stream those retention no longer keeps, once their copy is
   * PURGE_GRACE_MS old. Idempotent and safe from several instances at once: copies chain on the
   * archive subject's last sequence (a second copier conflicts or is deduplicated, never doubles a
   * fact), and a purge removes only what is at or below the verified closing fact. A crash anywhere
   * leaves a fact in the live stream, the archive or both, never neither; the next pass finishes.
   * One runs at a time per store: a call during another gets the running one.
   */
  compact(): Promise<JetStreamCompactionResult> {
    this.assertOpen();
    this.compacting ??= this.runCompaction().finally(() => {
      this.compacting = undefined;
    });
    return this.compacting;
  }

  private async runCompaction(): Promise<JetStreamCompactionResult> {
    const { maxAgeMs, maxClosedStreams } = this.opts.retention ?? {};
    let copiedStreams = 0;
    let droppedStreams = 0;
    let droppedEvents = 0;
    let scannedMessages = 0;
    if (maxAgeMs !== undefined || maxClosedStreams !== undefined) {
      scannedMessages = await this.findClosedStreams();
      const now = (this.opts.now ?? Date.now)();
      const due = this.dueForArchive(now, maxAgeMs, maxClosedStreams);
      const grace = this.opts.purgeGraceMs ?? PURGE_GRACE_MS;
      // Every closed stream is copied as soon as a pass sees it, so its copy has aged past the
      // grace by the time retention lets it go.
      for (const [subject, c] of [...this.closedStreams]) {
        if (this.closed) break;
        if (c.copiedAt === undefined) {
          const copied = await this.copyToArchive(subject, c);
          if (copied === 'gone') {
            this.closedStreams.delete(subject);
            continue;
          }
          if (copied === 'copied') copiedStreams++;
        }
        if (!due.has(subject) || c.copiedAt === undefined || now - c.copiedAt < grace) continue;
        const purged = await this.purgeArchived(subject, c);
        if (purged > 0) {
          droppedStreams++;
          droppedEvents += purged;
        }
      }
    }
    const jsm = await this.jsm();
    const info = await this.retrying('read the stream state', () =>
      jsm.streams.info(this.config.name),
    );
    return {
      droppedStreams,
      droppedEvents,
      keptStreams: info.state.num_subjects ?? 0,
      keptEvents: info.state.messages,
      copiedStreams,
      scannedMessages,
    };
  }

  /** Read the live stream after the last pass's cursor and note which streams it closes. */
  private async findClosedStreams(): Promise<number> {
    const filter = `${this.config.subjectPrefix}.>`;
    const end = await this.lastSeqOn(filter);
    if (end <= this.scannedTo) return 0;
    let n = 0;
    for await (const item of this.scan(filter, this.scannedTo + 1, end, 1000)) {
      n++;
      const e = item.event;
      if (!e) continue;
      const subject = subjectForStream(this.config.subjectPrefix, e.stream);
      if (e.meta.closes === true) {
        this.closedStreams.set(subject, {
          stream: e.stream,
          seq: e.position,
          version: e.version,
          id: e.id,
          at: Date.parse(e.at),
        });
      } else this.closedStreams.delete(subject);
    }
    this.scannedTo = end;
    return n;
  }

  /** The closed streams retention no longer keeps (the same rule as the file store's). */
  private dueForArchive(
    now: number,
    maxAgeMs: number | undefined,
    maxClosedStreams: number | undefined,
  ): Set<string> {
    const due = new Set<string>();
    const closed = [...this.closedStreams];
    if (maxAgeMs !== undefined) {
      for (const [subject, c] of closed) if (c.at < now - maxAgeMs) due.add(subject);
    }
    if (maxClosedStreams !== undefined && closed.length > maxClosedStreams) {
      closed.sort(([, a], [, b]) => b.at - a.at || b.seq - a.seq);
      for (const [subject] of closed.slice(maxClosedStreams)) due.add(subject);
    }
    return due;
  }

  /**
   * Make the archive hold `c`'s stream up to its closing fact, each fact once: resume after the
   * archive's last copied version, each publish expecting the archive subject's last sequence, so a
   * concurrent copier or a retry after a crash conflicts (and resumes) instead of doubling a fact.
   * 'gone': the live stream no longer ends with this closing fact (purged, or written after).
   */
  private async copyToArchive(
    subject: string,
    c: ClosedStream,
  ): Promise<'copied' | 'already' | 'gone'> {
    const archive = this.config.archive;
    const target = subjectForStream(archive.subjectPrefix, c.stream);
    let wrote = false;
    for (let attempt = 0; attempt < 10; attempt++) {
      const head = await this.archivedHead(c.stream);
      if (head && head.version === c.version && head.id === c.id) {
        c.copiedAt = head.time;
        if (wrote) await this.step('copied', c.stream);
        return wrote ? 'copied' : 'already';
      }
      const live = await this.fetchHead(subject);
      if (live.seq !== c.seq) return 'gone';
      if (head && head.version >= c.version) {
        // The archive went past this closing fact (a stream written after it was closed): leave it.
        this.log.warn(
          { stream: c.stream, archived: head.version, closing: c.version },
          'archive ahead of live; not archiving',
        );
        return 'gone';
      }
      let expectSeq = head?.seq ?? 0;
      let conflict = false;
      for await (const item of this.scan(subject, 1, c.seq, 256)) {
        const e = item.event;
        if (!e || e.version <= (head?.version ?? 0)) continue;
        await this.step('copying', c.stream);
        const h = headers();
        h.set(VERSION_HEADER, String(e.version));
        h.set(POSITION_HEADER, String(e.position));
        let ack: PubAck;
        try {
          ack = await this.retrying(`archive ${c.stream}`, () =>
            this.js.publish(target, item.text, {
              msgID: e.id,
              expect: { lastSubjectSequence: expectSeq },
              headers: h,
              timeout: this.requestTimeoutMs,
            }),
          );
        } catch (err) {
          if (!isWrongLastSequence(err)) throw asUnavailable(`archive ${c.stream}`, err);
          conflict = true; // another copier, or our own publish whose ack was lost: look again
          break;
        }
        if (ack.duplicate) {
          conflict = true;
          break;
        }
        wrote = true;
        expectSeq = ack.seq;
      }
      // Copied to the end, or interrupted by a conflict: either way, look at the archive again.
      if (conflict) this.log.debug({ stream: c.stream }, 'archive copy conflicted; resuming');
    }
    throw new StoreUnavailableError(
      `cannot archive ${c.stream}: the archive keeps changing under us`,
    );
  }

  /**
   * Purge `c`'s stream from the live stream after checking, right before, that it still ends with the
   * closing fact and that the archive still holds its copy. The purge is bounded by the closing
   * fact's sequence, so anything written after it stays. Returns the messages purged.
   */
  private async purgeArchived(subject: string, c: ClosedStream): Promise<number> {
    const live = await this.fetchHead(subject);
    const archived = await this.archivedHead(c.stream);
    if (live.seq !== c.seq || !archived || archived.version !== c.version || archived.id !== c.id) {
      this.closedStreams.delete(subject);
      if (live.seq !== 0)
        this.log.warn(
          { stream: c.stream },
          'not purging: live stream or archive changed since the copy',
        );
      return 0;
    }
    await this.step('purging', c.stream);
    const jsm = await this.jsm();
    const res = await this.retrying(`purge ${subject}`, () =>
      jsm.streams.purge(this.config.name, { filter: subject, seq: c.seq + 1 }),
    );
    this.closedStreams.delete(subject);
    this.heads.delete(subject);
    await this.step('purged', c.stream);
    return res.purged;
  }

  private async step(step: CompactionStep, stream: string): Promise<void> {
    await this.opts.onCompactionStep?.(step, stream);
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
    await this.compacting?.catch(() => undefined);
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
