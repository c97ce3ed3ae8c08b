/**
 * Moves the history of a single machine's file store into JetStream: the live log's streams into
 * the event stream (same ids, versions and store order, through the JetStream event store), and the
 * archive segments retention left on disk into the archive stream (as retention on NATS writes it,
 * so archived launches still answer 410). Idempotent: what JetStream already holds is skipped, so a
 * second run copies nothing. Then both sides are read back and compared.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { headers, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, type JetStreamClient } from '@nats-io/jetstream';
import { listArchive } from '../adapters/file/archive.js';
import { FileEventStore } from '../adapters/file/fileEventStore.js';
import { classify, parseChecked, scanLines } from '../adapters/file/records.js';
import { type EventStreamConfig, type EventStreamOptions } from '../adapters/nats/connection.js';
import {
  JetStreamEventStore,
  POSITION_HEADER,
  VERSION_HEADER,
} from '../adapters/nats/jetStreamEventStore.js';
import { streamForSubject, subjectForStream } from '../adapters/nats/subjects.js';
import { decodeEvent, type EventEnvelope, type StoredEvent } from '../events/envelope.js';
import type { Logger } from '../shared/log.js';

/** The history does not copy as it is: a gap, a conflict, or a read-back that differs. */
export class MigrationError extends Error {
  readonly code = 'MIGRATION_FAILED';
  constructor(message: string) {
    super(message);
    this.name = 'MigrationError';
  }
}

export interface PartReport {
  /** Actor streams and events the file store holds in this part. */
  readonly streams: number;
  readonly events: number;
  /** Events this run wrote to JetStream, and events it found there already. */
  readonly copied: number;
  readonly present: number;
}

export interface MigrationReport {
  readonly live: PartReport;
  readonly archive: PartReport & { readonly segments: number };
  /** Facts JetStream holds after a file stream's last one (appended on NATS since): not a mismatch. */
  readonly newerInJetStream: number;
  /** What the read-back found wrong; empty when both sides agree. */
  readonly problems: string[];
  readonly ms: number;
}

export interface MigrationOptions {
  /** WM_DATA_DIR of the file store: events.log and its archive segments. */
  readonly dataDir: string;
  readonly nc: NatsConnection;
  /** The event stream's settings, as the landing app will open it (name, replicas, archive). */
  readonly stream?: EventStreamOptions;
  readonly logger: Logger;
  /** Called every `progressEvery` events written or skipped, for a progress line. */
  readonly onProgress?: (p: { part: 'live' | 'archive'; done: number; total: number }) => void;
  readonly progressEvery?: number;
}

/** An event's envelope without its place in a store: what both stores are given to append. */
function envelopeOf(e: StoredEvent): EventEnvelope {
  return { id: e.id, type: e.type, stream: e.stream, at: e.at, v: e.v, data: e.data, meta: e.meta };
}

/** A digest of what an event says (not where it is stored), to compare the two sides. */
function digest(e: EventEnvelope): string {
  return createHash('sha1')
    .update(JSON.stringify(envelopeOf(e as StoredEvent)))
    .digest('base64');
}

interface Seen {
  readonly stream: string;
  readonly version: number;
  readonly position: number;
  readonly digest: string;
  /** Stored more than once under this id. */
  twice?: boolean;
}

/** One archive segment record as the file store wrote it, decoded and checked. */
function* archiveRecords(file: string): Generator<StoredEvent> {
  let line = 0;
  for (const l of scanLines(file)) {
    line++;
    const parsed = l.complete ? parseChecked(l.buf, l.start, l.end) : 'no newline';
    if (typeof parsed === 'string') throw new MigrationError(`${file}: record ${line}: ${parsed}`);
    const c = classify(parsed.ok);
    if (typeof c === 'string') throw new MigrationError(`${file}: record ${line}: ${c}`);
    if ('marker' in c) continue;
    const decoded = decodeEvent(parsed.ok);
    if (!decoded.ok) throw new MigrationError(`${file}: record ${line}: ${decoded.error.message}`);
    const { version, position } = parsed.ok as { version: number; position: number };
    yield { ...decoded.event, version, position };
  }
}

