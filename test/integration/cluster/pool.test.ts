/**
 * Warm-pool claims across instances on a real nats-server (JetStream store, compare-and-set per
 * subject): launches accepted by two instances at once, in one pooled region, never share a
 * machine; each gets exactly one, pooled or created.
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

describe.skipIf(!haveNats)('warm-pool claims over NATS', () => {
  it('hands each pooled machine to one launch, whichever instance accepted it', async () => {
    rig = await clusterRig(['ams', 'ord'], {
      WM_POOL: 'fra:4',
      WM_COOLDOWN_MS: '0',
      WM_LAUNCHES_PER_MINUTE: '1000',
      WM_MAX_MACHINES: '50',
    });
    const fly = rig.fly;
    const readyPooled = () =>
      fly.live().filter((m) => m.metadata.pool === 'fra' && m.metadata.launch_id === undefined);
    await expect.poll(() => readyPooled().length, { timeout: 20_000 }).toBe(4);
    const [a, b] = rig.regions as [ClusterRig['regions'][0], ClusterRig['regions'][0]];
    // Both instances fold the pool before the clicks.
    await expect
      .poll(() => b.system.services.pool?.pool('fra')?.ready.length, { timeout: 10_000 })
      .toBe(4);

    const answers = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        post(i % 2 ? b : a, { region: 'fra' }, { 'fly-client-ip': `10.0.0.${i + 1}` }),
      ),
    );
    const launchIds: string[] = [];
    for (const res of answers) {
      expect(res.status).toBe(202);
      launchIds.push(((await res.json()) as { launchId: string }).launchId);
    }
    const machinesOf = (id: string) => fly.live().filter((m) => m.metadata.launch_id === id);
    await expect
      .poll(() => launchIds.every((id) => machinesOf(id).length >= 1), { timeout: 20_000 })
      .toBe(true);
    const taken = new Set<string>();
    for (const id of launchIds) {
      const mine = machinesOf(id);
      expect(mine, id).toHaveLength(1);
      expect(taken.has(mine[0]!.id)).toBe(false);
      taken.add(mine[0]!.id);
    }
    // Every claim in the shared stream names a different machine.
    const pool = a.system.services.pool!.pool('fra')!;
    const claimed = Object.values(pool.machines).filter((m) => m.state === 'claimed');
    expect(claimed.length).toBeGreaterThan(0);
    expect(new Set(claimed.map((m) => m.launchId)).size).toBe(claimed.length);
    // Pooled machines went to the launches that claimed them.
    for (const [id, m] of Object.entries(pool.machines))
      if (m.state === 'claimed') expect(machinesOf(m.launchId!).map((x) => x.id)).toEqual([id]);
  });
});
