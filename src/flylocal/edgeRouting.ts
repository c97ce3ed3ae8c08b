/**
 * Where the edge proxy sends a request: the app (by `/_app/<app>/` prefix or Host), the edge region
 * it arrives in (`?edge=` or the cookie that remembers it), and the started instance nearest it.
 */
import type { IncomingMessage } from 'node:http';
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

export const EDGE_COOKIE = 'wm-edge';
export const APP_NAME = /^[a-z0-9][a-z0-9-]{0,62}$/;

export interface Routed {
  app: string;
  /** Path and query as the instance should see them. */
  path: string;
  edgeRegion: string;
  /** `Set-Cookie` for a `?edge=` choice, to remember it. */
  setCookie?: string;
}

export interface RoutingOptions {
  defaultApp: string;
  appHosts: Record<string, string>;
  defaultRegion: string;
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

/** Path and query of the request line, also when a client sent the absolute form. */
function requestPath(req: IncomingMessage): string {
  const raw = req.url ?? '/';
  if (raw.startsWith('/')) return raw;
  // absolute-form (a client that thinks we are a forward proxy)
  try {
    const u = new URL(raw);
    return u.pathname + u.search;
  } catch {
    return '/';
  }
}

function appOf(
  req: IncomingMessage,
  raw: string,
  o: RoutingOptions,
): { app: string; path: string } {
  const prefix = /^\/_app\/([^/?#]+)(.*)$/.exec(raw);
  if (prefix && APP_NAME.test(prefix[1]!)) {
    return { app: prefix[1]!, path: prefix[2]!.startsWith('/') ? prefix[2]! : `/${prefix[2]!}` };
  }
  const host = hostName(req.headers.host);
  const sub = host.endsWith('.localhost') ? host.slice(0, -'.localhost'.length) : undefined;
  const app = o.appHosts[host] ?? (sub !== undefined && APP_NAME.test(sub) ? sub : o.defaultApp);
  return { app, path: raw };
}

export function routeRequest(req: IncomingMessage, o: RoutingOptions): Routed {
  const { app, path: full } = appOf(req, requestPath(req), o);
  let path = full;
  // Development: `?edge=<region>` pretends the visitor came in through another edge, and sticks.
  let edgeRegion = o.defaultRegion;
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

export const isStarted = (i: EdgeInstance): boolean =>
  i.state === undefined || i.state === 'started';

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

/** Round-robin turns per app, so ties among equally near instances rotate. */
export class Turns {
  private readonly turns = new Map<string, number>();
  next(app: string): number {
    const t = this.turns.get(app) ?? 0;
    this.turns.set(app, t + 1);
    return t;
  }
}
