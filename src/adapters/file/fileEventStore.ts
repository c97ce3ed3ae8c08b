/**
 * Adapter: EventStore in one append-only file, the embedded default. Memory holds an index only
 * (where each record lies, per stream and in store order); events are read from disk on demand.
 * Each record is a line `<crc32 hex> <json>\n`, written and flushed to disk before the append
 * resolves (group commit, logFile.ts). On open, a torn or corrupt *last* record (a crash mid-write)
 * is dropped and cut off; corruption anywhere else stops the open with an error rather than
 * silently losing history. One process writes a file at a time (lock.ts). `compact()` moves closed
 * streams past retention to archive segments beside the log, crash-safe (compaction.ts, ADR 0012).
 */
import { existsSync, mkdirSync, unlinkSync } from 'node:fs';
import { dirname } from 'node:path';
import { decodeEvent, type EventEnvelope, type StoredEvent } from '../../events/envelope.js';
import type { AppendResult, EventStore, StreamStatus } from '../../ports/eventStore.js';
import { StreamArchivedError, VersionConflictError } from '../../shared/errors.js';
import { archivesAnything, dueForArchive, type RetentionRule } from '../retention.js';
import { ArchivedNames, compactTmpPath, settleArchive } from './archive.js';
import {
  BATCH_BYTES,
  compactLog,
  type CompactionResult,
  type CompactionStep,
} from './compaction.js';
import { StoreLock } from './lock.js';
import { FileStoreCorruptError, indexLog, LogFile } from './logFile.js';
import type { StreamEntry } from './recordTable.js';
import { LogIndex, idHash } from './recordTable.js';
import { encodeRecord, parseChecked } from './records.js';

export { COMPACTION_STEPS, type CompactionResult, type CompactionStep } from './compaction.js';
export { FileStoreLockedError } from './lock.js';
export { FileStoreCorruptError };
/**
 * An append to a stream that retention archived (or is archiving) fails with StreamArchivedError: a
 * finished actor's history is closed for good, so a late fact cannot start it over at version 1.
 */
export { StreamArchivedError };

export interface FileEventStoreOptions {
  /** fsync after every append (survives an OS crash, not just a process kill). Default true. */
  fsync?: boolean;
  /** Called once per torn record dropped at open, for a log line. */
  onTornRecord?: (info: { line: number; bytes: number }) => void;
  /** Which closed streams `compact()` keeps; without it, compaction keeps everything. */
  retention?: RetentionRule;
  /** The clock retention is measured against. Default Date.now. */
  now?: () => number;
  archive?: {
    /** Archive segments kept on disk; older ones are deleted. Default: all. */
    keepSegments?: number;
    /** Archived stream names remembered for status() (8 bytes each). Default 1,000,000. */
    rememberStreams?: number;
  };
  /** Test seam: called at each point of a compaction (the crash test dies there). */
  onCompactionStep?: (step: CompactionStep) => void;
}

interface Subscriber {
  /** The last position this subscriber was given: never give it that one or an earlier one. */
  last: number;
  readonly onEvent: (event: StoredEvent) => void;
}

export class FileEventStore implements EventStore {
  private readonly index = new LogIndex();
  private readonly log: LogFile;
  private readonly subscribers = new Set<Subscriber>();
  private readonly archived: ArchivedNames;
  private readonly lock: StoreLock;
  private readonly fsync: boolean;
  private closed = false;
  private compacting: Promise<CompactionResult> | undefined;
  /** Streams the running compaction archives: they take no appends meanwhile. */
  private dropping: ReadonlySet<string> | undefined;

  private constructor(
    readonly path: string,
    private readonly opts: FileEventStoreOptions,
  ) {
    this.fsync = opts.fsync ?? true;
    const rememberStreams = opts.archive?.rememberStreams ?? 1_000_000;
    this.archived = new ArchivedNames(rememberStreams);
    mkdirSync(dirname(path), { recursive: true });
    this.lock = new StoreLock(path);
    // A compaction that died before its rename left only a temporary copy: the log is intact.
    if (existsSync(compactTmpPath(path))) unlinkSync(compactTmpPath(path));
    const size = indexLog(path, this.index, opts.onTornRecord);
    settleArchive(path, this.index.generation, this.archived, rememberStreams);
    this.log = new LogFile(path, size);
  }

  static open(path: string, opts: FileEventStoreOptions = {}): FileEventStore {
    return new FileEventStore(path, opts);
  }

  // ---------------------------------------------------------------- reading

  private assertOpen(): void {
    if (this.closed) throw new Error('file event store is closed');
  }

  private decode(buf: Buffer, start: number, length: number, offset: number): StoredEvent {
    const parsed = parseChecked(buf, start, start + length - 1);
    const why = (w: string) => new FileStoreCorruptError(this.path, `at byte ${offset}`, w);
    if (typeof parsed === 'string') throw why(parsed);
    const decoded = decodeEvent(parsed.ok);
    if (!decoded.ok) throw why(decoded.error.message);
    const { version, position } = parsed.ok as { version: number; position: number };
    return { ...decoded.event, version, position };
  }

  private readRecord(i: number): StoredEvent {
    const t = this.index.table;
    const buf = this.log.readSpan(t.offsets[i]!, t.lengths[i]!);
    return this.decode(buf, 0, t.lengths[i]!, t.offsets[i]!);
  }

  /** The records after a position, up to about BATCH_BYTES of them, in store order. */
  private readBatch(afterPosition: number): StoredEvent[] {
    this.assertOpen();
    const t = this.index.table;
    const i = t.firstAfter(afterPosition);
    if (i >= t.count) return [];
    const start = t.offsets[i]!;
    const j = t.batchEnd(i, t.count, BATCH_BYTES);
    const buf = this.log.readSpan(start, t.offsets[j - 1]! + t.lengths[j - 1]! - start);
    const out: StoredEvent[] = [];
    for (let k = i; k < j; k++)
      out.push(this.decode(buf, t.offsets[k]! - start, t.lengths[k]!, t.offsets[k]!));
    return out;
  }

