/**
 * A pooled VM's claim handshake: signed with its pool key, retried while unclaimed or unanswered
 * (primary, then fallback), final on a plain refusal, and "unclaimed" when its budget runs out.
 */
import { describe, expect, it } from 'vitest';
import {
  derivePoolKey,
  poolClaimBody,
  verifySignature,
  SIGNATURE_HEADER,
} from '../../../src/shared/callbackAuth.js';
import { parseEnv } from '../../../src/shared/env.js';
import { silentLogger } from '../../../src/shared/log.js';
import type { Fetch } from '../../../src/useless/callbacks.js';
import { claimedEnv, fetchClaim, pooledEnv } from '../../../src/useless/poolClaim.js';

const NAME = 'wm-pool-ams-01jz0000000000000000000001';
const KEY = derivePoolKey('s'.repeat(40), NAME);
const CLAIM = {
  launchId: '01JZ0000000000000000000009',
  callbackKey: 'a'.repeat(64),
  ttlMs: 60_000,
  idleMs: 5000,
  source: 'button',
  traceparent: '00-0123456789abcdef0123456789abcdef-0123456789abcdef-01',
};
const pool = parseEnv(pooledEnv, {
  FLY_MACHINE_ID: 'abcdefgh1234',
  WM_POOL_REGION: 'ams',
  WM_POOL_NAME: NAME,
  WM_POOL_KEY: KEY,
  WM_POOL_CLAIM_URL: 'http://primary/api/pool_claim',
  WM_POOL_CLAIM_FALLBACK_URL: 'http://fallback/api/pool_claim',
});

/** A fake clock that moves only when the handshake sleeps, and a scripted landing app. */
function rig(answer: (url: string, n: number) => { status: number; body: unknown } | 'down') {
  let now = Date.UTC(2026, 5, 1);
  const calls: { url: string; body: string; sig: string }[] = [];
  const fetch = (async (url: string, init: RequestInit) => {
    const headers = init.headers as Record<string, string>;
    calls.push({ url, body: init.body as string, sig: headers[SIGNATURE_HEADER]! });
    const a = answer(url, calls.length);
    if (a === 'down') throw new Error('ECONNREFUSED');
    const text = JSON.stringify(a.body);
    return { status: a.status, json: async () => a.body, text: async () => text } as Response;
  }) as Fetch;
  const deps = {
    fetch,
    clock: { now: () => now },
    sleep: async (ms: number) => {
      now += ms;
    },
    log: silentLogger(),
    pool,
    tuning: { budgetMs: 2000, retryMs: 200, attemptTimeoutMs: 1000 },
  };
  return { deps, calls, now: () => now };
}
const unclaimed = {
  status: 404,
  body: { statusCode: 404, code: 'POOL_UNCLAIMED', error: 'Not Found', message: 'no' },
};

describe('the pooled VM asks for its claim', () => {
  it('signs each request with its pool key, naming itself', async () => {
    const r = rig(() => ({ status: 200, body: CLAIM }));
    const result = await fetchClaim(r.deps);
    expect(result).toEqual({ ok: true, claim: CLAIM, attempts: 1 });
    const [call] = r.calls;
    expect(call!.url).toBe('http://primary/api/pool_claim');
    expect(poolClaimBody.parse(JSON.parse(call!.body))).toMatchObject({
      machineId: 'abcdefgh1234',
      name: NAME,
      region: 'ams',
    });
    expect(verifySignature(KEY, call!.body, call!.sig, r.now()).ok).toBe(true);
    expect(
      verifySignature(
        derivePoolKey('s'.repeat(40), 'wm-pool-ams-other'),
        call!.body,
        call!.sig,
        r.now(),
      ).ok,
    ).toBe(false);
  });

  it('asks again while the claim is still folding, then runs with it', async () => {
    const r = rig((_u, n) => (n < 5 ? unclaimed : { status: 200, body: CLAIM }));
    const result = await fetchClaim(r.deps);
    expect(result.ok).toBe(true);
    expect(r.calls).toHaveLength(5);
    // Both instances are asked each round.
    expect(r.calls.map((c) => c.url.split('/')[2])).toEqual([
      'primary',
      'fallback',
      'primary',
      'fallback',
      'primary',
    ]);
  });

  it('falls back when the primary does not answer', async () => {
    const r = rig((url) => (url.includes('primary') ? 'down' : { status: 200, body: CLAIM }));
    const result = await fetchClaim(r.deps);
    expect(result).toMatchObject({ ok: true, attempts: 2 });
  });

  it('gives up as unclaimed when no launch claimed it within its budget', async () => {
    const r = rig(() => unclaimed);
    const result = await fetchClaim(r.deps);
    expect(result).toMatchObject({ ok: false, reason: 'unclaimed' });
    expect(r.now() - Date.UTC(2026, 5, 1)).toBeLessThanOrEqual(2000);
    expect(r.calls.length).toBeGreaterThan(10);
  });

  it('stops at once on a plain refusal (a forged or mismatched request)', async () => {
    const r = rig(() => ({ status: 401, body: { code: 'SIGNATURE_INVALID' } }));
    expect(await fetchClaim(r.deps)).toMatchObject({
      ok: false,
      reason: 'rejected',
      status: 401,
      attempts: 1,
    });
  });

  it('reports an exhausted budget when nobody ever answered', async () => {
    const r = rig(() => 'down');
    expect(await fetchClaim(r.deps)).toMatchObject({ ok: false, reason: 'budget' });
  });

  it('turns the claim into the environment a created VM gets', () => {
    expect(claimedEnv(CLAIM as never)).toEqual({
      WM_LAUNCH_ID: CLAIM.launchId,
      WM_CALLBACK_KEY: CLAIM.callbackKey,
      WM_TTL_MS: '60000',
      WM_IDLE_MS: '5000',
      WM_SOURCE: 'button',
      WM_TRACEPARENT: CLAIM.traceparent,
    });
  });
});
