/**
 * Launch times across instances on a real nats-server: every instance folds every fact, so each
 * one's fleet stream tells the same typical times, and an instance started later (nothing saved)
 * finds them in the shared stream at boot.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { median } from '../../../src/where/services/launchTimes.js';
import type { LaunchTimesView, LaunchView } from '../../../src/where/wire.js';
import { NATS_SERVER, needs } from '../../support/require.js';
import { clusterRig, post, type ClusterRig, type Region } from '../../support/clusterRig.js';
import { openSse, type SseReader } from '../../support/sse.js';

const haveNats = needs('nats-server (apt-get install nats-server)', NATS_SERVER);

let rig: ClusterRig | undefined;
const readers: SseReader[] = [];
afterEach(async () => {
  for (const r of readers.splice(0)) r.close();
  for (const r of rig?.regions ?? []) r.system.publicApp.server.closeAllConnections();
  await rig?.stop();
  rig = undefined;
});

const lastTimes = (s: SseReader) =>
  s.frames.filter((f) => f.event === 'launchTimes').at(-1)?.data as LaunchTimesView | undefined;

describe.skipIf(!haveNats)('launch times over NATS', () => {
  it('every instance tells the same typical times, a late one too', async () => {
    rig = await clusterRig(['ams', 'syd'], { WM_COOLDOWN_MS: '0', WM_LAUNCHES_PER_MINUTE: '100' });
    const [ams, syd] = rig.regions as [Region, Region];
    const streams = [await openSse(`${ams.base}/events`), await openSse(`${syd.base}/events`)];
    readers.push(...streams);

    /** A launch accepted by `at`, made ready by a callback to `callbackTo`. */
    const readyLaunch = async (at: Region, callbackTo: Region): Promise<LaunchView> => {
      const before = new Set(rig!.fly.live().map((m) => m.id));
      const res = await post(at, { region: 'syd' });
      expect(res.status).toBe(202);
      const { launchId } = (await res.json()) as { launchId: string };
      await expect.poll(() => rig!.fly.live().some((m) => !before.has(m.id))).toBe(true);
      const machine = rig!.fly.live().find((m) => !before.has(m.id))!;
      await new Promise((r) => setTimeout(r, 30 + Math.floor(Math.random() * 50)));
      const cb = await rig!.callback(callbackTo, {
        machineId: machine.id,
        launchId,
        region: 'syd',
        status: 'listening',
        at: new Date().toISOString(),
      });
      expect(cb.status).toBe(200);
      let v: LaunchView | undefined;
      await expect
        .poll(
          async () => {
            v = (await (await fetch(`${at.base}/launches/${launchId}`)).json()) as LaunchView;
            return v.readyTime?.ms;
          },
          { timeout: 10_000 },
        )
        .toBeDefined();
      return v!;
    };
    const launches = [
      await readyLaunch(ams, ams),
      await readyLaunch(syd, ams),
      await readyLaunch(ams, syd),
    ];
    const want = {
      syd: { medianMs: median(launches.map((l) => l.readyTime!.ms)), count: 3 },
    };
    for (const s of streams)
      await expect.poll(() => lastTimes(s)?.regions, { timeout: 10_000 }).toEqual(want);

    const late = await rig.start('ord');
    expect(late.system.services.launchTimes.view().regions).toEqual(want);
  });
});
