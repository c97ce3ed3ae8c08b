/**
 * G9 figures: 200 SSE clients × 1–5 drops over real loopback sockets, resuming with Last-Event-ID.
 * `node --import tsx bench/reliability/sseReconnect.ts`
 */
import { checkSse, runSseReconnect } from '../../test/support/sseReconnect.js';
import { whereRig } from '../../test/support/whereRig.js';
import { isMain, table, type Row } from './lib.js';

export async function measure(): Promise<Row[]> {
  const rig = await whereRig({
    WM_AUTOSPAWN: 'off',
    WM_MAX_MACHINES: '100',
    WM_COOLDOWN_MS: '0',
    WM_LAUNCHES_PER_MINUTE: '10000',
    WM_REQUESTS_PER_MINUTE: '1000000',
  });
  try {
    const r = await runSseReconnect(rig, { clients: 200, launches: 20, stepMs: 400, seed: 9009 });
    const c = checkSse(r);
    const frames = r.clients.reduce((n, x) => n + x.ids.length, 0);
    const ok =
      c.gaps + c.reorders + c.duplicates === 0 && r.watchersAfter === 0 && r.connectionsAfter === 0;
    return [
      {
        goal: 'G9 SSE reconnect',
        command:
          'npx vitest run test/integration/reliability/sseReconnect.test.ts (figures: bench/reliability/sseReconnect.ts)',
        figure:
          `200 clients on 20 launches, ${c.drops} drops (1–5 each), ${c.connects} connections, ${frames} frames: ` +
          `gaps ${c.gaps}, reorders ${c.reorders}, duplicate ids ${c.duplicates}; after close: subscriptions ${r.watchersAfter}, connections ${r.connectionsAfter}`,
        verdict: ok ? 'PASS' : 'MISS',
      },
    ];
  } finally {
    await rig.stop();
  }
}

if (isMain(import.meta)) console.log(table(await measure()));
