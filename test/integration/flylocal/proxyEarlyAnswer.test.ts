/**
 * The edge proxy relays an answer an instance gives before it has read the whole body (a 413 over
 * its limit, a 401 before an upload), even when the instance then closes and the proxy's next
 * write fails: against raw HTTP servers and the real landing app, with multi-MB bodies.
 */
import { randomBytes } from 'node:crypto';
import {
  Agent,
  createServer,
  request,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { startEdgeProxy, type EdgeProxy } from '../../../src/flylocal/proxy.js';
import { silentLogger } from '../../../src/shared/log.js';
import { whereRig, type WhereRig } from '../../support/whereRig.js';

const servers: Server[] = [];
const proxies: EdgeProxy[] = [];
const rigs: WhereRig[] = [];
const agents: Agent[] = [];
afterEach(async () => {
  await Promise.all(proxies.splice(0).map((p) => p.close()));
  for (const a of agents.splice(0)) a.destroy();
  await Promise.all(
    servers.splice(0).map(
      (s) =>
        new Promise<void>((resolve) => {
          s.closeAllConnections();
          s.close(() => resolve());
        }),
    ),
  );
  await Promise.all(rigs.splice(0).map((r) => r.stop()));
});

/** An instance that calls `answer` once it has read `readFirst` bytes of the body (0: on the head). */
async function instance(
  answer: (req: IncomingMessage, res: ServerResponse) => void,
  readFirst = 0,
): Promise<{ url: string; requests: number }> {
  const self = { url: '', requests: 0 };
  const server = createServer((req, res) => {
    self.requests++;
    if (readFirst === 0) return answer(req, res);
    let read = 0;
    const onData = (c: Buffer): void => {
      read += c.length;
      if (read < readFirst) return;
      req.off('data', onData);
      req.pause();
      answer(req, res);
    };
    req.on('data', onData);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push(server);
  self.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return self;
}

/** Answer and close the connection with the rest of the body unread, as Fastify does over its limit. */
const refuse =
  (status: number, code: string) =>
  (_req: IncomingMessage, res: ServerResponse): void => {
    const body = JSON.stringify({ statusCode: status, code, error: 'refused', message: code });
    res.writeHead(status, {
      'content-type': 'application/json; charset=utf-8',
      'content-length': Buffer.byteLength(body),
      'x-app': 'yes',
      connection: 'close',
    });
    res.end(body);
  };

async function proxyTo(url: string): Promise<EdgeProxy> {
  const p = await startEdgeProxy({
    port: 0,
    defaultRegion: 'ams',
    directory: { instances: async () => [{ id: 'w1', region: 'ams', url }] },
    log: silentLogger(),
  });
  proxies.push(p);
  return p;
}

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** POST `body` and read the answer; the client's own write failing fails the test too. */
function post(base: string, path: string, body: Buffer, agent: Agent | false = false) {
  const u = new URL(base);
  return new Promise<Answer>((resolve, reject) => {
    const req = request(
      {
        hostname: u.hostname,
        port: u.port,
        path,
        method: 'POST',
        agent,
        headers: {
          'content-type': 'application/json',
          'content-length': body.length,
          origin: base,
        },
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
    req.end(body);
  });
}

const megabytes = (n: number): Buffer =>
  Buffer.from(JSON.stringify({ x: randomBytes((n * 1024 * 1024) / 2).toString('hex') }));

describe('an answer before the body is all sent', () => {
  // The failure was a race (the proxy's write failing before it read the waiting answer): several
  // rounds make a regression show.
  it('a 413 on the head, then a closed connection, reaches the client with its headers and body', async () => {
    const app = await instance(refuse(413, 'BODY_TOO_LARGE'));
    const p = await proxyTo(app.url);
    const big = megabytes(3);
    for (let round = 0; round < 8; round++) {
      const res = await post(p.url, '/launches', big);
      expect(res.status).toBe(413);
      expect(JSON.parse(res.body)).toEqual({
        statusCode: 413,
        code: 'BODY_TOO_LARGE',
        error: 'refused',
        message: 'BODY_TOO_LARGE',
      });
      expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
      expect(res.headers['content-length']).toBe(String(Buffer.byteLength(res.body)));
      expect(res.headers['x-app']).toBe('yes');
      expect(res.headers.via).toContain('flylocal');
    }
    expect(app.requests).toBe(8);
  });

  it('a 401 after part of the body, then a closed connection, reaches the client', async () => {
    const app = await instance(refuse(401, 'UNAUTHORIZED'), 256 * 1024);
    const p = await proxyTo(app.url);
    const big = megabytes(4);
    for (let round = 0; round < 5; round++) {
      const res = await post(p.url, '/upload', big);
      expect(res.status).toBe(401);
      expect(JSON.parse(res.body)).toMatchObject({ code: 'UNAUTHORIZED' });
    }
  });

  it('a keep-alive client gets the early answer and can use its connection again', async () => {
    const app = await instance((req, res) => {
      if (req.method === 'POST') return refuse(400, 'BAD_UPLOAD')(req, res);
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('fine');
    });
    const p = await proxyTo(app.url);
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    agents.push(agent);
    const early = await post(p.url, '/upload', megabytes(3), agent);
    expect(early.status).toBe(400);
    expect(JSON.parse(early.body)).toMatchObject({ code: 'BAD_UPLOAD' });
    // The rest of the body was read and dropped: the same connection carries the next request.
    const next = await new Promise<Answer>((resolve, reject) => {
      const u = new URL(p.url);
      request({ hostname: u.hostname, port: u.port, path: '/', agent }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      })
        .on('error', reject)
        .end();
    });
    expect(next).toMatchObject({ status: 200, body: 'fine' });
  });

  it('an instance that closes without answering is still a 502 INSTANCE_UNREACHABLE', async () => {
    const app = await instance((req) => req.socket.destroy(), 128 * 1024);
    const p = await proxyTo(app.url);
    const res = await post(p.url, '/upload', megabytes(3));
    expect(res.status).toBe(502);
    expect(JSON.parse(res.body)).toMatchObject({ code: 'INSTANCE_UNREACHABLE' });
  });

  it('the landing app’s own 413 for a 2 MB POST /launches passes through unchanged', async () => {
    const rig = await whereRig();
    rigs.push(rig);
    const p = await proxyTo(rig.base);
    const big = megabytes(2);
    const direct = await post(rig.base, '/launches', big);
    expect(direct.status).toBe(413);
    for (let round = 0; round < 5; round++) {
      const res = await post(p.url, '/launches', big);
      expect(res.status).toBe(413);
      expect(JSON.parse(res.body)).toEqual(JSON.parse(direct.body));
      expect(res.headers['content-type']).toBe(direct.headers['content-type']);
    }
  });
});
