/**
 * Malformed public input (G8, quick version): fuzzed launch requests, launch ids, query strings and
 * headers against the public listener get a 2xx or a 4xx, never a 5xx, and the server keeps answering.
 */
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { REGION_CODES } from '../../../src/shared/regions.js';
import { whereRig, type WhereRig } from '../../support/whereRig.js';

let rig: WhereRig | undefined;
afterEach(async () => {
  await rig?.stop();
  rig = undefined;
});

/** Limits that never hide a code path behind a 429, and a cap no fuzz run can reach. */
const OPEN_LIMITS = {
  WM_AUTOSPAWN: '0',
  WM_MAX_MACHINES: '1000',
  WM_REQUESTS_PER_MINUTE: '1000000',
  WM_LAUNCHES_PER_MINUTE: '10000',
  WM_COOLDOWN_MS: '0',
};

const printable = (maxLength = 40) => fc.string({ unit: 'grapheme-ascii', maxLength });
const region = fc.oneof(
  fc.constantFrom(...REGION_CODES),
  fc.constantFrom('xyz', 'AMS', '', 'a'.repeat(17), '../etc', 'ams\u0000'),
  fc.string(),
);
const jsonBody = fc.oneof(
  fc.record({ region }, { requiredKeys: [] }).map((b) => JSON.stringify(b)),
  fc.record({ region, extra: fc.jsonValue() }, { requiredKeys: [] }).map((b) => JSON.stringify(b)),
  fc.jsonValue().map((v) => JSON.stringify(v)),
  fc.constantFrom(
    '',
    '{',
    'null',
    '[]',
    '"ams"',
    '{"region":{"$ne":1}}',
    '{"__proto__":{"x":1}}',
    '{"constructor":{"prototype":{}}}',
  ),
  fc.constant(JSON.stringify({ region: 'x'.repeat(20_000) })),
  fc.string({ maxLength: 200 }),
);
const formBody = fc.oneof(
  region.map((r) => `region=${encodeURIComponent(r)}`),
  fc.constantFrom('', '__proto__=1', 'region=ams&region=fra', 'region=ams&x=1', '%zz', '=&=&'),
  fc.string({ maxLength: 200 }),
);
const contentType = fc.oneof(
  fc.constantFrom(
    'application/json',
    'application/json; charset=utf-8',
    'application/x-www-form-urlencoded',
    'text/plain',
    'multipart/form-data; boundary=x',
    'application/xml',
    'application/json; charset=latin1',
  ),
  printable(),
);
const optionalHeader = (arb: fc.Arbitrary<string>) => fc.option(arb, { nil: undefined });

