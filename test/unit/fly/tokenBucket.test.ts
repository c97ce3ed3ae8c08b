/**
 * Token bucket and backoff arithmetic, with properties: however requests arrive, the send times a
 * bucket hands out never exceed burst + rate × window in any window.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { backoffMs, parseRetryAfterMs } from '../../../src/adapters/fly/backoff.js';
import { ActionBuckets, TokenBucket } from '../../../src/adapters/fly/tokenBucket.js';

/** Largest number of sends in any closed window of `windowMs` ending at a send. */
function worstWindow(times: number[], windowMs: number): number {
  const sorted = [...times].sort((a, b) => a - b);
  let worst = 0;
  for (let i = 0, j = 0; i < sorted.length; i++) {
    while (sorted[i]! - sorted[j]! > windowMs) j++;
    worst = Math.max(worst, i - j + 1);
  }
  return worst;
}

describe('TokenBucket', () => {
  it('lets a burst through, then one token per 1/rate', () => {
    let now = 0;
    const b = new TokenBucket({ ratePerS: 1, burst: 3 }, () => now);
    expect([b.reserve(), b.reserve(), b.reserve(), b.reserve(), b.reserve()]).toEqual([
      0, 0, 0, 1000, 2000,
    ]);
    now = 5000;
    // Reservations were spent until t=2000; by t=5000 the bucket holds 3 again.
    expect(b.reserve()).toBe(0);
  });

  it('refuses (without reserving) a wait longer than allowed', () => {
    const b = new TokenBucket({ ratePerS: 1, burst: 1 }, () => 0);
    expect(b.reserve()).toBe(0);
    expect(b.reserve(500)).toBeUndefined();
    expect(b.reserve(1000)).toBe(1000);
  });

  it('answers 429-style with a retry time on the server side, forgiving small earliness', () => {
    let now = 0;
    const b = new TokenBucket({ ratePerS: 1, burst: 1 }, () => now);
    expect(b.tryTake()).toEqual({ ok: true });
    now = 400;
    expect(b.tryTake()).toEqual({ ok: false, retryAfterMs: 600 });
    now = 950;
    expect(b.tryTake(100).ok).toBe(true);
  });

  it('never hands out more than burst + rate × window, whatever the arrivals (property)', () => {
    fc.assert(
      fc.property(
        fc.record({
          ratePerS: fc.integer({ min: 1, max: 10 }),
          burst: fc.integer({ min: 1, max: 10 }),
        }),
        fc.array(fc.integer({ min: 0, max: 400 }), { minLength: 1, maxLength: 80 }),
        fc.integer({ min: 50, max: 3000 }),
        (limit, gaps, windowMs) => {
          let now = 0;
          const b = new TokenBucket(limit, () => now);
          const sends: number[] = [];
          for (const gap of gaps) {
            now += gap;
            sends.push(now + b.reserve()!);
          }
          // Sends are in order of arrival.
          expect([...sends].sort((a, z) => a - z)).toEqual(sends);
          expect(worstWindow(sends, windowMs)).toBeLessThanOrEqual(
            limit.burst + Math.floor((limit.ratePerS * windowMs) / 1000),
          );
        },
      ),
    );
  });
});

describe('backoff', () => {
  it('doubles from the base up to the cap, with half of each delay jittered', () => {
    const p = { baseMs: 100, maxMs: 1000 };
    expect([1, 2, 3, 4, 5, 6].map((r) => backoffMs(p, r, 0))).toEqual([
      50, 100, 200, 400, 500, 500,
    ]);
    expect([1, 2, 3, 4, 5, 6].map((r) => backoffMs(p, r, 1))).toEqual([
      100, 200, 400, 800, 1000, 1000,
    ]);
  });

  it('stays within [exp/2, exp] for any random draw (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 30 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        (retry, r) => {
          const p = { baseMs: 200, maxMs: 5000 };
          const exp = Math.min(5000, 200 * 2 ** (retry - 1));
          const d = backoffMs(p, retry, r);
          expect(d).toBeGreaterThanOrEqual(exp / 2);
          expect(d).toBeLessThanOrEqual(exp);
        },
      ),
    );
  });

  it('reads Retry-After as seconds or an HTTP date, and ignores junk', () => {
    const now = Date.UTC(2026, 0, 1, 12, 0, 0);
    expect(parseRetryAfterMs('2', now)).toBe(2000);
    expect(parseRetryAfterMs('0', now)).toBe(0);
    expect(parseRetryAfterMs('Thu, 01 Jan 2026 12:00:07 GMT', now)).toBe(7000);
    expect(parseRetryAfterMs('Thu, 01 Jan 2026 11:00:00 GMT', now)).toBe(0);
    expect(parseRetryAfterMs('soon', now)).toBeUndefined();
    expect(parseRetryAfterMs(null, now)).toBeUndefined();
    expect(parseRetryAfterMs('', now)).toBeUndefined();
  });
});

describe('ActionBuckets', () => {
  it('given buckets per machine for many machines, when they refill, then the full ones are dropped and the count stays bounded; a busy one is kept', () => {
    let now = 0;
    const buckets = new ActionBuckets<string>(
      () => ({ ratePerS: 1, burst: 3 }),
      () => now,
    );
    // A busy machine: its bucket is empty and must survive every sweep.
    const busy = buckets.bucket('wait busy');
    for (let i = 0; i < 3; i++) busy.reserve();
    for (let i = 0; i < 5000; i++) {
      buckets.bucket(`wait m${i}`).reserve();
      now += 1; // 1 ms apart: older buckets refill (1 token/s) long before the next sweep ends
      if (i % 500 === 0) busy.reserve();
    }
    expect(buckets.size).toBeLessThanOrEqual(ActionBuckets.SWEEP_AT + 1);
    expect(buckets.bucket('wait busy')).toBe(busy);
    expect(busy.full).toBe(false);
  });
});
