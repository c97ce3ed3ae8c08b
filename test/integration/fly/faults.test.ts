/**
 * The client against the emulator with faults injected at run time (POST /__flylocal/faults):
 * Retry-After is honoured, idempotent calls retry, a create is never retried blindly, the rate
 * limits hold, every failure is a typed FlyApiError, and the token never shows up.
 */
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { FlyMachinesHttpOptions } from '../../../src/adapters/fly/client.js';
import type { FaultConfig, FlyLocalHandle } from '../../../src/flylocal/index.js';
import { FlyApiError } from '../../../src/ports/flyMachines.js';
import { clientFor, fixtureInput, startTestFlyLocal } from '../../support/flyLocalHarness.js';

let h: FlyLocalHandle;

beforeAll(async () => {
  h = await startTestFlyLocal();
});
afterEach(async () => {
  await setFaults({});
});
afterAll(async () => {
  await h?.close();
});

/** Switch faults on the running emulator through its admin endpoint, as an end-to-end test would. */
async function setFaults(cfg: FaultConfig, target: FlyLocalHandle = h): Promise<void> {
  const res = await fetch(`${target.adminUrl}/faults`, {
    method: 'POST',
    headers: { authorization: `Bearer ${target.token}`, 'content-type': 'application/json' },
    body: JSON.stringify(cfg),
  });
  expect(res.status).toBe(200);
}

function count(
  action: 'create' | 'get' | 'list' | 'wait' | 'stop' | 'destroy',
  target: FlyLocalHandle = h,
): number {
  return target.stats.requests[action] ?? 0;
}

async function failure(p: Promise<unknown>): Promise<FlyApiError> {
  const err: unknown = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(FlyApiError);
  return err as FlyApiError;
}

/** Largest number of sends in any window of `windowMs` (a closed interval). */
function worstWindow(times: number[], windowMs: number): number {
  const t = [...times].sort((a, b) => a - b);
  let worst = 0;
  for (let i = 0, j = 0; i < t.length; i++) {
    while (t[i]! - t[j]! > windowMs) j++;
    worst = Math.max(worst, i - j + 1);
  }
  return worst;
}

describe('client under injected faults', () => {
  it('waits out a 429 for its Retry-After, then succeeds', async () => {
    const fly = clientFor(h);
    await setFaults({ actions: { list: { script: ['429'], retryAfterS: 1 } } });
    const before = count('list');
    await fly.list();
    expect(count('list') - before).toBe(2);
    const arrivals = h.stats.arrivals.list!.slice(-2);
    // Timers may fire a millisecond early against the wall clock; the gap also includes the 429's round trip.
    expect(arrivals[1]! - arrivals[0]!).toBeGreaterThanOrEqual(990);
  });

  it('retries 5xx answers and dropped connections of idempotent calls', async () => {
    const fly = clientFor(h, { attemptTimeoutMs: 300, timeoutMs: 5_000 });
    const m = await fly.create(fixtureInput());
    await setFaults({ actions: { get: { script: ['503', '500', 'hang'], hangMs: 2_000 } } });
    const before = count('get');
    expect((await fly.get(m.id)).id).toBe(m.id);
    expect(count('get') - before).toBe(4);
    expect(h.stats.dropped.get).toBe(1);
  });

  it('never retries a create: each fault surfaces once, typed, and says whether the outcome is unknown', async () => {
    const fly = clientFor(h, { timeoutMs: 600 });
    const cases = [
      { fault: '503', status: 503, retryable: true, exists: false },
      { fault: '429', status: 429, retryable: true, exists: false },
      { fault: 'hang', status: 0, retryable: true, exists: false },
      { fault: 'dropAfterCommit', status: 0, retryable: true, exists: true },
      { fault: 'malformed', status: 200, retryable: false, exists: true },
    ] as const;
    for (const c of cases) {
      await setFaults({ actions: { create: { script: [c.fault], hangMs: 1_500 } } });
      const input = fixtureInput();
      const before = count('create');
      const err = await failure(fly.create(input));
      expect({ fault: c.fault, status: err.status, retryable: err.retryable }).toEqual({
        fault: c.fault,
        status: c.status,
        retryable: c.retryable,
      });
      if (c.status === 0 || c.status >= 500) expect(err.flyMessage).toMatch(/outcome unknown/);
      expect(count('create') - before).toBe(1);
      // What a runtime does next: look for the machine by its launch id before creating again.
      const found = await fly.list({ metadata: { launch_id: input.metadata.launch_id! } });
      expect(found.length, c.fault).toBe(c.exists ? 1 : 0);
      for (const m of found) await fly.destroy(m.id);
    }
  });

  it('reports malformed answers to idempotent calls as non-retryable errors, without retrying', async () => {
    const fly = clientFor(h);
    await setFaults({ actions: { list: { script: ['malformed', 'malformed'] } } });
    const before = count('list');
    for (let i = 0; i < 2; i++) {
      const err = await failure(fly.list());
      expect(err).toMatchObject({ status: 200, retryable: false });
      expect(err.flyMessage).toMatch(/^malformed response/);
    }
    expect(count('list') - before).toBe(2);
  });

  it('gives up with a typed error when 5xx answers outlast its attempts', async () => {
    const fly = clientFor(h, { maxAttempts: 3 });
    await setFaults({ actions: { stop: { p5xx: 1, status5xx: 502 } } });
    const before = count('stop');
    const err = await failure(fly.stop('00000000000000'));
    expect(err).toMatchObject({ op: 'stop', status: 502, retryable: true });
    expect(err.requestId).toMatch(/-flylocal$/);
    expect(count('stop') - before).toBe(3);
  });

  it('survives a seeded storm of every fault with only FlyApiErrors, and never prints the token', async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _e, cb) {
        lines.push(chunk.toString());
        cb();
      },
    });
    const logger = pino({ level: 'trace' }, sink);
    const local = await startTestFlyLocal({ logger });
    try {
      const opts: Partial<FlyMachinesHttpOptions> = {
        logger,
        timeoutMs: 3_000,
        attemptTimeoutMs: 300,
        backoff: { baseMs: 20, maxMs: 100 },
      };
      const fly = clientFor(local, opts);
      const ms = [await fly.create(fixtureInput()), await fly.create(fixtureInput())];
      const storm = {
        p429: 0.15,
        retryAfterS: 0,
        p5xx: 0.15,
        pHang: 0.05,
        hangMs: 500,
        pDropAfterCommit: 0.05,
        pMalformed: 0.1,
      };
      await setFaults(
        {
          seed: 42,
          actions: {
            create: storm,
            get: storm,
            list: storm,
            wait: storm,
            stop: storm,
            destroy: storm,
          },
        },
        local,
      );
      const calls: Promise<unknown>[] = [];
      for (let i = 0; i < 6; i++) {
        const m = ms[i % 2]!;
        calls.push(
          fly.get(m.id),
          fly.list({ metadata: { launch_id: m.metadata.launch_id! } }),
          fly.wait(m.id, 'started', { timeoutS: 1 }),
        );
      }
      calls.push(
        fly.create(fixtureInput()),
        fly.create(fixtureInput()),
        fly.stop(ms[0]!.id),
        fly.destroy(ms[1]!.id),
      );
      const results = await Promise.allSettled(calls);
      const errors = results
        .filter((r): r is PromiseRejectedResult => r.status === 'rejected')
        .map((r) => r.reason as unknown);
      for (const e of errors) expect(e).toBeInstanceOf(FlyApiError);
      expect(results.some((r) => r.status === 'fulfilled')).toBe(true);
      expect(local.emulator.faults.injected.size).toBeGreaterThan(0);
      for (const e of errors as FlyApiError[]) {
        expect(
          [e.message, e.flyMessage, String(e.cause), JSON.stringify(e)].join('\n'),
        ).not.toContain(local.token);
      }
    } finally {
      await local.close();
    }
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.join('')).not.toContain(local.token);
  });
});

