/** The EventBus contract: memory and NATS adapters run this same suite. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { EventBus } from '../../src/ports/eventBus.js';

export function eventBusContract(
  name: string,
  make: () => Promise<{ bus: EventBus; other?: EventBus; cleanup?: () => Promise<void> }>,
): void {
  describe(`EventBus contract: ${name}`, () => {
    let bus: EventBus;
    let other: EventBus;
    let cleanup: (() => Promise<void>) | undefined;
    const prefix = `t${process.pid}x${Date.now().toString(36)}`;
    beforeEach(async () => {
      const h = await make();
      bus = h.bus;
      other = h.other ?? h.bus;
      cleanup = h.cleanup;
    });
    afterEach(async () => {
      await bus.close();
      if (other !== bus) await other.close();
      await cleanup?.();
    });

    it('delivers a published payload to a matching subscriber, as a copy', async () => {
      const got: unknown[] = [];
      other.subscribe(`${prefix}.a.b`, (p) => got.push(p));
      await settle();
      const payload = { n: 1, nested: { s: 'x' } };
      bus.publish(`${prefix}.a.b`, payload);
      await expect.poll(() => got.length).toBe(1);
      expect(got[0]).toEqual(payload);
      expect(got[0]).not.toBe(payload);
    });

    it('matches * as one token and > as the rest', async () => {
      const star: string[] = [];
      const tail: string[] = [];
      other.subscribe(`${prefix}.x.*`, (_p, s) => star.push(s));
      other.subscribe(`${prefix}.x.>`, (_p, s) => tail.push(s));
      await settle();
      bus.publish(`${prefix}.x.one`, 1);
      bus.publish(`${prefix}.x.one.two`, 2);
      bus.publish(`${prefix}.y.one`, 3);
      await expect.poll(() => tail.length).toBe(2);
      await settle();
      expect(star).toEqual([`${prefix}.x.one`]);
      expect(tail).toEqual([`${prefix}.x.one`, `${prefix}.x.one.two`]);
    });

    it('stops delivering after unsubscribe', async () => {
      const got: unknown[] = [];
      const stop = other.subscribe(`${prefix}.u`, (p) => got.push(p));
      await settle();
      bus.publish(`${prefix}.u`, 1);
      await expect.poll(() => got.length).toBe(1);
      stop();
      bus.publish(`${prefix}.u`, 2);
      await settle();
      expect(got).toEqual([1]);
    });

    it('keeps publish order for one publisher', async () => {
      const got: number[] = [];
      other.subscribe(`${prefix}.o`, (p) => got.push(p as number));
      await settle();
      for (let i = 0; i < 50; i++) bus.publish(`${prefix}.o`, i);
      await expect.poll(() => got.length).toBe(50);
      expect(got).toEqual(Array.from({ length: 50 }, (_, i) => i));
    });
  });
}

const settle = () => new Promise((r) => setTimeout(r, 50));
