/**
 * Retry timing: capped exponential backoff with jitter, and the `Retry-After` header (delta seconds
 * or an HTTP date). Pure functions: the caller supplies the clock reading and the random number.
 */

export interface BackoffPolicy {
  /** First delay before jitter. */
  readonly baseMs: number;
  /** Ceiling for any one delay before jitter. */
  readonly maxMs: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { baseMs: 200, maxMs: 5_000 };

/**
 * Delay before retry number `retry` (1 = the first retry): base·2^(retry-1), capped, then "equal
 * jitter" (half fixed, half random) so retries spread out but never collapse to zero.
 */
export function backoffMs(policy: BackoffPolicy, retry: number, random: number): number {
  const exp = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.max(0, retry - 1));
  const r = Math.min(1, Math.max(0, random));
  return exp / 2 + (exp / 2) * r;
}

/** Milliseconds a `Retry-After` value asks us to wait; undefined when absent or unreadable. */
export function parseRetryAfterMs(
  value: string | null | undefined,
  nowMs: number,
): number | undefined {
  if (value === null || value === undefined) return undefined;
  const v = value.trim();
  if (v === '') return undefined;
  if (/^\d+(\.\d+)?$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - nowMs);
}
