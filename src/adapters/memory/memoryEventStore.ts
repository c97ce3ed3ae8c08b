/** Adapter: EventStore in process memory. Fast and exact; for tests and benchmarks. */
import type { EventEnvelope, StoredEvent } from '../../events/envelope.js';
import type { AppendResult, EventStore } from '../../ports/eventStore.js';
import { VersionConflictError } from '../../shared/errors.js';

export class MemoryEventStore implements EventStore {
  private readonly streams = new Map<string, StoredEvent[]>();
  private readonly log: StoredEvent[] = [];
  private readonly ids = new Set<string>();
  private readonly listeners = new Set<(e: StoredEvent) => void>();

  async read(stream: string, afterVersion = 0): Promise<StoredEvent[]> {
    return (this.streams.get(stream) ?? []).slice(afterVersion);
  }

  async append(
    stream: string,
    events: readonly EventEnvelope[],
    opts: { expectedVersion: number },
  ): Promise<AppendResult> {
    const current = this.streams.get(stream) ?? [];
    const fresh = events.filter((e) => !this.ids.has(e.id));
    if (fresh.length === 0 && events.length > 0) {
      return { version: current.length, position: this.log.length };
    }
    if (current.length !== opts.expectedVersion) {
      throw new VersionConflictError(stream, opts.expectedVersion, current.length);
    }
    const stored: StoredEvent[] = fresh.map((e, i) => ({
      ...e,
      stream,
      version: current.length + i + 1,
      position: this.log.length + i + 1,
    }));
    const result = { version: stored.at(-1)!.version, position: stored.at(-1)!.position };
    if (current.length === 0) this.streams.set(stream, current);
    for (const e of stored) {
      current.push(e);
      this.log.push(e);
      this.ids.add(e.id);
    }
    for (const e of stored) for (const l of this.listeners) l(e);
    return result;
  }

  async *readAll(afterPosition = 0): AsyncIterable<StoredEvent> {
    for (let i = afterPosition; i < this.log.length; i++) yield this.log[i]!;
  }

  subscribe(afterPosition: number, onEvent: (event: StoredEvent) => void): () => void {
    for (let i = afterPosition; i < this.log.length; i++) onEvent(this.log[i]!);
    this.listeners.add(onEvent);
    return () => this.listeners.delete(onEvent);
  }

  async close(): Promise<void> {
    this.listeners.clear();
  }
}
