/**
 * The private callback API (G7): a VM's signed "listening"/"stopping" call. Forged, replayed,
 * stale, unknown, mismatched and malformed calls get a 4xx and change nothing in the event store;
 * a re-signed duplicate is a harmless 200; the route exists only on the private listener.
 */
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { deriveLaunchKey, signBody, SIGNATURE_HEADER } from '../../../src/shared/callbackAuth.js';
import { invalidRaws } from '../../support/callbackFuzz.js';
import { launch, whereRig, type WhereRig } from '../../support/whereRig.js';

let rig: WhereRig | undefined;
afterEach(async () => {
  await rig?.stop();
  rig = undefined;
});

interface Launched {
  launchId: string;
  machineId: string;
}

/** A rig with one launch whose machine is started and waits for its VM to call. */
async function launched(): Promise<{ r: WhereRig } & Launched> {
  const r = await whereRig({ WM_AUTOSPAWN: '0' });
  rig = r;
  const res = await launch(r, { region: 'fra' });
  expect(res.status).toBe(202);
  const { launchId } = (await res.json()) as { launchId: string };
  await expect
    .poll(async () => (await r.system.services.launches.current(launchId))?.view.status)
    .toBe('started');
  await r.system.services.runtime.settled();
  const machineId = r.fly.live()[0]!.id;
  return { r, launchId, machineId };
}

/** Every stored event id, in store order: equal before and after means nothing changed. */
async function storeIds(r: WhereRig): Promise<string[]> {
  const out: string[] = [];
  for await (const e of r.store.readAll(0)) out.push(e.id);
  return out;
}

function post(
  r: WhereRig,
  raw: string,
  signature: string | undefined,
  contentType = 'application/json',
): Promise<Response> {
  const headers: Record<string, string> = { 'content-type': contentType };
  if (signature !== undefined) headers[SIGNATURE_HEADER] = signature;
  return fetch(`${r.priv}/api/machine_status`, { method: 'POST', headers, body: raw });
}

const body = (l: Launched, over: Record<string, unknown> = {}) => ({
  machineId: l.machineId,
  launchId: l.launchId,
  region: 'fra',
  status: 'listening',
  at: new Date().toISOString(),
  ...over,
});

const signFor = (r: WhereRig, launchId: string, raw: string, at = Date.now()) =>
  signBody(deriveLaunchKey(r.cfg.callback.secret, launchId), raw, at);

async function codeOf(res: Response): Promise<{ status: number; code: string | undefined }> {
  const text = await res.text();
  let code: string | undefined;
  try {
    code = (JSON.parse(text) as { code?: string }).code;
  } catch {
    code = undefined;
  }
  return { status: res.status, code };
}

