/**
 * The JetStream event store's retention pass (ADR 0014): finished actors are copied to the archive
 * stream as soon as a pass sees them closed, verified, and purged from the live stream once
 * retention no longer keeps them and their copy is PURGE_GRACE_MS old.
 */
import { headers } from '@nats-io/transport-node';
import type { PubAck } from '@nats-io/jetstream';
import type { CompactionSummary } from '../../ports/eventStore.js';
import { StoreUnavailableError } from '../../shared/errors.js';
import { archivesAnything, dueForArchive, type RetentionRule } from '../retention.js';
import type { StreamHeads } from './jetStreamHeads.js';
import { POSITION_HEADER, VERSION_HEADER, type JetStreamIo } from './jetStreamIo.js';
import { asUnavailable, isWrongLastSequence } from './retry.js';
import { subjectForStream } from './subjects.js';

/**
 * How long a finished stream's archived copy must exist before its live subject may be purged. An
 * append that creates a stream checks the archive first and then publishes expecting an empty
 * subject; it could only start an archived stream over if the copy was made after its check and the
 * purge came before its publish, so the purge waits much longer than any append takes (ADR 0014).
 */
export const PURGE_GRACE_MS = 10 * 60_000;

/** The points of a compaction, per stream; the crash test kills the server at them. */
export type CompactionStep = 'copying' | 'copied' | 'purging' | 'purged';

export interface JetStreamCompactionResult extends CompactionSummary {
  /** Closed streams copied to the archive by this pass (before retention lets them go). */
  readonly copiedStreams: number;
  /** Messages of the live stream this pass read to find closed streams (after its cursor). */
  readonly scannedMessages: number;
}

export interface RetentionOptions {
  retention?: RetentionRule;
  /** The clock retention is measured against. Default Date.now. */
  now?: () => number;
  purgeGraceMs?: number;
  /** Test seam: awaited at each point of a compaction (the crash test kills the server there). */
  onCompactionStep?: (step: CompactionStep, stream: string) => void | Promise<void>;
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

export class JetStreamRetention {
  /** Closed streams found in the live stream, by subject; compaction's working set. */
  private readonly closedStreams = new Map<string, ClosedStream>();
  /** Live stream sequence compaction has scanned up to. */
  private scannedTo = 0;

  constructor(
    private readonly io: JetStreamIo,
    private readonly heads: StreamHeads,
    private readonly opts: RetentionOptions,
  ) {}

