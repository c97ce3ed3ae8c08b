/**
 * nats-server killed (SIGKILL) and restarted in the middle of 100 launches across two instances:
 * no event lost, none stored or applied twice, every launch reaches a final state, and at most one
 * machine per launch was ever created — all of them destroyed.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { NATS_SERVER, needs } from '../../support/require.js';
import { clusterRig, post, type ClusterRig } from '../../support/clusterRig.js';

const haveNats = needs('nats-server (apt-get install nats-server)', NATS_SERVER);

let rig: ClusterRig | undefined;
afterEach(async () => {
  await rig?.stop();
  rig = undefined;
});

describe.skipIf(!haveNats)('NATS restart during launches', () => {
  it('loses nothing and applies nothing twice across 100 launches', async () => {
    rig = await clusterRig(['ams', 'ord'], {
      WM_READY_TIMEOUT_MS: '3000',
      WM_COOLDOWN_MS: '0',
      WM_LAUNCHES_PER_MINUTE: '10000',
      WM_REQUESTS_PER_MINUTE: '100000',
      WM_MAX_MACHINES: '500',
    });
    const [ams, ord] = rig.regions as [(typeof rig.regions)[0], (typeof rig.regions)[0]];
    const launchIds: string[] = [];
    let killed = false;
    for (let batch = 0; batch < 10; batch++) {
      const results = await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          post(i % 2 ? ams : ord, {}, { 'fly-client-ip': `198.51.${batch}.${i + 1}` }),
        ),
      );
      for (const r of results) {
        expect(r.status).toBe(202);
        launchIds.push(((await r.json()) as { launchId: string }).launchId);
      }
      if (batch === 3 && !killed) {
        killed = true;
        // Crash the broker mid-flight; launches keep arriving while it is down.
        await rig.nats.kill();
        setTimeout(() => void rig!.nats.start(), 1500);
      }
    }
    expect(new Set(launchIds).size).toBe(100);

    const runtimeA = ams.system.services.runtime;
    const runtimeB = ord.system.services.runtime;
    const final = (id: string) => {
      const r = runtimeA.actor(`launch.${id}`);
      return r !== undefined && r.snapshot.status === 'done';
    };
    await expect
      .poll(() => launchIds.filter(final).length, { timeout: 90_000, interval: 500 })
      .toBe(100);

    const seenIds = new Set<string>();
    for (const id of launchIds) {
      const history = await runtimeA.history(`launch.${id}`);
      // Gap-free versions, each event once.
      expect(history.map((e) => e.version)).toEqual(history.map((_, i) => i + 1));
      for (const e of history) {
        expect(seenIds.has(e.id)).toBe(false);
        seenIds.add(e.id);
      }
      const count = (t: string) => history.filter((e) => e.type === t).length;
      expect(count('launch.requested')).toBe(1);
      // A launch that asked for its slot while the broker was down may time out before the answer.
      expect(count('capacity.reserved') + count('capacity.exhausted')).toBeLessThanOrEqual(1);
      expect(count('fly.machineCreated')).toBeLessThanOrEqual(1);
      // Both instances folded the same history.
      expect(runtimeB.actor(`launch.${id}`)?.version ?? history.length).toBe(history.length);
    }
    // Most launches went the whole normal way: a slot, a machine, the ready deadline, destruction.
    const reasons = launchIds.map(
      (id) => (runtimeA.actor(`launch.${id}`)?.snapshot.context as { reason?: string }).reason,
    );
    expect(reasons.filter((r) => r === 'readyTimeout').length).toBeGreaterThanOrEqual(80);
    // At most one machine per launch, and none left.
    const byLaunch = new Map<string, number>();
    for (const m of rig.fly.ledger())
      byLaunch.set(m.metadata.launch_id!, (byLaunch.get(m.metadata.launch_id!) ?? 0) + 1);
    expect([...byLaunch.values()].every((n) => n === 1)).toBe(true);
    await expect.poll(() => rig!.fly.live().length, { timeout: 30_000 }).toBe(0);
  });
});
