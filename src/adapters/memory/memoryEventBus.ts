/** Adapter: EventBus in process memory, with NATS subject matching. */
import { subjectMatches, type EventBus } from '../../ports/eventBus.js';

export class MemoryEventBus implements EventBus {
  private readonly subs = new Set<{ pattern: string; fn: (p: unknown, s: string) => void }>();

  publish(subject: string, payload: unknown): void {
    // Copy through JSON so a subscriber never shares (and mutates) the publisher's object,
    // exactly as with a real broker.
    const wire = JSON.stringify(payload);
    for (const sub of [...this.subs]) {
      if (subjectMatches(sub.pattern, subject)) sub.fn(JSON.parse(wire), subject);
    }
  }

  subscribe(subject: string, onMessage: (payload: unknown, subject: string) => void): () => void {
    const sub = { pattern: subject, fn: onMessage };
    this.subs.add(sub);
    return () => this.subs.delete(sub);
  }

  async close(): Promise<void> {
    this.subs.clear();
  }
}
