/**
 * The emulator's HTTP edges: bearer auth like Fly, the admin endpoints (faults switched at run
 * time, stats, ledger), enforcement of Fly's rate limits with Retry-After, and seeded faults that
 * repeat exactly.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Faults } from '../../../src/flylocal/faults.js';
import type { FlyLocalHandle } from '../../../src/flylocal/index.js';
import { startTestFlyLocal, TEST_APP } from '../../support/flyLocalHarness.js';

let h: FlyLocalHandle;
beforeAll(async () => {
  h = await startTestFlyLocal({ token: 'api-test-token' });
});
afterAll(async () => {
  await h?.close();
});

const list = `/apps/${TEST_APP}/machines`;

async function call(
  path: string,
  init: RequestInit & { auth?: string | null } = {},
): Promise<{ status: number; body: unknown; headers: Headers }> {
  const { auth, ...rest } = init;
  const headers: Record<string, string> = {
    ...(rest.body ? { 'content-type': 'application/json' } : {}),
  };
  if (auth !== null) headers.authorization = auth ?? `Bearer ${h.token}`;
  const res = await fetch(
    `${path.startsWith('/__') ? h.adminUrl.replace(/\/__flylocal$/, '') : h.apiUrl}${path}`,
    { ...rest, headers },
  );
  const text = await res.text();
  return {
    status: res.status,
    body: text ? (JSON.parse(text) as unknown) : undefined,
    headers: res.headers,
  };
}

describe('flylocal auth', () => {
  it('answers 401 with a Fly-style body to a missing or wrong token, and serves the right one', async () => {
    const missing = await call(list, { auth: null });
    expect([missing.status, missing.body]).toEqual([
      401,
      { error: 'Authenticate: token validation error' },
    ]);
    expect(missing.headers.get('fly-request-id')).toBeTruthy();
    expect((await call(list, { auth: 'Bearer not-the-token' })).status).toBe(401);
    expect((await call(list, { auth: 'api-test-token' })).status).toBe(401);
    expect((await call(list)).status).toBe(200);
  });

  it('guards the admin endpoints too, except health', async () => {
    expect((await call('/__flylocal/faults', { auth: null })).status).toBe(401);
    expect((await call('/__flylocal/machines', { auth: 'Bearer nope' })).status).toBe(401);
    const health = await call('/__flylocal/health', { auth: null });
    expect(health.status).toBe(200);
    expect(health.body).toMatchObject({ ok: true });
  });
});

describe('flylocal admin endpoints', () => {
  it('switches faults at run time, shows them, and clears them', async () => {
    const set = await call('/__flylocal/faults', {
      method: 'POST',
      body: JSON.stringify({
        seed: 3,
        actions: { list: { script: ['503', '429'], retryAfterS: 7 } },
      }),
    });
    expect(set.status).toBe(200);
    expect(set.body).toMatchObject({ seed: 3, actions: { list: { script: ['503', '429'] } } });
    const first = await call(list);
    expect([first.status, first.body]).toEqual([503, { error: 'internal: injected 503 fault' }]);
    const second = await call(list);
    expect(second.status).toBe(429);
    expect(second.headers.get('retry-after')).toBe('7');
    expect((await call('/__flylocal/faults')).body).toMatchObject({
      actions: { list: { script: [] } },
    });
    expect((await call(list)).status).toBe(200);
    const stats = (await call('/__flylocal/stats')).body as {
      faults: Record<string, number>;
      responses: Record<string, number>;
    };
    expect(stats.faults).toMatchObject({ 'list:503': 1, 'list:429': 1 });
    expect(stats.responses['list 503']).toBe(1);
    expect((await call('/__flylocal/faults', { method: 'DELETE' })).body).toEqual({ actions: {} });
  });

  it('rejects a fault configuration it does not understand', async () => {
    const bad = await call('/__flylocal/faults', {
      method: 'POST',
      body: JSON.stringify({ actions: { list: { p5xx: 2 } } }),
    });
    expect(bad.status).toBe(400);
    expect((bad.body as { error: string }).error).toMatch(/^invalid_argument: /);
    const unknown = await call('/__flylocal/faults', {
      method: 'POST',
      body: JSON.stringify({ actions: { reboot: {} } }),
    });
    expect(unknown.status).toBe(400);
  });

  it('injects per-region capacity errors and latency', async () => {
    await call('/__flylocal/faults', {
      method: 'POST',
      body: JSON.stringify({
        capacityRegions: ['ams'],
        actions: { get: { latencyMs: { minMs: 1, maxMs: 5 } } },
      }),
    });
    const r = await call(list, {
      method: 'POST',
      body: JSON.stringify({ region: 'ams', skip_launch: true, config: { image: 'x' } }),
    });
    expect(r.status).toBe(412);
    expect(r.body).toEqual({
      error: 'insufficient_capacity: no capacity for a new machine in ams',
      status: 'insufficient_capacity',
    });
    const elsewhere = await call(list, {
      method: 'POST',
      body: JSON.stringify({ region: 'fra', skip_launch: true, config: { image: 'x' } }),
    });
    expect(elsewhere.status).toBe(200);
    const machines = (await call('/__flylocal/machines')).body as { id: string; region: string }[];
    expect(machines.some((m) => m.region === 'fra')).toBe(true);
    await call('/__flylocal/faults', { method: 'DELETE' });
  });
});

describe("flylocal enforcement of Fly's rate limits", () => {
  it('answers 429 with Retry-After past burst 3 per action and burst 10 for get, when enabled', async () => {
    const local = await startTestFlyLocal({
      faults: { enforceRateLimits: true },
      rateLimitGraceMs: 0,
    });
    try {
      const hit = (path: string) =>
        fetch(`${local.apiUrl}${path}`, { headers: { authorization: `Bearer ${local.token}` } });
      const [gets, lists] = await Promise.all([
        Promise.all(Array.from({ length: 30 }, () => hit(`${list}/00000000000000`))),
        Promise.all(Array.from({ length: 10 }, () => hit(list))),
      ]);
      // Arrivals spread a little on a busy machine; tokens refill meanwhile. Whatever the spread,
      // what got through fits burst + rate × spread, and the rest was told when to come back.
      const spreadS = (xs: number[]) => (Math.max(...xs) - Math.min(...xs)) / 1000;
      const passed = (rs: Response[], okStatus: number) =>
        rs.filter((r) => r.status === okStatus).length;
      expect(passed(gets, 404)).toBeLessThanOrEqual(
        10 + Math.floor(5 * spreadS(local.stats.arrivals.get!)) + 1,
      );
      expect(passed(lists, 200)).toBeLessThanOrEqual(
        3 + Math.floor(spreadS(local.stats.arrivals.list!)) + 1,
      );
      const limited = [...gets, ...lists].filter((r) => r.status === 429);
      expect(limited.length).toBeGreaterThan(0);
      expect(limited.length).toBe(
        (local.stats.rateLimited.get ?? 0) + (local.stats.rateLimited.list ?? 0),
      );
      expect(passed(gets, 404) + passed(gets, 429)).toBe(30);
      for (const r of limited)
        expect(Number(r.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect(await limited[0]!.json()).toMatchObject({
        error: expect.stringMatching(/^rate_limited: too many (get|list) requests/),
      });
    } finally {
      await local.close();
    }
  });
});

describe('seeded faults', () => {
  it('repeat exactly for the same seed and request order, and differ for another seed', () => {
    const cfg = {
      actions: {
        get: { p429: 0.3, p5xx: 0.3, pMalformed: 0.1, latencyMs: { minMs: 0, maxMs: 50 } },
      },
    } as const;
    const run = (seed: number) => {
      const f = new Faults({ ...cfg, seed });
      return Array.from({ length: 40 }, () => f.decide('get')).map(
        (d) => `${d.fault ?? 'ok'}@${d.latencyMs}`,
      );
    };
    expect(run(11)).toEqual(run(11));
    expect(run(11)).not.toEqual(run(12));
    const kinds = new Set(run(11).map((s) => s.split('@')[0]));
    expect(kinds).toEqual(new Set(['ok', '429', '503', 'malformed']));
  });

  it('give the same statuses over HTTP from two emulators with the same seed', async () => {
    const statuses = async (): Promise<number[]> => {
      const local = await startTestFlyLocal({
        faults: { seed: 5, actions: { list: { p5xx: 0.4, status5xx: 502, p429: 0.2 } } },
      });
      try {
        const out: number[] = [];
        for (let i = 0; i < 15; i++) {
          out.push(
            (
              await fetch(`${local.apiUrl}${list}`, {
                headers: { authorization: `Bearer ${local.token}` },
              })
            ).status,
          );
        }
        return out;
      } finally {
        await local.close();
      }
    };
    const a = await statuses();
    expect(await statuses()).toEqual(a);
    expect(new Set(a)).toEqual(new Set([200, 429, 502]));
  });
});
