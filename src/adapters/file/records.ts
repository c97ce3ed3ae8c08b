/**
 * The file store's on-disk record format: one line `<crc32 hex> <json>\n` per event, plus the
 * commit marker a compaction leaves in the log it wrote. Shared by open, reads and compaction.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { crc32 } from 'node:zlib';
import type { StoredEvent } from '../../events/envelope.js';

/** What a compaction writes after the records it kept: the archive generation it committed. */
export interface CompactionMarker {
  readonly generation: number;
  /** The last position ever handed out, so positions never go back even if its event left. */
  readonly lastPosition: number;
}

/** The fields open needs from each record to index it; the rest stays on disk. */
export interface RecordHead {
  readonly id: string;
  readonly stream: string;
  readonly position: number;
  /** The fact's time in ms when it closes its stream (meta.closes), else NaN. */
  readonly closesAt: number;
}

const hex8 = (n: number): string => n.toString(16).padStart(8, '0');

export function encodeRecord(e: StoredEvent): string {
  const json = JSON.stringify(e);
  return `${hex8(crc32(json))} ${json}\n`;
}

export function encodeMarker(m: CompactionMarker): string {
  const json = JSON.stringify({ $compaction: m });
  return `${hex8(crc32(json))} ${json}\n`;
}

/**
 * Checks a line's checksum and parses its JSON. `line` excludes the newline. Returns the parsed
 * value, or a string saying why the line is not a record.
 */
export function parseChecked(buf: Buffer, start: number, end: number): { ok: unknown } | string {
  if (end - start < 10 || buf[start + 8] !== 0x20) return 'no checksum';
  const json = buf.subarray(start + 9, end);
  if (hex8(crc32(json)) !== buf.toString('latin1', start, start + 8)) return 'checksum mismatch';
  try {
    return { ok: JSON.parse(json.toString('utf8')) as unknown };
  } catch {
    return 'not JSON';
  }
}

/** A parsed line as a marker, a record head, or why it is neither. */
export function classify(
  raw: unknown,
): { marker: CompactionMarker } | { head: RecordHead } | string {
  if (typeof raw !== 'object' || raw === null) return 'not an object';
  const r = raw as Record<string, unknown>;
  if ('$compaction' in r) {
    const m = r.$compaction as Record<string, unknown> | null;
    if (!m || !Number.isInteger(m.generation) || !Number.isInteger(m.lastPosition))
      return 'bad compaction marker';
    return {
      marker: { generation: m.generation as number, lastPosition: m.lastPosition as number },
    };
  }
  const { id, stream, position, version, at, meta } = r;
  if (typeof id !== 'string' || typeof stream !== 'string') return 'no id/stream';
  if (!Number.isInteger(version) || !Number.isInteger(position)) return 'no version/position';
  const closes = (meta as { closes?: unknown } | undefined)?.closes === true;
  return {
    head: {
      id,
      stream,
      position: position as number,
      closesAt: closes && typeof at === 'string' ? Date.parse(at) : NaN,
    },
  };
}

export interface ScannedLine {
  /** Byte offset of the line in the file. */
  readonly offset: number;
  /** Bytes of the line including its newline (or up to end of file when it has none). */
  readonly length: number;
  readonly buf: Buffer;
  /** Where the line starts and ends (newline excluded) in `buf`. */
  readonly start: number;
  readonly end: number;
  /** False when the file ends before this line's newline (a torn write). */
  readonly complete: boolean;
}

/**
 * Every line of a file, read in chunks so open never holds the whole file at once. The buffer a
 * line points into is only valid until the next line is taken.
 */
export function* scanLines(path: string, chunkBytes = 4 << 20): Generator<ScannedLine> {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    let buf = Buffer.alloc(chunkBytes);
    let bufStart = 0; // file offset of buf[0]
    let filled = 0; // valid bytes in buf
    let pos = 0; // next line start in buf
    while (bufStart + pos < size) {
      const nl = buf.indexOf(0x0a, pos);
      if (nl === -1 || nl >= filled) {
        // Not a whole line in the buffer: keep the partial line, refill behind it.
        const rest = filled - pos;
        if (rest === buf.length) buf = Buffer.concat([buf, Buffer.alloc(buf.length)]);
        buf.copy(buf, 0, pos, filled);
        bufStart += pos;
        pos = 0;
        filled = rest;
        const got = readSync(fd, buf, filled, buf.length - filled, bufStart + filled);
        filled += got;
        if (got > 0) continue;
        // End of file without a newline: a torn last line.
        yield { offset: bufStart, length: filled, buf, start: 0, end: filled, complete: false };
        return;
      }
      yield {
        offset: bufStart + pos,
        length: nl + 1 - pos,
        buf,
        start: pos,
        end: nl,
        complete: true,
      };
      pos = nl + 1;
    }
  } finally {
    closeSync(fd);
  }
}
