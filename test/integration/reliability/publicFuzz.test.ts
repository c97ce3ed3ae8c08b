/**
 * G8, malformed public input: fast-check-generated requests on every public route (POST /launches,
 * both SSE streams, static assets, the page) through fastify.inject. No 5xx but the designed 503s,
 * nothing thrown, the app still answers, no stream left open. WM_FUZZ_RUNS sets the count per
 * route (default 2,000 in CI; bench/reliability/publicFuzz.ts runs the goal's 10,000 and the heap).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { FUZZ_ENV, fuzzRoute, PUBLIC_ROUTES, settledHeap } from '../../support/publicFuzz.js';
import { whereRig, type WhereRig } from '../../support/whereRig.js';

let rig: WhereRig | undefined;
afterEach(async () => {
  await rig?.stop();
  rig = undefined;
});

describe('G8: fuzzed requests on every public route', () => {
  it(
    'answers every one without a 5xx or a throw, and leaves no stream open',
    { timeout: 110_000 },
    async () => {
      rig = await whereRig(FUZZ_ENV);
      const app = rig.system.publicApp;
      const runs = Number(process.env.WM_FUZZ_RUNS ?? 2000);
      const seed = Number(process.env.WM_SEED ?? 8008);
      const known = () =>
        rig!.system.services.runtime.actors('launch').map((r) => r.stream.slice('launch.'.length));
      const full = () => {
        const c = rig!.system.services.fleet.capacity();
        return c.live >= c.limit;
      };
      const before = await settledHeap();
      for (const route of PUBLIC_ROUTES) {
        const r = await fuzzRoute(app, route, runs, seed, known, full);
        const where = `${route}, seed ${seed}: ${JSON.stringify(r.statuses)}`;
        expect(r.thrown, where).toEqual([]);
        expect(r.unexpected5xx, where).toEqual([]);
        expect(Object.values(r.statuses).reduce((a, b) => a + b, 0)).toBe(runs);
      }
      // Valid launches did happen, so the deep path ran (not only validation errors).
      expect(known().length).toBeGreaterThan(0);
      const s = rig.system.services;
      await expect.poll(() => s.fleet.visitors).toBe(0);
      await expect
        .poll(() => (Reflect.get(s.launches, 'watchers') as Map<string, unknown>).size)
        .toBe(0);
      expect((await app.inject({ url: '/healthz' })).statusCode).toBe(200);
      // The heap is reported by the bench; here only a gross leak (doubling) fails.
      expect(await settledHeap()).toBeLessThan(before * 2 + 50e6);
    },
  );
});
