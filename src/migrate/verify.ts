/**
 * The migration's read-back: both stores are read again after the copy and compared fact by fact,
 * so a run reports what differs instead of trusting its own writes.
 */
import { createHash } from 'node:crypto';
import type { FileEventStore } from '../adapters/file/fileEventStore.js';
import type { EventStreamConfig } from '../adapters/nats/connection.js';
import type { JetStreamEventStore } from '../adapters/nats/jetStreamEventStore.js';
import { decodeEvent, type EventEnvelope, type StoredEvent } from '../events/envelope.js';

/** An event's envelope without its place in a store: what both stores are given to append. */
export function envelopeOf(e: StoredEvent): EventEnvelope {
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

/** One message of the archive stream as copy.ts scans it. */
export interface ArchiveMessage {
  readonly seq: number;
  readonly version: string | undefined;
  readonly text: string;
}

export interface VerifyInput {
  readonly file: FileEventStore;
  readonly target: JetStreamEventStore;
  readonly cfg: EventStreamConfig;
  /** The archive stream's messages; scanned once, after the event stream. */
  readonly archiveInNats: AsyncIterable<ArchiveMessage>;
  /** The file store's archive segment records, oldest first. */
  readonly archiveInFile: () => Iterable<StoredEvent>;
}

export interface VerifyResult {
  readonly problems: string[];
  readonly newerInJetStream: number;
}

type Note = (problem: string) => void;

/** Index of what the event stream holds, by event id. */
async function readLiveBack(target: JetStreamEventStore): Promise<Map<string, Seen>> {
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
  return inNats;
}

/** Index of what the archive stream holds, by event id; undecodable messages are not ours. */
async function readArchiveBack(
  messages: AsyncIterable<ArchiveMessage>,
): Promise<Map<string, Seen>> {
  const inArchive = new Map<string, Seen>();
  for await (const m of messages) {
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
  return inArchive;
}

/**
 * Each live-log fact must be in the event stream once, unchanged and in store order (or archived
 * on NATS since). Returns each file stream's last version, to tell newer facts from mismatches.
 */
async function checkLive(
  input: VerifyInput,
  inNats: Map<string, Seen>,
  inArchive: Map<string, Seen>,
  note: Note,
): Promise<Map<string, number>> {
  const { cfg } = input;
  let lastPosition = 0;
  const fileVersions = new Map<string, number>();
  for await (const e of input.file.readAll()) {
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
  return fileVersions;
}

/** Each archived fact must be in the archive stream once, unchanged, and not live on NATS. */
function checkArchive(
  input: VerifyInput,
  inNats: Map<string, Seen>,
  inArchive: Map<string, Seen>,
  note: Note,
): void {
  const { cfg } = input;
  for (const e of input.archiveInFile()) {
    const got = inArchive.get(e.id);
    if (!got) note(`missing from ${cfg.archive.name}: ${e.stream} version ${e.version} (${e.id})`);
    else {
      if (got.twice) note(`stored twice in ${cfg.archive.name}: ${e.id}`);
      if (got.stream !== e.stream || got.version !== e.version || got.digest !== digest(e))
        note(`${e.id}: differs in ${cfg.archive.name}`);
    }
    if (inNats.has(e.id)) note(`${e.id}: archived in the file store, live in ${cfg.name}`);
  }
}

/** Read both sides back and list what differs (capped, so a bad run stays readable). */
export async function verifyMigration(input: VerifyInput): Promise<VerifyResult> {
  const problems: string[] = [];
  const note: Note = (p) => {
    if (problems.length < 50) problems.push(p);
    else if (problems.length === 50) problems.push('… (more not shown)');
  };
  const inNats = await readLiveBack(input.target);
  const inArchive = await readArchiveBack(input.archiveInNats);
  const fileVersions = await checkLive(input, inNats, inArchive, note);
  let newerInJetStream = 0;
  for (const s of inNats.values()) {
    const v = fileVersions.get(s.stream);
    if (v !== undefined && s.version > v) newerInJetStream++;
  }
  checkArchive(input, inNats, inArchive, note);
  return { problems, newerInJetStream };
}
