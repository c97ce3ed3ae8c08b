/**
 * Adapter: EventStore in one append-only file, the embedded default. Memory holds an index only
 * (where each record lies, per stream and in store order); events are read from disk on demand.
 * Each record is a line `<crc32 hex> <json>\n`, written and flushed to disk before the append
 * resolves; appends that arrive while a flush is running share the next one (group commit), off the
 * event loop. On open, a torn or corrupt *last* record (a crash mid-write) is dropped and cut off;
 * corruption anywhere else stops the open with an error rather than silently losing history. One
 * process writes a file at a time (a lock file names it). `compact()` moves closed streams past
 * retention to archive segments beside the log, crash-safe at every step (ADR 0012).
 */
import { hostname } from 'node:os';
import {
  closeSync,
  existsSync,
  fdatasync,
  fdatasyncSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  renameSync,
  statSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { dirname } from 'node:path';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { decodeEvent, type EventEnvelope, type StoredEvent } from '../../events/envelope.js';
import type { AppendResult, EventStore } from '../../ports/eventStore.js';
import {
  StoreUnavailableError,
  StreamArchivedError,
  VersionConflictError,
  errorMessage,
} from '../../shared/errors.js';
import {
  ArchivedNames,
  archivePaths,
  compactTmpPath,
  decodeHashes,
  encodeHashes,
  fsyncDir,
  listArchive,
  writeFileSynced,
} from './archive.js';
import {
  classify,
  encodeMarker,
  encodeRecord,
  parseChecked,
  scanLines,
  type RecordHead,
} from './records.js';
import { RecordTable, StreamEntry, idHash, nameHash } from './recordTable.js';

export class FileStoreCorruptError extends Error {
  readonly code = 'FILE_STORE_CORRUPT';
  constructor(path: string, line: number | string, why: string) {
    super(`${path}: record ${line} is corrupt (${why}); refusing to open a damaged history`);
    this.name = 'FileStoreCorruptError';
  }
}

export class FileStoreLockedError extends Error {
  readonly code = 'FILE_STORE_LOCKED';
  constructor(path: string, pid: number) {
    super(`${path} is in use by process ${pid}`);
    this.name = 'FileStoreLockedError';
  }
}

/**
 * An append to a stream that retention archived (or is archiving) fails with StreamArchivedError: a
 * finished actor's history is closed for good, so a late fact cannot start it over at version 1.
 */
export { StreamArchivedError };

/**
 * What the store knows of a stream: `live` (in the log, readable), `archived` (closed and moved
 * out by retention: the app answers 410 Gone), `unknown` (never stored, or archived so long ago
 * that its name is no longer remembered).
 */
export type StreamStatus = 'live' | 'archived' | 'unknown';

/** The points of a compaction, in order; the crash test kills the process at each of them. */
export const COMPACTION_STEPS = [
  'planned',
  'copying',
  'copied',
  'archive-synced',
  'archive-committed',
  'live-synced',
  'tail-copied',
  'live-committed',
  'swapped',
] as const;
export type CompactionStep = (typeof COMPACTION_STEPS)[number];

export interface CompactionResult {
  /** The archive generation written (unchanged when nothing was due). */
  readonly generation: number;
  readonly keptStreams: number;
  readonly droppedStreams: number;
  readonly keptEvents: number;
  readonly droppedEvents: number;
  readonly bytesBefore: number;
  readonly bytesAfter: number;
}

export interface FileEventStoreOptions {
  /** fsync after every append (survives an OS crash, not just a process kill). Default true. */
  fsync?: boolean;
  /** Called once per torn record dropped at open, for a log line. */
  onTornRecord?: (info: { line: number; bytes: number }) => void;
  /**
   * Which closed streams (last event `meta.closes`) `compact()` keeps: those closed less than
   * `maxAgeMs` ago (by the closing fact's time) and only the `maxClosedStreams` most recently
   * closed. Open streams are always kept. Without either, compaction keeps everything.
   */
  retention?: { maxAgeMs?: number; maxClosedStreams?: number };
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

/** Bytes read at once when streaming many records (readAll, subscribe, compaction). */
const BATCH_BYTES = 1 << 20;

export class FileEventStore implements EventStore {
  private table = new RecordTable();
  private streams = new Map<string, StreamEntry>();
  /** idHash of every stored event: most appends of a new id stop here without touching disk. */
  private ids = new Set<number>();
  private readonly subscribers = new Set<Subscriber>();
  private readonly archived: ArchivedNames;
  private fd = -1;
  /** Bytes of the live log, i.e. where the next record starts. */
  private size = 0;
  private lastPosition = 0;
  /** The archive generation the live log was last compacted to (0: never). */
  private generation = 0;
  private readonly lockPath: string;
  private readonly lockText = `${process.pid} ${hostname()}`;
  private readonly fsync: boolean;
  private closed = false;
  /** Appends written but not yet on disk, waiting for the next flush. */
  private unsynced: { resolve: () => void; reject: (err: Error) => void }[] = [];
  private flushing: Promise<void> | undefined;
  private compacting: Promise<CompactionResult> | undefined;
  /** Streams the running compaction archives: they take no appends meanwhile. */
  private dropping: Set<string> | undefined;

  private constructor(
    readonly path: string,
    private readonly opts: FileEventStoreOptions,
  ) {
    this.fsync = opts.fsync ?? true;
    this.archived = new ArchivedNames(opts.archive?.rememberStreams ?? 1_000_000);
    mkdirSync(dirname(path), { recursive: true });
    this.lockPath = `${path}.lock`;
    this.takeLock();
    // A compaction that died before its rename left only a temporary copy: the log is intact.
    if (existsSync(compactTmpPath(path))) unlinkSync(compactTmpPath(path));
    this.load();
    this.loadArchive();
    this.fd = openSync(path, 'a+');
  }

  static open(path: string, opts: FileEventStoreOptions = {}): FileEventStore {
    return new FileEventStore(path, opts);
  }

  /**
   * The lock names the process and its host: on a volume that outlives its machine (a deploy), a
   * lock from another host is stale whatever pid now runs here under that number.
   */
  private takeLock(): void {
    if (existsSync(this.lockPath)) {
      const [pidText, host] = readFileSync(this.lockPath, 'utf8').trim().split(/\s+/);
      const pid = Number(pidText);
      const here = host === undefined || host === hostname();
      if (here && Number.isInteger(pid) && pid !== process.pid && isAlive(pid)) {
        throw new FileStoreLockedError(this.path, pid);
      }
    }
    writeFileSync(this.lockPath, this.lockText);
  }

  /** Indexes the log: checksum and JSON of every record, but no event is kept or decoded. */
  private load(): void {
    if (!existsSync(this.path)) return;
    const fileSize = statSync(this.path).size;
    let lineNo = 0;
    let torn: { offset: number; line: number } | undefined;
    for (const l of scanLines(this.path)) {
      lineNo++;
      const parsed = l.complete ? parseChecked(l.buf, l.start, l.end) : 'no newline (torn write)';
      const c = typeof parsed === 'string' ? parsed : classify(parsed.ok);
      if (typeof c === 'string') {
        const isLast = !l.complete || l.offset + l.length >= fileSize;
        if (!isLast) throw new FileStoreCorruptError(this.path, lineNo, c);
        torn = { offset: l.offset, line: lineNo };
        break;
      }
      if ('marker' in c) {
        this.generation = Math.max(this.generation, c.marker.generation);
        this.lastPosition = Math.max(this.lastPosition, c.marker.lastPosition);
      } else this.index(c.head, l.offset, l.length);
      this.size = l.offset + l.length;
    }
    if (torn) {
      // A crash mid-write leaves at most one partial record at the end: drop it and cut the file
      // back so the next append starts on a clean line.
      this.opts.onTornRecord?.({ line: torn.line, bytes: fileSize - torn.offset });
      const fd = openSync(this.path, 'r+');
      try {
        ftruncateSync(fd, torn.offset);
        fdatasyncSync(fd);
      } finally {
        closeSync(fd);
      }
    }
  }

  /**
   * Settles the archive against the log's generation: segments of a compaction that never
   * committed (generation above the log's) still have their events in the log, so they go; the
   * names of committed ones are remembered, newest first, up to the bound.
   */
  private loadArchive(): void {
    const files = listArchive(this.path);
    for (const f of files) if (f.tmp || f.generation > this.generation) unlinkSync(f.file);
    const names = files.filter(
      (f) => !f.tmp && f.kind === 'names' && f.generation <= this.generation,
    );
    const max = this.opts.archive?.rememberStreams ?? 1_000_000;
    const keep: { generation: number; hashes: Float64Array }[] = [];
    let total = 0;
    for (const f of names.reverse()) {
      if (total >= max) {
        unlinkSync(f.file);
        continue;
      }
      const hashes = decodeHashes(readFileSync(f.file));
      total += hashes.length;
      keep.unshift({ generation: f.generation, hashes });
    }
    for (const k of keep) this.archived.add(k.generation, k.hashes);
  }

  private index(head: RecordHead, offset: number, length: number): void {
    const i = this.table.push(offset, length, head.position, idHash(head.id));
    this.ids.add(this.table.idHashes[i]!);
    let s = this.streams.get(head.stream);
    if (s) s.recs.push(i);
    else this.streams.set(head.stream, (s = new StreamEntry([i], NaN)));
    s.closedAt = head.closesAt;
    // A closed stream rarely grows again: give back the array's spare room.
    if (!Number.isNaN(head.closesAt)) s.recs = s.recs.slice();
    if (head.position > this.lastPosition) this.lastPosition = head.position;
  }

  // ---------------------------------------------------------------- reading

  /** Reads one span of the log. Synchronous, so it never sees a half-swapped compaction. */
  private readSpan(offset: number, length: number): Buffer {
    const buf = Buffer.allocUnsafe(length);
    let got = 0;
    while (got < length) {
      const n = readSync(this.fd, buf, got, length - got, offset + got);
      if (n === 0)
        throw new FileStoreCorruptError(this.path, `at byte ${offset}`, 'log ends early');
      got += n;
    }
    return buf;
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
    const t = this.table;
    return this.decode(
      this.readSpan(t.offsets[i]!, t.lengths[i]!),
      0,
      t.lengths[i]!,
      t.offsets[i]!,
    );
  }

  /** The records after a position, up to about BATCH_BYTES of them, in store order. */
  private readBatch(afterPosition: number): StoredEvent[] {
    if (this.closed) throw new Error('file event store is closed');
    const t = this.table;
    const i = t.firstAfter(afterPosition);
    if (i >= t.count) return [];
    const start = t.offsets[i]!;
    let j = i + 1;
    while (j < t.count && t.offsets[j]! + t.lengths[j]! - start <= BATCH_BYTES) j++;
    const buf = this.readSpan(start, t.offsets[j - 1]! + t.lengths[j - 1]! - start);
    const out: StoredEvent[] = [];
    for (let k = i; k < j; k++)
      out.push(this.decode(buf, t.offsets[k]! - start, t.lengths[k]!, t.offsets[k]!));
    return out;
  }

  async read(stream: string, afterVersion = 0): Promise<StoredEvent[]> {
    if (this.closed) throw new Error('file event store is closed');
    const s = this.streams.get(stream);
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
    if (this.streams.has(stream)) return 'live';
    return this.archived.has(stream) ? 'archived' : 'unknown';
  }

  // ---------------------------------------------------------------- writing

  /** Is this id stored? The hash set answers most; a hit is confirmed on disk (stream first). */
  private hasId(id: string, s: StreamEntry | undefined): boolean {
    const h = idHash(id);
    if (!this.ids.has(h)) return false;
    const t = this.table;
    const idAt = (i: number): string | undefined => {
      const buf = this.readSpan(t.offsets[i]!, t.lengths[i]!);
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
    if (this.closed) throw new Error('file event store is closed');
    const s = this.streams.get(stream);
    const current = s?.recs.length ?? 0;
    const fresh = events.filter((e) => !this.hasId(e.id, s));
    if (fresh.length === 0 && events.length > 0) {
      return { version: current, position: this.lastPosition };
    }
    if (this.dropping?.has(stream) || (!s && this.archived.has(stream))) {
      throw new StreamArchivedError(stream);
    }
    if (current !== opts.expectedVersion) {
      throw new VersionConflictError(stream, opts.expectedVersion, current);
    }
    if (fresh.length === 0) return { version: current, position: this.lastPosition };
    const stored = fresh.map((e, i): StoredEvent => ({
      ...e,
      stream,
      version: current + i + 1,
      position: this.lastPosition + i + 1,
    }));
    const lines = stored.map((e) => Buffer.from(encodeRecord(e)));
    // One write per append: a record is either wholly in the file or (torn) dropped at next open.
    this.writeRecords(Buffer.concat(lines));
    // Indexed at once, so the next append checks its version against this one.
    let offset = this.size;
    stored.forEach((e, k) => {
      const closesAt = e.meta.closes === true ? Date.parse(e.at) : NaN;
      this.index({ id: e.id, stream, position: e.position, closesAt }, offset, lines[k]!.length);
      offset += lines[k]!.length;
    });
    this.size = offset;
    const result = { version: stored.at(-1)!.version, position: stored.at(-1)!.position };
    if (this.fsync) await this.flushed();
    for (const e of stored) {
      for (const sub of this.subscribers) {
        if (e.position <= sub.last) continue;
        sub.last = e.position;
        sub.onEvent(e);
      }
    }
    return result;
  }

  /** Appends bytes to the log; on failure cuts back what part of them got in, then throws. */
  private writeRecords(data: Buffer): void {
    try {
      let off = 0;
      while (off < data.length) off += writeSync(this.fd, data, off, data.length - off);
    } catch (err) {
      try {
        ftruncateSync(this.fd, this.size);
      } catch {
        // The open will drop the torn tail instead.
      }
      throw new StoreUnavailableError(`could not write ${this.path}: ${errorMessage(err)}`, {
        cause: err,
      });
    }
  }

  /** Resolves once everything written so far is on disk; one fdatasync serves every waiter. */
  private flushed(): Promise<void> {
    const done = new Promise<void>((resolve, reject) => this.unsynced.push({ resolve, reject }));
    this.flushing ??= this.flushLoop();
    return done;
  }

  private async flushLoop(): Promise<void> {
    while (this.unsynced.length > 0) {
      const waiting = this.unsynced;
      this.unsynced = [];
      try {
        await new Promise<void>((resolve, reject) =>
          fdatasync(this.fd, (err) => (err ? reject(err) : resolve())),
        );
        for (const w of waiting) w.resolve();
      } catch (err) {
        const failure = new StoreUnavailableError(
          `could not flush ${this.path}: ${errorMessage(err)}`,
          { cause: err },
        );
        for (const w of waiting) w.reject(failure);
      }
    }
    this.flushing = undefined;
  }

  // ---------------------------------------------------------------- compaction

  /** The closed streams retention no longer keeps. */
  private dueForArchive(): string[] {
    const { maxAgeMs, maxClosedStreams } = this.opts.retention ?? {};
    if (maxAgeMs === undefined && maxClosedStreams === undefined) return [];
    const closed: { name: string; at: number; last: number }[] = [];
    for (const [name, s] of this.streams) {
      if (!Number.isNaN(s.closedAt)) closed.push({ name, at: s.closedAt, last: s.recs.at(-1)! });
    }
    const due = new Set<string>();
    if (maxAgeMs !== undefined) {
      const cutoff = (this.opts.now ?? Date.now)() - maxAgeMs;
      for (const c of closed) if (c.at < cutoff) due.add(c.name);
    }
    if (maxClosedStreams !== undefined && closed.length > maxClosedStreams) {
      closed.sort((a, b) => b.at - a.at || b.last - a.last);
      for (const c of closed.slice(Math.max(0, maxClosedStreams))) due.add(c.name);
    }
    return [...due];
  }

  /**
   * Rewrites the log with only what retention keeps and moves the rest to a new archive segment,
   * while appends go on. Positions, versions and order of kept events do not change. Crash-safe:
   * the archive segment is committed first, the new log last (by rename), and open discards a
   * segment whose generation the log does not name, so a kill anywhere loses and doubles nothing.
   * One runs at a time: a call during another gets the running one.
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
    const due = this.dueForArchive();
    const bytesBefore = this.size;
    step('planned');
    if (due.length === 0) {
      const events = this.table.count;
      return {
        generation: this.generation,
        ...{ keptStreams: this.streams.size, droppedStreams: 0, keptEvents: events },
        ...{ droppedEvents: 0, bytesBefore, bytesAfter: bytesBefore },
      };
    }
    const generation = this.generation + 1;
    const paths = archivePaths(this.path, generation);
    const tmpPath = compactTmpPath(this.path);
    this.dropping = new Set(due);
    const old = this.table;
    const n = old.count;
    const drop = new Uint8Array(n);
    for (const name of due) for (const i of this.streams.get(name)!.recs) drop[i] = 1;
    /** Old record number → new one, for records before the tail. */
    const remap = new Int32Array(n);
    const next = new RecordTable();
    let liveFd: number | undefined;
    let arcFd: number | undefined;
    let archiveCommitted = false;
    let committed = false;
    try {
      if (existsSync(tmpPath)) unlinkSync(tmpPath);
      liveFd = openSync(tmpPath, 'a+');
      arcFd = openSync(paths.segmentTmp, 'w');
      let liveSize = 0;
      let droppedEvents = 0;
      // 1. Copy the records present now, kept ones to the new log, due ones to the archive, in
      //    slices with a turn of the event loop between them: appends go on meanwhile.
      for (let i = 0; i < n;) {
        const start = old.offsets[i]!;
        let j = i + 1;
        while (j < n && old.offsets[j]! + old.lengths[j]! - start <= BATCH_BYTES) j++;
        const buf = this.readSpan(start, old.offsets[j - 1]! + old.lengths[j - 1]! - start);
        const kept: Buffer[] = [];
        const gone: Buffer[] = [];
        for (let k = i; k < j; k++) {
          const rec = buf.subarray(
            old.offsets[k]! - start,
            old.offsets[k]! - start + old.lengths[k]!,
          );
          if (drop[k]) {
            gone.push(rec);
            droppedEvents++;
          } else {
            remap[k] = next.push(liveSize, rec.length, old.positions[k]!, old.idHashes[k]!);
            liveSize += rec.length;
            kept.push(rec);
          }
        }
        writeFully(liveFd, Buffer.concat(kept));
        writeFully(arcFd, Buffer.concat(gone));
        i = j;
        step('copying');
        await yieldToLoop();
      }
      step('copied');
      // 2. Commit the archive segment and its names. Until the log names this generation, open
      //    deletes them (their events are still in the log).
      await fdatasyncAsync(arcFd);
      closeSync(arcFd);
      arcFd = undefined;
      const hashes = Float64Array.from(due, nameHash).sort();
      writeFileSynced(paths.namesTmp, encodeHashes(hashes));
      step('archive-synced');
      archiveCommitted = true; // from the first rename on, a failure must take it back
      renameSync(paths.segmentTmp, paths.segment);
      renameSync(paths.namesTmp, paths.names);
      fsyncDir(dirname(this.path));
      step('archive-committed');
      // 3. Flush the bulk of the new log off the event loop.
      await fdatasyncAsync(liveFd);
      step('live-synced');
      // 4. Synchronously from here to the swap, so no append slips between: copy the records
      //    appended since step 1 (all due streams refused appends), then the marker naming this
      //    generation, flush, and rename over the live log.
      const tailBase = next.count;
      if (old.count > n) {
        const from = old.offsets[n]!;
        writeFully(liveFd, this.readSpan(from, this.size - from));
        for (let k = n; k < old.count; k++) {
          next.push(
            liveSize + old.offsets[k]! - from,
            old.lengths[k]!,
            old.positions[k]!,
            old.idHashes[k]!,
          );
        }
        liveSize += this.size - from;
      }
      const marker = Buffer.from(encodeMarker({ generation, lastPosition: this.lastPosition }));
      writeFully(liveFd, marker);
      liveSize += marker.length;
      fdatasyncSync(liveFd);
      step('tail-copied');
      renameSync(tmpPath, this.path);
      // Committed: whatever happens next, the index must follow the file now at `path`. The
      // rename is made durable before this synchronous stretch ends, so no append is acknowledged
      // into the new log before it is the log for good.
      committed = true;
      step('live-committed');
      // 5. Swap the index and the file descriptor.
      const streams = new Map<string, StreamEntry>();
      for (const [name, s] of this.streams) {
        if (this.dropping.has(name)) continue;
        s.recs = s.recs.map((i) => (i < n ? remap[i]! : tailBase + i - n));
        streams.set(name, s);
      }
      this.streams = streams;
      this.table = next;
      this.ids = new Set(next.idHashes.subarray(0, next.count));
      const oldFd = this.fd;
      this.fd = liveFd;
      liveFd = undefined;
      this.size = liveSize;
      this.generation = generation;
      // A flush running on the old descriptor finishes first; its data is in the new log already.
      if (this.flushing) void this.flushing.then(() => closeSync(oldFd));
      else closeSync(oldFd);
      const forgotten = this.archived.add(generation, hashes);
      fsyncDir(dirname(this.path));
      step('swapped');
      try {
        this.rotateArchive(forgotten);
      } catch {
        // Old segments stay until the next compaction rotates them: nothing is lost.
      }
      return {
        generation,
        keptStreams: streams.size,
        droppedStreams: due.length,
        keptEvents: next.count,
        droppedEvents,
        bytesBefore,
        bytesAfter: liveSize,
      };
    } catch (err) {
      if (arcFd !== undefined) closeSync(arcFd);
      if (liveFd !== undefined) closeSync(liveFd);
      if (!committed) {
        // The log is untouched: take back whatever of this compaction reached the disk.
        for (const f of [tmpPath, paths.segmentTmp, paths.namesTmp]) rmQuiet(f);
        if (archiveCommitted) for (const f of [paths.segment, paths.names]) rmQuiet(f);
      }
      throw err;
    }
  }

  /** Deletes archive segments beyond `keepSegments`, and names files no longer remembered. */
  private rotateArchive(forgotten: number | undefined): void {
    const keep = this.opts.archive?.keepSegments ?? Infinity;
    const files = listArchive(this.path).filter((f) => !f.tmp);
    const segments = files.filter((f) => f.kind === 'log');
    for (const f of segments.slice(0, Math.max(0, segments.length - keep))) rmQuiet(f.file);
    if (forgotten !== undefined) {
      for (const f of files) if (f.kind === 'names' && f.generation <= forgotten) rmQuiet(f.file);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.compacting?.catch(() => undefined);
    await this.flushing;
    this.closed = true;
    this.subscribers.clear();
    closeSync(this.fd);
    try {
      if (readFileSync(this.lockPath, 'utf8').trim() === this.lockText) unlinkSync(this.lockPath);
    } catch {
      // The lock is gone already: nothing to release.
    }
  }
}

function writeFully(fd: number, data: Buffer): void {
  let off = 0;
  while (off < data.length) off += writeSync(fd, data, off, data.length - off);
}

function fdatasyncAsync(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fdatasync(fd, (err) => (err ? reject(err) : resolve())));
}

function rmQuiet(file: string): void {
  try {
    unlinkSync(file);
  } catch {
    // Already gone.
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
