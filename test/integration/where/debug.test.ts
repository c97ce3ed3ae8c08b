/**
 * The operators' debug endpoint (G15): behind DEBUG_TOKEN on the private listener only; every live
 * actor as JSON or HTML, one actor with its history, a live transition feed; and no secret in any
 * of it (callback secret, Fly API token, debug token, any launch's callback key).
 */
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { deriveLaunchKey } from '../../../src/shared/callbackAuth.js';
import { openSse, type SseReader } from '../../support/sse.js';
import { launch, whereRig, type WhereRig } from '../../support/whereRig.js';

let rig: WhereRig | undefined;
const readers: SseReader[] = [];
afterEach(async () => {
  for (const r of readers.splice(0)) r.close();
  // fetch opens a spare socket after an aborted stream, which would hold close() for seconds.
  rig?.system.privateApp.server.closeAllConnections();
  await rig?.stop();
  rig = undefined;
});

const SECRETS = {
  WM_CALLBACK_SECRET: `callback-secret-${randomBytes(16).toString('hex')}`,
  FLY_API_TOKEN: `fly-api-token-${randomBytes(16).toString('hex')}`,
  DEBUG_TOKEN: `debug-token-${randomBytes(16).toString('hex')}`,
};
const auth = { authorization: `Bearer ${SECRETS.DEBUG_TOKEN}` };

async function debugRig(): Promise<WhereRig> {
  rig = await whereRig({ ...SECRETS, WM_AUTOSPAWN: '0' });
  expect(rig.cfg.fly.token).toBe(SECRETS.FLY_API_TOKEN);
  return rig;
}

/** A launch whose machine called back "listening": launch, vm and autospawner actors all live. */
async function readyLaunch(r: WhereRig): Promise<{ launchId: string; machineId: string }> {
  const { launchId } = (await (await launch(r, { region: 'fra' })).json()) as { launchId: string };
  await expect
    .poll(async () => (await r.system.services.launches.current(launchId))?.view.status)
    .toBe('started');
  const machineId = r.fly.live()[0]!.id;
  const cb = await r.callback({
    machineId,
    launchId,
    region: 'fra',
    status: 'listening',
    at: new Date().toISOString(),
  });
  expect(cb.status).toBe(200);
  await r.system.services.runtime.settled();
  return { launchId, machineId };
}

interface DebugActor {
  id: string;
  kind: string;
  chart: string;
  status: string;
  state: unknown;
  tags: string[];
  version: number;
  context: Record<string, unknown>;
  deadlines: Record<string, string>;
}

