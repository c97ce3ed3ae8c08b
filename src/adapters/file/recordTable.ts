/**
 * The file store's in-memory index: where each record lies in the log (offset, length), its
 * store position and a hash of its event id, in log order, in typed arrays (24 bytes a record, no
 * objects), plus each stream's record numbers. Events themselves stay on disk.
 */
import { createHash } from 'node:crypto';
import { crc32 } from 'node:zlib';
import type { ClosedStreamMark } from '../retention.js';
import type { CompactionMarker, RecordHead } from './records.js';

export class RecordTable {
  offsets = new Float64Array(1024);
  lengths = new Uint32Array(1024);
  positions = new Float64Array(1024);
  /** crc32 of each event id: a cheap pre-filter for "is this id stored?", checked on disk. */
  idHashes = new Int32Array(1024);
  count = 0;

  push(offset: number, length: number, position: number, idHash: number): number {
    if (this.count === this.offsets.length) this.grow();
    const i = this.count++;
    this.offsets[i] = offset;
    this.lengths[i] = length;
    this.positions[i] = position;
    this.idHashes[i] = idHash;
    return i;
  }

  /** The first record whose position is greater than `position` (`count` when there is none). */
  firstAfter(position: number): number {
    let lo = 0;
    let hi = this.count;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.positions[mid]! <= position) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /**
   * Where a batch starting at record `i` ends (exclusive, at most `end`): as many records as fit in
   * `maxBytes` of the log, and at least one, so a batch is read with a single read.
   */
  batchEnd(i: number, end: number, maxBytes: number): number {
    const start = this.offsets[i]!;
    let j = i + 1;
    while (j < end && this.offsets[j]! + this.lengths[j]! - start <= maxBytes) j++;
    return j;
  }

  private grow(): void {
    const n = this.offsets.length * 2;
    const f = <T extends Float64Array | Uint32Array | Int32Array>(a: T, b: T): T => {
      b.set(a);
      return b;
    };
    this.offsets = f(this.offsets, new Float64Array(n));
    this.lengths = f(this.lengths, new Uint32Array(n));
    this.positions = f(this.positions, new Float64Array(n));
    this.idHashes = f(this.idHashes, new Int32Array(n));
  }
}

/** One stream in the index: its records in version order, and when it closed (NaN: open). */
export class StreamEntry {
  constructor(
    public recs: number[],
    public closedAt: number,
  ) {}
}

/**
 * Everything the store knows of its live log without reading it: the records, each stream's
 * records, the ids stored (as hashes), the last position handed out and the archive generation the
 * log was last compacted to (0: never).
 */
export class LogIndex {
  table = new RecordTable();
  streams = new Map<string, StreamEntry>();
  /** idHash of every stored event: most appends of a new id stop here without touching disk. */
  ids = new Set<number>();
  lastPosition = 0;
  generation = 0;

  /** Index one record that lies at `offset` (`length` bytes) in the log. */
  add(head: RecordHead, offset: number, length: number): void {
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

  /** What a compaction's marker says: the generation it committed and the last position then. */
  mark(marker: CompactionMarker): void {
    this.generation = Math.max(this.generation, marker.generation);
    this.lastPosition = Math.max(this.lastPosition, marker.lastPosition);
  }

  /** The closed streams, as retention weighs them (log order breaks ties). */
  closedStreams(): ClosedStreamMark<string>[] {
    const closed: ClosedStreamMark<string>[] = [];
    for (const [name, s] of this.streams) {
      if (!Number.isNaN(s.closedAt))
        closed.push({ key: name, closedAt: s.closedAt, order: s.recs.at(-1)! });
    }
    return closed;
  }

  /**
   * After a compaction wrote the log anew: the new table, the dropped streams gone, each kept
   * stream's records renumbered into the new table.
   */
  replace(
    table: RecordTable,
    dropped: ReadonlySet<string>,
    renumber: (i: number) => number,
    generation: number,
  ): void {
    const streams = new Map<string, StreamEntry>();
    for (const [name, s] of this.streams) {
      if (dropped.has(name)) continue;
      s.recs = s.recs.map(renumber);
      streams.set(name, s);
    }
    this.streams = streams;
    this.table = table;
    this.ids = new Set(table.idHashes.subarray(0, table.count));
    this.generation = generation;
  }
}

/** The id pre-filter hash: a small integer, so a Set of them holds no strings. */
export const idHash = (id: string): number => crc32(id) | 0;

/**
 * A 48-bit hash of a stream name, exact in a double: archived names are remembered as these, 8
 * bytes each. Two names share one by chance about once in 10^14 pairs.
 */
export function nameHash(stream: string): number {
  return createHash('sha1').update(stream).digest().readUIntBE(0, 6);
}

/** Binary search in a sorted Float64Array. */
export function sortedHas(a: Float64Array, x: number): boolean {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const v = a[mid]!;
    if (v === x) return true;
    if (v < x) lo = mid + 1;
    else hi = mid;
  }
  return false;
}
