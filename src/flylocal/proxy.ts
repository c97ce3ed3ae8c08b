/**
 * The edge proxy of the local Fly platform: picks an app by Host (or `/_app/<app>/` prefix), an
 * instance by edge region, adds the headers Fly's proxy adds, streams responses (SSE included), and
 * replays requests answered with `fly-replay` the way Fly's proxy does.
 */
import { errorBody } from '../shared/errorBody.js';
import {
  createServer,
  request as httpRequest,
  Agent,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  type ServerResponse,
  type ClientRequest,
} from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { errorMessage } from '../shared/errors.js';
import { silentLogger, type Logger } from '../shared/log.js';
import { findRegion, isRegionCode } from '../shared/regions.js';

export interface EdgeInstance {
  id: string;
  region: string;
  /** Where the instance's service listens, e.g. `http://127.0.1.3:4040`. */
  url: string;
  /** Machine state; only `started` (or unknown) instances receive traffic. */
  state?: string;
}

export interface EdgeDirectory {
  instances(app: string): Promise<EdgeInstance[]>;
}

export interface EdgeProxyOptions {
  port: number;
  host?: string;
  /** The edge region every request "arrives" in, unless `?edge=`/the `wm-edge` cookie says otherwise. */
  defaultRegion: string;
  directory: EdgeDirectory;
  /** The app for any Host that names no other (default `where`). */
  defaultApp?: string;
  /** Exact host names (no port) → app. Default `{ 'useless-machine.localhost': 'useless-machine' }`. */
  appHosts?: Record<string, string>;
  log?: Logger;
  /** Replays one request may go through before it is refused as a loop (default 5). */
  maxReplays?: number;
  /** Bodies up to this size are kept for replays (default 1 MB, as on Fly). */
  replayBodyLimit?: number;
}

export interface EdgeProxy {
  url: string;
  close(): Promise<void>;
}

export const EDGE_COOKIE = 'wm-edge';
export const VIA = '2 flylocal';
const ONE_MB = 1024 * 1024;
const APP_NAME = /^[a-z0-9][a-z0-9-]{0,62}$/;

/** Headers that describe one connection, never forwarded (RFC 9110 §7.6.1). */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);
/** Headers only the edge may set: whatever a client sends under these names is dropped. */
const EDGE_OWNED = new Set([
  'fly-client-ip',
  'fly-region',
  'fly-forwarded-port',
  'fly-replay-src',
  'fly-preferred-instance-unavailable',
  'x-forwarded-proto',
  'x-forwarded-port',
  'x-forwarded-ssl',
]);

// ---------------------------------------------------------------------------------------------
// fly-replay

export interface ReplayDirective {
  app?: string;
  instance?: string;
  preferInstance?: string;
  /** Preference order; `any` matches every region. */
  regions?: string[];
  state?: string;
  elsewhere: boolean;
}

/**
 * Parse a `fly-replay` header: `;`-separated `key=value` fields, values optionally quoted (a region
 * list must be: `region="sjc,any"`). Unknown fields are ignored; undefined when nothing usable.
 */
export function parseFlyReplay(header: string): ReplayDirective | undefined {
  const fields = new Map<string, string>();
  for (const part of splitOutsideQuotes(header, ';')) {
    const eq = part.indexOf('=');
    if (eq <= 0) continue;
    const key = part.slice(0, eq).trim().toLowerCase();
    const value = part
      .slice(eq + 1)
      .trim()
      .replace(/^"(.*)"$/, '$1')
      .trim();
    fields.set(key, value);
  }
  const d: ReplayDirective = { elsewhere: fields.get('elsewhere') === 'true' };
  const app = fields.get('app');
  if (app) d.app = app;
  const instance = fields.get('instance');
  if (instance) d.instance = instance;
  const prefer = fields.get('prefer_instance');
  if (prefer) d.preferInstance = prefer;
  const region = fields.get('region');
  if (region)
    d.regions = region
      .split(',')
      .map((r) => r.trim().toLowerCase())
      .filter(Boolean);
  const state = fields.get('state');
  if (state !== undefined) d.state = state;
  if (
    !d.app &&
    !d.instance &&
    !d.preferInstance &&
    !d.regions &&
    !d.elsewhere &&
    d.state === undefined
  )
    return undefined;
  return d;
}