describe('the debug endpoint', () => {
  it('answers 401 to a missing or wrong token on every debug route', async () => {
    const r = await debugRig();
    const basic = (user: string, pass: string) =>
      `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
    const wrong: (string | undefined)[] = [
      undefined,
      '',
      'Bearer',
      'Bearer ',
      'Bearer wrong',
      `Bearer ${SECRETS.DEBUG_TOKEN}x`,
      `Bearer ${SECRETS.DEBUG_TOKEN.slice(0, -1)}`,
      `Bearer ${SECRETS.WM_CALLBACK_SECRET}`,
      SECRETS.DEBUG_TOKEN,
      `Token ${SECRETS.DEBUG_TOKEN}`,
      basic('operator', 'wrong'),
      basic(SECRETS.DEBUG_TOKEN, ''),
      'Basic %%%',
    ];
    for (const path of ['/debug/actors', '/debug/actors/autospawner.main', '/debug/stream']) {
      for (const a of wrong) {
        const headers: Record<string, string> = {
          accept: path === '/debug/stream' ? 'text/event-stream' : 'application/json',
        };
        if (a !== undefined) headers.authorization = a;
        const res = await fetch(`${r.priv}${path}`, { headers });
        expect({ path, a, status: res.status }).toEqual({ path, a, status: 401 });
        expect(res.headers.get('www-authenticate')).toBeTruthy();
        expect(res.headers.get('cache-control')).toBe('no-store');
        expect(((await res.json()) as { code: string }).code).toBe('UNAUTHORIZED');
      }
    }
    // With the right token (Bearer, or Basic with it as the password) the same routes answer.
    expect((await fetch(`${r.priv}/debug/actors`, { headers: auth })).status).toBe(200);
    expect(
      (
        await fetch(`${r.priv}/debug/actors`, {
          headers: { authorization: basic('ops', SECRETS.DEBUG_TOKEN) },
        })
      ).status,
    ).toBe(200);
    // The debug routes do not exist on the public listener, token or not.
    expect((await fetch(`${r.base}/debug/actors`, { headers: auth })).status).toBe(404);
    // The token guards the debug routes only: health and callbacks are not behind it.
    expect((await fetch(`${r.priv}/healthz`)).status).toBe(200);
  });

  it('lists every live actor with chart, state, tags, context and version; HTML for a browser', async () => {
    const r = await debugRig();
    const { launchId, machineId } = await readyLaunch(r);
    const res = await fetch(`${r.priv}/debug/actors`, { headers: auth });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('application/json');
    expect(res.headers.get('cache-control')).toBe('no-store');
    const body = (await res.json()) as { instance: string; leader: boolean; actors: DebugActor[] };
    expect(body).toMatchObject({ instance: 'test-1', leader: true });
    const live = r.system.services.runtime
      .actors()
      .map((a) => a.stream)
      .sort();
    expect(body.actors.map((a) => a.id)).toEqual(live);
    expect(live).toEqual(
      expect.arrayContaining([`launch.${launchId}`, `vm.${machineId}`, 'autospawner.main']),
    );

    const l = body.actors.find((a) => a.id === `launch.${launchId}`)!;
    expect(l).toMatchObject({
      kind: 'launch',
      chart: 'launch.v1',
      status: 'active',
      state: 'redirect',
      tags: ['ready'],
    });
    expect(l.version).toBe((await r.store.read(`launch.${launchId}`)).length);
    expect(l.context).toMatchObject({
      launchId,
      machineId,
      region: 'fra',
      source: 'button',
      owner: 'test-1',
    });
    const v = body.actors.find((a) => a.id === `vm.${machineId}`)!;
    expect(v).toMatchObject({
      kind: 'vm',
      chart: 'vm.v1',
      state: 'listening',
      tags: ['listening'],
    });
    expect(v.context).toMatchObject({ machineId, launchId, region: 'fra' });
    // The vm's TTL deadline is armed and shown.
    expect(Date.parse(v.deadlines.ttl!)).toBeGreaterThan(Date.now());

    const html = await fetch(`${r.priv}/debug/actors`, {
      headers: { ...auth, accept: 'text/html,application/xhtml+xml' },
    });
    expect(html.status).toBe(200);
    expect(html.headers.get('content-type')).toContain('text/html');
    const page = await html.text();
    expect(page).toContain('<table>');
    for (const id of live) expect(page).toContain(id);
  });

  it('shows one actor with its whole stored history; 404 for an unknown actor, 400 for a malformed id', async () => {
    const r = await debugRig();
    const { launchId, machineId } = await readyLaunch(r);
    const res = await fetch(`${r.priv}/debug/actors/launch.${launchId}`, { headers: auth });
    expect(res.status).toBe(200);
    const body = (await res.json()) as {
      actor: DebugActor;
      history: { version: number; type: string; data: Record<string, unknown> }[];
    };
    expect(body.actor).toMatchObject({ id: `launch.${launchId}`, state: 'redirect' });
    const stored = await r.store.read(`launch.${launchId}`);
    expect(body.history.map((h) => h.type)).toEqual(stored.map((e) => e.type));
    expect(body.history.map((h) => h.version)).toEqual(stored.map((_e, i) => i + 1));
    expect(body.history.map((h) => h.type)).toEqual(
      expect.arrayContaining([
        'launch.requested',
        'capacity.reserved',
        'fly.machineCreated',
        'vm.listening',
      ]),
    );
    expect(body.history.find((h) => h.type === 'vm.listening')!.data).toMatchObject({
      machineId,
      launchId,
    });

    expect(
      (await fetch(`${r.priv}/debug/actors/launch.01JZ0000000000000000000000`, { headers: auth }))
        .status,
    ).toBe(404);
    for (const bad of [
      'nothing',
      'launch.',
      'user.admin',
      `launch.${'A'.repeat(80)}`,
      'launch.a%2Fb',
    ]) {
      expect({
        bad,
        status: (await fetch(`${r.priv}/debug/actors/${bad}`, { headers: auth })).status,
      }).toEqual({ bad, status: 400 });
    }
  });

  it('streams a transition frame for each change of a launch', async () => {
    const r = await debugRig();
    const stream = await openSse(`${r.priv}/debug/stream`, auth);
    readers.push(stream);
    expect(stream.status).toBe(200);
    const { launchId } = (await (await launch(r)).json()) as { launchId: string };
    const ofLaunch = () =>
      stream.frames.filter(
        (f) => f.event === 'transition' && (f.data as { id: string }).id === `launch.${launchId}`,
      );
    await expect
      .poll(() => ofLaunch().map((f) => (f.data as { type: string }).type))
      .toEqual(
        expect.arrayContaining(['launch.requested', 'capacity.reserved', 'fly.machineCreated']),
      );
    const first = ofLaunch()[0]!.data as {
      type: string;
      version: number;
      by: string;
      state: unknown;
      status: string;
    };
    expect(first).toMatchObject({
      type: 'launch.requested',
      version: 1,
      by: 'test-1',
      state: 'requested',
      status: 'active',
    });
    const versions = ofLaunch().map((f) => (f.data as { version: number }).version);
    expect(versions).toEqual(versions.map((_v, i) => i + 1));
  });

  it('never shows the callback secret, the Fly API token, the debug token or any launch key', async () => {
    const r = await debugRig();
    const stream = await openSse(`${r.priv}/debug/stream`, auth);
    readers.push(stream);
    const { launchId, machineId } = await readyLaunch(r);
    // A second launch that fails (so failed actors and their facts are in the output too).
    r.fly.failNext('create', { status: 422, message: 'invalid config' });
    const { launchId: failedId } = (await (
      await launch(r, {}, { 'fly-client-ip': '198.51.100.7' })
    ).json()) as { launchId: string };
    await expect
      .poll(async () => (await r.system.services.launches.current(failedId))?.view.status)
      .toBe('failed');
    await expect.poll(() => stream.frames.length).toBeGreaterThan(5);

    const bodies: string[] = [JSON.stringify(stream.frames)];
    const get = async (path: string, accept = 'application/json') => {
      const res = await fetch(`${r.priv}${path}`, { headers: { ...auth, accept } });
      expect(res.status).toBe(200);
      bodies.push(await res.text());
    };
    await get('/debug/actors');
    await get('/debug/actors', 'text/html');
    for (const id of [
      `launch.${launchId}`,
      `launch.${failedId}`,
      `vm.${machineId}`,
      'autospawner.main',
    ])
      await get(`/debug/actors/${id}`);
    const all = bodies.join('\n');
    expect(all).toContain(launchId);

    const secrets = {
      callbackSecret: SECRETS.WM_CALLBACK_SECRET,
      flyToken: SECRETS.FLY_API_TOKEN,
      debugToken: SECRETS.DEBUG_TOKEN,
      [`key of ${launchId}`]: deriveLaunchKey(SECRETS.WM_CALLBACK_SECRET, launchId),
      [`key of ${failedId}`]: deriveLaunchKey(SECRETS.WM_CALLBACK_SECRET, failedId),
    };
    // The launch's key does reach its machine (that is how it signs); the debug output must not.
    expect(r.fly.inputOf(machineId)!.env.WM_CALLBACK_KEY).toBe(secrets[`key of ${launchId}`]);
    for (const [what, value] of Object.entries(secrets))
      expect({ what, leaked: all.includes(value) }).toEqual({ what, leaked: false });
  });
});
