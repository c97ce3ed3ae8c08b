/**
 * A pooled VM's first step (ADR 0022): it was created stopped with no launch, and is started when a
 * launch claims it. Before anything else it asks the landing app which launch that is (`POST
 * /api/pool_claim`, signed with its pool key), then runs exactly as a created VM with the answer in
 * its environment. No claim within its budget (a start nobody asked for): it exits 0 and stops.
 */
import { z } from 'zod';
import { MACHINE_ID_PATTERN, REGION_PATTERN } from '../../machines/vocabulary.js';
import type { Clock } from '../ports/clock.js';
import {
  poolClaimAnswer,
  signBody,
  SIGNATURE_HEADER,
  type PoolClaimAnswer,
} from '../shared/callbackAuth.js';
import { envUrl } from '../shared/env.js';
import { errorMessage } from '../shared/errors.js';
import type { Logger } from '../shared/log.js';
import type { Fetch, Sleep } from './callbacks.js';

export const pooledEnv = z
  .object({
    FLY_MACHINE_ID: z
      .string()
      .regex(MACHINE_ID_PATTERN, 'expected 8–32 lowercase letters or digits'),
    WM_POOL_REGION: z.string().regex(REGION_PATTERN, 'expected a three-letter region code'),
    WM_POOL_NAME: z
      .string()
      .regex(/^wm-pool-[a-z]{3}-[a-z0-9]{1,40}$/, 'expected wm-pool-<region>-<id>'),
    WM_POOL_KEY: z.string().min(16, 'expected at least 16 characters'),
    WM_POOL_CLAIM_URL: envUrl,
    WM_POOL_CLAIM_FALLBACK_URL: envUrl.optional(),
  })
  .transform((e) => ({
    machineId: e.FLY_MACHINE_ID,
    region: e.WM_POOL_REGION,
    name: e.WM_POOL_NAME,
    key: e.WM_POOL_KEY,
    urls: [
      e.WM_POOL_CLAIM_URL,
      ...(e.WM_POOL_CLAIM_FALLBACK_URL ? [e.WM_POOL_CLAIM_FALLBACK_URL] : []),
    ],
  }));
export type PooledEnv = z.output<typeof pooledEnv>;

export interface ClaimTuning {
  /** Ask for this long in all (the claim is stored before the start, but may still be folding). */
  budgetMs: number;
  /** Pause between rounds. */
  retryMs: number;
  attemptTimeoutMs: number;
}

export const DEFAULT_CLAIM_TUNING: ClaimTuning = {
  budgetMs: 10_000,
  retryMs: 200,
  attemptTimeoutMs: 3000,
};

export type ClaimResult =
  | { ok: true; claim: PoolClaimAnswer; attempts: number }
  | { ok: false; reason: 'unclaimed' | 'rejected' | 'budget'; status?: number; attempts: number };

export async function fetchClaim(deps: {
  fetch: Fetch;
  clock: Clock;
  sleep: Sleep;
  log: Logger;
  pool: PooledEnv;
  tuning?: ClaimTuning;
}): Promise<ClaimResult> {
  const { fetch, clock, sleep, log, pool } = deps;
  const tuning = deps.tuning ?? DEFAULT_CLAIM_TUNING;
  const until = clock.now() + tuning.budgetMs;
  let attempts = 0;
  let unclaimed = false;
  for (;;) {
    for (const url of pool.urls) {
      const raw = JSON.stringify({
        machineId: pool.machineId,
        name: pool.name,
        region: pool.region,
        at: new Date(clock.now()).toISOString(),
      });
      attempts++;
      try {
        const res = await fetch(url, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            [SIGNATURE_HEADER]: signBody(pool.key, raw, clock.now()),
          },
          body: raw,
          signal: AbortSignal.timeout(tuning.attemptTimeoutMs),
        });
        if (res.status === 200) {
          const parsed = poolClaimAnswer.safeParse(await res.json());
          if (parsed.success) return { ok: true, claim: parsed.data, attempts };
          log.warn({ url }, 'claim answer malformed');
          return { ok: false, reason: 'rejected', status: 200, attempts };
        }
        const text = await res.text();
        if (res.status === 404 && text.includes('POOL_UNCLAIMED')) {
          unclaimed = true;
          continue;
        }
        if (res.status < 500 && res.status !== 408 && res.status !== 429) {
          log.warn({ url, status: res.status, body: text.slice(0, 200) }, 'claim refused');
          return { ok: false, reason: 'rejected', status: res.status, attempts };
        }
      } catch (err) {
        log.debug({ url, err: errorMessage(err) }, 'claim request failed');
      }
    }
    if (clock.now() + tuning.retryMs > until)
      return { ok: false, reason: unclaimed ? 'unclaimed' : 'budget', attempts };
    await sleep(tuning.retryMs);
  }
}

/** The environment a created VM would have had, from its claim. */
export function claimedEnv(claim: PoolClaimAnswer): Record<string, string> {
  return {
    WM_LAUNCH_ID: claim.launchId,
    WM_CALLBACK_KEY: claim.callbackKey,
    WM_TTL_MS: String(claim.ttlMs),
    ...(claim.idleMs !== undefined ? { WM_IDLE_MS: String(claim.idleMs) } : {}),
    WM_SOURCE: claim.source,
    ...(claim.traceparent ? { WM_TRACEPARENT: claim.traceparent } : {}),
  };
}
