/**
 * Writes the file store relies on being whole and on disk: full writes (writeSync may write less),
 * data flushes off the event loop, directory syncs that make renames durable, quiet removal.
 */
import {
  closeSync,
  fdatasync,
  fdatasyncSync,
  fsyncSync,
  openSync,
  unlinkSync,
  writeSync,
} from 'node:fs';

/** Writes all of `data` at the descriptor's position. */
export function writeFully(fd: number, data: Buffer): void {
  let off = 0;
  while (off < data.length) off += writeSync(fd, data, off, data.length - off);
}

/** Flushes a descriptor's data to disk without blocking the event loop. */
export function fdatasyncAsync(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fdatasync(fd, (err) => (err ? reject(err) : resolve())));
}

/** Writes a whole file and flushes it to disk before returning. */
export function writeFileSynced(file: string, data: Buffer): void {
  const fd = openSync(file, 'w');
  try {
    writeFully(fd, data);
    fdatasyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Makes renames and creations in a directory durable. */
export function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Removes a file that may already be gone. */
export function rmQuiet(file: string): void {
  try {
    unlinkSync(file);
  } catch {
    // Already gone.
  }
}
