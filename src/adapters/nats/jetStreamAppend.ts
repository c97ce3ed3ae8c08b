/**
 * Appends to the JetStream event store: each event published with `Nats-Msg-Id = event.id` (a retry
 * is a dedupe) and `expect.lastSubjectSequence` (of two writers on one stream, one wins), retried
 * through disconnects; an archived stream refuses appends (ADR 0014).
 */
import { headers } from '@nats-io/transport-node';
import type { PubAck } from '@nats-io/jetstream';
import type { EventEnvelope, StoredEvent } from '../../events/envelope.js';
import type { AppendResult } from '../../ports/eventStore.js';
import { StreamArchivedError, VersionConflictError } from '../../shared/errors.js';
import type { StreamHeads } from './jetStreamHeads.js';
import { VERSION_HEADER, type JetStreamIo } from './jetStreamIo.js';
import { asUnavailable, isWrongLastSequence } from './retry.js';
import { subjectForStream } from './subjects.js';

export class JetStreamAppender {
  constructor(
    private readonly io: JetStreamIo,
    private readonly heads: StreamHeads,
    /** The store's read, to tell a retry of events stored long ago from a conflict. */
    private readonly read: (stream: string, afterVersion: number) => Promise<StoredEvent[]>,
  ) {}

  async append(
    stream: string,
    events: readonly EventEnvelope[],
    expected: number,
  ): Promise<AppendResult> {
    const subject = subjectForStream(this.io.config.subjectPrefix, stream);
    if (!Number.isInteger(expected) || expected < 0)
      throw new RangeError(`expectedVersion must be an integer >= 0, got ${expected}`);
    if (events.length === 0) {
      const head = await this.heads.fetch(subject);
      if (head.version !== expected) {
        if (head.seq === 0 && (await this.heads.archived(stream)))
          throw new StreamArchivedError(stream);
        throw new VersionConflictError(stream, expected, head.version);
      }
      return { version: head.version, position: head.seq };
    }
    // A purged subject would take "expect an empty subject" again: creating a stream first asks the
    // archive, and never publishes once the archive has it (its copy is never removed before the
    // purge, and the purge waits PURGE_GRACE_MS after the copy, far longer than this append takes).
    if (expected === 0 && (await this.heads.archived(stream))) {
      const head = await this.heads.fetch(subject);
      if (head.seq === 0) throw new StreamArchivedError(stream);
      throw new VersionConflictError(stream, expected, head.version);
    }
    return this.publishAll(stream, subject, events, expected);
  }

  /** Publish the events in order, each expecting the subject's last sequence to be the previous one. */
  private async publishAll(
    stream: string,
    subject: string,
    events: readonly EventEnvelope[],
    expected: number,
  ): Promise<AppendResult> {
    let expectSeq = await this.heads.seqOfVersion(subject, expected);
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
        const head = await this.heads.fetch(subject);
        if (i === 0 && !refreshed && head.version === expected && head.seq !== expectSeq) {
          // Our cached head was behind (another instance appended and the caller knew): retry once.
          refreshed = true;
          expectSeq = head.seq;
          i--;
          continue;
        }
        // A retry of events stored long ago (beyond the dedupe window) is still a no-op.
        if (i === 0 && head.version > expected && (await this.allStored(stream, expected, events)))
          return { version: head.version, position: head.seq };
        // Emptied under us (our cached head was from before a purge): retention archived it.
        if (head.seq === 0 && (await this.heads.archived(stream)))
          throw new StreamArchivedError(stream);
        throw new VersionConflictError(stream, expected + i, head.version);
      }
      if (ack.duplicate) {
        // Stored before (a retried append): go on after the original, at its version. An id stored
        // on another stream is skipped, as the other adapters do.
        const original = await this.heads.versionAt(subject, ack.seq);
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
        this.heads.note(subject, { version, seq: ack.seq });
      }
    }
    if (stored === 0) {
      const head = await this.heads.fetch(subject);
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
    return this.io.retrying(`append to ${subject}`, () => {
      const h = headers();
      h.set(VERSION_HEADER, String(version));
      return this.io.js.publish(subject, body, {
        msgID: event.id,
        expect: { lastSubjectSequence: expectSeq },
        headers: h,
        timeout: this.io.requestTimeoutMs,
      });
    });
  }

  private async allStored(
    stream: string,
    afterVersion: number,
    events: readonly EventEnvelope[],
  ): Promise<boolean> {
    const ids = new Set((await this.read(stream, afterVersion)).map((e) => e.id));
    return events.every((e) => ids.has(e.id));
  }
}
