/**
 * The edge proxy against small HTTP servers playing instances: routing by Host and prefix, the
 * headers Fly's proxy sets, fly-replay (instance, region, app, elsewhere, state), bodies, SSE, loops,
 * and a close() that leaves no socket open.
 */
import { createHash, randomBytes } from 'node:crypto';
import {
  createServer,
  request,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../../src/adapters/system/manualClock.js';
import {
  parseFlyReplay,
  pickNearest,
  startEdgeProxy,
  type EdgeInstance,
  type EdgeProxy,
} from '../../../src/flylocal/proxy.js';
import { silentLogger } from '../../../src/shared/log.js';
import { buildApp } from '../../../src/useless/app.js';
import { uselessEnv } from '../../../src/useless/config.js';

// ---------------------------------------------------------------------------------------------
// fake instances

interface Seen {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

type Handler = (
  req: IncomingMessage,
  res: ServerResponse,
  body: Buffer,
  self: FakeInstance,
) => void;

interface FakeInstance extends EdgeInstance {
  seen: Seen[];
  server: Server;
  closedRequests: number;
}

const echo: Handler = (req, res, body, self) => {
  const payload = JSON.stringify({ instance: self.id, url: req.url, bytes: body.length });
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(payload);
};

const servers: Server[] = [];
const proxies: EdgeProxy[] = [];
afterEach(async () => {
  await Promise.all(proxies.splice(0).map((p) => p.close()));
  await Promise.all(
    servers.splice(0).map(
      (s) =>
        new Promise<void>((resolve) => {
          s.closeAllConnections();
          s.close(() => resolve());
        }),
    ),
  );
});

async function instance(
  id: string,
  region: string,
  handler: Handler = echo,
  state?: string,
): Promise<FakeInstance> {
  const server = createServer();
  const self: FakeInstance = {
    id,
    region,
    url: '',
    seen: [],
    server,
    closedRequests: 0,
    ...(state ? { state } : {}),
  };
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      self.seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      handler(req, res, body, self);
    });
    res.on('close', () => self.closedRequests++);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push(server);
  self.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return self;
}

function directory(apps: Record<string, EdgeInstance[]>) {
  return { instances: async (app: string) => apps[app] ?? [] };
}

async function proxy(
  apps: Record<string, EdgeInstance[]>,
  extra: { defaultRegion?: string; maxReplays?: number } = {},
): Promise<EdgeProxy> {
  const p = await startEdgeProxy({
    port: 0,
    defaultRegion: extra.defaultRegion ?? 'ams',
    directory: directory(apps),
    log: silentLogger(),
    ...(extra.maxReplays !== undefined ? { maxReplays: extra.maxReplays } : {}),
  });
  proxies.push(p);
  return p;
}

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

