/**
 * One system across regions, on a real nats-server: every instance sees every event, the cap
 * holds across instances, a launch is served by its owner (fly-replay) and completes when the VM
 * calls another instance, and the leader takes over a dead owner's launch.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startEdgeProxy } from '../../../src/flylocal/proxy.js';
import { NATS_SERVER, needs } from '../../support/require.js';
import { clusterRig, post, type ClusterRig } from '../../support/clusterRig.js';
import { openSse, type SseReader } from '../../support/sse.js';

const haveNats = needs('nats-server (apt-get install nats-server)', NATS_SERVER);

let rig: ClusterRig | undefined;
const readers: SseReader[] = [];
const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const r of readers.splice(0)) r.close();
  for (const c of closers.splice(0)) await c();
  await rig?.stop();
  rig = undefined;
});

const statuses = (r: SseReader) =>
  r.frames.filter((f) => f.event === 'launch').map((f) => (f.data as { status: string }).status);

describe.skipIf(!haveNats)('regions over NATS', () => {
  it('shows a machine launched in one region on the map of every other', async () => {
    rig = await clusterRig(['ams', 'ord', 'syd']);
    const [ams, ord, syd] = rig.regions as [
      (typeof rig.regions)[0],
      (typeof rig.regions)[0],
      (typeof rig.regions)[0],
    ];
    const sydFleet = await openSse(`${syd.base}/events`);
    readers.push(sydFleet);
    await expect.poll(() => sydFleet.frames.length).toBeGreaterThan(0);
    const res = await post(ams, { region: 'ams' });
    expect(res.status).toBe(202);
    await expect
      .poll(() => sydFleet.frames.some((f) => f.event === 'machine'), { timeout: 10_000 })
      .toBe(true);
    const m = sydFleet.frames.find((f) => f.event === 'machine')!.data as {
      region: string;
      source: string;
    };
    expect(m).toMatchObject({ region: 'ams', source: 'button' });
    await expect
      .poll(() => ord.system.services.fleet.machines().length, { timeout: 10_000 })
      .toBe(1);
    // The projections converge: the same machine, in the same state, on every instance.
    await expect
      .poll(
        () =>
          JSON.stringify(ord.system.services.fleet.machines()) ===
          JSON.stringify(ams.system.services.fleet.machines()),
        { timeout: 10_000 },
      )
      .toBe(true);
    expect(syd.system.services.fleet.machines()).toHaveLength(1);
  });

  it('never exceeds the cap with concurrent clicks in three regions', async () => {
    rig = await clusterRig(['ams', 'ord', 'syd'], {
      WM_MAX_MACHINES: '4',
      WM_COOLDOWN_MS: '0',
      WM_LAUNCHES_PER_MINUTE: '1000',
    });
    const clicks = Array.from({ length: 30 }, (_, i) =>
      post(rig!.regions[i % 3]!, {}, { 'fly-client-ip': `198.51.100.${i + 1}` }),
    );
    const codes = (await Promise.all(clicks)).map((r) => r.status);
    expect(codes.filter((c) => c === 202)).toHaveLength(4);
    expect(codes.filter((c) => c === 503)).toHaveLength(26);
    await expect.poll(() => rig!.fly.ledger().length, { timeout: 10_000 }).toBe(4);
    await new Promise((r) => setTimeout(r, 500));
    expect(rig.fly.ledger()).toHaveLength(4);
  });

  it('answers a request for a launch on another instance with fly-replay to its owner, and the proxy replays it', async () => {
    rig = await clusterRig(['ams', 'syd']);
    const [ams, syd] = rig.regions as [(typeof rig.regions)[0], (typeof rig.regions)[0]];
    const { launchId } = (await (await post(ams)).json()) as { launchId: string };
    await expect
      .poll(() => syd.system.services.runtime.actor(`launch.${launchId}`)?.version ?? 0, {
        timeout: 10_000,
      })
      .toBeGreaterThan(0);
    // Directly at the wrong instance: a clear answer naming the owner.
    const direct = await fetch(`${syd.base}/launches/${launchId}`, {
      headers: { accept: 'application/json' },
    });
    expect(direct.status).toBe(409);
    expect(direct.headers.get('fly-replay')).toBe('instance=where-ams');
    // Through the edge proxy, with the visitor's edge in syd: replayed to ams, served there.
    const proxy = await startEdgeProxy({
      port: 0,
      defaultRegion: 'syd',
      directory: {
        instances: async (app) =>
          app === 'where'
            ? [
                { id: 'where-ams', region: 'ams', url: ams.base },
                { id: 'where-syd', region: 'syd', url: syd.base },
              ]
            : [],
      },
    });
    closers.push(() => proxy.close());
    const sse = await openSse(`${proxy.url}/launches/${launchId}/events`);
    readers.push(sse);
    expect(sse.status).toBe(200);
    await expect.poll(() => statuses(sse).length, { timeout: 10_000 }).toBeGreaterThanOrEqual(2);
    // The VM's callback reaches syd (not the owner): the launch still completes.
    const machine = rig.fly.live()[0]!;
    const cb = await rig.callback(syd, {
      machineId: machine.id,
      launchId,
      region: machine.region,
      status: 'listening',
      at: new Date().toISOString(),
    });
    expect(cb.status).toBe(200);
    await expect.poll(() => statuses(sse).at(-1), { timeout: 10_000 }).toBe('ready');
  });

  it('lets the leader drive a launch whose owner died: served from the shared stream, its deadline still fires', async () => {
    rig = await clusterRig(['ams', 'syd'], { WM_READY_TIMEOUT_MS: '4000' });
    const [ams, syd] = rig.regions as [(typeof rig.regions)[0], (typeof rig.regions)[0]];
    // Make sure the survivor is not the owner: launch on whichever is not the leader.
    await expect
      .poll(
        () => ams.system.services.cluster.isLeader() !== syd.system.services.cluster.isLeader(),
        { timeout: 10_000 },
      )
      .toBe(true);
    const [owner, survivor] = ams.system.services.cluster.isLeader() ? [syd, ams] : [ams, syd];
    const { launchId } = (await (await post(owner)).json()) as { launchId: string };
    await expect.poll(() => rig!.fly.live().length, { timeout: 10_000 }).toBe(1);
    await owner.stop();
    // Once the owner's presence expires, the survivor serves the stream itself.
    await expect
      .poll(
        async () =>
          (
            await fetch(`${survivor.base}/launches/${launchId}`, {
              headers: { accept: 'application/json' },
            })
          ).status,
        { timeout: 10_000 },
      )
      .toBe(200);
    const sse = await openSse(`${survivor.base}/launches/${launchId}/events`);
    readers.push(sse);
    // Nobody calls back: the ready deadline (armed by the dead owner) fires on the leader, which destroys the machine.
    await expect.poll(() => statuses(sse).at(-1), { timeout: 20_000 }).toBe('failed');
    expect((sse.frames.at(-1)!.data as { reason: string }).reason).toBe('readyTimeout');
    await expect.poll(() => rig!.fly.live().length, { timeout: 20_000 }).toBe(0);
  });

  it('rebuilds every actor from JetStream when an instance starts again', async () => {
    rig = await clusterRig(['ams']);
    const ams = rig.regions[0]!;
    const { launchId } = (await (await post(ams)).json()) as { launchId: string };
    await expect
      .poll(
        () =>
          ams.system.services.runtime
            .actor(`launch.${launchId}`)
            ?.snapshot.matches('waitingReady') ?? false,
        { timeout: 10_000 },
      )
      .toBe(true);
    const before = ams.system.services.runtime.actor(`launch.${launchId}`)!.version;
    await ams.stop();
    const again = await rig.start('ams');
    const rec = again.system.services.runtime.actor(`launch.${launchId}`);
    // Everything it had, rebuilt; its re-driven watch may already have added "started".
    expect(rec?.version).toBeGreaterThanOrEqual(before);
    expect(rec!.version - before).toBeLessThanOrEqual(1);
    expect(rec?.snapshot.matches('waitingReady')).toBe(true);
    const machine = rig.fly.live()[0]!;
    expect(again.system.services.fleet.machines().map((m) => m.machineId)).toEqual([machine.id]);
    // And it carries on: the callback completes the launch on the restarted instance.
    const cb = await rig.callback(again, {
      machineId: machine.id,
      launchId,
      region: machine.region,
      status: 'listening',
      at: new Date().toISOString(),
    });
    expect(cb.status).toBe(200);
    expect(
      again.system.services.runtime.actor(`launch.${launchId}`)?.snapshot.matches('redirect'),
    ).toBe(true);
  });
});