describe('client pacing against an emulator that enforces Fly limits', () => {
  it('never exceeds 1/s burst 3 per action (get 5/s burst 10), so the emulator never answers 429', async () => {
    // The emulator judges by arrival time, which scheduling on a busy machine smears; a grace of
    // 1 s forgives that and still catches a client that does not pace (the control below).
    const local = await startTestFlyLocal({
      faults: { enforceRateLimits: true },
      rateLimitGraceMs: 1_000,
    });
    const control = await startTestFlyLocal({
      faults: { enforceRateLimits: true },
      rateLimitGraceMs: 1_000,
    });
    try {
      const sent: { method: string; path: string; at: number }[] = [];
      const recording: typeof fetch = (input, init) => {
        const url = new URL(
          typeof input === 'string' ? input : input instanceof URL ? input.href : input.url,
        );
        sent.push({ method: init?.method ?? 'GET', path: url.pathname, at: Date.now() });
        return fetch(input, init);
      };
      // Default (Fly's) limits on the client side.
      const fly = clientFor(local, { rateLimits: undefined, fetch: recording });
      const seed = await fly.create(fixtureInput());
      const results = await Promise.allSettled([
        ...Array.from({ length: 4 }, () => fly.create(fixtureInput())),
        ...Array.from({ length: 20 }, () => fly.get(seed.id)),
        ...Array.from({ length: 5 }, () => fly.list()),
      ]);
      expect(results.filter((r) => r.status === 'rejected')).toEqual([]);
      expect(local.stats.rateLimited).toEqual({});
      const times = (method: string, isGet: boolean) =>
        sent
          .filter((s) => s.method === method && (s.path.split('/').length === 6) === isGet)
          .map((s) => s.at);
      // In any window of 0.9 s: at most burst + rate × window. (0.9, not 1: a send is stamped after
      // its token was taken, and under load a burst's stamps lag by a few ms while a timer may fire
      // a ms early.) Sent all at once, each of these would exceed the bound.
      expect(times('POST', false)).toHaveLength(5);
      expect(worstWindow(times('POST', false), 900)).toBeLessThanOrEqual(3 + 0);
      expect(times('GET', true)).toHaveLength(20);
      expect(worstWindow(times('GET', true), 900)).toBeLessThanOrEqual(10 + 4);
      expect(times('GET', false)).toHaveLength(5);
      expect(worstWindow(times('GET', false), 900)).toBeLessThanOrEqual(3 + 0);

      // Control: a client that does not pace earns 429s from the same enforcement (40 gets at once
      // would have to spread over 5 s to fit 5/s with a burst of 10 and 1 s of grace).
      const unpaced = clientFor(control, { rateLimits: false, maxAttempts: 1 });
      const raw = await Promise.allSettled(Array.from({ length: 40 }, () => unpaced.get(seed.id)));
      expect(
        raw.some((r) => r.status === 'rejected' && (r.reason as FlyApiError).status === 429),
      ).toBe(true);
      expect(control.stats.rateLimited.get).toBeGreaterThan(0);
    } finally {
      await Promise.all([local.close(), control.close()]);
    }
  });
});
