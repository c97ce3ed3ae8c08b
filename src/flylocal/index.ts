/**
 * flylocal's programmatic API: start the Machines API emulator on a port, get its URL, token,
 * machine directory (for the edge proxy) and a close() that leaves no process behind.
 */
import { randomBytes } from 'node:crypto';
import { buildFlyLocalApp, type FlyLocalAppOptions } from './app.js';
import type { HttpStats } from './stats.js';
import { FlyLocalEmulator, type EmulatorOptions, type MachineDirectory } from './emulator.js';

export { FlyLocalEmulator, EmulatorError } from './emulator.js';
export type {
  EmulatorOptions,
  MachineDirectory,
  MachineInstance,
  MachineSnapshot,
} from './emulator.js';
export type { FaultConfig, ActionFaults, FaultKind, EmulatedAction } from './faults.js';
export { HttpStats } from './stats.js';
export { LATENCY_PROFILES } from './latency.js';
export type { LatencyProfile, LatencyProfileName } from './latency.js';

export const FLYLOCAL_DEFAULT_PORT = 4280;

export interface StartFlyLocalOptions extends EmulatorOptions, Omit<FlyLocalAppOptions, 'token'> {
  /** Listen address (default 127.0.0.1). */
  readonly host?: string;
  /** Listen port (default 4280; 0 picks a free one). */
  readonly port?: number;
  /** Bearer token the API demands (default: a random one, returned in the handle). */
  readonly token?: string;
}

export interface FlyLocalHandle {
  /** Machines API root, e.g. `http://127.0.0.1:4280/v1`: what FLY_API_BASE_URL points at. */
  readonly apiUrl: string;
  /** Admin root, e.g. `http://127.0.0.1:4280/__flylocal`. */
  readonly adminUrl: string;
  readonly token: string;
  readonly emulator: FlyLocalEmulator;
  /** `directory.instances(app)`: live machines and their URLs, for the edge proxy. */
  readonly directory: MachineDirectory;
  readonly stats: HttpStats;
  /** Stop every VM, then the HTTP server. Safe to call twice. */
  close(): Promise<void>;
}

export async function startFlyLocal(opts: StartFlyLocalOptions = {}): Promise<FlyLocalHandle> {
  const token = opts.token ?? `flylocal-${randomBytes(16).toString('hex')}`;
  const emulator = new FlyLocalEmulator(opts);
  const { app, stats } = buildFlyLocalApp(emulator, {
    token,
    ...(opts.logger ? { logger: opts.logger } : {}),
    ...(opts.rateLimitGraceMs !== undefined ? { rateLimitGraceMs: opts.rateLimitGraceMs } : {}),
  });
  const host = opts.host ?? '127.0.0.1';
  try {
    await app.listen({ host, port: opts.port ?? FLYLOCAL_DEFAULT_PORT });
  } catch (err) {
    await emulator.close();
    await app.close();
    throw err;
  }
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : (opts.port ?? FLYLOCAL_DEFAULT_PORT);
  const origin = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;

  let closing: Promise<void> | undefined;
  return {
    apiUrl: `${origin}/v1`,
    adminUrl: `${origin}/__flylocal`,
    token,
    emulator,
    directory: { instances: emulator.instances },
    stats,
    close: () =>
      (closing ??= (async () => {
        await emulator.close();
        await app.close();
      })()),
  };
}
