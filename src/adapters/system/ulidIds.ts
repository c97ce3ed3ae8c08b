/**
 * Adapter: monotonic ULIDs (sortable even within one millisecond). The random part comes from a
 * fast generator seeded once from the OS: ids must be unique, not secret, and asking the OS for
 * randomness 16 times per id was a tenth of the runtime's CPU.
 */
import { randomBytes } from 'node:crypto';
import { monotonicFactory } from 'ulid';
import type { Clock } from '../../ports/clock.js';
import type { Ids } from '../../ports/ids.js';

/** xorshift128 on 32-bit words, seeded from the OS; returns numbers in [0, 1). */
export function seededRandom(seed: Buffer = randomBytes(16)): () => number {
  let x = seed.readUInt32LE(0) | 1;
  let y = seed.readUInt32LE(4);
  let z = seed.readUInt32LE(8);
  let w = seed.readUInt32LE(12);
  return () => {
    const t = x ^ (x << 11);
    x = y;
    y = z;
    z = w;
    w = w ^ (w >>> 19) ^ (t ^ (t >>> 8));
    return (w >>> 0) / 4294967296;
  };
}

export class UlidIds implements Ids {
  private readonly factory = monotonicFactory(seededRandom());
  constructor(private readonly clock?: Clock) {}
  next(): string {
    return this.factory(this.clock?.now());
  }
}

/** A ULID from the shared fast generator (for ids that need not be monotonic, e.g. a version). */
export const fastUlid: (seedTime?: number) => string = monotonicFactory(seededRandom());
