/**
 * Boot's read of the store (ADR 0009, 0015): which stored facts to fold into open actors. Without
 * a snapshot every fact is read, each stream held until its end, and a stream that closed is
 * dropped unfolded. With one, its actors come first, then only the facts after its position.
 */
import type { StoredEvent } from '../events/envelope.js';
import type { EventStore } from '../ports/eventStore.js';
import type { Logger } from '../shared/log.js';
import type { ActorRecord } from './actorTypes.js';
import type { BootSnapshot } from './snapshot.js';

export interface BootRead {
  events: number;
  /** Events of finished streams, read but not folded. */
  skipped: number;
  /** The highest store position read. */
  position: number;
}

/**
 * Fill `records` from the store (and the snapshot, if any), folding with `fold`. A restored actor
 * closed in the tail is folded and then dropped; a stream first seen past its first fact finished
 * before the snapshot (it was not in it). Returns undefined when the store contradicts the
 * snapshot: the caller then reads everything.
 */
export async function readStore(
  deps: { store: EventStore; log: Logger },
  from: BootSnapshot | undefined,
  records: Map<string, ActorRecord>,
  fold: (e: StoredEvent) => void,
): Promise<BootRead | undefined> {
  records.clear();
  let position = from?.position ?? 0;
  const restored = new Set<string>();
  for (const r of from?.records ?? []) {
    records.set(r.stream, { ...r, recent: [...r.recent] });
    restored.add(r.stream);
  }
  let events = 0;
  let skipped = 0;
  const touched = new Set<string>();
  const open = new Map<string, StoredEvent[]>();
  const closed = new Set<string>();
  for await (const e of deps.store.readAll(position)) {
    events++;
    if (e.position > position) position = e.position;
    if (closed.has(e.stream)) {
      skipped++;
      continue;
    }
    if (restored.has(e.stream)) {
      const have = records.get(e.stream)!.version;
      if (e.version > have + 1) {
        deps.log.warn(
          { stream: e.stream, have, next: e.version },
          'boot snapshot skips facts the store has: reading the whole store',
        );
        return undefined;
      }
      touched.add(e.stream);
      fold(e);
      if (e.meta.closes) closed.add(e.stream);
      continue;
    }
    if (from && e.version > 1 && !open.has(e.stream)) {
      skipped++;
      closed.add(e.stream);
      continue;
    }
    if (e.meta.closes) {
      skipped += (open.get(e.stream)?.length ?? 0) + 1;
      open.delete(e.stream);
      closed.add(e.stream);
      continue;
    }
    const held = open.get(e.stream);
    if (held) held.push(e);
    else open.set(e.stream, [e]);
  }
  for (const s of restored) if (closed.has(s)) records.delete(s);
  if (from && !(await restoredStillStored(deps, restored, touched, records))) return undefined;
  for (const held of open.values()) for (const e of held) fold(e);
  return { events, skipped, position };
}

/**
 * A restored actor the tail never mentions must still be in this store: one retention archived
 * finished while we were away (dropped here); one the store does not know means the snapshot is
 * another store's (false: read everything).
 */
async function restoredStillStored(
  deps: { store: EventStore; log: Logger },
  restored: ReadonlySet<string>,
  touched: ReadonlySet<string>,
  records: Map<string, ActorRecord>,
): Promise<boolean> {
  const status = deps.store.status?.bind(deps.store);
  if (!status) return true;
  for (const s of restored) {
    if (touched.has(s)) continue;
    const st = await status(s);
    if (st === 'archived') records.delete(s);
    else if (st === 'unknown') {
      deps.log.warn(
        { stream: s },
        'boot snapshot names a stream the store does not know: reading the whole store',
      );
      return false;
    }
  }
  return true;
}