  async read(stream: string, afterVersion = 0): Promise<StoredEvent[]> {
    this.assertOpen();
    const s = this.index.streams.get(stream);
    return s ? s.recs.slice(afterVersion).map((i) => this.readRecord(i)) : [];
  }

  async *readAll(afterPosition = 0): AsyncIterable<StoredEvent> {
    let last = afterPosition;
    for (;;) {
      // Each batch is looked up afresh by position, so a compaction between batches is harmless.
      const batch = this.readBatch(last);
      if (batch.length === 0) return;
      for (const e of batch) yield e;
      last = batch.at(-1)!.position;
    }
  }

  subscribe(afterPosition: number, onEvent: (event: StoredEvent) => void): () => void {
    const sub: Subscriber = { last: afterPosition, onEvent };
    for (let batch = this.readBatch(sub.last); batch.length > 0; batch = this.readBatch(sub.last)) {
      for (const e of batch) {
        sub.last = e.position;
        onEvent(e);
      }
    }
    this.subscribers.add(sub);
    return () => this.subscribers.delete(sub);
  }

  /** Where a stream is: in the log, archived by retention, or not known here. */
  status(stream: string): StreamStatus {
    if (this.index.streams.has(stream)) return 'live';
    return this.archived.has(stream) ? 'archived' : 'unknown';
  }

  // ---------------------------------------------------------------- writing

  /** Is this id stored? The hash set answers most; a hit is confirmed on disk (stream first). */
  private hasId(id: string, s: StreamEntry | undefined): boolean {
    const h = idHash(id);
    if (!this.index.ids.has(h)) return false;
    const t = this.index.table;
    const idAt = (i: number): string | undefined => {
      const buf = this.log.readSpan(t.offsets[i]!, t.lengths[i]!);
      const parsed = parseChecked(buf, 0, buf.length - 1);
      return typeof parsed === 'string' ? undefined : (parsed.ok as { id?: string }).id;
    };
    if (s) for (const i of s.recs) if (t.idHashes[i] === h && idAt(i) === id) return true;
    for (let i = 0; i < t.count; i++) if (t.idHashes[i] === h && idAt(i) === id) return true;
    return false;
  }

  async append(
    stream: string,
    events: readonly EventEnvelope[],
    opts: { expectedVersion: number },
  ): Promise<AppendResult> {
    this.assertOpen();
    const index = this.index;
    const s = index.streams.get(stream);
    const current = s?.recs.length ?? 0;
    const fresh = events.filter((e) => !this.hasId(e.id, s));
    if (fresh.length === 0 && events.length > 0) {
      return { version: current, position: index.lastPosition };
    }
    if (this.dropping?.has(stream) || (!s && this.archived.has(stream))) {
      throw new StreamArchivedError(stream);
    }
    if (current !== opts.expectedVersion) {
      throw new VersionConflictError(stream, opts.expectedVersion, current);
    }
    if (fresh.length === 0) return { version: current, position: index.lastPosition };
    const stored = fresh.map((e, i): StoredEvent => ({
      ...e,
      stream,
      version: current + i + 1,
      position: index.lastPosition + i + 1,
    }));
    const lines = stored.map((e) => Buffer.from(encodeRecord(e)));
    let offset = this.log.append(Buffer.concat(lines));
    // Indexed at once, so the next append checks its version against this one.
    stored.forEach((e, k) => {
      const closesAt = e.meta.closes === true ? Date.parse(e.at) : NaN;
      index.add({ id: e.id, stream, position: e.position, closesAt }, offset, lines[k]!.length);
      offset += lines[k]!.length;
    });
    const result = { version: stored.at(-1)!.version, position: stored.at(-1)!.position };
    if (this.fsync) await this.log.flushed();
    for (const e of stored) {
      for (const sub of this.subscribers) {
        if (e.position <= sub.last) continue;
        sub.last = e.position;
        sub.onEvent(e);
      }
    }
    return result;
  }

  // ---------------------------------------------------------------- retention

  /**
   * One retention pass: the closed streams retention no longer keeps move to a new archive
   * segment (compaction.ts) while appends go on. One runs at a time: a call during another gets
   * the running one.
   */
  compact(): Promise<CompactionResult> {
    if (this.closed) return Promise.reject(new Error('file event store is closed'));
    this.compacting ??= this.runCompaction().finally(() => {
      this.compacting = undefined;
      this.dropping = undefined;
    });
    return this.compacting;
  }

  private async runCompaction(): Promise<CompactionResult> {
    const step = this.opts.onCompactionStep ?? (() => {});
    const { retention } = this.opts;
    const due = archivesAnything(retention)
      ? dueForArchive(this.index.closedStreams(), retention, (this.opts.now ?? Date.now)())
      : new Set<string>();
    const bytes = this.log.size;
    step('planned');
    if (due.size === 0) {
      const { generation, streams, table } = this.index;
      return {
        generation,
        ...{ keptStreams: streams.size, droppedStreams: 0, keptEvents: table.count },
        ...{ droppedEvents: 0, bytesBefore: bytes, bytesAfter: bytes },
      };
    }
    this.dropping = due;
    return compactLog(
      {
        log: this.log,
        index: this.index,
        archived: this.archived,
        keepSegments: this.opts.archive?.keepSegments ?? Infinity,
        step,
      },
      due,
    );
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.compacting?.catch(() => undefined);
    await this.log.pendingFlush;
    this.closed = true;
    this.subscribers.clear();
    this.log.close();
    this.lock.release();
  }
}
