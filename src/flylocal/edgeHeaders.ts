/**
 * The headers the edge proxy changes on the way in (drops a connection's own and the edge's, adds
 * Fly's client, region and forwarding headers) and on the way out (drops `fly-replay`, adds Via).
 */
import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';

export const VIA = '2 flylocal';

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

function clientIp(socket: Socket): string {
  const a = socket.remoteAddress ?? '';
  return a.startsWith('::ffff:') ? a.slice(7) : a;
}

function kept(headers: IncomingHttpHeaders, drop: (name: string) => boolean): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || HOP_BY_HOP.has(name) || drop(name)) continue;
    out[name] = value;
  }
  return out;
}

const withVia = (prior: string | undefined): string => (prior ? `${prior}, ${VIA}` : VIA);

/** What an instance receives: the client's headers less the edge's own, plus the edge's. */
export function forwardedHeaders(
  req: IncomingMessage,
  edgeRegion: string,
  port: number,
): OutgoingHttpHeaders {
  const out = kept(req.headers, (name) => EDGE_OWNED.has(name));
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
  out.via = withVia(req.headers.via);
  return out;
}

/** What the client receives from an instance, with the `Set-Cookie` of an `?edge=` choice added. */
export function relayedHeaders(
  upstream: IncomingMessage,
  setCookie: string | undefined,
): OutgoingHttpHeaders {
  const headers = kept(upstream.headers, (name) => name === 'fly-replay');
  if (setCookie) {
    const existing = headers['set-cookie'];
    headers['set-cookie'] = [
      ...(Array.isArray(existing) ? existing : typeof existing === 'string' ? [existing] : []),
      setCookie,
    ];
  }
  headers.via = withVia(upstream.headers.via);
  return headers;
}
