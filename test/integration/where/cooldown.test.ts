/**
 * The launch-button cooldown over real HTTP: only an accepted launch starts it, so a visitor the
 * cap turned away may launch as soon as a slot frees, and one address still cannot race past it.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { launch, whereRig, type WhereRig } from '../../support/whereRig.js';

let rig: WhereRig | undefined;
afterEach(async () => {
  await rig?.stop();
  rig = undefined;
});

const code = async (res: Response) => ((await res.json()) as { code: string }).code;

/** Let the one live machine finish the way a VM does (says stopping, exits) and free its slot. */
async function finishTheMachine(r: WhereRig, launchId: string): Promise<void> {
  await expect.poll(() => r.fly.live().length).toBe(1);
  const machine = r.fly.live()[0]!;
  const cb = await r.callback({
    machineId: machine.id,
    launchId,
    region: machine.region,
    status: 'stopping',
    reason: 'finished',
    at: new Date().toISOString(),
  });
  expect(cb.status).toBe(200);
  r.fly.exit(machine.id, 0);
  await expect.poll(async () => (await r.ledger.holds(Date.now())).length).toBe(0);
}

describe('the launch cooldown', () => {
  it('does not start on a 503 CAPACITY refusal: the same visitor launches once a slot frees', async () => {
    rig = await whereRig({ WM_MAX_MACHINES: '1', WM_COOLDOWN_MS: '20000' });
    const first = await launch(rig, {}, { 'fly-client-ip': '198.51.100.1' });
    expect(first.status).toBe(202);
    const { launchId } = (await first.json()) as { launchId: string };

    const refused = await launch(rig, {}, { 'fly-client-ip': '198.51.100.2' });
    expect(refused.status).toBe(503);
    expect(await code(refused)).toBe('CAPACITY');

    await finishTheMachine(rig, launchId);
    const retry = await launch(rig, {}, { 'fly-client-ip': '198.51.100.2' });
    expect(retry.status).toBe(202);

    // That accepted launch started this visitor's cooldown; the first visitor's still runs too.
    const again = await launch(rig, {}, { 'fly-client-ip': '198.51.100.2' });
    expect(again.status).toBe(429);
    expect(await code(again)).toBe('COOLDOWN');
    expect(Number(again.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(await code(await launch(rig, {}, { 'fly-client-ip': '198.51.100.1' }))).toBe('COOLDOWN');
  });

  it('lets only one of simultaneous launches from one address through', async () => {
    rig = await whereRig({ WM_MAX_MACHINES: '8', WM_COOLDOWN_MS: '20000' });
    const results = await Promise.all(
      Array.from({ length: 4 }, () => launch(rig!, {}, { 'fly-client-ip': '198.51.100.7' })),
    );
    const statuses = results.map((r) => r.status).sort();
    expect(statuses).toEqual([202, 429, 429, 429]);
    const codes = await Promise.all(results.filter((r) => r.status === 429).map(code));
    expect(codes).toEqual(['COOLDOWN', 'COOLDOWN', 'COOLDOWN']);
    await expect.poll(() => rig!.fly.ledger().length).toBe(1);
  });

  it('gives the reservation back when simultaneous launches from one address hit a full cap', async () => {
    rig = await whereRig({ WM_MAX_MACHINES: '1', WM_COOLDOWN_MS: '20000' });
    const first = await launch(rig, {}, { 'fly-client-ip': '198.51.100.1' });
    const { launchId } = (await first.json()) as { launchId: string };
    // Whichever of the twins reaches the cap first holds the cooldown while it waits, so the
    // other may be told COOLDOWN (or reach the cap after the first gave it back); none is accepted.
    const pair = await Promise.all([
      launch(rig, {}, { 'fly-client-ip': '198.51.100.3' }),
      launch(rig, {}, { 'fly-client-ip': '198.51.100.3' }),
    ]);
    const seen = await Promise.all(pair.map(async (r) => `${r.status} ${await code(r)}`));
    expect(seen).toContain('503 CAPACITY');
    for (const s of seen) expect(['503 CAPACITY', '429 COOLDOWN']).toContain(s);

    await finishTheMachine(rig, launchId);
    expect((await launch(rig, {}, { 'fly-client-ip': '198.51.100.3' })).status).toBe(202);
  });
});