/** Every message of a JetStream stream on `filter`, in order, through an ordered consumer. */
async function* scanJetStream(
  js: JetStreamClient,
  nc: NatsConnection,
  name: string,
  filter: string,
): AsyncGenerator<{ subject: string; seq: number; version: string | undefined; text: string }> {
  const jsm = await jetstreamManager(nc);
  const last = await jsm.streams.getMessage(name, { last_by_subj: filter });
  if (!last) return;
  const consumer = await js.consumers.get(name, { filter_subjects: filter });
  const messages = await consumer.consume({ max_messages: 1000, expires: 2000 });
  let idle: NodeJS.Timeout | undefined;
  let stalled = false;
  const arm = () => {
    clearTimeout(idle);
    idle = setTimeout(() => {
      stalled = true;
      messages.stop();
    }, 15_000);
  };
  try {
    arm();
    for await (const m of messages) {
      arm();
      yield {
        subject: m.subject,
        seq: m.seq,
        version: m.headers?.get(VERSION_HEADER),
        text: m.string(),
      };
      if (m.seq >= last.seq) return;
    }
    if (stalled)
      throw new MigrationError(`reading ${name}: no message for 15 s before ${last.seq}`);
  } finally {
    clearTimeout(idle);
    messages.stop();
    await consumer.delete().catch(() => false);
  }
}

/**
 * Copy the file store in `dataDir` into JetStream and compare. Open the file store as the app does
 * (it takes the store's lock: the app must not be running on it). Throws MigrationError when the
 * history cannot be copied as it is; a read-back that differs is returned in `problems`.
 */
