/**
 * Token buckets for Fly's published Machines API limits: 1 request/s per action with a burst of 3,
 * Get Machine 5/s with a burst of 10. The client reserves a token before sending (bursts queue
 * locally instead of earning 429s); the emulator uses the same arithmetic to answer 429.
 */

export interface BucketLimit {
  /** Tokens added per second. */
  readonly ratePerS: number;
  /** Bucket size: how many requests may go out back to back. */
  readonly burst: number;
}

export const FLY_DEFAULT_LIMIT: BucketLimit = { ratePerS: 1, burst: 3 };
export const FLY_GET_LIMIT: BucketLimit = { ratePerS: 5, burst: 10 };

export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    readonly limit: BucketLimit,
    private readonly now: () => number,
  ) {
    if (!(limit.ratePerS > 0) || !(limit.burst >= 1))
      throw new RangeError('a bucket needs ratePerS > 0 and burst >= 1');
    this.tokens = limit.burst;
    this.last = now();
  }

  private refill(): void {
    const t = this.now();
    if (t > this.last) {
      this.tokens = Math.min(
        this.limit.burst,
        this.tokens + ((t - this.last) * this.limit.ratePerS) / 1000,
      );
      this.last = t;
    }
  }

  /** Refilled to its burst: the same as a new bucket, so it may be forgotten. */
  get full(): boolean {
    this.refill();
    return this.tokens >= this.limit.burst;
  }

  /**
   * Reserve the next token. Returns how many ms the caller must wait before sending (0: now), or
   * undefined when that wait would exceed `maxWaitMs` (then nothing is reserved). Reservations
   * queue in order because the balance may go negative.
   */
  reserve(maxWaitMs = Number.POSITIVE_INFINITY): number | undefined {
    this.refill();
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return 0;
    }
    const waitMs = ((1 - this.tokens) * 1000) / this.limit.ratePerS;
    if (waitMs > maxWaitMs) return undefined;
    this.tokens -= 1;
    return waitMs;
  }

  /**
   * Server side: take a token now or say when one will be there. `graceMs` forgives requests that
   * arrive that much early (network jitter between a well-behaved client's clock and ours).
   */
  tryTake(graceMs = 0): { ok: true } | { ok: false; retryAfterMs: number } {
    this.refill();
    const needed = 1 - (graceMs * this.limit.ratePerS) / 1000;
    if (this.tokens >= needed) {
      this.tokens -= 1;
      return { ok: true };
    }
    return { ok: false, retryAfterMs: ((1 - this.tokens) * 1000) / this.limit.ratePerS };
  }
}

/**
 * One bucket per key (an action, or an action on one machine), created on first use. Keys per
 * machine come and go with the machines, so once there are many, the full buckets (no different
 * from new ones) are dropped.
 */
export class ActionBuckets<A extends string> {
  private readonly buckets = new Map<A, TokenBucket>();
  static readonly SWEEP_AT = 1024;

  constructor(
    private readonly limitFor: (action: A) => BucketLimit,
    private readonly now: () => number,
  ) {}

  bucket(action: A): TokenBucket {
    let b = this.buckets.get(action);
    if (!b) {
      if (this.buckets.size >= ActionBuckets.SWEEP_AT) {
        for (const [key, old] of this.buckets) if (old.full) this.buckets.delete(key);
      }
      b = new TokenBucket(this.limitFor(action), this.now);
      this.buckets.set(action, b);
    }
    return b;
  }

  /** How many buckets are kept (for tests: they stay bounded). */
  get size(): number {
    return this.buckets.size;
  }
}
