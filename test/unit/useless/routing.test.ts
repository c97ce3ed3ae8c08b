/** Machine affinity: `?instance=` and the cookie decide between serving here and `fly-replay`, on every path. */
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../../src/adapters/system/manualClock.js';
import { silentLogger } from '../../../src/shared/log.js';
import { buildApp, type UselessMachine } from '../../../src/useless/app.js';
import { affinityCookie, affinitySetCookie, decideRoute } from '../../../src/useless/routing.js';
import { OTHER, SELF, aConfig, exitRecorder } from '../../support/useless.js';

describe('decideRoute', () => {
  it('serves and pins when ?instance= names this machine', () => {
    expect(decideRoute(SELF, SELF, undefined)).toEqual({ kind: 'serve', setCookie: true });
    expect(decideRoute(SELF, SELF, OTHER)).toEqual({ kind: 'serve', setCookie: true });
  });
  it('replays when ?instance= names another machine, whatever the cookie says', () => {
    expect(decideRoute(SELF, OTHER, SELF)).toEqual({
      kind: 'replay',
      instance: OTHER,
      via: 'param',
    });
  });
  it('replays to the machine a cookie names when there is no param', () => {
    expect(decideRoute(SELF, undefined, OTHER)).toEqual({
      kind: 'replay',
      instance: OTHER,
      via: 'cookie',
    });
  });
  it('serves without pinning when the cookie is ours or absent', () => {
    expect(decideRoute(SELF, undefined, SELF)).toEqual({ kind: 'serve', setCookie: false });
    expect(decideRoute(SELF, undefined, undefined)).toEqual({ kind: 'serve', setCookie: false });
  });
  it('refuses an instance that is not a machine id (it would end up in a header)', () => {
    expect(decideRoute(SELF, 'x\r\nset-cookie: a=b', undefined)).toEqual({ kind: 'badInstance' });
    expect(decideRoute(SELF, '', undefined)).toEqual({ kind: 'badInstance' });
  });
});

describe('affinity cookie', () => {
  it('reads our cookie among others and ignores malformed values', () => {
    expect(affinityCookie(`a=1; fly-machine-id=${OTHER}; b=2`)).toBe(OTHER);
    expect(affinityCookie('fly-machine-id=NOT_AN_ID')).toBeUndefined();
    expect(affinityCookie('other=1')).toBeUndefined();
    expect(affinityCookie(undefined)).toBeUndefined();
  });
  it('lives 60 seconds, for every path, out of reach of scripts', () => {
    expect(affinitySetCookie(SELF, false)).toBe(
      `fly-machine-id=${SELF}; Max-Age=60; Path=/; HttpOnly; SameSite=Lax`,
    );
    expect(affinitySetCookie(SELF, true)).toBe(
      `fly-machine-id=${SELF}; Max-Age=60; Path=/; HttpOnly; SameSite=Lax; Secure`,
    );
  });
});