  /**
   * One pass. Finds the streams whose last fact closes them (reading only what the live stream
   * gained since the last pass), copies each to the archive stream, verifies the copy, and purges
   * from the live stream those retention no longer keeps, once their copy is old enough.
   */
  async run(): Promise<JetStreamCompactionResult> {
    const { retention } = this.opts;
    let copiedStreams = 0;
    let droppedStreams = 0;
    let droppedEvents = 0;
    let scannedMessages = 0;
    if (archivesAnything(retention)) {
      scannedMessages = await this.findClosedStreams();
      const now = (this.opts.now ?? Date.now)();
      const marks = [...this.closedStreams].map(([key, c]) => ({
        key,
        closedAt: c.at,
        order: c.seq,
      }));
      const due = dueForArchive(marks, retention, now);
      const grace = this.opts.purgeGraceMs ?? PURGE_GRACE_MS;
      // Every closed stream is copied as soon as a pass sees it, so its copy has aged past the
      // grace by the time retention lets it go.
      for (const [subject, c] of [...this.closedStreams]) {
        if (this.io.closed) break;
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
    const jsm = await this.io.jsm();
    const info = await this.io.retrying('read the stream state', () =>
      jsm.streams.info(this.io.config.name),
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
    const { io } = this;
    const end = await io.lastSeqOn(io.allSubjects);
    if (end <= this.scannedTo) return 0;
    let n = 0;
    for await (const item of io.scan(io.allSubjects, this.scannedTo + 1, end, 1000)) {
      n++;
      const e = item.event;
      if (!e) continue;
      const subject = subjectForStream(io.config.subjectPrefix, e.stream);
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
    let wrote = false;
    for (let attempt = 0; attempt < 10; attempt++) {
      const head = await this.heads.archived(c.stream);
      if (head && head.version === c.version && head.id === c.id) {
        c.copiedAt = head.time;
        if (wrote) await this.step('copied', c.stream);
        return wrote ? 'copied' : 'already';
      }
      const live = await this.heads.fetch(subject);
      if (live.seq !== c.seq) return 'gone';
      if (head && head.version >= c.version) {
        // The archive went past this closing fact (a stream written after it was closed): leave it.
        this.io.log.warn(
          { stream: c.stream, archived: head.version, closing: c.version },
          'archive ahead of live; not archiving',
        );
        return 'gone';
      }
      const copy = await this.copyAfter(subject, c, head?.version ?? 0, head?.seq ?? 0);
      wrote ||= copy.wrote;
      // Copied to the end, or interrupted by a conflict: either way, look at the archive again.
      if (copy.conflict)
        this.io.log.debug({ stream: c.stream }, 'archive copy conflicted; resuming');
    }
    throw new StoreUnavailableError(
      `cannot archive ${c.stream}: the archive keeps changing under us`,
    );
  }

  /**
   * Copy `c`'s facts after `archivedVersion` to the archive, chained on the archive subject's last
   * sequence. Stops at a conflict: another copier, or our own publish whose ack was lost.
   */
  private async copyAfter(
    subject: string,
    c: ClosedStream,
    archivedVersion: number,
    archivedSeq: number,
  ): Promise<{ wrote: boolean; conflict: boolean }> {
    const { io } = this;
    const target = subjectForStream(io.config.archive.subjectPrefix, c.stream);
    let expectSeq = archivedSeq;
    let wrote = false;
    for await (const item of io.scan(subject, 1, c.seq, 256)) {
      const e = item.event;
      if (!e || e.version <= archivedVersion) continue;
      await this.step('copying', c.stream);
      const h = headers();
      h.set(VERSION_HEADER, String(e.version));
      h.set(POSITION_HEADER, String(e.position));
      let ack: PubAck;
      try {
        ack = await io.retrying(`archive ${c.stream}`, () =>
          io.js.publish(target, item.text, {
            msgID: e.id,
            expect: { lastSubjectSequence: expectSeq },
            headers: h,
            timeout: io.requestTimeoutMs,
          }),
        );
      } catch (err) {
        if (!isWrongLastSequence(err)) throw asUnavailable(`archive ${c.stream}`, err);
        return { wrote, conflict: true };
      }
      if (ack.duplicate) return { wrote, conflict: true };
      wrote = true;
      expectSeq = ack.seq;
    }
    return { wrote, conflict: false };
  }

  /**
   * Purge `c`'s stream from the live stream after checking, right before, that it still ends with the
   * closing fact and that the archive still holds its copy. The purge is bounded by the closing
   * fact's sequence, so anything written after it stays. Returns the messages purged.
   */
  private async purgeArchived(subject: string, c: ClosedStream): Promise<number> {
    const live = await this.heads.fetch(subject);
    const archived = await this.heads.archived(c.stream);
    if (live.seq !== c.seq || !archived || archived.version !== c.version || archived.id !== c.id) {
      this.closedStreams.delete(subject);
      if (live.seq !== 0)
        this.io.log.warn(
          { stream: c.stream },
          'not purging: live stream or archive changed since the copy',
        );
      return 0;
    }
    await this.step('purging', c.stream);
    const jsm = await this.io.jsm();
    const res = await this.io.retrying(`purge ${subject}`, () =>
      jsm.streams.purge(this.io.config.name, { filter: subject, seq: c.seq + 1 }),
    );
    this.closedStreams.delete(subject);
    this.heads.drop(subject);
    await this.step('purged', c.stream);
    return res.purged;
  }

  private async step(step: CompactionStep, stream: string): Promise<void> {
    await this.opts.onCompactionStep?.(step, stream);
  }
}
