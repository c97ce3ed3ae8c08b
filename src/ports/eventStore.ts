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
}
