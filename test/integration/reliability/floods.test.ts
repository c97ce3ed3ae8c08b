/**
 * G10 and G11, floods over real loopback sockets (CI size for G10, full size for G11): one address
 * hammering the button gets at most its allowance of launches and 429 for the rest; 2,000 distinct
 * addresses never push live VMs past the cap. Latencies and event-loop delay go to the doc
 * (bench/reliability/floods.ts), not into assertions.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { byStatus, manyIpFlood, oneIpFlood } from '../../support/floods.js';
import { whereRig, type WhereRig } from '../../support/whereRig.js';

let rig: WhereRig | undefined;
afterEach(async () => {
  await rig?.stop();
  rig = undefined;
});

describe('G10: one address floods the button', () => {
  it(
    'gets at most its allowance of launches and 429 for every other click, never a 5xx',
    { timeout: 90_000 },
    async () => {
      rig = await whereRig({ WM_AUTOSPAWN: 'off' });
      const { launchesPerMinute, cooldownMs } = rig.cfg.limits;
      const overMs = 2000;
      const r = await oneIpFlood(rig.base, rig.fly, { clicks: 1000, overMs });
      const counts = byStatus(r.results);
      // Within overMs one address may launch once per cooldown, and never more than the per-minute limit.
      const allowance = Math.min(
        launchesPerMinute,
        1 + Math.floor(overMs / Math.max(1, cooldownMs)),
      );
      const launched = r.results.filter((x) => x.status === 202).length;
      expect(launched).toBeGreaterThanOrEqual(1);
      expect(launched).toBeLessThanOrEqual(allowance);
      expect(r.results.filter((x) => x.status === 429).length, JSON.stringify(counts)).toBe(
        1000 - launched,
      );
      expect(r.flyCreates).toBeLessThanOrEqual(allowance);
    },
  );
});

describe('G11: many addresses flood the button', () => {
  it(
    '2,000 addresses × 3 clicks: live VMs never above the cap, one create per slot, no 5xx but the cap answer',
    { timeout: 110_000 },
    async () => {
      rig = await whereRig({ WM_AUTOSPAWN: 'off' });
      const cap = rig.cfg.maxMachines;
      const r = await manyIpFlood(rig.base, rig.fly, {
        ips: 2000,
        clicksPerIp: 3,
        concurrency: 32,
      });
      const counts = byStatus(r.results);
      expect(r.results).toHaveLength(6000);
      // Every click was answered by the server, from its own address.
      expect(r.results.filter((x) => x.status === 0)).toEqual([]);
      expect(new Set(r.results.map((x) => x.ip)).size).toBe(2000);
      expect(r.maxLive).toBeLessThanOrEqual(cap);
      expect(rig.fly.live().length).toBeLessThanOrEqual(cap);
      // The fake injects no faults, so there is nothing to retry: one create per granted slot.
      expect(r.flyCreates).toBeLessThanOrEqual(cap);
      expect(r.results.filter((x) => x.status === 202).length).toBe(r.flyCreates);
      // 503 CAPACITY is the designed "every slot is taken" answer; any other 5xx is a failure.
      const other5xx = r.results.filter((x) => x.status >= 500 && x.code !== 'CAPACITY');
      expect(other5xx, JSON.stringify(counts)).toEqual([]);
    },
  );
});
