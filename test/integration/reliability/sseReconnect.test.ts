/**
 * G9, SSE reconnect over real loopback sockets: 200 clients on launch streams each drop 1–5 times
 * and resume with Last-Event-ID while the launches run to the end. Every client ends with exactly
 * the frames a client that never dropped gets: no gap, no reorder, no duplicate id; afterwards the
 * server holds no subscription and no connection.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { checkSse, runSseReconnect } from '../../support/sseReconnect.js';
import { whereRig, type WhereRig } from '../../support/whereRig.js';

let rig: WhereRig | undefined;
afterEach(async () => {
  await rig?.stop();
  rig = undefined;
});

describe('G9: SSE clients that drop and resume', () => {
  it(
    '200 clients × 1–5 drops: 0 gaps, 0 reorders, 0 duplicates; subscriptions back to 0',
    { timeout: 90_000 },
    async () => {
      rig = await whereRig({
        WM_AUTOSPAWN: 'off',
        WM_MAX_MACHINES: '100',
        WM_COOLDOWN_MS: '0',
        WM_LAUNCHES_PER_MINUTE: '10000',
        WM_REQUESTS_PER_MINUTE: '1000000',
      });
      const seed = Number(process.env.WM_SEED ?? 9009);
      const r = await runSseReconnect(rig, { clients: 200, launches: 20, stepMs: 400, seed });
      const c = checkSse(r);
      const where = `seed ${seed}: ${JSON.stringify(c)}`;
      // The reference streams tell whole stories, so "no gap" means something.
      for (const ids of r.reference.values()) expect(ids.length, where).toBeGreaterThanOrEqual(4);
      expect(
        r.clients.every((x) => x.drops >= 1 && x.drops <= 5),
        where,
      ).toBe(true);
      expect(
        r.clients.every((x) => x.refused === 0),
        where,
      ).toBe(true);
      expect(c.gaps, where).toBe(0);
      expect(c.reorders, where).toBe(0);
      expect(c.duplicates, where).toBe(0);
      expect(r.watchersAfter).toBe(0);
      expect(r.connectionsAfter).toBe(0);
    },
  );
});
