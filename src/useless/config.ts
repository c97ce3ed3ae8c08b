/**
 * The Useless Machine's configuration: one zod schema over the environment the platform and the
 * landing app give a VM (see docs/useless-machine.md), parsed once at start.
 */
import { isIP } from 'node:net';
import { z } from 'zod';
import { envInt, envUrl } from '../shared/env.js';
import { childOf, parseTraceparent } from '../shared/trace.js';
import {
  MACHINE_ID_PATTERN as MACHINE_ID,
  REGION_PATTERN,
  ULID_PATTERN as ULID,
} from '../../machines/vocabulary.js';

export { MACHINE_ID };

export const uselessEnv = z
  .object({
    FLY_MACHINE_ID: z.string().regex(MACHINE_ID, 'expected 8–32 lowercase letters or digits'),
    // Any three letters: a region missing from our table is shown as such, never a crash.
    FLY_REGION: z.string().regex(REGION_PATTERN, 'expected a three-letter region code'),
    FLY_APP_NAME: z.string().min(1).default('useless-machine'),
    FLY_PRIVATE_IP: z
      .string()
      .refine((s) => isIP(s) !== 0, 'expected an IP address')
      .optional(),
    PORT: envInt(1, 65535).default(4040),
    WM_LAUNCH_ID: z.string().regex(ULID, 'expected a ULID'),
    WM_CALLBACK_KEY: z.string().min(16, 'expected at least 16 characters'),
    /** The full URL of the status endpoint of the landing-app instance that launched us. */
    WM_CALLBACK_URL: envUrl,
    /** Any landing-app instance's status endpoint, tried when the first does not answer. */
    WM_CALLBACK_FALLBACK_URL: envUrl.optional(),
    WM_TTL_MS: envInt(1000, 24 * 60 * 60 * 1000).default(60_000),
    /** Once ready, switch off if no viewer has come within this long; 0: wait for the TTL. */
    WM_IDLE_MS: envInt(0, 24 * 60 * 60 * 1000).default(120_000),
    WM_HOME_URL: envUrl.default('http://localhost:8080/'),
    WM_SOURCE: z.enum(['button', 'dash', 'auto']).default('button'),
    /** The launch's trace (W3C traceparent); a malformed one is dropped, never fatal. */
    WM_TRACEPARENT: z.string().max(64).optional(),
    LOG_LEVEL: z
      .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
      .default('info'),
  })
  .transform((e) => ({
    machineId: e.FLY_MACHINE_ID,
    region: e.FLY_REGION,
    appName: e.FLY_APP_NAME,
    privateIp: e.FLY_PRIVATE_IP,
    port: e.PORT,
    launchId: e.WM_LAUNCH_ID,
    callbackKey: e.WM_CALLBACK_KEY,
    callbackUrl: e.WM_CALLBACK_URL,
    callbackFallbackUrl: e.WM_CALLBACK_FALLBACK_URL,
    ttlMs: e.WM_TTL_MS,
    idleMs: e.WM_IDLE_MS,
    homeUrl: e.WM_HOME_URL,
    source: e.WM_SOURCE,
    // This VM's own position in the launch's trace: what its callbacks send onward.
    trace: ((t) => t && childOf(t))(parseTraceparent(e.WM_TRACEPARENT)),
    logLevel: e.LOG_LEVEL,
  }));

export type UselessConfig = z.output<typeof uselessEnv>;

/** Loopback peers: 127.0.0.0/8, ::1 and IPv4-mapped 127.x (what a dual-stack socket reports). */
export function isLoopback(address: string | undefined): boolean {
  if (!address) return false;
  const a = address.toLowerCase();
  if (a === '::1' || a === '0:0:0:0:0:0:0:1') return true;
  const v4 = a.startsWith('::ffff:') ? a.slice('::ffff:'.length) : a;
  return isIP(v4) === 4 && v4.startsWith('127.');
}

/**
 * Where to listen. On Fly, `::` covers the proxy, 6PN (FLY_PRIVATE_IP) and loopback. On one laptop
 * each VM gets its own loopback address and they all share the same port, so a VM binds only its
 * own address there (binding `::` would collide with its siblings).
 */
export function listenHost(config: Pick<UselessConfig, 'privateIp'>): string {
  return config.privateIp && isLoopback(config.privateIp) ? config.privateIp : '::';
}
