/**
 * The file store's archive: segment files beside the log (`events.archive.<g>.log`, one per
 * compaction, never loaded) and, per segment, the hashes of the stream names it took
 * (`events.archive.<g>.names`), which are all the store remembers of archived streams.
 */
import { readdirSync, readFileSync, unlinkSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { rmQuiet } from './durable.js';
import { nameHash, sortedHas } from './recordTable.js';

export interface ArchiveFile {
  readonly file: string;
  readonly generation: number;
  readonly kind: 'log' | 'names';
  /** Written but not yet renamed into place by its compaction. */
  readonly tmp: boolean;
}

function base(path: string): string {
  return path.endsWith('.log') ? path.slice(0, -'.log'.length) : path;
}

export function archivePaths(path: string, generation: number) {
  const b = `${base(path)}.archive.${generation}`;
  return {
    segment: `${b}.log`,
    segmentTmp: `${b}.log.tmp`,
    names: `${b}.names`,
    namesTmp: `${b}.names.tmp`,
  };
}

/** The temporary log a compaction writes before it renames it over the live one. */
export const compactTmpPath = (path: string): string => `${path}.compact`;

export function listArchive(path: string): ArchiveFile[] {
  const dir = dirname(path);
  const prefix = `${basename(base(path))}.archive.`;
  const out: ArchiveFile[] = [];
  for (const f of readdirSync(dir)) {
    if (!f.startsWith(prefix)) continue;
    const m = /^(\d+)\.(log|names)(\.tmp)?$/.exec(f.slice(prefix.length));
    if (!m) continue;
    out.push({
      file: join(dir, f),
      generation: Number(m[1]),
      kind: m[2] as 'log' | 'names',
      tmp: m[3] !== undefined,
    });
  }
  return out.sort((a, b) => a.generation - b.generation);
}

export function encodeHashes(hashes: Float64Array): Buffer {
  const buf = Buffer.alloc(hashes.length * 8);
  hashes.forEach((h, i) => buf.writeDoubleLE(h, i * 8));
  return buf;
}

export function decodeHashes(buf: Buffer): Float64Array {
  const out = new Float64Array(Math.floor(buf.length / 8));
  for (let i = 0; i < out.length; i++) out[i] = buf.readDoubleLE(i * 8);
  return out.sort();
}

/**
 * The names of archived streams, as sorted blocks of 48-bit hashes (8 bytes a name), newest last.
 * Bounded: past `max` names the oldest blocks are forgotten and those streams read as unknown.
 * Blocks are merged when there are many, so a lookup stays a few binary searches.
 */
export class ArchivedNames {
  private blocks: { upTo: number; hashes: Float64Array }[] = [];
  private total = 0;

  constructor(private readonly max: number) {}

  get size(): number {
    return this.total;
  }

  has(stream: string): boolean {
    if (this.total === 0) return false;
    const h = nameHash(stream);
    for (let i = this.blocks.length - 1; i >= 0; i--)
      if (sortedHas(this.blocks[i]!.hashes, h)) return true;
    return false;
  }

  /** Adds a generation's names; returns the newest generation forgotten, if any were. */
  add(generation: number, hashes: Float64Array): number | undefined {
    this.blocks.push({ upTo: generation, hashes });
    this.total += hashes.length;
    if (this.blocks.length > 32) {
      const old = this.blocks.splice(0, 16);
      const merged = new Float64Array(old.reduce((n, b) => n + b.hashes.length, 0));
      let at = 0;
      for (const b of old) {
        merged.set(b.hashes, at);
        at += b.hashes.length;
      }
      this.blocks.unshift({ upTo: old.at(-1)!.upTo, hashes: merged.sort() });
    }
    let forgotten: number | undefined;
    while (this.total > this.max && this.blocks.length > 0) {
      const gone = this.blocks.shift()!;
      this.total -= gone.hashes.length;
      forgotten = gone.upTo;
    }
    return forgotten;
  }
}

/**
 * Settles the archive at open against the log's generation: segments of a compaction that never
 * committed (generation above the log's) still have their events in the log, so they go; the
 * names of committed ones are remembered in `names`, newest first, up to its bound.
 */
export function settleArchive(
  path: string,
  generation: number,
  names: ArchivedNames,
  rememberStreams: number,
): void {
  const files = listArchive(path);
  for (const f of files) if (f.tmp || f.generation > generation) unlinkSync(f.file);
  const committed = files.filter((f) => !f.tmp && f.kind === 'names' && f.generation <= generation);
  const keep: { generation: number; hashes: Float64Array }[] = [];
  let total = 0;
  for (const f of committed.reverse()) {
    if (total >= rememberStreams) {
      unlinkSync(f.file);
      continue;
    }
    const hashes = decodeHashes(readFileSync(f.file));
    total += hashes.length;
    keep.unshift({ generation: f.generation, hashes });
  }
  for (const k of keep) names.add(k.generation, k.hashes);
}

/** Deletes archive segments beyond `keepSegments`, and names files no longer remembered. */
export function rotateArchive(
  path: string,
  keepSegments: number,
  forgotten: number | undefined,
): void {
  const files = listArchive(path).filter((f) => !f.tmp);
  const segments = files.filter((f) => f.kind === 'log');
  for (const f of segments.slice(0, Math.max(0, segments.length - keepSegments))) rmQuiet(f.file);
  if (forgotten !== undefined) {
    for (const f of files) if (f.kind === 'names' && f.generation <= forgotten) rmQuiet(f.file);
  }
}