function splitOutsideQuotes(s: string, sep: string): string[] {
  const parts: string[] = [];
  let current = '';
  let quoted = false;
  for (const ch of s) {
    if (ch === '"') quoted = !quoted;
    if (ch === sep && !quoted) {
      parts.push(current);
      current = '';
    } else current += ch;
  }
  parts.push(current);
  return parts;
}

// ---------------------------------------------------------------------------------------------
// picking instances

function distanceKm(a: string, b: string): number {
  const ra = findRegion(a);
  const rb = findRegion(b);
  if (!ra || !rb) return a === b ? 0 : Number.POSITIVE_INFINITY;
  const rad = Math.PI / 180;
  const dLat = (rb.lat - ra.lat) * rad;
  const dLon = (rb.lon - ra.lon) * rad;
  const h =
    Math.sin(dLat / 2) ** 2 +
    Math.cos(ra.lat * rad) * Math.cos(rb.lat * rad) * Math.sin(dLon / 2) ** 2;
  return 2 * 6371 * Math.asin(Math.min(1, Math.sqrt(h)));
}

const isStarted = (i: EdgeInstance): boolean => i.state === undefined || i.state === 'started';

/**
 * The instance nearest the edge region: one in the region itself if any, else the closest by the
 * region table's coordinates. Ties rotate, so equal instances share the load.
 */
export function pickNearest(
  candidates: readonly EdgeInstance[],
  edgeRegion: string,
  turn: number,
): EdgeInstance | undefined {
  if (candidates.length === 0) return undefined;
  let best = Number.POSITIVE_INFINITY;
  let nearest: EdgeInstance[] = [];
  for (const c of candidates) {
    const d = c.region === edgeRegion ? 0 : distanceKm(edgeRegion, c.region);
    if (d < best) {
      best = d;
      nearest = [c];
    } else if (d === best) nearest.push(c);
  }
  return nearest[turn % nearest.length];
}

// ---------------------------------------------------------------------------------------------
// small HTTP helpers

function clientIp(socket: Socket): string {
  const a = socket.remoteAddress ?? '';
  return a.startsWith('::ffff:') ? a.slice(7) : a;
}

function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

function hostName(host: string | undefined): string {
  if (!host) return '';
  const h = host.trim().toLowerCase();
  if (h.startsWith('[')) return h.slice(0, h.indexOf(']') + 1);
  const colon = h.lastIndexOf(':');
  return colon >= 0 ? h.slice(0, colon) : h;
}

function sendError(
  res: ServerResponse,
  statusCode: number,
  code: string,
  message: string,
  extra: OutgoingHttpHeaders = {},
): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify(errorBody(statusCode, code, message));
  res.writeHead(statusCode, {
    ...extra,
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    via: VIA,
  });
  res.end(body);
}

type Body =
  | { kind: 'none' }
  | { kind: 'buffered'; data: Buffer }
  | { kind: 'stream'; prefix: Buffer[] }
  | { kind: 'aborted' };

/**
 * Read the request body while it fits in `limit` (so it can be replayed). Past the limit, stop
 * reading and hand over what was read: the rest is streamed to the first instance and cannot be replayed.
 */
function readBody(req: IncomingMessage, limit: number): Promise<Body> {
  const hasBody =
    req.headers['transfer-encoding'] !== undefined ||
    Number(req.headers['content-length'] ?? 0) > 0;
  if (!hasBody) return Promise.resolve({ kind: 'none' });
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const cleanup = (): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onAbort);
      req.off('close', onClose);
    };
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk);
      size += chunk.length;
      if (size > limit) {
        req.pause();
        cleanup();
        resolve({ kind: 'stream', prefix: chunks });
      }
    };
    const onEnd = (): void => {
      cleanup();
      resolve({ kind: 'buffered', data: Buffer.concat(chunks) });
    };
    const onAbort = (): void => {
      cleanup();
      resolve({ kind: 'aborted' });
    };
    const onClose = (): void => {
      if (!req.complete) onAbort();
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onAbort);
    req.on('close', onClose);
  });
}

// ---------------------------------------------------------------------------------------------
// the proxy

interface Routed {
  app: string;
  /** Path and query as the instance should see them. */
  path: string;
  edgeRegion: string;
  /** `Set-Cookie` for a `?edge=` choice, to remember it. */
  setCookie?: string;
}

