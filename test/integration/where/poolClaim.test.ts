/**
 * `POST /api/pool_claim`: a pooled VM fetches the launch that claimed it, signed with its pool
 * key; forged, stale, malformed, unknown, mismatched and unclaimed requests learn nothing.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { FakeFlyMachines } from '../../../src/adapters/fly/fakeFlyMachines.js';
import {
  deriveLaunchKey,
  derivePoolKey,
  signBody,
  SIGNATURE_HEADER,
} from '../../../src/shared/callbackAuth.js';
import { launch, whereRig, type WhereRig } from '../../support/whereRig.js';

let rig: WhereRig | undefined;
afterEach(async () => {
  await rig?.stop();
  rig = undefined;
});

const readyPooled = (fly: FakeFlyMachines) =>
  fly.live().filter((m) => m.metadata.pool !== undefined && m.state === 'created');

async function ask(
  r: WhereRig,
  body: Record<string, unknown>,
  o: { key?: string; at?: number; raw?: string } = {},
) {
  const raw = o.raw ?? JSON.stringify(body);
  const key = o.key ?? derivePoolKey(r.cfg.callback.secret, String(body.name));
  const res = await fetch(`${r.priv}/api/pool_claim`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      [SIGNATURE_HEADER]: signBody(key, raw, o.at ?? Date.now()),
    },
    body: raw,
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe('POST /api/pool_claim', () => {
  it('answers the claiming launch to the machine itself, and nothing to anyone else', async () => {
    rig = await whereRig({ WM_POOL: 'fra:2', WM_VM_IDLE_MS: '7000' });
    await expect.poll(() => readyPooled(rig!.fly).length).toBe(2);
    const [a, b] = readyPooled(rig.fly);
    const me = { machineId: a!.id, name: a!.name, region: 'fra', at: new Date().toISOString() };

    // Not claimed yet: the VM would ask again.
    expect(await ask(rig, me)).toMatchObject({ status: 404, body: { code: 'POOL_UNCLAIMED' } });
    // Unknown machine (same name scheme, no such machine in the pool).
    expect(await ask(rig, { ...me, machineId: 'zzzzzzzzzzzz' })).toMatchObject({
      status: 404,
      body: { code: 'POOL_UNCLAIMED' },
    });
    // Another pooled machine signing with its own key cannot ask for this one.
    expect(await ask(rig, { ...me, name: b!.name })).toMatchObject({
      status: 409,
      body: { code: 'MACHINE_MISMATCH' },
    });
    // Forged (a key that is not this name's), stale, malformed.
    expect(await ask(rig, me, { key: 'f'.repeat(64) })).toMatchObject({
      status: 401,
      body: { code: 'SIGNATURE_INVALID' },
    });
    expect(await ask(rig, me, { at: Date.now() - 10 * 60_000 })).toMatchObject({
      status: 401,
      body: { code: 'SIGNATURE_EXPIRED' },
    });
    expect(await ask(rig, { ...me, region: 'FRA' })).toMatchObject({
      status: 400,
      body: { code: 'BAD_POOL_CLAIM' },
    });
    expect(await ask(rig, me, { raw: '{nope' })).toMatchObject({
      status: 400,
      body: { code: 'BAD_JSON' },
    });

    const res = await launch(rig, { region: 'fra' });
    const { launchId } = (await res.json()) as { launchId: string };
    await expect
      .poll(() => rig!.fly.live().find((m) => m.metadata.launch_id === launchId)?.id)
      .toBeDefined();
    const claimedId = rig.fly.live().find((m) => m.metadata.launch_id === launchId)!;
    const claimed = {
      machineId: claimedId.id,
      name: claimedId.name,
      region: 'fra',
      at: new Date().toISOString(),
    };
    const answer = await ask(rig, claimed);
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({
      launchId,
      callbackKey: deriveLaunchKey(rig.cfg.callback.secret, launchId),
      ttlMs: rig.cfg.ttl.buttonMs,
      idleMs: 7000,
      source: 'button',
    });
    expect(answer.body.traceparent).toMatch(/^00-/);
  });
});