export async function migrateFileToJetStream(opts: MigrationOptions): Promise<MigrationReport> {
  const t0 = performance.now();
  const log = opts.logger;
  const logPath = join(opts.dataDir, 'events.log');
  if (!existsSync(logPath)) throw new MigrationError(`no file event store at ${logPath}`);
  const every = opts.progressEvery ?? 5000;
  const file = FileEventStore.open(logPath, { fsync: false });
  const target = await JetStreamEventStore.open(opts.nc, { logger: log, stream: opts.stream });
  const cfg: EventStreamConfig = target.config;
  const js = jetstream(opts.nc, { timeout: 10_000 });
  try {
    // ---- what JetStream holds already (a previous run, or the app appending since)
    const liveHeads = new Map<string, number>();
    for await (const e of target.readAll()) liveHeads.set(e.stream, e.version);
    const archiveHeads = new Map<string, { version: number; seq: number }>();
    for await (const m of scanJetStream(
      js,
      opts.nc,
      cfg.archive.name,
      `${cfg.archive.subjectPrefix}.>`,
    )) {
      const stream = streamForSubject(cfg.archive.subjectPrefix, m.subject);
      const version = Number(m.version);
      if (stream && Number.isInteger(version)) archiveHeads.set(stream, { version, seq: m.seq });
    }

    // ---- the archive segments retention left beside the log, oldest first
    const segments = listArchive(logPath).filter((f) => f.kind === 'log' && !f.tmp);
    const archived = { streams: new Set<string>(), events: 0, copied: 0, present: 0 };
    for (const seg of segments) {
      for (const e of archiveRecords(seg.file)) {
        archived.streams.add(e.stream);
        archived.events++;
        const head = archiveHeads.get(e.stream);
        const have = head?.version ?? 0;
        if (e.version <= have) archived.present++;
        else if (e.version !== have + 1)
          throw new MigrationError(
            `${seg.file}: ${e.stream} version ${e.version} follows version ${have} in ${cfg.archive.name}`,
          );
        else {
          const h = headers();
          h.set(VERSION_HEADER, String(e.version));
          // The position it had in the file store (on NATS: its live stream sequence).
          h.set(POSITION_HEADER, String(e.position));
          const ack = await js.publish(
            subjectForStream(cfg.archive.subjectPrefix, e.stream),
            JSON.stringify(envelopeOf(e)),
            { msgID: e.id, expect: { lastSubjectSequence: head?.seq ?? 0 }, headers: h },
          );
          archiveHeads.set(e.stream, { version: e.version, seq: ack.seq });
          if (ack.duplicate) archived.present++;
          else archived.copied++;
        }
        const done = archived.copied + archived.present;
        if (done % every === 0) opts.onProgress?.({ part: 'archive', done, total: NaN });
      }
    }

    // ---- the live log, in store order: each fact appended where the stream's version says
    const live = { streams: new Set<string>(), events: 0, copied: 0, present: 0 };
    for await (const e of file.readAll()) {
      live.streams.add(e.stream);
      live.events++;
      // A stream the app on NATS has since archived (retention) is in the archive stream instead.
      const have = Math.max(liveHeads.get(e.stream) ?? 0, archiveHeads.get(e.stream)?.version ?? 0);
      if (e.version <= have) live.present++;
      else if (e.version !== have + 1)
        throw new MigrationError(`${e.stream}: version ${e.version} follows version ${have}`);
      else {
        const r = await target.append(e.stream, [envelopeOf(e)], { expectedVersion: have });
        if (r.version !== e.version)
          throw new MigrationError(
            `${e.stream}: appended version ${e.version}, JetStream says ${r.version}`,
          );
        liveHeads.set(e.stream, e.version);
        live.copied++;
      }
      const done = live.copied + live.present;
      if (done % every === 0) opts.onProgress?.({ part: 'live', done, total: NaN });
    }

    // ---- read both sides back
    const problems: string[] = [];
    const note = (p: string) => {
      if (problems.length < 50) problems.push(p);
      else if (problems.length === 50) problems.push('… (more not shown)');
    };
    const inNats = new Map<string, Seen>();
    for await (const e of target.readAll()) {
      const prev = inNats.get(e.id);
      if (prev) prev.twice = true;
      else
        inNats.set(e.id, {
          stream: e.stream,
          version: e.version,
          position: e.position,
          digest: digest(e),
        });
    }
    const inArchive = new Map<string, Seen>();
    for await (const m of scanJetStream(
      js,
      opts.nc,
      cfg.archive.name,
      `${cfg.archive.subjectPrefix}.>`,
    )) {
      const decoded = decodeEvent(JSON.parse(m.text) as unknown);
      if (!decoded.ok) continue;
      const id = decoded.event.id;
      const prev = inArchive.get(id);
      if (prev) prev.twice = true;
      else
        inArchive.set(id, {
          stream: decoded.event.stream,
          version: Number(m.version),
          position: m.seq,
          digest: digest(decoded.event),
        });
    }
    let lastPosition = 0;
    const fileVersions = new Map<string, number>();
    for await (const e of file.readAll()) {
      fileVersions.set(e.stream, e.version);
      const got = inNats.get(e.id);
      const since = got ? undefined : inArchive.get(e.id);
      if (since) {
        // Archived by retention on NATS since an earlier run: the copy must still say the same.
        if (since.twice) note(`stored twice in ${cfg.archive.name}: ${e.id}`);
        if (since.stream !== e.stream || since.version !== e.version || since.digest !== digest(e))
          note(`${e.id}: differs in ${cfg.archive.name}`);
      } else if (!got) note(`missing from ${cfg.name}: ${e.stream} version ${e.version} (${e.id})`);
      else {
        if (got.twice) note(`stored twice in ${cfg.name}: ${e.id}`);
        if (got.stream !== e.stream || got.version !== e.version)
          note(
            `${e.id}: ${e.stream} v${e.version} in the file, ${got.stream} v${got.version} in ${cfg.name}`,
          );
        if (got.digest !== digest(e)) note(`${e.id}: content differs`);
        if (got.position <= lastPosition)
          note(`${e.id}: out of the file store's order in ${cfg.name}`);
        lastPosition = got.position;
      }
    }
    let newerInJetStream = 0;
    for (const s of inNats.values()) {
      const v = fileVersions.get(s.stream);
      if (v !== undefined && s.version > v) newerInJetStream++;
    }
    for (const seg of segments) {
      for (const e of archiveRecords(seg.file)) {
        const got = inArchive.get(e.id);
        if (!got)
          note(`missing from ${cfg.archive.name}: ${e.stream} version ${e.version} (${e.id})`);
        else {
          if (got.twice) note(`stored twice in ${cfg.archive.name}: ${e.id}`);
          if (got.stream !== e.stream || got.version !== e.version || got.digest !== digest(e))
            note(`${e.id}: differs in ${cfg.archive.name}`);
        }
        if (inNats.has(e.id)) note(`${e.id}: archived in the file store, live in ${cfg.name}`);
      }
    }
    const report: MigrationReport = {
      live: {
        streams: live.streams.size,
        events: live.events,
        copied: live.copied,
        present: live.present,
      },
      archive: {
        segments: segments.length,
        streams: archived.streams.size,
        events: archived.events,
        copied: archived.copied,
        present: archived.present,
      },
      newerInJetStream,
      problems,
      ms: Math.round(performance.now() - t0),
    };
    log.info({ ...report, problems: problems.length }, 'migration finished');
    return report;
  } finally {
    await target.close();
    await file.close();
  }
}
