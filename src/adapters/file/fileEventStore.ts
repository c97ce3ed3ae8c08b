/**
 * Adapter: EventStore in one append-only file, the embedded default. Each record is a line
 * `<crc32 hex> <json>\n`, written and flushed to disk before the append resolves; appends that
 * arrive while a flush is running share the next one (group commit), off the event loop. On open, a torn or
 * corrupt *last* record (a crash mid-write) is dropped and cut off; corruption anywhere else stops
 * the open with an error rather than silently losing history. One process writes a file at a time
 * (a lock file names it).
 */
import {
  closeSync,
  existsSync,
  fdatasync,
  fdatasyncSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readFileSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { dirname } from 'node:path';
import { crc32 } from 'node:zlib';
import { decodeEvent, type EventEnvelope, type StoredEvent } from '../../events/envelope.js';
import type { AppendResult, EventStore } from '../../ports/eventStore.js';
import { StoreUnavailableError, VersionConflictError, errorMessage } from '../../shared/errors.js';

export class FileStoreCorruptError extends Error {
  readonly code = 'FILE_STORE_CORRUPT';
  constructor(path: string, line: number, why: string) {
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

export interface FileEventStoreOptions {
  /** fsync after every append (survives an OS crash, not just a process kill). Default true. */
  fsync?: boolean;
  /** Called once per torn record dropped at open, for a log line. */
  onTornRecord?: (info: { line: number; bytes: number }) => void;
}

function encodeLine(e: StoredEvent): string {
  const json = JSON.stringify(e);
  return `${crc32(json).toString(16).padStart(8, '0')} ${json}\n`;
}

function parseLine(line: string): StoredEvent | string {
  const sp = line.indexOf(' ');
  if (sp !== 8) return 'no checksum';
  const json = line.slice(9);
  if (crc32(json).toString(16).padStart(8, '0') !== line.slice(0, 8)) return 'checksum mismatch';
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch {
    return 'not JSON';
  }
  const decoded = decodeEvent(raw);
  if (!decoded.ok) return decoded.error.message;
  const { version, position } = raw as { version?: unknown; position?: unknown };
  if (!Number.isInteger(version) || !Number.isInteger(position)) return 'no version/position';
  return { ...decoded.event, version: version as number, position: position as number };
}

export class FileEventStore implements EventStore {
  private readonly streams = new Map<string, StoredEvent[]>();
  private readonly log: StoredEvent[] = [];
  private readonly ids = new Set<string>();
  private readonly listeners = new Set<(e: StoredEvent) => void>();
  private fd: number;
  private readonly lockPath: string;
  private readonly fsync: boolean;
  private closed = false;
  /** Appends written but not yet on disk, waiting for the next flush. */
  private unsynced: { resolve: () => void; reject: (err: Error) => void }[] = [];
  private flushing: Promise<void> | undefined;

  private constructor(
    readonly path: string,
    opts: FileEventStoreOptions,
  ) {
    this.fsync = opts.fsync ?? true;
    mkdirSync(dirname(path), { recursive: true });
    this.lockPath = `${path}.lock`;
    this.takeLock();
    this.load(opts);
    this.fd = openSync(path, 'a');
  }

  static open(path: string, opts: FileEventStoreOptions = {}): FileEventStore {
    return new FileEventStore(path, opts);
  }

  private takeLock(): void {
    if (existsSync(this.lockPath)) {
      const pid = Number(readFileSync(this.lockPath, 'utf8').trim());
      if (Number.isInteger(pid) && pid !== process.pid && isAlive(pid)) {
        throw new FileStoreLockedError(this.path, pid);
      }
    }
    writeFileSync(this.lockPath, String(process.pid));
  }

  private load(opts: FileEventStoreOptions): void {
    if (!existsSync(this.path)) return;
    const buf = readFileSync(this.path);
    let offset = 0;
    let lineNo = 0;
    while (offset < buf.length) {
      const nl = buf.indexOf(0x0a, offset);
      lineNo++;
      const end = nl === -1 ? buf.length : nl;
      const parsed =
        nl === -1 ? 'no newline (torn write)' : parseLine(buf.toString('utf8', offset, end));
      if (typeof parsed === 'string') {
        const isLast = nl === -1 || nl + 1 >= buf.length;
        if (!isLast) throw new FileStoreCorruptError(this.path, lineNo, parsed);
        // A crash mid-write leaves at most one partial record at the end: drop it and cut the file
        // back so the next append starts on a clean line.
        opts.onTornRecord?.({ line: lineNo, bytes: buf.length - offset });
        const fd = openSync(this.path, 'r+');
        try {
          ftruncateSync(fd, offset);
          fdatasyncSync(fd);
        } finally {
          closeSync(fd);
        }
        break;
      }
      this.index(parsed);
      offset = end + 1;
    }
  }

  private index(e: StoredEvent): void {
    const s = this.streams.get(e.stream);
    if (s) s.push(e);
    else this.streams.set(e.stream, [e]);
    this.log.push(e);
    this.ids.add(e.id);
  }

  async read(stream: string, afterVersion = 0): Promise<StoredEvent[]> {
    return (this.streams.get(stream) ?? []).slice(afterVersion);
  }

  async append(
    stream: string,
    events: readonly EventEnvelope[],
    opts: { expectedVersion: number },
  ): Promise<AppendResult> {
    if (this.closed) throw new Error('file event store is closed');
    const current = this.streams.get(stream) ?? [];
    const fresh = events.filter((e) => !this.ids.has(e.id));
    if (fresh.length === 0 && events.length > 0) {
      return { version: current.length, position: this.log.length };
    }
    if (current.length !== opts.expectedVersion) {
      throw new VersionConflictError(stream, opts.expectedVersion, current.length);
    }
    const stored = fresh.map((e, i): StoredEvent => ({
      ...e,
      stream,
      version: current.length + i + 1,
      position: this.log.length + i + 1,
    }));
    // One write per append: a record is either wholly in the file or (torn) dropped at next open.
    // Written and indexed at once, so the next append checks its version against this one.
    writeSync(this.fd, stored.map(encodeLine).join(''));
    const result = { version: stored.at(-1)!.version, position: stored.at(-1)!.position };
    for (const e of stored) this.index(e);
    if (this.fsync) await this.flushed();
    for (const e of stored) for (const l of this.listeners) l(e);
    return result;
  }

  async *readAll(afterPosition = 0): AsyncIterable<StoredEvent> {
    for (let i = afterPosition; i < this.log.length; i++) yield this.log[i]!;
  }

  subscribe(afterPosition: number, onEvent: (event: StoredEvent) => void): () => void {
    for (let i = afterPosition; i < this.log.length; i++) onEvent(this.log[i]!);
    this.listeners.add(onEvent);
    return () => this.listeners.delete(onEvent);
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

  async close(): Promise<void> {
    if (this.closed) return;
    await this.flushing;
    this.closed = true;
    this.listeners.clear();
    closeSync(this.fd);
    try {
      if (readFileSync(this.lockPath, 'utf8').trim() === String(process.pid))
        unlinkSync(this.lockPath);
    } catch {
      // The lock is gone already: nothing to release.
    }
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
