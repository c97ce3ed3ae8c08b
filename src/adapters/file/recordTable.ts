/**
 * The file store's in-memory index: where each record lies in the log (offset, length), its
 * store position and a hash of its event id, in log order, in typed arrays (24 bytes a record, no
 * objects), plus each stream's record numbers. Events themselves stay on disk.
 */
import { createHash } from 'node:crypto';
import { crc32 } from 'node:zlib';

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
