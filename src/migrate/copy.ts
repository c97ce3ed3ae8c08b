/**
 * Moves the history of a single machine's file store into JetStream: the live log's streams into
 * the event stream (same ids, versions and store order, through the JetStream event store), and the
 * archive segments retention left on disk into the archive stream (as retention on NATS writes it,
 * so archived launches still answer 410). Idempotent: what JetStream already holds is skipped, so a
 * second run copies nothing. Then both sides are read back and compared.
 */
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
import { decodeEvent, type StoredEvent } from '../events/envelope.js';
import type { Logger } from '../shared/log.js';
import { envelopeOf, verifyMigration } from './verify.js';

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

/** Where each actor stream ends in JetStream already (a previous run, or the app appending since). */
interface Heads {
  readonly live: Map<string, number>;
  readonly archive: Map<string, { version: number; seq: number }>;
}

/** What the copy needs of JetStream and of the caller, shared by both parts. */
interface Copying {
  readonly js: JetStreamClient;
  readonly nc: NatsConnection;
  readonly cfg: EventStreamConfig;
  readonly every: number;
  readonly onProgress: MigrationOptions['onProgress'];
}

interface Tally {
  readonly streams: Set<string>;
  events: number;
  copied: number;
  present: number;
}

function newTally(): Tally {
  return { streams: new Set<string>(), events: 0, copied: 0, present: 0 };
}

function partOf(t: Tally): PartReport {
  return { streams: t.streams.size, events: t.events, copied: t.copied, present: t.present };
}

/** The archive stream, every message, in order. */
function scanArchive(c: Copying) {
  return scanJetStream(c.js, c.nc, c.cfg.archive.name, `${c.cfg.archive.subjectPrefix}.>`);
}

/** Read what JetStream holds, so the copy resumes where it stands and a rerun copies nothing. */
async function readHeads(c: Copying, target: JetStreamEventStore): Promise<Heads> {
  const live = new Map<string, number>();
  for await (const e of target.readAll()) live.set(e.stream, e.version);
  const archive = new Map<string, { version: number; seq: number }>();
  for await (const m of scanArchive(c)) {
    const stream = streamForSubject(c.cfg.archive.subjectPrefix, m.subject);
    const version = Number(m.version);
    if (stream && Number.isInteger(version)) archive.set(stream, { version, seq: m.seq });
  }
  return { live, archive };
}

/**
 * Publish the archive segments' facts into the archive stream, as retention on NATS writes them,
 * each only after its stream's previous version (a gap or a conflict throws).
 */
async function copyArchive(c: Copying, segmentFiles: string[], heads: Heads): Promise<Tally> {
  const archived = newTally();
  for (const segFile of segmentFiles) {
    for (const e of archiveRecords(segFile)) {
      archived.streams.add(e.stream);
      archived.events++;
      const head = heads.archive.get(e.stream);
      const have = head?.version ?? 0;
      if (e.version <= have) archived.present++;
      else if (e.version !== have + 1)
        throw new MigrationError(
          `${segFile}: ${e.stream} version ${e.version} follows version ${have} in ${c.cfg.archive.name}`,
        );
      else {
        const h = headers();
        h.set(VERSION_HEADER, String(e.version));
        // The position it had in the file store (on NATS: its live stream sequence).
        h.set(POSITION_HEADER, String(e.position));
        const ack = await c.js.publish(
          subjectForStream(c.cfg.archive.subjectPrefix, e.stream),
          JSON.stringify(envelopeOf(e)),
          { msgID: e.id, expect: { lastSubjectSequence: head?.seq ?? 0 }, headers: h },
        );
        heads.archive.set(e.stream, { version: e.version, seq: ack.seq });
        if (ack.duplicate) archived.present++;
        else archived.copied++;
      }
      const done = archived.copied + archived.present;
      if (done % c.every === 0) c.onProgress?.({ part: 'archive', done, total: NaN });
    }
  }
  return archived;
}

/** Append the live log in store order, each fact where its stream's version says. */
async function copyLive(
  c: Copying,
  file: FileEventStore,
  target: JetStreamEventStore,
  heads: Heads,
): Promise<Tally> {
  const live = newTally();
  for await (const e of file.readAll()) {
    live.streams.add(e.stream);
    live.events++;
    // A stream the app on NATS has since archived (retention) is in the archive stream instead.
    const have = Math.max(heads.live.get(e.stream) ?? 0, heads.archive.get(e.stream)?.version ?? 0);
    if (e.version <= have) live.present++;
    else if (e.version !== have + 1)
      throw new MigrationError(`${e.stream}: version ${e.version} follows version ${have}`);
    else {
      const r = await target.append(e.stream, [envelopeOf(e)], { expectedVersion: have });
      if (r.version !== e.version)
        throw new MigrationError(
          `${e.stream}: appended version ${e.version}, JetStream says ${r.version}`,
        );
      heads.live.set(e.stream, e.version);
      live.copied++;
    }
    const done = live.copied + live.present;
    if (done % c.every === 0) c.onProgress?.({ part: 'live', done, total: NaN });
  }
  return live;
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
  const file = FileEventStore.open(logPath, { fsync: false });
  const target = await JetStreamEventStore.open(opts.nc, { logger: log, stream: opts.stream });
  const c: Copying = {
    js: jetstream(opts.nc, { timeout: 10_000 }),
    nc: opts.nc,
    cfg: target.config,
    every: opts.progressEvery ?? 5000,
    onProgress: opts.onProgress,
  };
  try {
    const heads = await readHeads(c, target);
    // The archive segments retention left beside the log, oldest first.
    const segments = listArchive(logPath).filter((f) => f.kind === 'log' && !f.tmp);
    const segmentFiles = segments.map((seg) => seg.file);
    const archived = await copyArchive(c, segmentFiles, heads);
    const live = await copyLive(c, file, target, heads);
    const { problems, newerInJetStream } = await verifyMigration({
      file,
      target,
      cfg: c.cfg,
      archiveInNats: scanArchive(c),
      archiveInFile: function* () {
        for (const segFile of segmentFiles) yield* archiveRecords(segFile);
      },
    });
    const report: MigrationReport = {
      live: partOf(live),
      archive: { segments: segments.length, ...partOf(archived) },
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
