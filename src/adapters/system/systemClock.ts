/** Adapters: the wall clock and real timers (setTimeout, chunked so far deadlines stay exact). */
import type { Clock, Timers } from '../../ports/clock.js';

export const systemClock: Clock = { now: () => Date.now() };

// setTimeout's delay is a signed 32-bit number of ms (~24.8 days); longer waits are chained.
const MAX_DELAY = 2 ** 31 - 1;

export class SystemTimers implements Timers {
  private readonly armed = new Map<string, { at: number; handle: NodeJS.Timeout }>();

  constructor(private readonly clock: Clock = systemClock) {}

  set(key: string, at: number, fire: () => void): void {
    this.clear(key);
    const arm = (): void => {
      const delay = Math.max(0, at - this.clock.now());
      const handle = setTimeout(
        () => {
          if (at > this.clock.now()) return arm();
          this.armed.delete(key);
          fire();
        },
        Math.min(delay, MAX_DELAY),
      );
      handle.unref?.();
      this.armed.set(key, { at, handle });
    };
    arm();
  }

  clear(key: string): void {
    const t = this.armed.get(key);
    if (t) clearTimeout(t.handle);
    this.armed.delete(key);
  }

  clearAll(): void {
    for (const t of this.armed.values()) clearTimeout(t.handle);
    this.armed.clear();
  }

  pending(): ReadonlyMap<string, number> {
    return new Map([...this.armed].map(([k, v]) => [k, v.at]));
  }
}
