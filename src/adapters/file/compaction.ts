/**
 * The file store's retention pass (ADR 0012, 0013): rewrites the live log with only what retention
 * keeps and moves the rest to a new archive segment, while appends go on. Crash-safe: the archive
 * segment is committed first, the new log last (by rename), and open discards a segment whose
 * generation the log does not name, so a kill anywhere loses and doubles nothing.
 */
import { closeSync, existsSync, fdatasyncSync, openSync, renameSync, unlinkSync } from 'node:fs';
import { dirname } from 'node:path';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type { CompactionSummary } from '../../ports/eventStore.js';
import type { ArchivedNames } from './archive.js';
import { archivePaths, compactTmpPath, encodeHashes, rotateArchive } from './archive.js';
import { fdatasyncAsync, fsyncDir, rmQuiet, writeFileSynced, writeFully } from './durable.js';
import type { LogFile } from './logFile.js';
import { RecordTable, nameHash, type LogIndex } from './recordTable.js';
import { encodeMarker } from './records.js';

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

export interface CompactionResult extends CompactionSummary {
  /** The archive generation written (unchanged when nothing was due). */
  readonly generation: number;
  readonly bytesBefore: number;
  readonly bytesAfter: number;
}

/** Bytes read at once when streaming many records (reads and compaction). */
export const BATCH_BYTES = 1 << 20;

/** What a compaction works on: the store's live log, its index and its archive. */
export interface CompactionTarget {
  readonly log: LogFile;
  readonly index: LogIndex;
  readonly archived: ArchivedNames;
  /** Archive segments kept on disk (Infinity: all). */
  readonly keepSegments: number;
  readonly step: (step: CompactionStep) => void;
}

/** The records present when a compaction began, copied: kept ones to the new log, due ones away. */
interface Copied {
  readonly next: RecordTable;
  /** Old record number → new one, for records before the tail. */
  readonly remap: Int32Array;
  readonly liveSize: number;
  readonly droppedEvents: number;
}

/**
 * Moves the streams in `due` (closed, and no longer kept by retention; they take no appends
 * meanwhile) to archive generation `index.generation + 1`. Positions, versions and order of the
 * kept events do not change.
 */
export async function compactLog(
  t: CompactionTarget,
  due: ReadonlySet<string>,
): Promise<CompactionResult> {
  const { log, index } = t;
  const bytesBefore = log.size;
  const generation = index.generation + 1;
  const paths = archivePaths(log.path, generation);
  const tmpPath = compactTmpPath(log.path);
  const old = index.table;
  const n = old.count;
  let liveFd: number | undefined;
  let arcFd: number | undefined;
  let archiveCommitted = false;
  let committed = false;
  try {
    if (existsSync(tmpPath)) unlinkSync(tmpPath);
    liveFd = openSync(tmpPath, 'a+');
    arcFd = openSync(paths.segmentTmp, 'w');
    // 1. Copy the records present now, in slices with a turn of the event loop between them.
    const copied = await copyRecords(t, due, n, liveFd, arcFd);
    t.step('copied');
    // 2. Commit the archive segment and its names. Until the log names this generation, open
    //    deletes them (their events are still in the log).
    await fdatasyncAsync(arcFd);
    closeSync(arcFd);
    arcFd = undefined;
    const hashes = Float64Array.from(due, nameHash).sort();
    writeFileSynced(paths.namesTmp, encodeHashes(hashes));
    t.step('archive-synced');
    archiveCommitted = true; // from the first rename on, a failure must take it back
    renameSync(paths.segmentTmp, paths.segment);
    renameSync(paths.namesTmp, paths.names);
    fsyncDir(dirname(log.path));
    t.step('archive-committed');
    // 3. Flush the bulk of the new log off the event loop.
    await fdatasyncAsync(liveFd);
    t.step('live-synced');
    // 4. Synchronously from here to the swap, so no append slips between: copy the records
    //    appended since step 1 (all due streams refused appends), then the marker naming this
    //    generation, flush, and rename over the live log.
    const { next, remap } = copied;
    const tailBase = next.count;
    let liveSize = copied.liveSize;
    if (old.count > n) {
      const from = old.offsets[n]!;
      writeFully(liveFd, log.readSpan(from, log.size - from));
      for (let k = n; k < old.count; k++) {
        const at = liveSize + old.offsets[k]! - from;
        next.push(at, old.lengths[k]!, old.positions[k]!, old.idHashes[k]!);
      }
      liveSize += log.size - from;
    }
    const marker = Buffer.from(encodeMarker({ generation, lastPosition: index.lastPosition }));
    writeFully(liveFd, marker);
    liveSize += marker.length;
    fdatasyncSync(liveFd);
    t.step('tail-copied');
    renameSync(tmpPath, log.path);
    // Committed: whatever happens next, the index must follow the file now at `path`. The
    // rename is made durable before this synchronous stretch ends, so no append is acknowledged
    // into the new log before it is the log for good.
    committed = true;
    t.step('live-committed');
    // 5. Swap the index and the file descriptor.
    index.replace(next, due, (i) => (i < n ? remap[i]! : tailBase + i - n), generation);
    const fd = liveFd;
    liveFd = undefined; // the live log's now: a failure from here on must not close it
    log.swap(fd, liveSize);
    const forgotten = t.archived.add(generation, hashes);
    fsyncDir(dirname(log.path));
    t.step('swapped');
    try {
      rotateArchive(log.path, t.keepSegments, forgotten);
    } catch {
      // Old segments stay until the next compaction rotates them: nothing is lost.
    }
    return {
      generation,
      keptStreams: index.streams.size,
      droppedStreams: due.size,
      keptEvents: next.count,
      droppedEvents: copied.droppedEvents,
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

/**
 * Step 1: copies the first `n` records, kept ones to the new log, due ones to the archive segment,
 * a batch at a time with a turn of the event loop between batches: appends go on meanwhile.
 */
async function copyRecords(
  t: CompactionTarget,
  due: ReadonlySet<string>,
  n: number,
  liveFd: number,
  arcFd: number,
): Promise<Copied> {
  const old = t.index.table;
  const drop = new Uint8Array(n);
  for (const name of due) for (const i of t.index.streams.get(name)!.recs) drop[i] = 1;
  const remap = new Int32Array(n);
  const next = new RecordTable();
  let liveSize = 0;
  let droppedEvents = 0;
  for (let i = 0; i < n;) {
    const start = old.offsets[i]!;
    const j = old.batchEnd(i, n, BATCH_BYTES);
    const buf = t.log.readSpan(start, old.offsets[j - 1]! + old.lengths[j - 1]! - start);
    const kept: Buffer[] = [];
    const gone: Buffer[] = [];
    for (let k = i; k < j; k++) {
      const rec = buf.subarray(old.offsets[k]! - start, old.offsets[k]! - start + old.lengths[k]!);
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
    t.step('copying');
    await yieldToLoop();
  }
  return { next, remap, liveSize, droppedEvents };
}
