/**
 * G12, clock skew: an instance whose clock is 120 s ahead of or behind the world's (Fly and the
 * VMs) never destroys a VM before its TTL less the skew it is off by, never destroys one twice,
 * and takes callbacks signed up to 299 s away while refusing 301 s (the window in
 * src/shared/callbackAuth.ts is ±300 s).
 */
import { describe, expect, it } from 'vitest';
import { SIGNATURE_TOLERANCE_S } from '../../../src/shared/callbackAuth.js';
import { callbackWindow, runSkew } from '../../support/skewRig.js';

const SKEW_MS = 120_000;

describe('G12: an instance with a skewed clock', () => {
  it.each([-SKEW_MS, 0, SKEW_MS])(
    'at %i ms: no VM destroyed before its TTL, none destroyed twice, every silent VM destroyed',
    { timeout: 60_000 },
    async (skew) => {
      const r = await runSkew(skew, 5);
      const where = JSON.stringify(r);
      // Every VM was ended by our own deadline (they never stopped themselves).
      expect(
        r.lifetimes.every((ms) => Number.isFinite(ms)),
        where,
      ).toBe(true);
      expect(Math.min(...r.lifetimes), where).toBeGreaterThanOrEqual(r.ttlMs);
      expect(
        r.destroysPerMachine.every((n) => n === 1),
        where,
      ).toBe(true);
    },
  );

  it(
    'takes callbacks signed 299 s away either way and refuses 301 s with SIGNATURE_EXPIRED',
    { timeout: 60_000 },
    async () => {
      expect(SIGNATURE_TOLERANCE_S).toBe(300);
      const got = await callbackWindow([-299, 299, -301, 301]);
      expect(got.get(-299)?.status).toBe(200);
      expect(got.get(299)?.status).toBe(200);
      expect(got.get(-301)).toEqual({ status: 401, code: 'SIGNATURE_EXPIRED' });
      expect(got.get(301)).toEqual({ status: 401, code: 'SIGNATURE_EXPIRED' });
    },
  );
});