export async function startEdgeProxy(opts: EdgeProxyOptions): Promise<EdgeProxy> {
  const log = (opts.log ?? silentLogger()).child({ component: 'edge-proxy' });
  const defaultApp = opts.defaultApp ?? 'where';
  const appHosts = opts.appHosts ?? { 'useless-machine.localhost': 'useless-machine' };
  const maxReplays = opts.maxReplays ?? 5;
  const replayBodyLimit = opts.replayBodyLimit ?? ONE_MB;
  const agent = new Agent({ keepAlive: true, maxSockets: 256 });
  const sockets = new Set<Socket>();
  const upstreams = new Set<ClientRequest>();
  const turns = new Map<string, number>();
  let closing = false;

  const nextTurn = (app: string): number => {
    const t = turns.get(app) ?? 0;
    turns.set(app, t + 1);
    return t;
  };

  function route(req: IncomingMessage): Routed {
    let raw = req.url ?? '/';
    if (!raw.startsWith('/')) {
      // absolute-form (a client that thinks we are a forward proxy)
      try {
        const u = new URL(raw);
        raw = u.pathname + u.search;
      } catch {
        raw = '/';
      }
    }
    let app: string | undefined;
    let path = raw;
    const prefix = /^\/_app\/([^/?#]+)(.*)$/.exec(raw);
    if (prefix && APP_NAME.test(prefix[1]!)) {
      app = prefix[1]!;
      path = prefix[2]!.startsWith('/') ? prefix[2]! : `/${prefix[2]!}`;
    }
    if (!app) {
      const host = hostName(req.headers.host);
      app =
        appHosts[host] ??
        (host.endsWith('.localhost') && APP_NAME.test(host.slice(0, -'.localhost'.length))
          ? host.slice(0, -'.localhost'.length)
          : defaultApp);
    }

    // Development: `?edge=<region>` pretends the visitor came in through another edge, and sticks.
    let edgeRegion = opts.defaultRegion;
    let setCookie: string | undefined;
    const q = path.indexOf('?');
    if (q >= 0) {
      const params = new URLSearchParams(path.slice(q + 1));
      const edge = params.get('edge');
      if (edge !== null) {
        params.delete('edge');
        const rest = params.toString();
        path = path.slice(0, q) + (rest ? `?${rest}` : '');
        if (isRegionCode(edge)) {
          edgeRegion = edge;
          setCookie = `${EDGE_COOKIE}=${edge}; Path=/; SameSite=Lax`;
        }
      }
    }
    if (!setCookie) {
      const remembered = cookieValue(req.headers.cookie, EDGE_COOKIE);
      if (remembered && isRegionCode(remembered)) edgeRegion = remembered;
    }
    return setCookie ? { app, path, edgeRegion, setCookie } : { app, path, edgeRegion };
  }

  function forwardedHeaders(
    req: IncomingMessage,
    edgeRegion: string,
    port: number,
  ): OutgoingHttpHeaders {
    const out: OutgoingHttpHeaders = {};
    for (const [name, value] of Object.entries(req.headers)) {
      if (value === undefined || HOP_BY_HOP.has(name) || EDGE_OWNED.has(name)) continue;
      out[name] = value;
    }
    const ip = clientIp(req.socket);
    out['fly-client-ip'] = ip;
    out['fly-region'] = edgeRegion;
    out['fly-forwarded-port'] = String(port);
    const xff = req.headers['x-forwarded-for'];
    const prior = Array.isArray(xff) ? xff.join(', ') : xff;
    out['x-forwarded-for'] = prior ? `${prior}, ${ip}` : ip;
    out['x-forwarded-proto'] = 'http';
    out['x-forwarded-port'] = String(port);
    out['x-forwarded-ssl'] = 'off';
    out.via = req.headers.via ? `${req.headers.via}, ${VIA}` : VIA;
    return out;
  }

  /** Send one attempt to `target`; resolves with the response head, or an error. */
  function attempt(
    req: IncomingMessage,
    target: EdgeInstance,
    path: string,
    headers: OutgoingHttpHeaders,
    body: Body,
    res: ServerResponse,
  ): Promise<
    { ok: true; upstream: IncomingMessage; request: ClientRequest } | { ok: false; error: string }
  > {
    return new Promise((resolve) => {
      let url: URL;
      try {
        url = new URL(target.url);
      } catch {
        resolve({ ok: false, error: `instance ${target.id} has a bad address: ${target.url}` });
        return;
      }
      const h: OutgoingHttpHeaders = { ...headers };
      if (body.kind === 'buffered') {
        h['content-length'] = body.data.length;
      } else if (body.kind === 'stream') {
        if (req.headers['content-length']) h['content-length'] = req.headers['content-length'];
        else h['transfer-encoding'] = 'chunked';
      }
      const up = httpRequest({
        protocol: url.protocol,
        hostname: url.hostname.replace(/^\[|\]$/g, ''),
        port: url.port,
        method: req.method,
        path,
        headers: h,
        agent,
      });
      upstreams.add(up);
      // The client gave up before the instance answered: stop waiting on its behalf.
      const onClientGone = (): void => void up.destroy();
      res.once('close', onClientGone);
      up.on('close', () => {
        upstreams.delete(up);
        res.off('close', onClientGone);
      });
      up.once('response', (upstream) => {
        res.off('close', onClientGone);
        resolve({ ok: true, upstream, request: up });
      });
      up.once('error', (err) => resolve({ ok: false, error: errorMessage(err) }));
      if (body.kind === 'buffered') up.end(body.data);
      else if (body.kind === 'stream') {
        for (const c of body.prefix) up.write(c);
        req.pipe(up);
        req.resume();
      } else up.end();
    });
  }

  function relay(
    upstream: IncomingMessage,
    upReq: ClientRequest,
    res: ServerResponse,
    setCookie: string | undefined,
  ): void {
    const headers: OutgoingHttpHeaders = {};
    for (const [name, value] of Object.entries(upstream.headers)) {
      if (value === undefined || HOP_BY_HOP.has(name) || name === 'fly-replay') continue;
      headers[name] = value;
    }
    if (setCookie) {
      const existing = headers['set-cookie'];
      headers['set-cookie'] = [
        ...(Array.isArray(existing) ? existing : typeof existing === 'string' ? [existing] : []),
        setCookie,
      ];
    }
    headers.via = upstream.headers.via ? `${upstream.headers.via}, ${VIA}` : VIA;
    res.writeHead(upstream.statusCode ?? 502, upstream.statusMessage, headers);
    // Send the head now: an event stream's first event may be a long time coming.
    res.flushHeaders();
    upstream.pipe(res);
    // The instance went away mid-response: the client must see a broken response, not a short one.
    upstream.on('close', () => {
      if (!upstream.complete) res.destroy();
    });
    // The visitor left (or the stream ended): release the instance's side too.
    res.on('close', () => {
      if (!upstream.complete) upReq.destroy();
    });
  }

  /** Where a `fly-replay` sends the request next. */
  async function resolveReplay(
    d: ReplayDirective,
    app: string,
    responder: EdgeInstance,
    edgeRegion: string,
  ): Promise<
    | { ok: true; app: string; target: EdgeInstance; preferredUnavailable: boolean }
    | { ok: false; message: string }
  > {
    const targetApp = d.app ?? app;
    if (!APP_NAME.test(targetApp))
      return { ok: false, message: `fly-replay names an invalid app "${targetApp}"` };
    const all = (await opts.directory.instances(targetApp)).filter(isStarted);
    let candidates = d.elsewhere
      ? all.filter((i) => !(i.id === responder.id && targetApp === app))
      : all;
    if (d.instance) {
      const target = candidates.find((i) => i.id === d.instance);
      return target
        ? { ok: true, app: targetApp, target, preferredUnavailable: false }
        : {
            ok: false,
            message: `replay target instance ${d.instance} of app ${targetApp} is not running`,
          };
    }
    if (d.preferInstance) {
      const target = candidates.find((i) => i.id === d.preferInstance);
      if (target) return { ok: true, app: targetApp, target, preferredUnavailable: false };
    }
    if (d.regions) {
      for (const r of d.regions) {
        const inRegion = r === 'any' ? candidates : candidates.filter((i) => i.region === r);
        if (inRegion.length > 0) {
          candidates = inRegion;
          const target = pickNearest(candidates, r === 'any' ? edgeRegion : r, nextTurn(targetApp));
          if (target)
            return {
              ok: true,
              app: targetApp,
              target,
              preferredUnavailable: d.preferInstance !== undefined,
            };
        }
      }
      return {
        ok: false,
        message: `no running instance of app ${targetApp} in ${d.regions.join(', ')}`,
      };
    }
    const target = pickNearest(candidates, edgeRegion, nextTurn(targetApp));
    return target
      ? { ok: true, app: targetApp, target, preferredUnavailable: d.preferInstance !== undefined }
      : { ok: false, message: `no running instance of app ${targetApp} to replay to` };
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const port = req.socket.localPort ?? opts.port;
    const r = route(req);
    const baseHeaders = forwardedHeaders(req, r.edgeRegion, port);
    const candidates = (await opts.directory.instances(r.app)).filter(isStarted);
    let target = pickNearest(candidates, r.edgeRegion, nextTurn(r.app));
    if (!target) {
      sendError(
        res,
        503,
        'NO_INSTANCE',
        `no started instance of app "${r.app}" to take this request`,
      );
      return;
    }
    const body = await readBody(req, replayBodyLimit);
    if (body.kind === 'aborted') return;
    let app = r.app;
    let extra: OutgoingHttpHeaders = {};
    for (let replays = 0; ; replays++) {
      const sent = await attempt(req, target, r.path, { ...baseHeaders, ...extra }, body, res);
      if (!sent.ok) {
        log.warn({ app, instance: target.id, err: sent.error }, 'instance unreachable');
        sendError(
          res,
          502,
          'INSTANCE_UNREACHABLE',
          `instance ${target.id} of app "${app}" did not answer: ${sent.error}`,
        );
        return;
      }
      const directive = sent.upstream.headers['fly-replay'];
      if (directive === undefined) {
        relay(sent.upstream, sent.request, res, r.setCookie);
        return;
      }
      // The instance asked for a replay: its own answer never reaches the client.
      sent.upstream.resume();
      const header = Array.isArray(directive) ? directive.join(';') : directive;
      if (body.kind === 'stream') {
        sendError(
          res,
          413,
          'REPLAY_BODY_TOO_LARGE',
          `instance ${target.id} asked for a replay, but request bodies over ${replayBodyLimit} bytes cannot be replayed`,
        );
        return;
      }
      if (replays >= maxReplays) {
        sendError(
          res,
          508,
          'REPLAY_LOOP',
          `gave up after ${maxReplays} replays (last: ${header} from ${target.id})`,
        );
        return;
      }
      const d = parseFlyReplay(header);
      if (!d) {
        sendError(
          res,
          502,
          'BAD_REPLAY',
          `instance ${target.id} answered with an unusable fly-replay header: ${header}`,
        );
        return;
      }
      const next = await resolveReplay(d, app, target, r.edgeRegion);
      if (!next.ok) {
        sendError(res, 503, 'REPLAY_TARGET_UNAVAILABLE', next.message);
        return;
      }
      log.debug(
        { from: target.id, to: next.target.id, app: next.app, directive: header },
        'replaying',
      );
      const src = `instance=${target.id};region=${target.region};t=${Date.now() * 1000}${d.state !== undefined ? `;state=${d.state}` : ''}`;
      extra = {
        'fly-replay-src': src,
        ...(next.preferredUnavailable
          ? { 'fly-preferred-instance-unavailable': d.preferInstance }
          : {}),
      };
      app = next.app;
      target = next.target;
    }
  }

  const server = createServer((req, res) => {
    if (closing) {
      sendError(res, 503, 'PROXY_CLOSING', 'the edge proxy is shutting down', {
        connection: 'close',
      });
      return;
    }
    handle(req, res).catch((err: unknown) => {
      log.error({ err: errorMessage(err) }, 'proxy failure');
      sendError(res, 502, 'PROXY_ERROR', errorMessage(err));
    });
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.on('clientError', (_err, socket: Socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n');
    else socket.destroy();
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const host = address.address.includes(':') ? `[${address.address}]` : address.address;
  const url = `http://${host === '[::]' ? 'localhost' : host === '0.0.0.0' ? 'localhost' : host}:${address.port}`;
  log.info({ url, defaultApp, defaultRegion: opts.defaultRegion }, 'edge proxy listening');

  let closed: Promise<void> | undefined;
  return {
    url,
    close: () =>
      (closed ??= (async () => {
        closing = true;
        const done = new Promise<void>((resolve) => server.close(() => resolve()));
        for (const up of upstreams) up.destroy();
        for (const s of sockets) s.destroy();
        agent.destroy();
        await done;
      })()),
  };
}
