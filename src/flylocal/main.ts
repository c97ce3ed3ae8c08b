/**
 * `npm run flylocal`: the local Fly platform on one laptop. Starts the Machines API emulator
 * (default http://127.0.0.1:4280/v1) and the edge proxy (default http://localhost:8080) over the
 * emulator's machine directory; stops every VM on SIGINT/SIGTERM before exiting.
 */
import { z } from 'zod';
import { envBool, envInt, loadEnvOrExit } from '../shared/env.js';
import { createLogger } from '../shared/log.js';
import { regionCode } from '../shared/regions.js';
import { faultConfigSchema } from './faults.js';
import { latencyProfileName } from './latency.js';
import { FLYLOCAL_DEFAULT_PORT, startFlyLocal, type MachineInstance } from './index.js';
import { startEdgeProxy } from './proxy.js';

const staticInstances = z.record(
  z.string(),
  z.array(
    z.strictObject({
      id: z.string(),
      region: z.string(),
      url: z.url(),
      state: z.string().optional(),
    }),
  ),
);

const jsonText = <S extends z.ZodType>(schema: S) =>
  z
    .string()
    .transform((s, ctx) => {
      try {
        return JSON.parse(s) as unknown;
      } catch {
        ctx.addIssue({ code: 'custom', message: 'expected JSON' });
        return z.NEVER;
      }
    })
    .pipe(schema);

const envSchema = z.object({
  FLYLOCAL_HOST: z.string().default('127.0.0.1'),
  FLYLOCAL_PORT: envInt(0, 65535).default(FLYLOCAL_DEFAULT_PORT),
  /** The bearer token clients must send; `where` reads the same value as FLY_API_TOKEN. */
  FLYLOCAL_TOKEN: z.string().min(1).default('flylocal-dev-token'),
  /** Region of a create that names none, and the edge region of the proxy. */
  FLYLOCAL_REGION: regionCode.default('yyz'),
  /** What a machine runs when its create names no command: a JSON array. */
  FLYLOCAL_VM_COMMAND: jsonText(z.array(z.string()).min(1)).optional(),
  FLYLOCAL_ADDRESS_MODE: z.enum(['loopback', 'port']).optional(),
  /** Fault injection at start (same JSON as POST /__flylocal/faults). */
  FLYLOCAL_FAULTS: jsonText(faultConfigSchema).optional(),
  FLYLOCAL_RATE_LIMITS: envBool.default(false),
  /** Latency profile: `fly` (Fly's image pulls, boots, starts and stops) or `fast` (none). */
  FLYLOCAL_PROFILE: latencyProfileName.default('fly'),
  FLYLOCAL_PROXY: envBool.default(true),
  FLYLOCAL_PROXY_HOST: z.string().default('127.0.0.1'),
  FLYLOCAL_PROXY_PORT: envInt(0, 65535).default(8080),
  /** Instances of apps that run outside the emulator (e.g. the landing app), for the proxy. */
  FLYLOCAL_STATIC_INSTANCES: jsonText(staticInstances).optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

const env = loadEnvOrExit(envSchema, 'flylocal');
const log = createLogger({ name: 'flylocal', level: env.LOG_LEVEL });

const local = await startFlyLocal({
  host: env.FLYLOCAL_HOST,
  port: env.FLYLOCAL_PORT,
  token: env.FLYLOCAL_TOKEN,
  defaultRegion: env.FLYLOCAL_REGION,
  profile: env.FLYLOCAL_PROFILE,
  ...(env.FLYLOCAL_VM_COMMAND ? { defaultCommand: env.FLYLOCAL_VM_COMMAND } : {}),
  ...(env.FLYLOCAL_ADDRESS_MODE ? { addressMode: env.FLYLOCAL_ADDRESS_MODE } : {}),
  faults: {
    ...env.FLYLOCAL_FAULTS,
    enforceRateLimits: env.FLYLOCAL_RATE_LIMITS || env.FLYLOCAL_FAULTS?.enforceRateLimits === true,
  },
  logger: log.child({ component: 'machines-api' }),
  // We stop VMs gracefully on signals ourselves; the exit hook stays as the last resort.
  killChildrenOnSignal: false,
});
log.info(
  { apiUrl: local.apiUrl, adminUrl: local.adminUrl, profile: env.FLYLOCAL_PROFILE },
  'flylocal Machines API listening',
);

const fixed = env.FLYLOCAL_STATIC_INSTANCES ?? {};
const directory = {
  instances: async (app: string): Promise<MachineInstance[]> => [
    ...(fixed[app] ?? []).map((i) => ({ ...i, state: i.state ?? 'started' })),
    ...(await local.directory.instances(app)),
  ],
};

const proxy = env.FLYLOCAL_PROXY
  ? await startEdgeProxy({
      host: env.FLYLOCAL_PROXY_HOST,
      port: env.FLYLOCAL_PROXY_PORT,
      defaultRegion: env.FLYLOCAL_REGION,
      directory,
      log,
    }).catch(async (err: unknown) => {
      await local.close();
      throw err;
    })
  : undefined;
if (proxy) log.info({ url: proxy.url }, 'flylocal edge proxy listening');

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  log.info({ signal }, 'flylocal stopping');
  await proxy?.close();
  await local.close();
  log.info('flylocal stopped');
  // Let the event loop end by itself rather than process.exit(): pino's exit hook flushes
  // synchronously, and if stdout is a pipe whose reader is gone (`npm run flylocal | head`, or a
  // Ctrl-C that also killed the reader) sonic-boom retries the EPIPE write forever. The unref'd
  // timer only fires if some handle was left open.
  process.exitCode = 0;
  setTimeout(() => process.exit(0), 3_000).unref();
}
for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(s, () => void shutdown(s));
