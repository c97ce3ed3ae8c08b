/**
 * Who may name the client address: with fly.toml's trust list, Fly-Client-IP is believed from Fly's
 * proxy (172.16.0.0/12, the machine's IPv4 link) and from nobody else; a direct connection that
 * forges it, as another app of the organization could over 6PN, is keyed by its own address.
 */
import { request } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import {
  TrustedPeers,
  clientIp,
  clientIpOf,
  parseTrustEntry,
} from '../../../src/where/services/rateLimit.js';
import { parseEnv, ConfigError } from '../../../src/shared/env.js';
import { whereEnv } from '../../../src/where/config.js';
import { whereRig, type WhereRig } from '../../support/whereRig.js';
import { parseToml, read } from '../../support/deployFiles.js';

const FLY_TRUST = (parseToml(read('fly.toml')).env as Record<string, string>).WM_TRUSTED_PROXIES!;

describe("fly.toml's trust list", () => {
  const peers = new TrustedPeers(FLY_TRUST.split(','));

  it("believes Fly's proxy, which reaches the machine over IPv4 from 172.16.0.0/12", () => {
    expect(FLY_TRUST).toBe('172.16.0.0/12');
    // As a dual-stack listener (HOST = "::") sees an IPv4 peer, and as an IPv4 one does.
    for (const peer of [
      '::ffff:172.16.5.226',
      '172.16.5.226',
      '::ffff:172.19.2.97',
      '172.31.255.1',
    ])
      expect(peers.has(peer), peer).toBe(true);
  });

  it('does not believe other apps on the private network (6PN, fdaa::/16), the internet, or loopback', () => {
    for (const peer of [
      'fdaa:0:1a2b:a7b:1c2:3d4e:5f6a:2',
      'fdaa::3',
      '2a09:8280:1::af:1aa1:0',
      '203.0.113.9',
      '::ffff:172.32.0.1',
      '172.15.255.255',
      '127.0.0.1',
      '::1',
      undefined,
    ])
      expect(peers.has(peer), String(peer)).toBe(false);
  });

  it('keys a forged header by the peer, a proxied one by the client, and reports each forger once', () => {
    const warned: object[] = [];
    const keyOf = clientIpOf(FLY_TRUST.split(','), { warn: (o) => warned.push(o) });
    const req = (peer: string, ip?: string) => ({
      socket: { remoteAddress: peer },
      headers: ip === undefined ? {} : { 'fly-client-ip': ip },
    });
    const other = 'fdaa:0:1a2b:a7b:9c:1d2e:3f4a:2';
    expect(keyOf(req(other, '198.51.100.1'))).toBe(other);
    expect(keyOf(req(other, '198.51.100.2'))).toBe(other);
    expect(keyOf(req('::ffff:172.16.0.9', '198.51.100.1'))).toBe('198.51.100.1');
    // A trusted peer with a header that is not an address is keyed by itself.
    expect(keyOf(req('::ffff:172.16.0.9', 'not-an-ip'))).toBe('::ffff:172.16.0.9');
    expect(keyOf(req(other))).toBe(other);
    expect(warned).toEqual([{ peer: other }]);
    expect(clientIp(other, '198.51.100.3', peers)).toBe(other);
  });

  it('is checked at start: an entry that is neither an address nor a CIDR block stops the app', () => {
    expect(parseTrustEntry('172.16.0.0/12')).toEqual({
      address: '172.16.0.0',
      family: 'ipv4',
      prefix: 12,
    });
    expect(parseTrustEntry('fdaa::/16')?.family).toBe('ipv6');
    for (const bad of ['172.16.0.0/33', 'fdaa::/129', 'proxy.internal', '172.16/12', ''])
      expect(parseTrustEntry(bad), bad).toBeUndefined();
    expect(() =>
      parseEnv(whereEnv, { WM_LOCAL: '1', WM_TRUSTED_PROXIES: '172.16.0.0/12,fly-proxy' }),
    ).toThrow(ConfigError);
    expect(
      parseEnv(whereEnv, { WM_LOCAL: '1', WM_TRUSTED_PROXIES: '172.16.0.0/12, fdaa::/16' })
        .WM_TRUSTED_PROXIES,
    ).toEqual(['172.16.0.0/12', 'fdaa::/16']);
  });
});

/** GET /healthz over a real connection from `localAddress`, with a Fly-Client-IP header. */
function get(base: string, localAddress: string, flyClientIp: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${base}/healthz`,
      { localAddress, headers: { 'fly-client-ip': flyClientIp }, agent: false },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

describe('the public listener with the production trust list', () => {
  let rig: WhereRig | undefined;
  afterEach(async () => {
    await rig?.stop();
    rig = undefined;
  });

  it('keys a direct connection that forges Fly-Client-IP by its own address', async () => {
    // Three requests a minute per key: a fourth from the same key is refused.
    rig = await whereRig({ WM_TRUSTED_PROXIES: FLY_TRUST, WM_REQUESTS_PER_MINUTE: '3' });
    const statuses: number[] = [];
    // Each claims another client; the peer (127.0.0.1) is not Fly's proxy.
    for (let i = 1; i <= 5; i++) statuses.push(await get(rig.base, '127.0.0.1', `198.51.100.${i}`));
    expect(statuses).toEqual([200, 200, 200, 429, 429]);
  });

  it('believes the header from a trusted proxy: each client has its own key', async () => {
    // Loopback 127.0.0.2 stands in for Fly's proxy (nothing here can connect from 172.16.0.0/12).
    rig = await whereRig({
      WM_TRUSTED_PROXIES: `${FLY_TRUST},127.0.0.2/32`,
      WM_REQUESTS_PER_MINUTE: '3',
    });
    const statuses: number[] = [];
    for (let i = 1; i <= 5; i++) statuses.push(await get(rig.base, '127.0.0.2', `198.51.100.${i}`));
    expect(statuses).toEqual([200, 200, 200, 200, 200]);
    // The same client through the proxy is limited as itself.
    for (let i = 0; i < 3; i++) await get(rig.base, '127.0.0.2', '198.51.100.1');
    expect(await get(rig.base, '127.0.0.2', '198.51.100.1')).toBe(429);
    // A direct peer naming that client is keyed by itself: it neither uses nor spends that key.
    expect(await get(rig.base, '127.0.0.3', '198.51.100.1')).toBe(200);
  });
});
