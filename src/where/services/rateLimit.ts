/**
 * Per-client limits on the public listener: a sliding window of request times per key, and a
 * cooldown after each accepted launch. Both live in memory: a restart forgets them (ADR 0011). Memory is bounded (least recently seen keys are dropped):
 * per-IP limits stop a reloading visitor; the global cap on machines stops everything else.
 */
export class SlidingWindowLimiter {
  private readonly hits = new Map<string, number[]>();

  constructor(
    private readonly limit: number,
    private readonly windowMs: number,
    private readonly maxKeys = 20_000,
  ) {}

  /** Count a hit; `retryAfterMs` > 0 means refused (the hit was not counted). */
  hit(key: string, now: number): { ok: boolean; remaining: number; retryAfterMs: number } {
    const from = now - this.windowMs;
    let times = this.hits.get(key);
    if (times) {
      // Re-insert to keep the map in least-recently-used order.
      this.hits.delete(key);
      while (times.length > 0 && times[0]! <= from) times.shift();
    } else times = [];
    this.hits.set(key, times);
    if (times.length >= this.limit) {
      return { ok: false, remaining: 0, retryAfterMs: times[0]! + this.windowMs - now };
    }
    times.push(now);
    if (this.hits.size > this.maxKeys) this.hits.delete(this.hits.keys().next().value!);
    return { ok: true, remaining: this.limit - times.length, retryAfterMs: 0 };
  }
}

/**
 * A pause per key after an accepted action. A request reserves the pause before it knows the
 * outcome (so two concurrent requests from one key cannot both pass), and gives it back when the
 * action was refused: only an accepted launch should make a visitor wait.
 */
export class Cooldown {
  private readonly until = new Map<string, { at: number }>();
  constructor(
    private readonly ms: number,
    private readonly maxKeys = 20_000,
  ) {}

  /** Milliseconds left before `key` may act again (0: now). */
  remaining(key: string, now: number): number {
    const u = this.until.get(key);
    if (u === undefined) return 0;
    if (u.at <= now) {
      this.until.delete(key);
      return 0;
    }
    return u.at - now;
  }

  /**
   * Take the pause for `key` from `now` if it is free: `{ release }` hands it back (a refused
   * action), and keeping it (an accepted one) needs nothing. `{ retryAfterMs }` when still paused.
   */
  reserve(key: string, now: number): { release: () => void } | { retryAfterMs: number } {
    const left = this.remaining(key, now);
    if (left > 0) return { retryAfterMs: left };
    if (this.ms <= 0) return { release: () => {} };
    const mine = { at: now + this.ms };
    this.until.delete(key);
    this.until.set(key, mine);
    if (this.until.size > this.maxKeys) this.until.delete(this.until.keys().next().value!);
    return {
      // Only our own reservation is given back (identity, not value): a later one stays.
      release: () => {
        if (this.until.get(key) === mine) this.until.delete(key);
      },
    };
  }
}

/**
 * The client address: Fly-Client-IP when the request came through a proxy we trust (Fly's, or the
 * local edge proxy), else the socket peer. A header sent by anyone else changes nothing.
 */
export function clientIp(
  peer: string | undefined,
  header: string | string[] | undefined,
  trusted: readonly string[],
): string {
  const p = peer ?? 'unknown';
  const h = Array.isArray(header) ? header[0] : header;
  if (h && (trusted.includes('*') || trusted.includes(p))) {
    const v = h.trim();
    if (/^[0-9a-fA-F:.]{2,45}$/.test(v)) return v;
  }
  return p;
}
