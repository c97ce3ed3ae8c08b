/**
 * G10 and G11 figures: 5,000 clicks in 10 s from one address (default limits), and 2,000 distinct
 * 127/8 addresses × 3 clicks; latencies of the 429 path and event-loop delay (server and client
 * share the process, so the delay is an upper bound). `node --import tsx bench/reliability/floods.ts`
 */
import { byStatus, manyIpFlood, oneIpFlood, percentile } from '../../test/support/floods.js';
import { whereRig } from '../../test/support/whereRig.js';
import { isMain, ms, table, type Row } from './lib.js';

export async function measure(): Promise<Row[]> {
  const rows: Row[] = [];
  {
    const rig = await whereRig({ WM_AUTOSPAWN: 'off' });
    try {
      const { launchesPerMinute, cooldownMs } = rig.cfg.limits;
      const r = await oneIpFlood(rig.base, rig.fly, { clicks: 5000, overMs: 10_000 });
      const allowance = Math.min(
        launchesPerMinute,
        1 + Math.floor(10_000 / Math.max(1, cooldownMs)),
      );
      const launched = r.results.filter((x) => x.status === 202).length;
      const limited = r.results.filter((x) => x.status === 429);
      const p99 = percentile(
        limited.map((x) => x.ms),
        99,
      );
      const ok =
        launched <= allowance &&
        limited.length === 5000 - launched &&
        p99 < 50 &&
        r.loopDelay.p99 < 100;
      rows.push({
        goal: 'G10 one-IP flood',
        command:
          'node --import tsx bench/reliability/floods.ts (CI: test/integration/reliability/floods.test.ts)',
        figure:
          `5,000 clicks in ${(r.elapsedMs / 1000).toFixed(1)} s: ${JSON.stringify(byStatus(r.results))}; ` +
          `launches ${launched} ≤ allowance ${allowance} (cooldown ${cooldownMs / 1000} s, ${launchesPerMinute}/min); ` +
          `429 latency p50 ${ms(
            percentile(
              limited.map((x) => x.ms),
              50,
            ),
          )}, p99 ${ms(p99)} (goal < 50 ms); ` +
          `event-loop delay p99 ${ms(r.loopDelay.p99)}, max ${ms(r.loopDelay.max)} (goal < 100 ms)`,
        verdict: ok ? 'PASS' : 'MISS',
      });
    } finally {
      await rig.stop();
    }
  }
  {
    const rig = await whereRig({ WM_AUTOSPAWN: 'off' });
    try {
      const cap = rig.cfg.maxMachines;
      const r = await manyIpFlood(rig.base, rig.fly, {
        ips: 2000,
        clicksPerIp: 3,
        concurrency: 32,
      });
      const other5xx = r.results.filter((x) => x.status >= 500 && x.code !== 'CAPACITY').length;
      const ok =
        r.maxLive <= cap &&
        r.flyCreates <= cap &&
        other5xx === 0 &&
        r.results.every((x) => x.status > 0);
      rows.push({
        goal: 'G11 many-IP flood',
        command:
          'node --import tsx bench/reliability/floods.ts (CI: test/integration/reliability/floods.test.ts)',
        figure:
          `${new Set(r.results.map((x) => x.ip)).size} addresses × 3 = ${r.results.length} clicks in ${(r.elapsedMs / 1000).toFixed(1)} s: ` +
          `${JSON.stringify(byStatus(r.results))}; max live ${r.maxLive} ≤ cap ${cap} (${r.samples} samples); ` +
          `Fly creates ${r.flyCreates} (no faults injected, so 0 retries); 5xx other than 503 CAPACITY: ${other5xx}; ` +
          `p99 latency ${ms(
            percentile(
              r.results.map((x) => x.ms),
              99,
            ),
          )}; event-loop delay p99 ${ms(r.loopDelay.p99)}`,
        verdict: ok ? 'PASS' : 'MISS',
      });
    } finally {
      await rig.stop();
    }
  }
  return rows;
}

if (isMain(import.meta)) console.log(table(await measure()));
