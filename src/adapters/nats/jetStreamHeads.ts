/**
 * Where each actor stream ends, for the JetStream event store: its head in the live stream (last
 * version and subject sequence), cached for appends, and the head of its copy in the archive.
 */
import type { StoredMsg } from '@nats-io/jetstream';
import { MSG_ID_HEADER, parseVersion, VERSION_HEADER, type JetStreamIo } from './jetStreamIo.js';
import { subjectForStream } from './subjects.js';

export interface Head {
  /** Version of the last (valid) event of the actor stream; 0 when empty. */
  readonly version: number;
  /** Stream sequence of the subject's last message; 0 when empty. */
  readonly seq: number;
}

/** An archived copy's last message: its sequence, version, msg id and store time. */
export interface ArchivedHead {
  readonly seq: number;
  readonly version: number;
  readonly id: string;
  readonly time: number;
}

/**
 * An expected subject sequence no subject can ever have: sent when the caller's expected version is
 * stale, so the server still applies msg-id dedupe (checked first) and otherwise rejects the append.
 */
export const NEVER_A_SEQUENCE = Number.MAX_SAFE_INTEGER;
/** How many stream heads (version → last subject sequence) to remember. */
const HEAD_CACHE_SIZE = 10_000;

export class StreamHeads {
  private readonly heads = new Map<string, Head>();

  constructor(private readonly io: JetStreamIo) {}

  /** The actor stream's last message (`last_by_subj`); a 404 means empty. */
  async fetch(subject: string): Promise<Head> {
    const { io } = this;
    const jsm = await io.jsm();
    const last = await io.retrying(`read the head of ${subject}`, () =>
      jsm.streams.getMessage(io.config.name, { last_by_subj: subject }),
    );
    if (!last) {
      this.heads.delete(subject);
      return { version: 0, seq: 0 };
    }
    let version = io.decode(last.subject, last.seq, last.header.get(VERSION_HEADER), last.string())
      .event?.version;
    if (version === undefined) {
      // The last message is not an event (raw junk on the subject): the version is the last valid one's.
      version = 0;
      for await (const item of io.scan(subject, 1, last.seq, 256))
        if (item.event) version = item.event.version;
    }
    const head = { version, seq: last.seq };
    this.note(subject, head, true);
    return head;
  }

  /** Remember a head; unless `authoritative`, never one behind what is remembered. */
  note(subject: string, head: Head, authoritative = false): void {
    const cur = this.heads.get(subject);
    if (cur && !authoritative && cur.seq >= head.seq) return;
    this.heads.delete(subject); // re-insert: the Map's order is the eviction order
    this.heads.set(subject, head);
    if (this.heads.size > HEAD_CACHE_SIZE) {
      const oldest = this.heads.keys().next();
      if (!oldest.done) this.heads.delete(oldest.value);
    }
  }

  /** Forget a subject's head (it was purged). */
  drop(subject: string): void {
    this.heads.delete(subject);
  }

  /** The subject sequence to expect for `version`, or NEVER_A_SEQUENCE when the stream is not at it. */
  async seqOfVersion(subject: string, version: number): Promise<number> {
    if (version === 0) return 0;
    const cached = this.heads.get(subject);
    if (cached?.version === version) return cached.seq;
    if (cached && cached.version > version) return NEVER_A_SEQUENCE;
    const head = await this.fetch(subject);
    return head.version === version ? head.seq : NEVER_A_SEQUENCE;
  }

  /** The version of the message at `seq` if it belongs to `subject`. */
  async versionAt(subject: string, seq: number): Promise<number | undefined> {
    const { io } = this;
    const jsm = await io.jsm();
    const msg = await io.retrying(`read message ${seq}`, () =>
      jsm.streams.getMessage(io.config.name, { seq }),
    );
    return msg?.subject === subject ? parseVersion(msg.header.get(VERSION_HEADER)) : undefined;
  }

  /** The archive's last message for `stream`, if the archive holds it. */
  async archived(stream: string): Promise<ArchivedHead | undefined> {
    const { io } = this;
    const jsm = await io.jsm();
    const archive = io.config.archive;
    const subject = subjectForStream(archive.subjectPrefix, stream);
    const last: StoredMsg | null = await io.retrying(`read the archive of ${stream}`, () =>
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
}
