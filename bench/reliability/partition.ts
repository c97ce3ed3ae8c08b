/**
 * G4 figures: 5 × 10 s partitions of the route between two regions' nats-servers, clicks on both
 * sides every 100 ms while cut, live VMs sampled every 50 ms. `node --import tsx bench/reliability/partition.ts`
 */
import { runPartition, tally } from '../../test/support/partitionRig.js';
import { isMain, table, type Row } from './lib.js';

export async function measure(): Promise<Row[]> {
  const r = await runPartition({
    partitions: 5,
    cutMs: 10_000,
    healMs: 5_000,
    clickEveryMs: 100,
    cap: 4,
    readyTimeoutMs: 2_000,
    convergeTimeoutMs: 30_000,
  });
  const worst = Math.max(...r.convergeMs);
  const converged = r.convergeMs.every((x) => x >= 0) && worst <= 5000 && r.identical;
  const ok = r.maxLive <= r.cap && converged && r.leakedWhileCut === 0;
  console.error(JSON.stringify({ ...r, clicks: tally(r.clicks) }));
  return [
    {
      goal: 'G4 region partition',
      command:
        'node --import tsx bench/reliability/partition.ts (CI: test/integration/reliability/partition.test.ts)',
      figure:
        `5 × 10 s cuts, ${r.clicks.length} clicks while cut (${JSON.stringify(tally(r.clicks))}); ` +
        `max live ${r.maxLive} ≤ cap ${r.cap} over ${r.samples} samples; Fly creates ${r.flyCreates}; ` +
        `maps identical after each heal in ${r.convergeMs.map((x) => (x < 0 ? 'never' : `${x} ms`)).join(', ')}; ` +
        `0 messages crossed the cut (${r.leakedWhileCut})`,
      verdict: ok ? 'PASS' : 'MISS',
    },
  ];
}

if (isMain(import.meta)) console.log(table(await measure()));
