/**
 * G7 figures: 10,000 fast-check VM callbacks (malformed, forged, replayed, re-signed duplicates,
 * unknown launches, foreign machines, first valid calls) against a real landing system, each
 * judged by a model of its launch. `node --import tsx bench/reliability/callbacksFuzz.ts`
 */
import { g7Holds, runCallbackFuzz } from '../../test/support/callbackFuzz.js';
import { isMain, table, type Row } from './lib.js';

export async function measure(runs = 10_000): Promise<Row[]> {
  const t0 = performance.now();
  const r = await runCallbackFuzz({ runs, launches: 40, seed: 20261203 });
  const s = ((performance.now() - t0) / 1000).toFixed(0);
  const forged = Object.entries(r.byKind)
    .filter(([k]) => k.startsWith('forged'))
    .reduce((n, [, c]) => n + c, 0);
  const replays = (r.byKind.replay ?? 0) + (r.byKind['replay:refused'] ?? 0);
  const pct = r.mustRefuse === 0 ? 100 : (100 * r.refused4xx) / r.mustRefuse;
  return [
    {
      goal: 'G7 bad/duplicate/forged callbacks',
      command:
        'node --import tsx bench/reliability/callbacksFuzz.ts (CI: test/integration/where/callbacks.test.ts, 1,000)',
      figure:
        `${r.runs.toLocaleString('en')} fast-check callbacks on ${r.launches} launches (${r.launchesAtEnd} by the end: visitors click during the run) in ${s} s ` +
        `(invalid ${r.byKind.invalid ?? 0}, forged ${forged}, exact replays ${replays}, unknown launch ${r.byKind.unknownLaunch ?? 0}, ` +
        `foreign machine ${r.byKind.foreignMachine ?? 0}, first valid ${r.firsts}, re-signed duplicates ${r.duplicates}): ` +
        `crashes ${r.crashes}, unhandled rejections ${r.unhandled}, 5xx ${r.fivexx}; invalid → 4xx ${r.refused4xx}/${r.mustRefuse} (${pct.toFixed(0)} %); ` +
        `events stored by forged/replayed ${r.changesFromForgedOrReplayed}, by any refused call ${r.changesFromRefused}; ` +
        `duplicates → 2xx ${r.duplicates2xx}/${r.duplicates}, extra transitions ${r.extraTransitionsFromDuplicates}; ` +
        `first valid → 200 accepted ${r.firstsAccepted}/${r.firsts}; doubled transitions in streams ${r.doubledTransitions}; model disagreements ${r.violations.length}`,
      verdict: g7Holds(r) ? 'PASS' : 'MISS',
    },
  ];
}

if (isMain(import.meta)) {
  const runs = Number(process.argv[2] ?? 10_000);
  console.log(table(await measure(runs)));
}
