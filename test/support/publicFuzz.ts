/**
 * G8 driver: N fast-check-generated requests per public route (POST /launches, the two SSE
 * streams, static assets, the page) through fastify.inject, from random client addresses. Records
 * every status, anything inject threw, streams left open, and the heap before and after (after a
 * forced GC). Shared by test/integration/reliability/publicFuzz.test.ts and bench/reliability/publicFuzz.ts.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import fc from 'fast-check';
import type { FastifyInstance } from 'fastify';
import { REGION_CODES } from '../../src/shared/regions.js';

export type PublicRoute =
  'POST /launches' | 'GET /launches/:id/events' | 'GET /events' | 'assets' | 'GET /';

export const PUBLIC_ROUTES: readonly PublicRoute[] = [
  'POST /launches',
  'GET /launches/:id/events',
  'GET /events',
  'assets',
  'GET /',
];

export interface RouteFuzzResult {
  route: PublicRoute;
  runs: number;
  statuses: Record<number, number>;
  /** 5xx answers other than the designed 503s (CAPACITY, TOO_MANY_STREAMS), with what caused them. */
  unexpected5xx: { status: number; code?: string; req: string }[];
  /** Errors thrown by inject (a crash of the request path). */
  thrown: string[];
}

interface Req {
  method: 'GET' | 'POST';
  url: string;
  headers: Record<string, string>;
  payload?: string;
  remoteAddress: string;
}

const printable = (maxLength = 40) => fc.string({ unit: 'grapheme-ascii', maxLength });
const anyText = (maxLength = 60) =>
  fc.oneof(
    printable(maxLength),
    fc.string({ unit: 'binary', maxLength }),
    fc.string({ maxLength }),
  );
