/** Adapters: capacity ledger, leases and presence in process memory (one instance, or tests). */
import type { CapacityHold, CapacityLedger, ReserveResult } from '../../ports/capacity.js';
import type { Leases, Presence } from '../../ports/coordination.js';

export class MemoryCapacityLedger implements CapacityLedger {
  private readonly slots = new Map<string, number>();

  private live(now: number): number {
    let n = 0;
    for (const [holder, until] of this.slots) {
      if (until > now) n++;
      else this.slots.delete(holder);
    }
    return n;
  }

  async reserve(holder: string, limit: number, now: number, until: number): Promise<ReserveResult> {
    const live = this.live(now);
    if (this.slots.has(holder)) {
      this.slots.set(holder, Math.max(until, this.slots.get(holder)!));
      return { ok: true, live };
    }
    if (live >= limit) return { ok: false, live };
    this.slots.set(holder, until);
    return { ok: true, live: live + 1 };
  }

  async hold(holder: string, now: number, until: number): Promise<void> {
    this.live(now);
    this.slots.set(holder, Math.max(until, this.slots.get(holder) ?? 0));
  }

  async release(holder: string): Promise<void> {
    this.slots.delete(holder);
  }

  async holds(now: number): Promise<CapacityHold[]> {
    this.live(now);
    return [...this.slots].map(([holder, until]) => ({ holder, until }));
  }
}

export class MemoryLeases implements Leases {
  private readonly leases = new Map<string, { holder: string; until: number }>();

  async acquire(name: string, holder: string, ttlMs: number, now: number): Promise<boolean> {
    const cur = this.leases.get(name);
    if (cur && cur.until > now && cur.holder !== holder) return false;
    this.leases.set(name, { holder, until: now + ttlMs });
    return true;
  }

  async release(name: string, holder: string): Promise<void> {
    if (this.leases.get(name)?.holder === holder) this.leases.delete(name);
  }

  async holder(name: string, now: number): Promise<string | undefined> {
    const cur = this.leases.get(name);
    return cur && cur.until > now ? cur.holder : undefined;
  }
}

export class MemoryPresence implements Presence {
  private readonly reports = new Map<string, { visitors: number; until: number }>();

  async report(instance: string, visitors: number, ttlMs: number, now: number): Promise<void> {
    this.reports.set(instance, { visitors, until: now + ttlMs });
  }

  async total(now: number): Promise<number> {
    let sum = 0;
    for (const r of this.reports.values()) if (r.until > now) sum += r.visitors;
    return sum;
  }

  async instances(now: number): Promise<string[]> {
    return [...this.reports].filter(([, r]) => r.until > now).map(([i]) => i);
  }

  async withdraw(instance: string): Promise<void> {
    this.reports.delete(instance);
  }
}
