/**
 * Port: the event store. One append-only stream per actor; appends are optimistic (expected
 * version) so two writers on one stream cannot both win. Implemented in memory, in a file, and on
 * JetStream; all pass test/contract/eventStore.contract.ts.
 */
import type { EventEnvelope, StoredEvent } from '../events/envelope.js';

export interface AppendResult {
  /** The stream's version after the append (the version of its last event). */
  readonly version: number;
  /** The store-wide position of the last appended event. */
  readonly position: number;
}

/**
 * Where a stream is: `live` (readable here), `archived` (finished, and moved out of the live store
 * by retention: the app answers 410 Gone for it), `unknown` (never stored, or archived so long ago
 * that the store no longer remembers its name: 404).
 */
export type StreamStatus = 'live' | 'archived' | 'unknown';

/** What one retention pass did (an adapter may report more). */
export interface CompactionSummary {
  /** Finished streams moved out of the live store by this pass, and their events. */
  readonly droppedStreams: number;
  readonly droppedEvents: number;
  /** Streams and events the live store still holds. */
  readonly keptStreams: number;
  readonly keptEvents: number;
}

export interface EventStore {
  /** Events of one stream with version > `afterVersion` (default 0: all), in order. */
  read(stream: string, afterVersion?: number): Promise<StoredEvent[]>;
  /**
   * Append events to a stream whose current version must equal `expectedVersion` (0 = new stream).
   * Throws VersionConflictError otherwise. An event id that is already stored is not stored twice
   * (the append is then a no-op that reports the current version).
   */
  append(
    stream: string,
    events: readonly EventEnvelope[],
    opts: { expectedVersion: number },
  ): Promise<AppendResult>;
  /** Every stored event with position > `afterPosition`, in store order: used at boot. */
  readAll(afterPosition?: number): AsyncIterable<StoredEvent>;
  /**
   * Live feed of events appended after `afterPosition` by anyone (this process or others), in
   * store order, without gaps. Returns a function that stops the feed.
   */
  subscribe(afterPosition: number, onEvent: (event: StoredEvent) => void): () => void;
  close(): Promise<void>;
  /**
   * Optional, for stores with retention (ADR 0013). Says whether a stream whose `read()` is empty
   * was never stored or was archived. Without it every empty stream reads as unknown (404).
   */
  status?(stream: string): Promise<StreamStatus> | StreamStatus;
  /**
   * Optional: one retention pass, moving finished streams past retention out of the live store.
   * The app's retention service calls it every WM_COMPACT_INTERVAL on every instance, never two at
   * once; a store whose retention runs elsewhere (a server-side limit) leaves it out. Appends to a
   * stream it archived must then throw StreamArchivedError.
   */
  compact?(): Promise<CompactionSummary>;
}
