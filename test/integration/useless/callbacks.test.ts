/** Status callbacks: signed, primary then fallback, retried within a budget, final on a plain 4xx. */
import { afterEach, describe, expect, it } from 'vitest';
import { SystemTimers, systemClock } from '../../../src/adapters/system/systemClock.js';
import {
  machineStatusBody,
  verifySignature,
  type MachineStatusBody,
} from '../../../src/shared/callbackAuth.js';
import { silentLogger } from '../../../src/shared/log.js';
import type { Clock } from '../../../src/ports/clock.js';
import {
  deliverStatus,
  isRetryableStatus,
  timersSleep,
  type CallbackDeps,
  type Fetch,
} from '../../../src/useless/callbacks.js';
import { CallbackReceiver, KEY, LAUNCH_ID, SELF, deadUrl } from '../../support/useless.js';

const body: MachineStatusBody = {
  machineId: SELF,
  launchId: LAUNCH_ID,
  region: 'ams',
  status: 'listening',
  at: '2026-06-01T12:00:00.000Z',
};

const timers = new SystemTimers();
const receivers: CallbackReceiver[] = [];
afterEach(async () => {
  timers.clearAll();
  await Promise.all(receivers.splice(0).map((r) => r.close()));
});

async function receiver(statuses?: number[]): Promise<{ r: CallbackReceiver; url: string }> {
  const r = new CallbackReceiver(statuses);
  receivers.push(r);
  return { r, url: await r.listen() };
}

function deps(urls: string[], over: Partial<CallbackDeps> = {}): CallbackDeps {
  return {
    fetch: globalThis.fetch,
    clock: systemClock,
    sleep: timersSleep(systemClock, timers),
    log: silentLogger(),
    key: KEY,
    urls,
    tuning: { attemptTimeoutMs: 2000, baseBackoffMs: 5, maxBackoffMs: 20 },
    ...over,
  };
}

describe('deliverStatus', () => {
  it('posts the body once, signed with the launch key, and stops at the first 2xx', async () => {
    const { r, url } = await receiver([204]);
    const result = await deliverStatus(deps([url]), body, { budgetMs: 5000 });
    expect(result).toEqual({ ok: true, url, status: 204, attempts: 1 });
    expect(r.received).toHaveLength(1);
    const got = r.received[0]!;
    expect(got.headers['content-type']).toBe('application/json');
    expect(machineStatusBody.parse(JSON.parse(got.raw))).toEqual(body);
    expect(
      verifySignature(KEY, got.raw, got.headers['x-wm-signature'] as string, Date.now()),
    ).toMatchObject({ ok: true });
    expect(
      verifySignature(
        'another key entirely',
        got.raw,
        got.headers['x-wm-signature'] as string,
        Date.now(),
      ).ok,
    ).toBe(false);
  });

  it('uses the fallback when the primary is down', async () => {
    const primary = await deadUrl();
    const { r, url: fallback } = await receiver();
    const result = await deliverStatus(deps([primary, fallback]), body, { budgetMs: 5000 });
    expect(result).toMatchObject({ ok: true, url: fallback, attempts: 2 });
    expect(r.received).toHaveLength(1);
  });

  it.each([503, 500, 408, 429])('treats %i from the primary as "try elsewhere"', async (status) => {
    const { r: p, url: primary } = await receiver([status]);
    const { r: f, url: fallback } = await receiver([200]);
    const result = await deliverStatus(deps([primary, fallback]), body, { budgetMs: 5000 });
    expect(result).toMatchObject({ ok: true, url: fallback });
    expect(p.received).toHaveLength(1);
    expect(f.received).toHaveLength(1);
  });

  it('retries both in rounds until one answers, re-signing each attempt with a fresh timestamp', async () => {
    const { r: p, url: primary } = await receiver([503, 503, 503, 200]);
    const { r: f, url: fallback } = await receiver([502]);
    // A clock that jumps 10 s per reading, so each signature must carry a different timestamp.
    let t = Date.now();
    const jumpy: Clock = { now: () => (t += 10_000) };
    const result = await deliverStatus(
      deps([primary, fallback], { clock: jumpy, sleep: timersSleep(systemClock, timers) }),
      body,
      {
        budgetMs: 10_000_000,
      },
    );
    expect(result).toMatchObject({ ok: true, url: primary, attempts: 7 });
    expect(p.received).toHaveLength(4);
    expect(f.received).toHaveLength(3);
    const stamps = [...p.received, ...f.received].map(
      (r) => /t=(\d+)/.exec(r.headers['x-wm-signature'] as string)![1],
    );
    expect(new Set(stamps).size).toBe(7);
    // The body (and its `at`) is the same report every time.
    expect(new Set([...p.received, ...f.received].map((r) => r.raw)).size).toBe(1);
  });

  it('gives up at once on a plain 4xx, without trying the fallback', async () => {
    const { r: p, url: primary } = await receiver([401]);
    const { r: f, url: fallback } = await receiver([200]);
    const result = await deliverStatus(deps([primary, fallback]), body, { budgetMs: 5000 });
    expect(result).toEqual({
      ok: false,
      reason: 'rejected',
      url: primary,
      status: 401,
      attempts: 1,
    });
    expect(p.received).toHaveLength(1);
    expect(f.received).toHaveLength(0);
  });

  it('stops when the budget is spent', async () => {
    const { r, url } = await receiver([503]);
    const result = await deliverStatus(deps([url]), body, { budgetMs: 100 });
    expect(result).toMatchObject({ ok: false, reason: 'budget' });
    expect(r.received.length).toBeGreaterThanOrEqual(1);
  });

  it('times out an attempt that never answers and moves on', async () => {
    const { r, url: fallback } = await receiver();
    const hanging: Fetch = (input, init) =>
      input === 'http://hang.invalid/'
        ? new Promise((_resolve, reject) =>
            init?.signal?.addEventListener('abort', () => reject(new Error('aborted'))),
          )
        : globalThis.fetch(input, init);
    const result = await deliverStatus(
      deps(['http://hang.invalid/', fallback], {
        fetch: hanging,
        // Long enough for a real local answer on a loaded machine; the hang still times out.
        tuning: { attemptTimeoutMs: 1_000, baseBackoffMs: 5, maxBackoffMs: 5 },
      }),
      body,
      { budgetMs: 5000 },
    );
    expect(result).toMatchObject({ ok: true, url: fallback, attempts: 2 });
    expect(r.received).toHaveLength(1);
  });

  it('stops promptly when aborted', async () => {
    const { url } = await receiver([503]);
    const ac = new AbortController();
    const pending = deliverStatus(
      deps([url], {
        tuning: { attemptTimeoutMs: 2000, baseBackoffMs: 60_000, maxBackoffMs: 60_000 },
      }),
      body,
      {
        budgetMs: 600_000,
        signal: ac.signal,
      },
    );
    await expect.poll(() => timers.pending().size).toBeGreaterThan(0);
    ac.abort();
    await expect(pending).resolves.toMatchObject({ ok: false, reason: 'aborted' });
  });

  it('classifies statuses', () => {
    expect([500, 502, 503, 504, 408, 429].every(isRetryableStatus)).toBe(true);
    expect([400, 401, 403, 404, 409, 422].some(isRetryableStatus)).toBe(false);
  });
});
