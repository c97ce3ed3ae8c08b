/**
 * The file store's live log on disk: indexing it at open (a torn last record is cut off, damage
 * anywhere else refuses the open), reading spans of it, appending records, and group commit, where
 * appends that arrive while a flush runs share the next one, off the event loop.
 */
import { closeSync, fdatasyncSync, ftruncateSync, openSync, readSync, statSync } from 'node:fs';
import { existsSync } from 'node:fs';
import { errorMessage, StoreUnavailableError } from '../../shared/errors.js';
import { fdatasyncAsync, writeFully } from './durable.js';
import type { LogIndex } from './recordTable.js';
import { classify, parseChecked, scanLines } from './records.js';

export class FileStoreCorruptError extends Error {
  readonly code = 'FILE_STORE_CORRUPT';
  constructor(path: string, line: number | string, why: string) {
    super(`${path}: record ${line} is corrupt (${why}); refusing to open a damaged history`);
    this.name = 'FileStoreCorruptError';
  }
}

/**
 * Indexes the log at `path` into `index` (checksum and JSON of every record, no event kept or
 * decoded) and returns its size. A crash mid-write leaves at most one partial record at the end:
 * it is reported, dropped and cut off, so the next append starts on a clean line.
 */
export function indexLog(
  path: string,
  index: LogIndex,
  onTornRecord?: (info: { line: number; bytes: number }) => void,
): number {
  if (!existsSync(path)) return 0;
  const fileSize = statSync(path).size;
  let size = 0;
  let lineNo = 0;
  let torn: { offset: number; line: number } | undefined;
  for (const l of scanLines(path)) {
    lineNo++;
    const parsed = l.complete ? parseChecked(l.buf, l.start, l.end) : 'no newline (torn write)';
    const c = typeof parsed === 'string' ? parsed : classify(parsed.ok);
    if (typeof c === 'string') {
      const isLast = !l.complete || l.offset + l.length >= fileSize;
      if (!isLast) throw new FileStoreCorruptError(path, lineNo, c);
      torn = { offset: l.offset, line: lineNo };
      break;
    }
    if ('marker' in c) index.mark(c.marker);
    else index.add(c.head, l.offset, l.length);
    size = l.offset + l.length;
  }
  if (torn) {
    onTornRecord?.({ line: torn.line, bytes: fileSize - torn.offset });
    const fd = openSync(path, 'r+');
    try {
      ftruncateSync(fd, torn.offset);
      fdatasyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }
  return size;
}

export class LogFile {
  private fd: number;
  /** Appends written but not yet on disk, waiting for the next flush. */
  private unsynced: { resolve: () => void; reject: (err: Error) => void }[] = [];
  private flushing: Promise<void> | undefined;

  constructor(
    readonly path: string,
    /** Bytes of the log, i.e. where the next record starts. */
    public size: number,
  ) {
    this.fd = openSync(path, 'a+');
  }

  /** Reads one span of the log. Synchronous, so it never sees a half-swapped compaction. */
  readSpan(offset: number, length: number): Buffer {
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

  /**
   * Appends bytes in one write (a record is either wholly in the file or, torn, dropped at the next
   * open) and returns where they start; on failure cuts back what part of them got in, then throws.
   */
  append(data: Buffer): number {
    const start = this.size;
    try {
      writeFully(this.fd, data);
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
    this.size += data.length;
    return start;
  }

  /** Resolves once everything written so far is on disk; one fdatasync serves every waiter. */
  flushed(): Promise<void> {
    const done = new Promise<void>((resolve, reject) => this.unsynced.push({ resolve, reject }));
    this.flushing ??= this.flushLoop();
    return done;
  }

  /** The flush running now, if any. */
  get pendingFlush(): Promise<void> | undefined {
    return this.flushing;
  }

  private async flushLoop(): Promise<void> {
    while (this.unsynced.length > 0) {
      const waiting = this.unsynced;
      this.unsynced = [];
      try {
        await fdatasyncAsync(this.fd);
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

  /**
   * Continue on a new file now at `path` (a compaction renamed it over the old one). A flush
   * running on the old descriptor finishes first; its data is in the new log already.
   */
  swap(fd: number, size: number): void {
    const oldFd = this.fd;
    this.fd = fd;
    this.size = size;
    if (this.flushing) void this.flushing.then(() => closeSync(oldFd));
    else closeSync(oldFd);
  }

  close(): void {
    closeSync(this.fd);
  }
}
