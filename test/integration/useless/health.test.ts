/** /health answers loopback peers only; everyone else gets the same 404 as an unknown path. */
import { request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { networkInterfaces } from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../../src/adapters/system/manualClock.js';
import { silentLogger } from '../../../src/shared/log.js';
import { buildApp, type UselessMachine } from '../../../src/useless/app.js';
import { isLoopback, listenHost } from '../../../src/useless/config.js';
import { aConfig, exitRecorder } from '../../support/useless.js';

describe('isLoopback', () => {
  it.each([
    '127.0.0.1',
    '127.0.1.7',
    '127.255.255.254',
    '::1',
    '::ffff:127.0.0.1',
    '::FFFF:127.9.9.9',
  ])('%s is loopback', (a) => {
    expect(isLoopback(a)).toBe(true);
  });
  it.each([
    '10.0.0.1',
    '192.0.2.2',
    '::ffff:192.0.2.2',
    'fdaa::3',
    '::',
    '0.0.0.0',
    '128.0.0.1',
    '',
    undefined,
    'localhost',
  ])('%s is not', (a) => {
    expect(isLoopback(a)).toBe(false);
  });
});

describe('listenHost', () => {
  it('binds its own loopback address locally, where sibling VMs share the port', () => {
    expect(listenHost({ privateIp: '127.0.1.4' })).toBe('127.0.1.4');
  });
  it('binds :: on the platform (proxy, 6PN and loopback at once)', () => {
    expect(listenHost({ privateIp: 'fdaa:0:1:a7b:1::2' })).toBe('::');
    expect(listenHost({ privateIp: undefined })).toBe('::');
  });
});

/** A non-loopback address of this host, if it has one, to connect from. */
function externalIpv4(): string | undefined {
  for (const list of Object.values(networkInterfaces())) {
    for (const i of list ?? []) if (i.family === 'IPv4' && !i.internal) return i.address;
  }
  return undefined;
}

function get(
  host: string,
  port: number,
  localAddress: string,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host, port, path: '/health', localAddress, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('/health', () => {
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
      fetch: () => Promise.reject(new Error('unused')),
      exit: exitRecorder().exit,
    });
    return machine;
  }

  it('answers {"status":"ok"} to a loopback peer', async () => {
    const res = await build().app.inject({ url: '/health', remoteAddress: '127.0.0.1' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: 'ok' });
  });

  it('answers a non-loopback peer exactly as an unknown path', async () => {
    const { app } = build();
    const res = await app.inject({ url: '/health', remoteAddress: '192.0.2.2' });
    const unknown = await app.inject({ url: '/nothing-here', remoteAddress: '192.0.2.2' });
    expect(res.statusCode).toBe(404);
    expect(res.body).not.toContain('ok');
    expect(res.json()).toEqual({ ...unknown.json(), message: 'no route for GET /health' });
  });

  const external = externalIpv4();
  it.runIf(external)(
    'over real sockets: loopback gets 200, a peer on another local address gets 404',
    async () => {
      const { app } = build();
      await app.listen({ host: '0.0.0.0', port: 0 });
      const { port } = app.server.address() as AddressInfo;
      const fromLoopback = await get('127.0.0.1', port, '127.0.0.1');
      expect(fromLoopback).toEqual({ status: 200, body: '{"status":"ok"}' });
      const fromOutside = await get(external!, port, external!);
      expect(fromOutside.status).toBe(404);
      expect(fromOutside.body).not.toContain('"ok"');
    },
  );
});