const opt = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: undefined });
const ipv4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((p) => p.join('.'));
const remote = fc.oneof(
  ipv4,
  fc.constantFrom('::1', '::ffff:127.0.0.1', '2001:db8::1', '127.0.0.1'),
);
const ulidish = fc.oneof(
  fc.stringMatching(/^[0-9A-HJKMNP-TV-Z]{26}$/),
  fc.stringMatching(/^[0-9A-Z]{20,30}$/),
  anyText(40),
  fc.constantFrom('..%2f..%2fetc%2fpasswd', '%00', '%zz', 'null', '0'.repeat(26), 'constructor'),
);
const region = fc.oneof(
  fc.constantFrom(...REGION_CODES),
  fc.constantFrom('xyz', 'AMS', ''),
  anyText(20),
);
const lastEventId = fc.oneof(
  fc.nat().map(String),
  fc.integer({ min: -1e15, max: 1e15 }).map(String),
  fc.constantFrom('NaN', 'Infinity', '-0', '1e309', '0x10', '', ' 1', '1.5', '9'.repeat(400)),
  printable(30),
);
const headerValue = printable(80);
/** Headers every route sees: some meaningful to the app, some hostile in general. */
const commonHeaders = fc.record(
  {
    accept: fc.oneof(
      fc.constantFrom('text/event-stream', 'text/html', 'application/json', '*/*'),
      headerValue,
    ),
    'fly-client-ip': fc.oneof(ipv4, headerValue),
    'fly-region': fc.oneof(region, headerValue),
    'x-forwarded-for': headerValue,
    'last-event-id': lastEventId,
    'accept-encoding': fc.constantFrom('gzip', 'br', 'identity', '*', 'x'),
    cookie: headerValue,
  },
  { requiredKeys: [] },
);
const query = fc
  .dictionary(fc.constantFrom('from', 'region', 'x', '__proto__', 'id', ''), anyText(20), {
    maxKeys: 3,
  })
  .map((q) => {
    const s = Object.entries(q)
      .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`)
      .join('&');
    return s ? `?${s}` : '';
  });

function routeArb(route: PublicRoute, known: () => string[]): fc.Arbitrary<Req> {
  const base = { headers: commonHeaders, remoteAddress: remote };
  switch (route) {
    case 'POST /launches': {
      const body = fc.oneof(
        fc.record({ region }, { requiredKeys: [] }).map((b) => JSON.stringify(b)),
        fc.jsonValue().map((v) => JSON.stringify(v)),
        region.map((r) => `region=${encodeURIComponent(r)}`),
        fc.constantFrom(
          '',
          '{',
          'null',
          '[]',
          '{"__proto__":{"x":1}}',
          '{"constructor":{"prototype":{}}}',
        ),
        fc.constant(JSON.stringify({ region: 'x'.repeat(20_000) })),
        anyText(300),
      );
      const ct = fc.oneof(
        fc.constantFrom(
          'application/json',
          'application/x-www-form-urlencoded',
          'text/plain',
          'multipart/form-data; boundary=x',
          'application/json; charset=latin1',
        ),
        printable(),
      );
      return fc
        .record({
          ...base,
          body,
          ct: opt(ct),
          origin: opt(
            fc.oneof(
              fc.constantFrom('null', 'http://localhost:80', 'https://evil.example'),
              headerValue,
            ),
          ),
          site: opt(fc.constantFrom('same-origin', 'cross-site', 'none', 'same-site', '')),
        })
        .map((r) => ({
          method: 'POST',
          url: '/launches',
          headers: {
            ...r.headers,
            ...(r.ct !== undefined ? { 'content-type': r.ct } : {}),
            ...(r.origin !== undefined ? { origin: r.origin } : {}),
            ...(r.site !== undefined ? { 'sec-fetch-site': r.site } : {}),
          },
          payload: r.body,
          remoteAddress: r.remoteAddress,
        }));
    }
    case 'GET /launches/:id/events': {
      const id = fc.oneof(
        ulidish.map(encodeURIComponent),
        ulidish,
        fc
          .constant('')
          .chain(() =>
            fc.constantFrom(...(known().length ? known() : ['01J00000000000000000000000'])),
          ),
      );
      return fc.record({ ...base, id, q: query }).map((r) => ({
        method: 'GET',
        url: `/launches/${r.id}/events${r.q}`,
        headers: r.headers,
        remoteAddress: r.remoteAddress,
      }));
    }
    case 'GET /events':
      return fc.record({ ...base, q: query }).map((r) => ({
        method: 'GET',
        url: `/events${r.q}`,
        headers: r.headers,
        remoteAddress: r.remoteAddress,
      }));
    case 'assets': {
      const file = fc.oneof(
        fc.constantFrom(
          'app.js',
          'app.css',
          'dash.js',
          'app.js.map',
          'nope.js',
          '.js',
          '..%2Fpackage.json',
          '%2e%2e%2f%2e%2e%2fetc%2fpasswd',
          'app.js%00.css',
          'a'.repeat(5000),
        ),
        anyText(60).map(encodeURIComponent),
      );
      return fc.record({ ...base, file, q: query }).map((r) => ({
        method: 'GET',
        url: `/assets/${r.file}${r.q}`,
        headers: r.headers,
        remoteAddress: r.remoteAddress,
      }));
    }
    case 'GET /':
      return fc.record({ ...base, q: query }).map((r) => ({
        method: 'GET',
        url: `/${r.q}`,
        headers: r.headers,
        remoteAddress: r.remoteAddress,
      }));
  }
}

/** A function that forces a full GC, whether or not node was started with --expose-gc. */
export function gcNow(): () => void {
  const g = (globalThis as { gc?: () => void }).gc;
  if (g) return g;
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

/** Heap in use after a full collection (twice: finalisers free more on the second pass). */
export async function settledHeap(): Promise<number> {
  const gc = gcNow();
  for (let i = 0; i < 3; i++) {
    await new Promise((r) => setImmediate(r));
    gc();
  }
  return process.memoryUsage().heapUsed;
}

/** Limits that never hide a code path behind a 429, and a cap the fuzz reaches (so 503 CAPACITY too). */
export const FUZZ_ENV = {
  WM_AUTOSPAWN: 'off',
  WM_MAX_MACHINES: '50',
  WM_REQUESTS_PER_MINUTE: '1000000',
  WM_LAUNCHES_PER_MINUTE: '10000',
  WM_COOLDOWN_MS: '0',
};

const DESIGNED_503 = new Set(['CAPACITY', 'TOO_MANY_STREAMS']);

/** Send `runs` generated requests to one route, one at a time; streams are cut right after headers. */
export async function fuzzRoute(
  app: FastifyInstance,
  route: PublicRoute,
  runs: number,
  seed: number,
  known: () => string[] = () => [],
  /** True when every cap slot is taken: a form POST then gets the 503 CAPACITY page (HTML, no code). */
  atCapacity: () => boolean = () => false,
): Promise<RouteFuzzResult> {
  const reqs = fc.sample(routeArb(route, known), { numRuns: runs, seed });
  const out: RouteFuzzResult = { route, runs, statuses: {}, unexpected5xx: [], thrown: [] };
  for (const r of reqs) {
    try {
      const res = await app.inject({
        method: r.method,
        url: r.url,
        headers: r.headers,
        remoteAddress: r.remoteAddress,
        ...(r.payload !== undefined ? { payload: r.payload } : {}),
        payloadAsStream: true,
      });
      const stream = res.stream();
      let body = '';
      if (res.headers['content-type']?.toString().startsWith('text/event-stream')) {
        // An open stream: the client goes away at once (as a browser closing the tab does).
        stream.destroy();
      } else {
        for await (const chunk of stream) body += String(chunk);
      }
      out.statuses[res.statusCode] = (out.statuses[res.statusCode] ?? 0) + 1;
      if (res.statusCode >= 500) {
        let code: string | undefined;
        try {
          code = (JSON.parse(body) as { code?: string }).code;
        } catch {
          code = undefined;
        }
        const html = res.headers['content-type']?.toString().startsWith('text/html') ?? false;
        const designed =
          res.statusCode === 503 &&
          ((code !== undefined && DESIGNED_503.has(code)) || (html && atCapacity()));
        if (!designed)
          out.unexpected5xx.push({
            status: res.statusCode,
            ...(code ? { code } : {}),
            req: JSON.stringify(r).slice(0, 300),
          });
      }
    } catch (err) {
      out.thrown.push(`${String(err)} on ${JSON.stringify(r).slice(0, 300)}`);
    }
  }
  return out;
}
