/**
 * G12 figures: silent VMs' lifetimes under an instance clock −120 s / 0 / +120 s off, destroys per
 * machine, and the callback window. `node --import tsx bench/reliability/clockSkew.ts`
 */
import { SIGNATURE_TOLERANCE_S } from '../../src/shared/callbackAuth.js';
import { callbackWindow, runSkew } from '../../test/support/skewRig.js';
import { isMain, table, type Row } from './lib.js';

export async function measure(): Promise<Row[]> {
  const parts: string[] = [];
  let ok = true;
  for (const skew of [-120_000, 0, 120_000]) {
    const r = await runSkew(skew, 10);
    const min = Math.min(...r.lifetimes) / 1000;
    const doubles = r.destroysPerMachine.filter((n) => n > 1).length;
    ok &&=
      min >= (r.ttlMs - 120_000) / 1000 &&
      doubles === 0 &&
      r.destroysPerMachine.every((n) => n === 1);
    parts.push(
      `skew ${skew / 1000 > 0 ? '+' : ''}${skew / 1000} s: shortest life ${min} s of TTL ${r.ttlMs / 1000} s, double destroys ${doubles}`,
    );
  }
  const w = await callbackWindow([-299, 299, -301, 301]);
  const fmt = (s: number) =>
    `${s > 0 ? '+' : ''}${s} s → ${w.get(s)?.status}${w.get(s)?.code ? ` ${w.get(s)?.code}` : ''}`;
  ok &&=
    w.get(299)?.status === 200 &&
    w.get(-299)?.status === 200 &&
    w.get(301)?.status === 401 &&
    w.get(-301)?.status === 401;
  return [
    {
      goal: 'G12 clock skew',
      command:
        'npx vitest run test/unit/reliability/clockSkew.test.ts (figures: bench/reliability/clockSkew.ts)',
      figure: `10 silent VMs per run; ${parts.join('; ')}; callback window ±${SIGNATURE_TOLERANCE_S} s: ${[-299, 299, -301, 301].map(fmt).join(', ')}`,
      verdict: ok ? 'PASS' : 'MISS',
    },
  ];
}

if (isMain(import.meta)) console.log(table(await measure()));
