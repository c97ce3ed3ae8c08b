/** Contracts for the capacity ledger, leases and presence: memory and NATS KV adapters run them. */
import { describe, expect, it } from 'vitest';
import type { CapacityLedger } from '../../src/ports/capacity.js';
import type { Leases, Presence } from '../../src/ports/coordination.js';

const T0 = Date.UTC(2026, 0, 1);
let uniq = 0;
const id = (p: string) => `${p}-${process.pid}-${Date.now().toString(36)}-${uniq++}`;

export function capacityContract(
  name: string,
  make: () => Promise<{
    ledger: CapacityLedger;
    ledger2?: CapacityLedger;
    cleanup?: () => Promise<void>;
  }>,
): void {
  describe(`CapacityLedger contract: ${name}`, () => {
    it('grants up to the limit and refuses beyond it', async () => {
      const { ledger, cleanup } = await make();
      try {
        const res = [];
        for (let i = 0; i < 4; i++) res.push(await ledger.reserve(id('h'), 3, T0, T0 + 60_000));
        expect(res.map((r) => r.ok)).toEqual([true, true, true, false]);
        expect(res[3]!.live).toBe(3);
      } finally {
        await cleanup?.();
      }
    });

    it('is idempotent per holder and frees a slot on release', async () => {
      const { ledger, cleanup } = await make();
      try {
        const a = id('a');
        expect((await ledger.reserve(a, 1, T0, T0 + 1000)).ok).toBe(true);
        expect((await ledger.reserve(a, 1, T0, T0 + 1000)).ok).toBe(true);
        expect((await ledger.reserve(id('b'), 1, T0, T0 + 1000)).ok).toBe(false);
        await ledger.release(a);
        expect((await ledger.reserve(id('c'), 1, T0, T0 + 1000)).ok).toBe(true);
      } finally {
        await cleanup?.();
      }
    });

    it('does not count expired slots', async () => {
      const { ledger, cleanup } = await make();
      try {
        expect((await ledger.reserve(id('a'), 1, T0, T0 + 1000)).ok).toBe(true);
        expect((await ledger.reserve(id('b'), 1, T0 + 500, T0 + 2000)).ok).toBe(false);
        expect((await ledger.reserve(id('b'), 1, T0 + 1001, T0 + 2000)).ok).toBe(true);
      } finally {
        await cleanup?.();
      }
    });

    it('holds over the limit when told to, and lists holds', async () => {
      const { ledger, cleanup } = await make();
      try {
        const a = id('a');
        const b = id('b');
        await ledger.reserve(a, 1, T0, T0 + 1000);
        await ledger.hold(b, T0, T0 + 1000);
        const holds = await ledger.holds(T0);
        expect(holds.map((h) => h.holder).sort()).toEqual([a, b].sort());
        expect((await ledger.reserve(id('c'), 2, T0, T0 + 1000)).ok).toBe(false);
      } finally {
        await cleanup?.();
      }
    });

    it('never exceeds the limit under concurrent reservations', async () => {
      const { ledger, ledger2, cleanup } = await make();
      try {
        const ledgers = [ledger, ledger2 ?? ledger];
        const results = await Promise.all(
          Array.from({ length: 24 }, (_, i) =>
            ledgers[i % 2]!.reserve(id('c'), 5, T0, T0 + 60_000),
          ),
        );
        expect(results.filter((r) => r.ok)).toHaveLength(5);
        expect(await ledger.holds(T0)).toHaveLength(5);
      } finally {
        await cleanup?.();
      }
    });
  });
}

export function leasesContract(
  name: string,
  make: () => Promise<{ leases: Leases; leases2?: Leases; cleanup?: () => Promise<void> }>,
): void {
  describe(`Leases contract: ${name}`, () => {
    it('gives a lease to one holder until it expires, then to another', async () => {
      const { leases, leases2, cleanup } = await make();
      const other = leases2 ?? leases;
      const n = id('lease');
      try {
        expect(await leases.acquire(n, 'a', 1000, T0)).toBe(true);
        expect(await other.acquire(n, 'b', 1000, T0 + 10)).toBe(false);
        expect(await leases.acquire(n, 'a', 1000, T0 + 500)).toBe(true);
        expect(await other.holder(n, T0 + 600)).toBe('a');
        expect(await other.acquire(n, 'b', 1000, T0 + 1501)).toBe(true);
        expect(await leases.holder(n, T0 + 1600)).toBe('b');
      } finally {
        await cleanup?.();
      }
    });

    it('frees a released lease at once', async () => {
      const { leases, cleanup } = await make();
      const n = id('lease');
      try {
        await leases.acquire(n, 'a', 10_000, T0);
        await leases.release(n, 'b');
        expect(await leases.holder(n, T0)).toBe('a');
        await leases.release(n, 'a');
        expect(await leases.holder(n, T0)).toBeUndefined();
        expect(await leases.acquire(n, 'b', 10_000, T0)).toBe(true);
      } finally {
        await cleanup?.();
      }
    });

    it('lets exactly one of concurrent contenders win', async () => {
      const { leases, leases2, cleanup } = await make();
      const n = id('lease');
      try {
        const all = [leases, leases2 ?? leases];
        const wins = await Promise.all(
          Array.from({ length: 6 }, (_, i) => all[i % 2]!.acquire(n, `h${i}`, 10_000, T0)),
        );
        expect(wins.filter(Boolean)).toHaveLength(1);
      } finally {
        await cleanup?.();
      }
    });
  });
}

export function presenceContract(
  name: string,
  make: () => Promise<{ presence: Presence; cleanup?: () => Promise<void> }>,
): void {
  describe(`Presence contract: ${name}`, () => {
    it('sums live reports and forgets expired or withdrawn ones', async () => {
      const { presence, cleanup } = await make();
      const a = id('i');
      const b = id('i');
      try {
        await presence.report(a, 2, 1000, T0);
        await presence.report(b, 3, 5000, T0);
        expect(await presence.total(T0 + 10)).toBe(5);
        expect((await presence.instances(T0 + 10)).sort()).toEqual([a, b].sort());
        expect(await presence.total(T0 + 1001)).toBe(3);
        await presence.report(a, 1, 1000, T0 + 1002);
        expect(await presence.total(T0 + 1003)).toBe(4);
        await presence.withdraw(b);
        expect(await presence.total(T0 + 1003)).toBe(1);
      } finally {
        await cleanup?.();
      }
    });
  });
}
