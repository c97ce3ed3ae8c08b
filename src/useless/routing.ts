/**
 * Machine affinity: every request a visitor makes must reach the one VM they were sent to, even
 * when the platform's proxy first hands it to a sibling. `?instance=` (or the affinity cookie)
 * names the machine; a request that landed elsewhere is answered with `fly-replay: instance=<id>`.
 */
import { MACHINE_ID } from './config.js';

export const AFFINITY_COOKIE = 'fly-machine-id';
/** Seconds. Short on purpose: a stale cookie must not steer a browser to a machine long gone. */
export const AFFINITY_COOKIE_MAX_AGE_S = 60;

export type RouteDecision =
  | { kind: 'serve'; setCookie: boolean }
  | { kind: 'replay'; instance: string; via: 'param' | 'cookie' }
  | { kind: 'badInstance' };

/**
 * Decide what to do with one request. `instanceParam` is the raw `?instance=` value (undefined when
 * absent); `cookieId` the affinity cookie's value (undefined when absent or malformed).
 */
export function decideRoute(
  selfId: string,
  instanceParam: string | undefined,
  cookieId: string | undefined,
): RouteDecision {
  if (instanceParam !== undefined) {
    if (instanceParam === selfId) return { kind: 'serve', setCookie: true };
    // Never echo an arbitrary string into a response header.
    if (!MACHINE_ID.test(instanceParam)) return { kind: 'badInstance' };
    return { kind: 'replay', instance: instanceParam, via: 'param' };
  }
  if (cookieId !== undefined && cookieId !== selfId)
    return { kind: 'replay', instance: cookieId, via: 'cookie' };
  return { kind: 'serve', setCookie: false };
}

/** The value of the affinity cookie in a `Cookie` header, if present and well-formed. */
export function affinityCookie(header: string | undefined): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() !== AFFINITY_COOKIE) continue;
    const value = part
      .slice(eq + 1)
      .trim()
      .replace(/^"(.*)"$/, '$1');
    return MACHINE_ID.test(value) ? value : undefined;
  }
  return undefined;
}

/** The `Set-Cookie` value that pins this browser to this machine for a minute. */
export function affinitySetCookie(selfId: string, secure: boolean): string {
  const attrs = [
    `${AFFINITY_COOKIE}=${selfId}`,
    `Max-Age=${AFFINITY_COOKIE_MAX_AGE_S}`,
    'Path=/',
    'HttpOnly',
    'SameSite=Lax',
  ];
  if (secure) attrs.push('Secure');
  return attrs.join('; ');
}