describe('the VM callback API', () => {
  it('refuses forged signatures with 401 and changes nothing, even for a launch id that does not exist', async () => {
    const { r, ...l } = await launched();
    const before = await storeIds(r);
    const raw = JSON.stringify(body(l));
    const otherKey = deriveLaunchKey('y'.repeat(40), l.launchId);
    const validSig = signFor(r, l.launchId, raw);
    const cases: { name: string; raw: string; sig: string | undefined; code: string }[] = [
      { name: 'no signature', raw, sig: undefined, code: 'SIGNATURE_MISSING' },
      { name: 'garbage signature', raw, sig: 'hello', code: 'SIGNATURE_MALFORMED' },
      {
        name: 'signed with another secret',
        raw,
        sig: signBody(otherKey, raw, Date.now()),
        code: 'SIGNATURE_INVALID',
      },
      {
        name: 'signed with the master secret itself',
        raw,
        sig: signBody(r.cfg.callback.secret, raw, Date.now()),
        code: 'SIGNATURE_INVALID',
      },
      {
        name: 'signed with another launch key',
        raw,
        sig: signFor(r, '01JZ0000000000000000000099', raw),
        code: 'SIGNATURE_INVALID',
      },
      {
        name: 'body changed after signing',
        raw: raw.replace('listening', 'stopping'),
        sig: validSig,
        code: 'SIGNATURE_INVALID',
      },
      {
        name: 'timestamp changed after signing',
        raw,
        sig: validSig.replace(/t=(\d+)/, (_m, t: string) => `t=${Number(t) + 1}`),
        code: 'SIGNATURE_INVALID',
      },
      {
        name: 'hex of the wrong length',
        raw,
        sig: validSig.slice(0, -2),
        code: 'SIGNATURE_MALFORMED',
      },
    ];
    for (const c of cases) {
      expect({ name: c.name, ...(await codeOf(await post(r, c.raw, c.sig))) }).toEqual({
        name: c.name,
        status: 401,
        code: c.code,
      });
    }
    // A forged call about a launch nobody made is a 401 too: ids cannot be probed.
    const unknown = JSON.stringify(
      body({ launchId: '01JZ0000000000000000000042', machineId: l.machineId }),
    );
    expect(await codeOf(await post(r, unknown, signBody(otherKey, unknown, Date.now())))).toEqual({
      status: 401,
      code: 'SIGNATURE_INVALID',
    });
    expect(await storeIds(r)).toEqual(before);
    expect((await r.system.services.launches.current(l.launchId))?.view.status).toBe('started');
  });

  it('accepts a signed call once and answers 409 to a replay of the exact same request', async () => {
    const { r, ...l } = await launched();
    const raw = JSON.stringify(body(l));
    const sig = signFor(r, l.launchId, raw);
    const first = await post(r, raw, sig);
    expect(first.status).toBe(200);
    expect(await first.json()).toEqual({ ok: true, accepted: true });
    await r.system.services.runtime.settled();
    const after = await storeIds(r);
    expect((await r.system.services.launches.current(l.launchId))?.view.status).toBe('ready');

    const replay = await post(r, raw, sig);
    expect(await codeOf(replay)).toEqual({ status: 409, code: 'CALLBACK_REPLAYED' });
    expect(await storeIds(r)).toEqual(after);
  });

  it('applies one of many identical signed requests sent at once', async () => {
    const { r, ...l } = await launched();
    const raw = JSON.stringify(body(l));
    const sig = signFor(r, l.launchId, raw);
    const results = await Promise.all(Array.from({ length: 6 }, () => post(r, raw, sig)));
    const outcomes = await Promise.all(
      results.map(async (res) => ({
        status: res.status,
        body: (await res.json()) as { accepted?: boolean; code?: string },
      })),
    );
    expect(outcomes.filter((o) => o.status === 200 && o.body.accepted === true)).toHaveLength(1);
    for (const o of outcomes)
      expect(o.status === 409 || (o.status === 200 && o.body.accepted !== undefined)).toBe(true);
    await r.system.services.runtime.settled();
    const types = (await r.store.read(`launch.${l.launchId}`)).map((e) => e.type);
    expect(types.filter((t) => t === 'vm.listening')).toHaveLength(1);
  });

  it('answers 200 accepted:false to a re-signed duplicate, storing nothing more', async () => {
    const { r, ...l } = await launched();
    const once = JSON.stringify(body(l, { at: new Date(Date.now() - 1000).toISOString() }));
    expect(await (await post(r, once, signFor(r, l.launchId, once))).json()).toEqual({
      ok: true,
      accepted: true,
    });
    await r.system.services.runtime.settled();
    const after = await storeIds(r);
    const again = JSON.stringify(body(l));
    const res = await post(r, again, signFor(r, l.launchId, again));
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ok: true, accepted: false });
    await r.system.services.runtime.settled();
    expect(await storeIds(r)).toEqual(after);
  });

  it('answers 200 accepted:false to a repeated "stopping" (a VM retrying, or reaching both URLs): no second transition, no second wait', async () => {
    const { r, ...l } = await launched();
    const call = async (over: Record<string, unknown>, at: number) => {
      const raw = JSON.stringify(body(l, { ...over, at: new Date(at).toISOString() }));
      const res = await post(r, raw, signFor(r, l.launchId, raw));
      expect(res.status).toBe(200);
      return ((await res.json()) as { accepted: boolean }).accepted;
    };
    expect(await call({ status: 'listening' }, Date.now() - 3000)).toBe(true);
    expect(await call({ status: 'stopping', reason: 'finished' }, Date.now() - 2000)).toBe(true);
    const vm = () => r.system.services.runtime.actor(`vm.${l.machineId}`)!;
    await expect.poll(() => vm().snapshot.hasTag('stopping')).toBe(true);
    await expect.poll(() => r.fly.count('wait')).toBe(2);
    const vmEvents = (await r.store.read(`vm.${l.machineId}`)).length;
    const all = await storeIds(r);

    expect(await call({ status: 'stopping', reason: 'finished' }, Date.now() - 1000)).toBe(false);
    expect(await call({ status: 'stopping', reason: 'ttl' }, Date.now())).toBe(false);
    expect((await r.store.read(`vm.${l.machineId}`)).length).toBe(vmEvents);
    expect(await storeIds(r)).toEqual(all);
    expect(r.fly.count('wait')).toBe(2);

    // The machine goes: the one wait there is sees it, and the launch is done.
    r.fly.exit(l.machineId, 0);
    await expect
      .poll(async () => (await r.system.services.launches.current(l.launchId))?.view.status)
      .toBe('done');
  });

  it('answers 404 for a launch it does not know (validly signed) and 409 for another machine than the launch made', async () => {
    const { r, ...l } = await launched();
    const before = await storeIds(r);
    const unknownId = '01JZ0000000000000000000042';
    const unknown = JSON.stringify(body({ launchId: unknownId, machineId: l.machineId }));
    expect(await codeOf(await post(r, unknown, signFor(r, unknownId, unknown)))).toEqual({
      status: 404,
      code: 'LAUNCH_NOT_FOUND',
    });

    const other = JSON.stringify(body(l, { machineId: 'ffffffffffffff' }));
    expect(await codeOf(await post(r, other, signFor(r, l.launchId, other)))).toEqual({
      status: 409,
      code: 'MACHINE_MISMATCH',
    });
    const otherStop = JSON.stringify(
      body(l, { machineId: 'ffffffffffffff', status: 'stopping', reason: 'finished' }),
    );
    expect(await codeOf(await post(r, otherStop, signFor(r, l.launchId, otherStop)))).toEqual({
      status: 409,
      code: 'MACHINE_MISMATCH',
    });
    expect(await storeIds(r)).toEqual(before);
    expect(r.system.services.fleet.machines().map((m) => m.machineId)).toEqual([l.machineId]);
  });

  it('refuses timestamps more than 300 s away with 401, and takes one 290 s old', async () => {
    const { r, ...l } = await launched();
    const before = await storeIds(r);
    for (const skew of [-310_000, 310_000, -3600_000, 86_400_000]) {
      const raw = JSON.stringify(body(l));
      expect({
        skew,
        ...(await codeOf(await post(r, raw, signFor(r, l.launchId, raw, Date.now() + skew)))),
      }).toEqual({ skew, status: 401, code: 'SIGNATURE_EXPIRED' });
    }
    expect(await storeIds(r)).toEqual(before);
    const raw = JSON.stringify(body(l));
    const ok = await post(r, raw, signFor(r, l.launchId, raw, Date.now() - 290_000));
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({ ok: true, accepted: true });
  });

  it('answers every malformed call with a 4xx and changes nothing (table)', async () => {
    const { r, ...l } = await launched();
    const before = await storeIds(r);
    const valid = body(l);
    const without = (k: string) =>
      Object.fromEntries(Object.entries(valid).filter(([key]) => key !== k));
    const bad: { name: string; value?: unknown; raw?: string; contentType?: string }[] = [
      { name: 'not JSON', raw: '{"machineId":' },
      { name: 'empty body', raw: '' },
      { name: 'JSON null', raw: 'null' },
      { name: 'JSON array', value: [valid] },
      { name: 'JSON string', value: 'listening' },
      ...['machineId', 'launchId', 'region', 'status', 'at'].map((k) => ({
        name: `missing ${k}`,
        value: without(k),
      })),
      { name: 'machineId a number', value: { ...valid, machineId: 12345678 } },
      { name: 'status a boolean', value: { ...valid, status: true } },
      { name: 'at not a date', value: { ...valid, at: 'yesterday' } },
      { name: 'unknown status', value: { ...valid, status: 'ready' } },
      { name: 'unknown reason', value: { ...valid, status: 'stopping', reason: 'bored' } },
      { name: 'extra key', value: { ...valid, admin: true } },
      {
        name: 'prototype key',
        raw: JSON.stringify(valid).replace(/^\{/, '{"__proto__":{"admin":true},'),
      },
      { name: 'launch id not a ULID', value: { ...valid, launchId: 'not-a-ulid' } },
      { name: 'launch id lowercase', value: { ...valid, launchId: l.launchId.toLowerCase() } },
      {
        name: 'launch id with I/L/O/U',
        value: { ...valid, launchId: '01JZIIII0000000000000000LU' },
      },
      {
        name: 'machine id with capitals',
        value: { ...valid, machineId: l.machineId.toUpperCase() + 'X' },
      },
      { name: 'machine id too short', value: { ...valid, machineId: 'abc' } },
      { name: 'machine id with a slash', value: { ...valid, machineId: '../../etc/passwd' } },
      { name: 'unknown region', value: { ...valid, region: 'xyz' } },
      { name: 'region in capitals', value: { ...valid, region: 'FRA' } },
      {
        name: 'huge string (over the body limit)',
        value: { ...valid, machineId: 'a'.repeat(20_000) },
      },
      { name: 'long string (under the body limit)', value: { ...valid, region: 'a'.repeat(6000) } },
      {
        name: 'form body',
        raw: 'machineId=x&status=listening',
        contentType: 'application/x-www-form-urlencoded',
      },
      { name: 'deeply nested', raw: '['.repeat(3000) + ']'.repeat(3000) },
    ];
    for (const b of bad) {
      const raw = b.raw ?? JSON.stringify(b.value);
      const res = await post(r, raw, signFor(r, l.launchId, raw), b.contentType);
      expect({
        name: b.name,
        fourxx: res.status >= 400 && res.status < 500,
        status: res.status,
      }).toMatchObject({ name: b.name, fourxx: true });
      const parsed = (await res.json()) as { statusCode: number; code: string; message: string };
      expect(parsed.statusCode).toBe(res.status);
      expect(parsed.code.length).toBeGreaterThan(0);
    }
    await r.system.services.runtime.settled();
    expect(await storeIds(r)).toEqual(before);
    expect((await r.system.services.launches.current(l.launchId))?.view.status).toBe('started');
  });

  it('answers fuzzed calls with a 4xx (never a 5xx) and never changes state (fast-check)', async () => {
    const { r, ...l } = await launched();
    const before = await storeIds(r);
    const app = r.system.privateApp;
    const valid = body(l);
    // One mutation that makes the body invalid, applied to an otherwise valid call; or junk.
    const raws = invalidRaws(valid, l);
    const seen: number[] = [];
    await fc.assert(
      // Signed with the launch's own key (so the checks after the signature run too), or not.
      fc.asyncProperty(raws, fc.boolean(), async (raw, sign) => {
        const headers: Record<string, string> = { 'content-type': 'application/json' };
        if (sign) headers[SIGNATURE_HEADER] = signFor(r, l.launchId, raw);
        const res = await app.inject({
          method: 'POST',
          url: '/api/machine_status',
          headers,
          payload: raw,
        });
        seen.push(res.statusCode);
        return res.statusCode >= 400 && res.statusCode < 500;
      }),
      { numRuns: 1000 },
    );
    expect(seen.some((s) => s === 400)).toBe(true);
    expect(seen.some((s) => s === 401)).toBe(true);
    await r.system.services.runtime.settled();
    expect(await storeIds(r)).toEqual(before);
    expect((await r.system.services.launches.current(l.launchId))?.view.status).toBe('started');
  });

  it('exists only on the private listener, and the public routes do not exist there', async () => {
    const { r, ...l } = await launched();
    const raw = JSON.stringify(body(l));
    const pub = await fetch(`${r.base}/api/machine_status`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        [SIGNATURE_HEADER]: signFor(r, l.launchId, raw),
      },
      body: raw,
    });
    expect(pub.status).toBe(404);
    for (const [method, path] of [
      ['GET', '/'],
      ['GET', '/dash'],
      ['GET', '/events'],
      ['POST', '/launches'],
      ['GET', `/launches/${l.launchId}`],
      ['GET', '/assets/app.css'],
      ['GET', '/readyz'],
    ] as const) {
      const res = await fetch(`${r.priv}${path}`, {
        method,
        headers: { 'content-type': 'application/json', accept: 'text/html' },
        ...(method === 'POST' ? { body: '{}' } : {}),
      });
      expect({ path, status: res.status }).toEqual({ path, status: 404 });
    }
    expect((await r.system.services.launches.current(l.launchId))?.view.status).toBe('started');
  });
});
