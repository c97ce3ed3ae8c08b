/**
 * The real timers of the actors this instance drives, kept in step with the deadlines each chart
 * records in its snapshot, the one record of them (ADR 0003): one timer per stream and key on the
 * Timers port, re-armed after every change and at boot, so they survive restarts.
 */
import type { TimerKey, TimerTable } from '../../machines/index.js';
import type { Timers } from '../ports/clock.js';

export class ActorTimers {
  /** Deadlines armed here, per stream and key. */
  private readonly armed = new Map<string, Map<TimerKey, number>>();

  constructor(
    private readonly timers: Timers,
    /** A deadline fell due (the timer is already spent). */
    private readonly onDue: (stream: string, key: TimerKey, due: number) => void,
  ) {}

  /**
   * Make the armed timers match `wanted`: disarm what moved or went, and (while the actor is active)
   * arm what is new or moved. An overdue deadline fires at once.
   */
  sync(stream: string, wanted: TimerTable, active: boolean): void {
    const have = this.armed.get(stream) ?? new Map<TimerKey, number>();
    for (const [key, at] of have) {
      if (wanted[key] === at) continue;
      this.timers.clear(`${stream}/${key}`);
      have.delete(key);
    }
    if (active) {
      for (const [key, at] of Object.entries(wanted) as [TimerKey, number][]) {
        if (have.get(key) === at) continue;
        have.set(key, at);
        this.timers.set(`${stream}/${key}`, at, () => {
          this.armed.get(stream)?.delete(key);
          this.onDue(stream, key, at);
        });
      }
    }
    if (have.size > 0) this.armed.set(stream, have);
    else this.armed.delete(stream);
  }

  has(stream: string): boolean {
    return this.armed.has(stream);
  }

  pending(stream: string): ReadonlyMap<TimerKey, number> {
    return this.armed.get(stream) ?? new Map();
  }

  clear(stream: string): void {
    for (const key of this.armed.get(stream)?.keys() ?? []) this.timers.clear(`${stream}/${key}`);
    this.armed.delete(stream);
  }

  clearAll(): void {
    for (const stream of [...this.armed.keys()]) this.clear(stream);
  }
}