function send(
  base: string,
  opts: {
    path?: string;
    host?: string;
    method?: string;
    headers?: Record<string, string>;
    body?: Buffer;
    localAddress?: string;
  } = {},
): Promise<Answer> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        hostname: u.hostname,
        port: u.port,
        path: opts.path ?? '/',
        method: opts.method ?? 'GET',
        headers: { ...(opts.host ? { host: opts.host } : {}), ...opts.headers },
        agent: false,
        ...(opts.localAddress ? { localAddress: opts.localAddress } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString('utf8'),
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** A stand-in for the VM app's affinity rule: serve if ?instance= is me, else replay there. */
const affinity: Handler = (req, res, body, self) => {
  const wanted = new URL(req.url ?? '/', 'http://x').searchParams.get('instance');
  if (wanted && wanted !== self.id) {
    res.writeHead(421, { 'fly-replay': `instance=${wanted}` });
    res.end('this body must never reach the client');
    return;
  }
  echo(req, res, body, self);
};

const sha = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

// ---------------------------------------------------------------------------------------------

describe('parseFlyReplay', () => {
  it('reads every field Fly documents', () => {
    expect(parseFlyReplay('instance=abc123')).toEqual({ instance: 'abc123', elsewhere: false });
    expect(parseFlyReplay('region=sjc;state=from-x')).toEqual({
      regions: ['sjc'],
      state: 'from-x',
      elsewhere: false,
    });
    expect(parseFlyReplay('region="sjc,any";app=other')).toEqual({
      regions: ['sjc', 'any'],
      app: 'other',
      elsewhere: false,
    });
    expect(parseFlyReplay('elsewhere=true')).toEqual({ elsewhere: true });
    expect(parseFlyReplay(' app = x ; instance = y ')).toEqual({
      app: 'x',
      instance: 'y',
      elsewhere: false,
    });
  });
  it('returns undefined for nothing usable', () => {
    expect(parseFlyReplay('')).toBeUndefined();
    expect(parseFlyReplay('nonsense')).toBeUndefined();
    expect(parseFlyReplay('colour=blue')).toBeUndefined();
  });
});

describe('pickNearest', () => {
  const at = (id: string, region: string): EdgeInstance => ({ id, region, url: 'http://x' });
  it('prefers the edge region, else the closest region, and rotates among equals', () => {
    const list = [at('a', 'syd'), at('b', 'ams'), at('c', 'ams')];
    expect(pickNearest(list, 'syd', 0)?.id).toBe('a');
    expect(pickNearest(list, 'ams', 0)?.id).toBe('b');
    expect(pickNearest(list, 'ams', 1)?.id).toBe('c');
    expect(pickNearest(list, 'lhr', 0)?.region).toBe('ams');
    expect(pickNearest([], 'ams', 0)).toBeUndefined();
  });
});

describe('routing', () => {
  it('routes by Host: <app>.localhost to that app, anything else to the default app', async () => {
    const w = await instance('where1', 'ams');
    const u = await instance('um1', 'ams');
    const p = await proxy({ where: [w], 'useless-machine': [u] });
    const port = new URL(p.url).port;

    const toWhere = await send(p.url, { host: `localhost:${port}` });
    expect(JSON.parse(toWhere.body)).toMatchObject({ instance: 'where1' });
    const toUm = await send(p.url, {
      host: `useless-machine.localhost:${port}`,
      path: '/machine?instance=um1',
    });
    expect(JSON.parse(toUm.body)).toMatchObject({ instance: 'um1', url: '/machine?instance=um1' });
    expect(u.seen[0]!.headers.host).toBe(`useless-machine.localhost:${port}`);
    const nobody = await send(p.url, { host: 'nothing.localhost' });
    expect(nobody.status).toBe(503);
    expect(JSON.parse(nobody.body)).toMatchObject({ statusCode: 503, code: 'NO_INSTANCE' });
    expect((JSON.parse(nobody.body) as { message: string }).message).toContain('app "nothing"');
  });

  it('routes by the /_app/<app>/ prefix and strips it', async () => {
    const w = await instance('where1', 'ams');
    const u = await instance('um1', 'ams');
    const p = await proxy({ where: [w], 'useless-machine': [u] });
    const a = await send(p.url, { path: '/_app/useless-machine/machine?instance=um1' });
    expect(JSON.parse(a.body)).toMatchObject({ instance: 'um1', url: '/machine?instance=um1' });
    const b = await send(p.url, { path: '/_app/useless-machine' });
    expect(JSON.parse(b.body)).toMatchObject({ instance: 'um1', url: '/' });
    expect(w.seen).toHaveLength(0);
  });

  it('never sends traffic to an instance that is not started', async () => {
    const stopped = await instance('where0', 'ams', echo, 'stopped');
    const started = await instance('where1', 'fra', echo, 'started');
    const p = await proxy({ where: [stopped, started] });
    const res = await send(p.url);
    expect(JSON.parse(res.body)).toMatchObject({ instance: 'where1' });
    expect(stopped.seen).toHaveLength(0);
  });
});

describe('edge headers', () => {
  it('sets Fly-Region, Fly-Client-IP (overwriting the client), Fly-Forwarded-Port, X-Forwarded-*, Via', async () => {
    const w = await instance('where1', 'ams');
    const p = await proxy({ where: [w] });
    const port = new URL(p.url).port;
    const localAddress = process.platform === 'linux' ? '127.0.0.7' : '127.0.0.1';
    await send(p.url, {
      localAddress,
      headers: {
        'fly-client-ip': '203.0.113.66',
        'fly-region': 'syd',
        'fly-replay-src': 'instance=forged;region=xxx;t=1',
        'x-forwarded-for': '198.51.100.1',
        'x-forwarded-proto': 'https',
      },
    });
    const h = w.seen[0]!.headers;
    expect(h['fly-client-ip']).toBe(localAddress);
    expect(h['fly-region']).toBe('ams');
    expect(h['fly-forwarded-port']).toBe(port);
    expect(h['fly-replay-src']).toBeUndefined();
    expect(h['x-forwarded-for']).toBe(`198.51.100.1, ${localAddress}`);
    expect(h['x-forwarded-proto']).toBe('http');
    expect(h.via).toBe('2 flylocal');
  });

  it('?edge=<region> picks the edge region for this request, remembers it in a cookie, and is not forwarded', async () => {
    const ams = await instance('whereams', 'ams');
    const syd = await instance('wheresyd', 'syd');
    const p = await proxy({ where: [ams, syd] });

    const first = await send(p.url, { path: '/page?a=1&edge=syd' });
    expect(JSON.parse(first.body)).toMatchObject({ instance: 'wheresyd', url: '/page?a=1' });
    expect(syd.seen[0]!.headers['fly-region']).toBe('syd');
    expect(first.headers['set-cookie']).toEqual(['wm-edge=syd; Path=/; SameSite=Lax']);

    const again = await send(p.url, { path: '/', headers: { cookie: 'wm-edge=syd' } });
    expect(JSON.parse(again.body)).toMatchObject({ instance: 'wheresyd' });

    const plain = await send(p.url, { path: '/' });
    expect(JSON.parse(plain.body)).toMatchObject({ instance: 'whereams' });

    const bogus = await send(p.url, { path: '/?edge=zzz' });
    expect(JSON.parse(bogus.body)).toMatchObject({ instance: 'whereams', url: '/' });
    expect(bogus.headers['set-cookie']).toBeUndefined();

    // An edge with no instance of its own goes to the nearest one.
    const london = await send(p.url, { path: '/?edge=lhr' });
    expect(JSON.parse(london.body)).toMatchObject({ instance: 'whereams' });
    expect(ams.seen.at(-1)!.headers['fly-region']).toBe('lhr');
  });
});

describe('fly-replay', () => {
  it('instance=: a request that lands on the wrong instance is replayed to the right one', async () => {
    const u1 = await instance('um1', 'ams', affinity);
    const u2 = await instance('um2', 'fra', affinity);
    const p = await proxy({ 'useless-machine': [u1, u2] });
    const before = Date.now() * 1000;
    const res = await send(p.url, { path: '/_app/useless-machine/machine?instance=um2' });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toMatchObject({ instance: 'um2' });
    expect(res.headers['fly-replay']).toBeUndefined();
    expect(res.body).not.toContain('never reach');
    expect(u1.seen).toHaveLength(1);
    const src = u2.seen[0]!.headers['fly-replay-src'] as string;
    expect(src).toMatch(/^instance=um1;region=ams;t=\d+$/);
    expect(Number(/t=(\d+)/.exec(src)![1])).toBeGreaterThanOrEqual(before);
    // The edge's own headers travel with the replay.
    expect(u2.seen[0]!.headers['fly-region']).toBe('ams');
  });

  it('instance= with the real Useless Machine app on both instances', async () => {
    const clock = new ManualClock();
    const ids = ['umreal00001', 'umreal00002'] as const;
    const instances: EdgeInstance[] = [];
    for (const [i, id] of ids.entries()) {
      const m = buildApp({
        config: uselessEnv.parse({
          FLY_MACHINE_ID: id,
          FLY_REGION: i === 0 ? 'ams' : 'fra',
          WM_LAUNCH_ID: '01JQ7Z0000000000000000ABCD',
          WM_CALLBACK_KEY: 'k'.repeat(32),
          WM_CALLBACK_URL: 'http://127.0.0.1:9/',
        }),
        log: silentLogger(),
        clock,
        timers: clock,
        fetch: () => Promise.reject(new Error('unused')),
        exit: () => undefined,
      });
      await m.app.listen({ host: '127.0.0.1', port: 0 });
      servers.push(m.app.server);
      instances.push({
        id,
        region: i === 0 ? 'ams' : 'fra',
        url: `http://127.0.0.1:${(m.app.server.address() as AddressInfo).port}`,
      });
    }
    const p = await proxy({ 'useless-machine': instances });
    const res = await send(p.url, {
      host: 'useless-machine.localhost',
      path: `/machine?instance=${ids[1]}`,
    });
    expect(res.status).toBe(200);
    expect(res.body).toContain(`This is Fly Machine ${ids[1]} in Frankfurt.`);
    expect(res.headers['set-cookie']).toEqual([
      `fly-machine-id=${ids[1]}; Max-Age=60; Path=/; HttpOnly; SameSite=Lax`,
    ]);
    // Later requests carry only the cookie, and still reach the same machine.
    const viewer = await send(p.url, {
      host: 'useless-machine.localhost',
      path: '/machine/viewers',
      method: 'POST',
      headers: { cookie: `fly-machine-id=${ids[1]}` },
    });
    expect(viewer.status).toBe(201);
  });

  it('region= replays to an instance in that region, and echoes state in fly-replay-src', async () => {
    const ams = await instance('whereams', 'ams', (req, res, body, self) => {
      res.writeHead(200, { 'fly-replay': 'region=syd;state=moved' });
      res.end();
      void body;
      void self;
    });
    const syd = await instance('wheresyd', 'syd');
    const p = await proxy({ where: [ams, syd] });
    const res = await send(p.url, { path: '/x' });
    expect(JSON.parse(res.body)).toMatchObject({ instance: 'wheresyd', url: '/x' });
    expect(syd.seen[0]!.headers['fly-replay-src']).toMatch(
      /^instance=whereams;region=ams;t=\d+;state=moved$/,
    );
  });

  it('app= replays into another app', async () => {
    const w = await instance('where1', 'ams', (_req, res) => {
      res.writeHead(200, { 'fly-replay': 'app=useless-machine;instance=um2' });
      res.end();
    });
    const u1 = await instance('um1', 'ams');
    const u2 = await instance('um2', 'ams');
    const p = await proxy({ where: [w], 'useless-machine': [u1, u2] });
    const res = await send(p.url, { path: '/vm/um2' });
    expect(JSON.parse(res.body)).toMatchObject({ instance: 'um2', url: '/vm/um2' });
    expect(u1.seen).toHaveLength(0);
  });

  it('elsewhere=true excludes the instance that answered', async () => {
    const busy = await instance('where1', 'ams', (_req, res) => {
      res.writeHead(503, { 'fly-replay': 'elsewhere=true' });
      res.end();
    });
    const free = await instance('where2', 'ams');
    const p = await proxy({ where: [busy, free] });
    for (let i = 0; i < 4; i++) {
      const res = await send(p.url);
      expect(JSON.parse(res.body)).toMatchObject({ instance: 'where2' });
    }
  });

  it('replays a POST body intact', async () => {
    const u1 = await instance('um1', 'ams', affinity);
    const u2 = await instance('um2', 'ams', affinity);
    const p = await proxy({ 'useless-machine': [u1, u2] });
    const payload = randomBytes(300 * 1024);
    const res = await send(p.url, {
      path: '/_app/useless-machine/upload?instance=um2',
      method: 'POST',
      body: payload,
      headers: {
        'content-type': 'application/octet-stream',
        'content-length': String(payload.length),
      },
    });
    expect(JSON.parse(res.body)).toMatchObject({ instance: 'um2', bytes: payload.length });
    const got = u2.seen.find((s) => s.method === 'POST')!;
    expect(sha(got.body)).toBe(sha(payload));
    expect(got.headers['content-type']).toBe('application/octet-stream');
  });

  it('a body over 1 MB passes through, but cannot be replayed: a clear 413', async () => {
    const plain = await instance('where1', 'ams');
    const u1 = await instance('um1', 'ams', affinity);
    const u2 = await instance('um2', 'ams', affinity);
    const p = await proxy({ where: [plain], 'useless-machine': [u1, u2] });
    const big = randomBytes(1024 * 1024 + 4096);

    const through = await send(p.url, { path: '/upload', method: 'POST', body: big });
    expect(JSON.parse(through.body)).toMatchObject({ instance: 'where1', bytes: big.length });
    expect(sha(plain.seen[0]!.body)).toBe(sha(big));

    const replay = await send(p.url, {
      path: '/_app/useless-machine/upload?instance=um2',
      method: 'POST',
      body: big,
    });
    expect(replay.status).toBe(413);
    expect(JSON.parse(replay.body)).toMatchObject({
      statusCode: 413,
      code: 'REPLAY_BODY_TOO_LARGE',
    });
    expect(replay.body).toContain('cannot be replayed');
    expect(u2.seen).toHaveLength(0);
  });

  it('stops a replay loop with a clear error', async () => {
    let hits = 0;
    const pingPong =
      (other: string): Handler =>
      (_req, res) => {
        hits++;
        res.writeHead(200, { 'fly-replay': `instance=${other}` });
        res.end();
      };
    const a = await instance('ping', 'ams', pingPong('pong'));
    const b = await instance('pong', 'ams', pingPong('ping'));
    const p = await proxy({ where: [a, b] }, { maxReplays: 3 });
    const res = await send(p.url);
    expect(res.status).toBe(508);
    expect(JSON.parse(res.body)).toMatchObject({ code: 'REPLAY_LOOP' });
    expect(hits).toBe(4);
  });

  it('a replay to a machine that is gone gets a clear 503; an instance that does not answer, a 502', async () => {
    const u1 = await instance('um1', 'ams', affinity);
    const dead: EdgeInstance = { id: 'umdead', region: 'ams', url: 'http://127.0.0.1:9' };
    const p = await proxy({ 'useless-machine': [u1], where: [dead] });
    const gone = await send(p.url, { path: '/_app/useless-machine/machine?instance=umgone' });
    expect(gone.status).toBe(503);
    expect(JSON.parse(gone.body)).toMatchObject({ code: 'REPLAY_TARGET_UNAVAILABLE' });
    expect((JSON.parse(gone.body) as { message: string }).message).toContain('umgone');
    const unreachable = await send(p.url);
    expect(unreachable.status).toBe(502);
    expect(JSON.parse(unreachable.body)).toMatchObject({ code: 'INSTANCE_UNREACHABLE' });
  });
});

describe('streaming', () => {
  function sseInstance(): Promise<FakeInstance> {
    return instance('where1', 'ams', (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      res.write('event: hello\ndata: first\n\n');
      // ...and never end: the stream lives until the client goes.
    });
  }

  function openStream(
    base: string,
  ): Promise<{ res: IncomingMessage; first: string; close: () => void }> {
    const u = new URL(base);
    return new Promise((resolve, reject) => {
      const req = request(
        {
          hostname: u.hostname,
          port: u.port,
          path: '/events',
          agent: false,
          headers: { accept: 'text/event-stream' },
        },
        (res) => {
          res.setEncoding('utf8');
          res.once('data', (first: string) => resolve({ res, first, close: () => req.destroy() }));
        },
      );
      req.on('error', reject);
      req.end();
    });
  }

  it('passes SSE through unbuffered; closing the client closes the instance side', async () => {
    const w = await sseInstance();
    const p = await proxy({ where: [w] });
    const stream = await openStream(p.url);
    expect(stream.res.headers['content-type']).toBe('text/event-stream');
    expect(stream.first).toBe('event: hello\ndata: first\n\n');
    expect(w.closedRequests).toBe(0);
    stream.close();
    await expect.poll(() => w.closedRequests).toBe(1);
  });

  it('close() ends open streams and idle connections, upstream and downstream', async () => {
    const w = await sseInstance();
    const p = await startEdgeProxy({
      port: 0,
      defaultRegion: 'ams',
      directory: directory({ where: [w] }),
    });
    const stream = await openStream(p.url);
    const ended = new Promise<void>((resolve) => stream.res.once('close', () => resolve()));
    await p.close();
    await ended;
    await expect
      .poll(() => new Promise<number>((resolve) => w.server.getConnections((_e, n) => resolve(n))))
      .toBe(0);
    await expect(send(p.url)).rejects.toThrow();
  });
});