describe('malformed public input', () => {
  it('POST /launches and /dash/* under fuzzed bodies and headers: only 2xx/3xx/4xx, never 5xx', async () => {
    rig = await whereRig(OPEN_LIMITS);
    const app = rig.system.publicApp;
    const base = rig.base;
    const bad: string[] = [];
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          path: fc.constantFrom('/launches', '/dash/launches', '/dash/autospawner'),
          form: fc.boolean(),
          json: jsonBody,
          formText: formBody,
          switchBody: fc.oneof(
            fc
              .record({ on: fc.oneof(fc.boolean(), fc.string(), fc.integer()) })
              .map((b) => JSON.stringify(b)),
            fc.string(),
          ),
          contentType: optionalHeader(contentType),
          origin: optionalHeader(
            fc.oneof(fc.constant(base), fc.constant('null'), fc.webUrl(), printable()),
          ),
          site: optionalHeader(
            fc.oneof(
              fc.constantFrom('same-origin', 'none', 'cross-site', 'same-site'),
              printable(12),
            ),
          ),
          edge: optionalHeader(
            fc.oneof(
              region.filter((r) => /^[\x20-\x7e]*$/.test(r)),
              printable(8),
            ),
          ),
          clientIp: optionalHeader(fc.oneof(fc.ipV4(), fc.ipV6(), printable(50))),
          forwardedHost: optionalHeader(printable()),
        }),
        async (r) => {
          const headers: Record<string, string> = {};
          if (r.contentType !== undefined)
            headers['content-type'] = r.form ? 'application/x-www-form-urlencoded' : r.contentType;
          if (r.origin !== undefined) headers.origin = r.origin;
          if (r.site !== undefined) headers['sec-fetch-site'] = r.site;
          if (r.edge !== undefined) headers['fly-region'] = r.edge;
          if (r.clientIp !== undefined) headers['fly-client-ip'] = r.clientIp;
          if (r.forwardedHost !== undefined) headers['x-forwarded-host'] = r.forwardedHost;
          const payload =
            r.path === '/dash/autospawner' ? r.switchBody : r.form ? r.formText : r.json;
          const res = await app.inject({ method: 'POST', url: r.path, headers, payload });
          if (res.statusCode >= 500)
            bad.push(
              `${res.statusCode} POST ${r.path} ${JSON.stringify(headers)} ${payload.slice(0, 120)} → ${res.body.slice(0, 200)}`,
            );
          return res.statusCode < 500;
        },
      ),
      { numRuns: 400 },
    );
    expect(bad).toEqual([]);
    expect((await fetch(`${rig.base}/healthz`)).status).toBe(200);
  });

  it('GET launch ids, query strings and asset names under fuzz: never 5xx', async () => {
    rig = await whereRig(OPEN_LIMITS);
    const app = rig.system.publicApp;
    const bad: string[] = [];
    // Dot segments are left out: the URL parser resolves them to other routes (`/events`, a stream).
    const segment = fc
      .oneof(
        fc.string({ maxLength: 60 }),
        fc.stringMatching(/^[0-9A-HJKMNP-TV-Z]{26}$/),
        fc.constantFrom(
          '%00',
          '%zz',
          '__proto__',
          'constructor',
          'a'.repeat(300),
          '01JZ0000000000000000000000%20',
          'x.js',
          '.map',
        ),
      )
      .filter((s) => s !== '.' && s !== '..');
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          // The pages render the whole map (tens of ms each): fewer of them keeps the run short.
          route: fc.oneof(
            {
              weight: 12,
              arbitrary: fc.constantFrom('launch', 'launchEvents', 'asset', 'readyz', 'dashSwitch'),
            },
            { weight: 1, arbitrary: fc.constantFrom('page', 'dash') },
          ),
          segment,
          query: fc.oneof(
            fc.constant(''),
            fc.string({ maxLength: 80 }),
            fc.constantFrom(
              'from=-1',
              'from=1e400',
              'from[]=1&from[]=2',
              'from=%zz',
              '__proto__[x]=1',
              'a=' + 'b'.repeat(5000),
            ),
          ),
          accept: optionalHeader(
            fc.oneof(
              fc.constantFrom(
                'text/event-stream',
                'text/html',
                'application/json',
                '*/*',
                'text/event-stream;q=0',
              ),
              printable(),
            ),
          ),
          lastEventId: optionalHeader(printable()),
        }),
        async (r) => {
          const seg = encodeURIComponent(r.segment).replace(/%25(2e|00|zz|20)/gi, '%$1');
          const path = {
            launch: `/launches/${seg}`,
            launchEvents: `/launches/${seg}/events`,
            asset: `/assets/${seg}`,
            page: '/',
            readyz: '/readyz',
            dash: '/dash',
            dashSwitch: '/dash/autospawner',
          }[r.route];
          const url = r.query ? `${path}?${encodeURI(r.query).replace(/#/g, '%23')}` : path;
          const headers: Record<string, string> = {};
          if (r.accept !== undefined) headers.accept = r.accept;
          if (r.lastEventId !== undefined) headers['last-event-id'] = r.lastEventId;
          const res = await app.inject({ method: 'GET', url, headers });
          if (res.statusCode >= 500)
            bad.push(
              `${res.statusCode} GET ${url} ${JSON.stringify(headers)} → ${res.body.slice(0, 200)}`,
            );
          return res.statusCode < 500;
        },
      ),
      { numRuns: 400 },
    );
    expect(bad).toEqual([]);
    expect((await fetch(`${rig.base}/healthz`)).status).toBe(200);
  });

  it('answers a table of hostile requests with a stable 4xx code, and keeps serving', async () => {
    rig = await whereRig(OPEN_LIMITS);
    const json = { 'content-type': 'application/json' };
    const table: {
      name: string;
      method: 'GET' | 'POST';
      url: string;
      headers?: Record<string, string>;
      body?: string;
      status: number;
      code?: string;
    }[] = [
      {
        name: 'origin that is not a URL',
        method: 'POST',
        url: '/launches',
        headers: { ...json, origin: 'garbage' },
        body: '{}',
        status: 403,
        code: 'CROSS_SITE',
      },
      {
        name: 'origin with a scheme only',
        method: 'POST',
        url: '/launches',
        headers: { ...json, origin: 'http://' },
        body: '{}',
        status: 403,
        code: 'CROSS_SITE',
      },
      {
        name: 'dash launch with a broken origin',
        method: 'POST',
        url: '/dash/launches',
        headers: { ...json, origin: 'http://[::1' },
        body: '{}',
        status: 403,
        code: 'CROSS_SITE',
      },
      {
        name: 'switch with a broken origin',
        method: 'POST',
        url: '/dash/autospawner',
        headers: { ...json, origin: '::' },
        body: '{"on":true}',
        status: 403,
        code: 'CROSS_SITE',
      },
      {
        name: 'unparsable JSON',
        method: 'POST',
        url: '/launches',
        headers: json,
        body: '{',
        status: 400,
      },
      {
        name: 'a body over the limit',
        method: 'POST',
        url: '/launches',
        headers: json,
        body: JSON.stringify({ region: 'x'.repeat(20_000) }),
        status: 413,
      },
      {
        name: 'an unknown content type',
        method: 'POST',
        url: '/launches',
        headers: { 'content-type': 'application/xml' },
        body: '<a/>',
        status: 415,
      },
      {
        name: 'an array body',
        method: 'POST',
        url: '/launches',
        headers: json,
        body: '[]',
        status: 400,
        code: 'BAD_REQUEST',
      },
      {
        name: 'a region that is an object',
        method: 'POST',
        url: '/launches',
        headers: json,
        body: '{"region":{"$ne":1}}',
        status: 400,
        code: 'BAD_REQUEST',
      },
      {
        name: 'a prototype key',
        method: 'POST',
        url: '/launches',
        headers: json,
        body: '{"__proto__":{"region":"ams"}}',
        status: 400,
      },
      {
        name: 'a launch id that is not a ULID',
        method: 'GET',
        url: '/launches/..%2f..%2fetc',
        status: 400,
        code: 'BAD_LAUNCH_ID',
      },
      {
        name: 'a ULID nobody launched',
        method: 'GET',
        url: '/launches/01JZ0000000000000000000000',
        status: 404,
        code: 'LAUNCH_NOT_FOUND',
      },
      {
        name: 'a switch body of the wrong type',
        method: 'POST',
        url: '/dash/autospawner',
        headers: json,
        body: '{"on":"maybe"}',
        status: 400,
        code: 'BAD_REQUEST',
      },
    ];
    for (const t of table) {
      const res = await fetch(`${rig.base}${t.url}`, {
        method: t.method,
        headers: t.headers,
        ...(t.body !== undefined ? { body: t.body } : {}),
      });
      const body = (await res.json()) as { code?: string; statusCode?: number };
      expect({ name: t.name, status: res.status }).toEqual({ name: t.name, status: t.status });
      expect(body.statusCode).toBe(t.status);
      if (t.code) expect({ name: t.name, code: body.code }).toEqual({ name: t.name, code: t.code });
    }
    expect(rig.fly.ledger()).toEqual([]);
    expect((await fetch(`${rig.base}/healthz`)).status).toBe(200);
  });
});
