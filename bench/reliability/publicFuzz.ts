/**
 * G8 figures: 10,000 fast-check requests per public route through inject, the heap after a forced
 * GC before and after. `node --import tsx bench/reliability/publicFuzz.ts`
 */
import { FUZZ_ENV, fuzzRoute, PUBLIC_ROUTES, settledHeap } from '../../test/support/publicFuzz.js';
import { whereRig } from '../../test/support/whereRig.js';
import { isMain, mb, table, type Row } from './lib.js';

export async function measure(runs = 10_000): Promise<Row[]> {
  const rig = await whereRig(FUZZ_ENV);
  try {
    const app = rig.system.publicApp;
    const known = () => rig.system.services.runtime.actors('launch').map((r) => r.stream.slice(7));
    const full = () => {
      const c = rig.system.services.fleet.capacity();
      return c.live >= c.limit;
    };
    // Warm up (JIT, caches, first launches), then take the baseline.
    for (const route of PUBLIC_ROUTES) await fuzzRoute(app, route, 200, 1, known, full);
    const before = await settledHeap();
    const parts: string[] = [];
    let bad = 0;
    const pass = async (seed: number, record: boolean) => {
      for (const route of PUBLIC_ROUTES) {
        const r = await fuzzRoute(app, route, runs, seed, known, full);
        bad += r.unexpected5xx.length + r.thrown.length;
        if (r.unexpected5xx.length) console.error(route, r.unexpected5xx.slice(0, 3));
        if (r.thrown.length) console.error(route, r.thrown.slice(0, 3));
        if (record) parts.push(`${route}: ${JSON.stringify(r.statuses)}`);
      }
      return settledHeap();
    };
    // Pass 1 fills the bounded per-address maps (the limiters keep up to 20,000 addresses each);
    // pass 2, with other addresses, shows whether anything grows beyond that.
    const first = await pass(8008, true);
    const second = await pass(8009, false);
    const s = rig.system.services;
    const open =
      s.fleet.visitors + (Reflect.get(s.launches, 'watchers') as Map<string, unknown>).size;
    const growth = (first - before) / before;
    const drift = (second - first) / first;
    // The goal: back to the first baseline ± 10 %. Clean answers but a larger heap is PARTIAL.
    const clean = bad === 0 && open === 0;
    const total = (second - before) / before;
    const verdict: Row['verdict'] = clean ? (Math.abs(total) <= 0.1 ? 'PASS' : 'PARTIAL') : 'MISS';
    return [
      {
        goal: 'G8 malformed public input',
        command:
          'node --import tsx bench/reliability/publicFuzz.ts (CI: test/integration/reliability/publicFuzz.test.ts, 2,000/route)',
        figure:
          `${runs.toLocaleString('en')} per route; ${parts.join('; ')}; unexpected 5xx + throws: ${bad}; ` +
          `streams left open: ${open}; heap after GC: ${mb(before)} before → ${mb(first)} after pass 1 (+${(growth * 100).toFixed(1)} %: per-address limiter maps filling, bounded) → ${mb(second)} after a 2nd pass with other addresses (${(drift * 100).toFixed(1)} %, goal ± 10 %)`,
        verdict,
      },
    ];
  } finally {
    await rig.stop();
  }
}

if (isMain(import.meta)) console.log(table(await measure()));
