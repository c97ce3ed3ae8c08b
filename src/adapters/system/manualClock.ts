/**
 * Adapter for tests and simulations: a clock that moves only when told, with timers that fire in
 * deadline order as it moves. Time never passes on its own.
 */
import type { Clock, Timers } from '../../ports/clock.js';

export class ManualClock implements Clock, Timers {
  private t: number;
  private readonly armed = new Map<string, { at: number; fire: () => void; seq: number }>();
  private seq = 0;

  constructor(start = Date.UTC(2026, 0, 1)) {
    this.t = start;
  }

  now(): number {
    return this.t;
  }

  set(key: string, at: number, fire: () => void): void {
    this.armed.set(key, { at, fire, seq: this.seq++ });
  }

  clear(key: string): void {
    this.armed.delete(key);
  }

  clearAll(): void {
    this.armed.clear();
  }

  pending(): ReadonlyMap<string, number> {
    return new Map([...this.armed].map(([k, v]) => [k, v.at]));
  }

  /** Move time forward, firing every timer that falls due on the way, in order. */
  advance(ms: number): void {
    this.setTime(this.t + ms);
  }

  setTime(to: number): void {
    for (;;) {
      const next = [...this.armed]
        .filter(([, v]) => v.at <= to)
        .sort(([, a], [, b]) => a.at - b.at || a.seq - b.seq)[0];
      if (!next) break;
      const [key, timer] = next;
      this.t = Math.max(this.t, timer.at);
      this.armed.delete(key);
      timer.fire();
    }
    this.t = Math.max(this.t, to);
  }
}