describe('routing through the app', () => {
  let machine: UselessMachine | undefined;
  afterEach(async () => {
    await machine?.app.close();
    machine = undefined;
  });

  function build(): UselessMachine {
    const clock = new ManualClock();
    machine = buildApp({
      config: aConfig(),
      log: silentLogger(),
      clock,
      timers: clock,
      fetch: () => Promise.reject(new Error('no network in this test')),
      exit: exitRecorder().exit,
      script: 'console.log("machine script")',
    });
    return machine;
  }

  it('serves the page for ?instance=<self> and sets the affinity cookie', async () => {
    const { app } = build();
    const res = await app.inject({ url: `/machine?instance=${SELF}` });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(res.headers['set-cookie']).toBe(
      `fly-machine-id=${SELF}; Max-Age=60; Path=/; HttpOnly; SameSite=Lax`,
    );
    expect(res.headers['fly-replay']).toBeUndefined();
    expect(res.body).toContain('You started a Useless Machine');
    expect(res.body).toContain(`This is Fly Machine ${SELF} in Amsterdam.`);
  });

  it('marks the cookie Secure when the edge says the visitor came over https', async () => {
    const { app } = build();
    const res = await app.inject({
      url: `/machine?instance=${SELF}`,
      headers: { 'x-forwarded-proto': 'https' },
    });
    expect(res.headers['set-cookie']).toMatch(/; Secure$/);
  });

  it('answers ?instance=<other> with an empty body and exactly fly-replay: instance=<other>', async () => {
    const { app, viewers } = build();
    const res = await app.inject({ url: `/machine?instance=${OTHER}` });
    expect(res.statusCode).toBe(421);
    expect(res.headers['fly-replay']).toBe(`instance=${OTHER}`);
    expect(res.body).toBe('');
    expect(res.headers['set-cookie']).toBeUndefined();
    expect(res.headers['fly-replay-cache']).toBeUndefined();
    expect(res.headers['fly-replay-cache-ttl-secs']).toBeUndefined();
    expect(viewers.size).toBe(0);
  });

  it('replays a request whose cookie names another machine', async () => {
    const { app } = build();
    const res = await app.inject({
      url: '/machine/viewers',
      method: 'POST',
      headers: { cookie: `fly-machine-id=${OTHER}` },
    });
    expect(res.statusCode).toBe(421);
    expect(res.headers['fly-replay']).toBe(`instance=${OTHER}`);
    expect(res.body).toBe('');
  });

  it('serves a request whose cookie names this machine, without setting the cookie again', async () => {
    const { app } = build();
    const res = await app.inject({
      url: '/machine/viewers',
      method: 'POST',
      headers: { cookie: `fly-machine-id=${SELF}` },
    });
    expect(res.statusCode).toBe(201);
    expect(res.headers['set-cookie']).toBeUndefined();
  });

  it('routes the script and the viewer API like the page', async () => {
    const { app } = build();
    const other = await app.inject({ url: `/machine/assets/machine.js?instance=${OTHER}` });
    expect(other.headers['fly-replay']).toBe(`instance=${OTHER}`);
    const mine = await app.inject({ url: `/machine/assets/machine.js?instance=${SELF}` });
    expect(mine.statusCode).toBe(200);
    expect(mine.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(mine.body).toBe('console.log("machine script")');
    const done = await app.inject({
      url: `/machine/viewers/AAAAAAAAAAAAAAAA/done?instance=${OTHER}`,
      method: 'POST',
    });
    expect(done.headers['fly-replay']).toBe(`instance=${OTHER}`);
    const unknown = await app.inject({
      url: '/nowhere',
      headers: { cookie: `fly-machine-id=${OTHER}` },
    });
    expect(unknown.headers['fly-replay']).toBe(`instance=${OTHER}`);
  });

  it('answers /machine without an instance with a 404 page that links home, and registers nobody', async () => {
    const { app, viewers } = build();
    const res = await app.inject({ url: '/machine' });
    expect(res.statusCode).toBe(404);
    expect(res.body).toContain('href="http://localhost:8080/"');
    expect(viewers.size).toBe(0);
  });

  it('rejects a malformed or repeated instance with 400', async () => {
    const { app } = build();
    const bad = await app.inject({ url: '/machine?instance=Nope!' });
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ statusCode: 400, code: 'BAD_INSTANCE' });
    expect(bad.headers['fly-replay']).toBeUndefined();
    const twice = await app.inject({ url: `/machine?instance=${SELF}&instance=${OTHER}` });
    expect(twice.statusCode).toBe(400);
  });

  it('does not route /health (it is for the machine itself)', async () => {
    const { app } = build();
    const res = await app.inject({
      url: '/health',
      headers: { cookie: `fly-machine-id=${OTHER}` },
    });
    expect(res.statusCode).toBe(200);
    expect(res.headers['fly-replay']).toBeUndefined();
  });
});
