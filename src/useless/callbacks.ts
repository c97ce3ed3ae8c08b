/**
 * Calling home: one signed status report, delivered to the launching instance or, when that does not
 * answer, to any instance; retried with backoff inside a time budget, re-signed on every attempt.
 */
import { TRACEPARENT } from '../shared/trace.js';
import { SIGNATURE_HEADER, signBody, type MachineStatusBody } from '../shared/callbackAuth.js';
import { errorMessage } from '../shared/errors.js';
import type { Logger } from '../shared/log.js';
import type { Clock, Timers } from '../ports/clock.js';

export type Fetch = typeof globalThis.fetch;
/** Resolves after `ms`, or early (without error) when `signal` aborts. */
export type Sleep = (ms: number, signal?: AbortSignal) => Promise<void>;

/** A Sleep built on the Timers port, so tests can drive time; aborting resolves it early. */
export function timersSleep(clock: Clock, timers: Timers): Sleep {
  let n = 0;
  return (ms, signal) =>
    new Promise<void>((resolve) => {
      if (signal?.aborted) return resolve();
      const key = `sleep:${n++}`;
      const finish = (): void => {
        timers.clear(key);
        signal?.removeEventListener('abort', finish);
        resolve();
      };
      signal?.addEventListener('abort', finish, { once: true });
      timers.set(key, clock.now() + ms, finish);
    });
}

export interface CallbackTuning {
  /** One POST may take this long before it counts as "did not answer". */
  attemptTimeoutMs: number;
  /** Pause after the first round of failures; doubles each round up to `maxBackoffMs`. */
  baseBackoffMs: number;
  maxBackoffMs: number;
}

export const DEFAULT_CALLBACK_TUNING: CallbackTuning = {
  attemptTimeoutMs: 3000,
  baseBackoffMs: 250,
  maxBackoffMs: 4000,
};

export interface CallbackDeps {
  fetch: Fetch;
  clock: Clock;
  sleep: Sleep;
  log: Logger;
  /** This launch's callback key: signs every attempt. */
  key: string;
  /** The launch's trace, sent with every attempt so the landing app continues it. */
  traceparent?: string | undefined;
  /** Primary first, then the fallback (if any). */
  urls: readonly string[];
  tuning: CallbackTuning;
}

export type DeliveryResult =
  | { ok: true; url: string; status: number; attempts: number }
  | { ok: false; reason: 'rejected'; url: string; status: number; attempts: number }
  | { ok: false; reason: 'budget' | 'aborted'; attempts: number };

type Outcome =
  | { kind: 'ok'; status: number }
  | { kind: 'final'; status: number; body: string }
  | { kind: 'retry'; why: string };

/** 5xx, 408 and 429 mean "try again, maybe elsewhere"; other non-2xx answers are final. */
export function isRetryableStatus(status: number): boolean {
  return status >= 500 || status === 408 || status === 429;
}

async function attempt(
  deps: CallbackDeps,
  url: string,
  rawBody: string,
  timeoutMs: number,
  signal: AbortSignal | undefined,
): Promise<Outcome> {
  const timeout = new AbortController();
  const stopTimer = new AbortController();
  void deps.sleep(timeoutMs, stopTimer.signal).then(() => {
    if (!stopTimer.signal.aborted) timeout.abort(new Error(`no answer within ${timeoutMs} ms`));
  });
  const onAbort = (): void => timeout.abort(new Error('aborted'));
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const res = await deps.fetch(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        // Fresh timestamp on every attempt, so a late retry is never refused as stale.
        [SIGNATURE_HEADER]: signBody(deps.key, rawBody, deps.clock.now()),
        ...(deps.traceparent ? { [TRACEPARENT]: deps.traceparent } : {}),
      },
      body: rawBody,
      redirect: 'manual',
      signal: timeout.signal,
    });
    const text = await res.text().catch(() => '');
    if (res.status >= 200 && res.status < 300) return { kind: 'ok', status: res.status };
    if (isRetryableStatus(res.status)) return { kind: 'retry', why: `HTTP ${res.status}` };
    return { kind: 'final', status: res.status, body: text.slice(0, 300) };
  } catch (err) {
    const reason: unknown = timeout.signal.aborted ? timeout.signal.reason : err;
    return { kind: 'retry', why: errorMessage(reason) };
  } finally {
    stopTimer.abort();
    signal?.removeEventListener('abort', onAbort);
  }
}

/**
 * Deliver `body` within `budgetMs`. A 2xx from any URL is success; a final 4xx stops at once (the
 * other instance holds the same secret, so it would refuse too); anything else moves on to the next
 * URL, and after a full round, waits and starts over.
 */
export async function deliverStatus(
  deps: CallbackDeps,
  body: MachineStatusBody,
  opts: { budgetMs: number; signal?: AbortSignal },
): Promise<DeliveryResult> {
  const deadline = deps.clock.now() + opts.budgetMs;
  const rawBody = JSON.stringify(body);
  const log = deps.log.child({ callback: body.status });
  let attempts = 0;
  for (let round = 0; ; round++) {
    for (const url of deps.urls) {
      if (opts.signal?.aborted) return { ok: false, reason: 'aborted', attempts };
      const remaining = deadline - deps.clock.now();
      if (remaining <= 0) return { ok: false, reason: 'budget', attempts };
      attempts++;
      const outcome = await attempt(
        deps,
        url,
        rawBody,
        Math.min(deps.tuning.attemptTimeoutMs, remaining),
        opts.signal,
      );
      if (outcome.kind === 'ok') {
        log.info({ url, status: outcome.status, attempts }, 'status callback delivered');
        return { ok: true, url, status: outcome.status, attempts };
      }
      if (outcome.kind === 'final') {
        log.error(
          { url, status: outcome.status, response: outcome.body, attempts },
          'status callback refused; not retrying',
        );
        return { ok: false, reason: 'rejected', url, status: outcome.status, attempts };
      }
      log.warn({ url, why: outcome.why, attempts }, 'status callback did not get through');
    }
    const remaining = deadline - deps.clock.now();
    if (remaining <= 0) return { ok: false, reason: 'budget', attempts };
    const pause = Math.min(
      deps.tuning.maxBackoffMs,
      deps.tuning.baseBackoffMs * 2 ** round,
      remaining,
    );
    await deps.sleep(pause, opts.signal);
  }
}
