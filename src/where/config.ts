/**
 * The landing app's configuration: one zod schema over the environment, parsed once at start.
 * Local mode (WM_LOCAL=1, set by `npm start`) fills in what a laptop cannot know; in production a
 * missing secret stops the process with a message naming the variable.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { z } from 'zod';
import { envBool, envInt, envList } from '../shared/env.js';
import { REGION_CODES } from '../shared/regions.js';
import { parseTrustEntry } from './services/rateLimit.js';

const region = z
  .string()
  .refine((r) => REGION_CODES.includes(r), { message: 'not a known Fly.io region' });
const regions = envList.pipe(z.array(region).min(1, 'name at least one region'));

const DURATION_UNITS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};
/** A duration: milliseconds (`86400000`) or a number with a unit (`500ms`, `30s`, `10m`, `24h`, `7d`). */
const envDuration = (minMs: number, maxMs: number) =>
  z
    .string()
    .trim()
    .regex(/^\d+(ms|s|m|h|d)?$/, 'expected milliseconds or a duration like 30s, 10m, 24h, 7d')
    .transform((v) => {
      const [, n, unit] = /^(\d+)(ms|s|m|h|d)?$/.exec(v)!;
      return Number(n) * DURATION_UNITS[unit ?? 'ms']!;
    })
    .pipe(z.number().min(minMs).max(maxMs));

/**
 * `WM_POOL`: warm pools per region, `ams:2,syd:1` (a region and how many stopped machines it
 * keeps, ADR 0022); empty: none.
 */
export const poolSetting = z
  .string()
  .trim()
  .transform((v, ctx) => {
    const out: { region: string; target: number }[] = [];
    for (const entry of v
      .split(',')
      .map((e) => e.trim())
      .filter(Boolean)) {
      const m = /^([a-z]{3}):(\d{1,3})$/.exec(entry);
      if (!m || !REGION_CODES.includes(m[1]!) || Number(m[2]) > 100) {
        ctx.addIssue({
          code: 'custom',
          message: `"${entry}": expected <region>:<count>, a known Fly.io region and 0–100 (e.g. ams:2,syd:1)`,
        });
        return z.NEVER;
      }
      if (out.some((o) => o.region === m[1])) {
        ctx.addIssue({ code: 'custom', message: `"${m[1]}" is named twice` });
        return z.NEVER;
      }
      out.push({ region: m[1]!, target: Number(m[2]) });
    }
    return out;
  });

export const whereEnv = z
  .object({
    LOG_LEVEL: z
      .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
      .default('info'),
    LOG_PRETTY: envBool.optional(),
    /** Local mode: secrets generated when unset, the dashboard open, the edge region choosable. */
    WM_LOCAL: envBool.default(false),

    FLY_MACHINE_ID: z.string().optional(),
    FLY_REGION: region.optional(),
    FLY_APP_NAME: z.string().default('where'),
    FLY_PRIVATE_IP: z.string().optional(),
    FLY_IMAGE_REF: z.string().optional(),
    /** This instance's id; Fly's machine id when there is one (fly-replay names it). */
    WM_INSTANCE_ID: z
      .string()
      .regex(/^[a-z0-9-]{1,64}$/)
      .optional(),

    HOST: z.string().default('::'),
    PORT: envInt(0, 65535).default(8080),
    PRIVATE_HOST: z.string().optional(),
    PRIVATE_PORT: envInt(0, 65535).default(4001),

    FLY_API_BASE_URL: z.url().default('https://api.machines.dev/v1'),
    FLY_API_TOKEN: z.string().min(1).optional(),
    /** The Fly app the Useless Machines are created in (not FLY_-prefixed: fly.toml [env] may not set those). */
    WM_VM_APP: z
      .string()
      .regex(/^[a-z0-9-]+$/)
      .default('useless-machine'),
    WM_VM_IMAGE: z.string().optional(),
    WM_VM_CMD: z.string().default('node dist/useless.mjs'),
    /** Where a browser reaches the VM app (the redirect goes to `<this>/machine?instance=<id>`). */
    WM_VM_PUBLIC_URL: z.url().default('https://useless-machine.fly.dev'),
    /** A ready VM that no viewer has reached within this long switches itself off; 0: only its TTL. */
    WM_VM_IDLE_MS: envInt(0, 24 * 60 * 60 * 1000).default(120_000),
    /** The landing page's public origin: the link back from a VM, and the Origin we accept. */
    WM_PUBLIC_URL: z.url().default('https://where.fly.dev'),
    /** How a VM reaches this instance's private API; default http://[FLY_PRIVATE_IP]:PRIVATE_PORT. */
    WM_CALLBACK_BASE_URL: z.url().optional(),
    /** How a VM reaches any instance when this one does not answer. */
    WM_CALLBACK_FALLBACK_URL: z.url().optional(),
    WM_CALLBACK_SECRET: z.string().min(32, 'use at least 32 characters').optional(),
    DEBUG_TOKEN: z.string().min(16, 'use at least 16 characters').optional(),

    NATS_URL: z.string().optional(),
    /** NATS credentials (secrets): a user and password, or a token. */
    NATS_USER: z.string().optional(),
    NATS_PASSWORD: z.string().optional(),
    NATS_TOKEN: z.string().optional(),
    WM_NATS_STREAM: z.string().default('WM_EVENTS'),
    WM_NATS_REPLICAS: envInt(1, 5).default(1),
    /** NATS: archived finished actors leave the archive stream this long after retention moved them (ADR 0014); 0: never. */
    WM_NATS_ARCHIVE_MAX_AGE: envDuration(0, 3650 * 86_400_000).default(30 * 86_400_000),
    /** NATS: the archive stream's size cap in bytes, oldest dropped first; 0: no cap. */
    WM_NATS_ARCHIVE_MAX_BYTES: envInt(0).default(0),
    WM_DATA_DIR: z.string().default('.data'),

    WM_MAX_MACHINES: envInt(1, 1000).default(8),
    WM_READY_TIMEOUT_MS: envInt(1000).default(60_000),
    WM_TTL_BUTTON_MS: envInt(1000).default(600_000),
    WM_TTL_AUTO_MS: envInt(1000).default(60_000),
    /** Launches one client IP may start per minute. */
    WM_LAUNCHES_PER_MINUTE: envInt(1, 10_000).default(5),
    /** Requests one client IP may make per minute on the public listener, all routes together. */
    WM_REQUESTS_PER_MINUTE: envInt(1, 1_000_000).default(600),
    /** Open SSE streams one instance accepts (each holds a socket; the process has ~20k). */
    WM_MAX_STREAMS: envInt(1, 1_000_000).default(15_000),
    /** After a launch is accepted, the same visitor waits this long before the next one. */
    WM_COOLDOWN_MS: envInt(0).default(20_000),
    /**
     * Peers whose Fly-Client-IP header we believe: addresses and CIDR blocks (`*`: every peer). The
     * default is the local edge proxy (loopback); fly.toml names Fly's proxy, 172.16.0.0/12 (ADR 0020).
     */
    WM_TRUSTED_PROXIES: envList
      .refine((list) => list.every((e) => e === '*' || parseTrustEntry(e) !== undefined), {
        message: 'each entry must be *, an IP address or a CIDR block such as 172.16.0.0/12',
      })
      .default(['127.0.0.1', '::1', '::ffff:127.0.0.1']),

    WM_AUTOSPAWN: envBool.default(true),
    WM_AUTOSPAWN_INTERVAL_MS: envInt(1000).default(2 * 60 * 60_000),
    WM_AUTOSPAWN_INACTIVITY_MS: envInt(1000).default(10 * 60_000),
    WM_AUTOSPAWN_REGIONS: regions.default(['ams', 'ord', 'syd', 'nrt', 'dfw']),
    /** Warm pools of stopped machines per region (`ams:2,syd:1`, ADR 0022); empty: none. */
    WM_POOL: poolSetting.default([]),
    /** At most this many stopped pooled machines across all regions (the first regions named get theirs first). */
    WM_POOL_MAX: envInt(0, 1000).default(10),
    /** Regions with a launch in the last hour keep one pooled machine too (within WM_POOL_MAX). */
    WM_POOL_FOLLOW_DEMAND: envBool.default(false),
    WM_RECONCILE_INTERVAL_MS: envInt(1000).default(60_000),
    /** The reconciler never calls the API more often than this. */
    WM_RECONCILE_MIN_GAP_MS: envInt(0).default(5_000),

    /** Finished launches and VMs stay in the live store this long, then are archived (410 Gone). */
    WM_RETENTION: envDuration(1000, 365 * 86_400_000).default(24 * 3_600_000),
    /** At most this many finished actors (a launch and its VM are two) stay live; 0: no cap. */
    WM_RETENTION_MAX_FINISHED: envInt(0, 100_000_000).default(50_000),
    /** How often the retention pass (file store compaction) runs. */
    WM_COMPACT_INTERVAL: envDuration(1000, 7 * 86_400_000).default(10 * 60_000),
    /** Archive segments (one per compaction that archived anything) kept on disk; 0: all. */
    WM_ARCHIVE_SEGMENTS: envInt(0, 1_000_000).default(1008),
    /** How often the boot snapshot of open actors is written (also at a clean stop); 0: never (ADR 0015). */
    WM_SNAPSHOT_INTERVAL: envDuration(0, 7 * 86_400_000).default(5 * 60_000),
  })
  .superRefine((env, ctx) => {
    if (env.WM_LOCAL) return;
    for (const key of ['FLY_API_TOKEN', 'WM_CALLBACK_SECRET', 'DEBUG_TOKEN'] as const) {
      if (!env[key])
        ctx.addIssue({ code: 'custom', path: [key], message: 'required (set it as a Fly secret)' });
    }
    if (!env.WM_VM_IMAGE && !env.FLY_IMAGE_REF) {
      ctx.addIssue({
        code: 'custom',
        path: ['WM_VM_IMAGE'],
        message: 'required when FLY_IMAGE_REF is not set',
      });
    }
  });

export type WhereEnv = z.infer<typeof whereEnv>;

export interface WhereConfig {
  local: boolean;
  logLevel: string;
  logPretty: boolean | undefined;
  instance: string;
  region: string;
  appName: string;
  public: { host: string; port: number };
  private: { host: string; port: number };
  fly: { baseUrl: string; token: string; vmApp: string };
  vm: { image: string; cmd: string[]; publicUrl: string; idleMs: number };
  publicUrl: string;
  callback: { baseUrl: string; fallbackUrl: string; secret: string };
  debugToken: string;
  nats:
    | {
        url: string;
        stream: string;
        replicas: number;
        auth?: { user: string; pass: string } | { token: string };
        /** The archive stream's bounds (ADR 0014); maxBytes -1: none. */
        archive: { maxAgeMs: number; maxBytes: number };
      }
    | undefined;
  dataDir: string;
  maxMachines: number;
  readyTimeoutMs: number;
  ttl: { buttonMs: number; autoMs: number };
  limits: {
    launchesPerMinute: number;
    requestsPerMinute: number;
    cooldownMs: number;
    trustedProxies: string[];
    maxStreams: number;
  };
  autospawn: { enabled: boolean; intervalMs: number; inactivityMs: number; regions: string[] };
  reconcile: { intervalMs: number; minGapMs: number };
  /** Warm pools (ADR 0022): regions with their targets, already bounded by `max` overall. */
  pool: {
    regions: { region: string; target: number }[];
    max: number;
    /** Regions with a launch in the last hour keep one machine (within `max`). */
    followDemand: boolean;
  };
  /** Retention of finished actors (ADR 0013). */
  retention: {
    maxAgeMs: number;
    /** undefined: no cap on the count. */
    maxFinished: number | undefined;
    compactIntervalMs: number;
    /** undefined: keep every archive segment. */
    archiveSegments: number | undefined;
  };
  /** Boot snapshots (ADR 0015): written this often and at a clean stop; 0: none. */
  snapshotIntervalMs: number;
}

/** Derive the full configuration from a parsed environment (pure but for generated local secrets). */
export function toConfig(env: WhereEnv): WhereConfig {
  const instance =
    env.WM_INSTANCE_ID ??
    env.FLY_MACHINE_ID ??
    `${hostname()
      .toLowerCase()
      .replace(/[^a-z0-9-]/g, '-')
      .slice(0, 40)}-${process.pid}`;
  const privateHost = env.PRIVATE_HOST ?? env.FLY_PRIVATE_IP ?? (env.WM_LOCAL ? '127.0.0.1' : '::');
  const callbackHost = env.FLY_PRIVATE_IP
    ? `[${env.FLY_PRIVATE_IP}]`
    : privateHost.includes(':')
      ? `[${privateHost}]`
      : privateHost;
  const callbackBase = env.WM_CALLBACK_BASE_URL ?? `http://${callbackHost}:${env.PRIVATE_PORT}`;
  const local = env.WM_LOCAL;
  return {
    local,
    logLevel: env.LOG_LEVEL,
    logPretty: env.LOG_PRETTY,
    instance,
    region: env.FLY_REGION ?? 'ams',
    appName: env.FLY_APP_NAME,
    public: { host: env.HOST, port: env.PORT },
    private: { host: privateHost, port: env.PRIVATE_PORT },
    fly: { baseUrl: env.FLY_API_BASE_URL, token: env.FLY_API_TOKEN ?? '', vmApp: env.WM_VM_APP },
    vm: {
      image: env.WM_VM_IMAGE ?? env.FLY_IMAGE_REF ?? 'wheremachines:local',
      cmd: env.WM_VM_CMD.split(/\s+/).filter(Boolean),
      publicUrl: env.WM_VM_PUBLIC_URL.replace(/\/$/, ''),
      idleMs: env.WM_VM_IDLE_MS,
    },
    publicUrl: env.WM_PUBLIC_URL.replace(/\/$/, ''),
    callback: {
      baseUrl: callbackBase.replace(/\/$/, ''),
      fallbackUrl: (
        env.WM_CALLBACK_FALLBACK_URL ??
        (local ? callbackBase : `http://${env.FLY_APP_NAME}.internal:${env.PRIVATE_PORT}`)
      ).replace(/\/$/, ''),
      secret: env.WM_CALLBACK_SECRET ?? randomBytes(32).toString('hex'),
    },
    debugToken: env.DEBUG_TOKEN ?? randomBytes(18).toString('base64url'),
    nats: env.NATS_URL
      ? {
          url: env.NATS_URL,
          stream: env.WM_NATS_STREAM,
          replicas: env.WM_NATS_REPLICAS,
          archive: {
            maxAgeMs: env.WM_NATS_ARCHIVE_MAX_AGE,
            maxBytes: env.WM_NATS_ARCHIVE_MAX_BYTES || -1,
          },
          ...(env.NATS_TOKEN
            ? { auth: { token: env.NATS_TOKEN } }
            : env.NATS_USER
              ? { auth: { user: env.NATS_USER, pass: env.NATS_PASSWORD ?? '' } }
              : {}),
        }
      : undefined,
    dataDir: env.WM_DATA_DIR,
    maxMachines: env.WM_MAX_MACHINES,
    readyTimeoutMs: env.WM_READY_TIMEOUT_MS,
    ttl: { buttonMs: env.WM_TTL_BUTTON_MS, autoMs: env.WM_TTL_AUTO_MS },
    limits: {
      launchesPerMinute: env.WM_LAUNCHES_PER_MINUTE,
      requestsPerMinute: env.WM_REQUESTS_PER_MINUTE,
      cooldownMs: env.WM_COOLDOWN_MS,
      trustedProxies: env.WM_TRUSTED_PROXIES,
      maxStreams: env.WM_MAX_STREAMS,
    },
    autospawn: {
      enabled: env.WM_AUTOSPAWN,
      intervalMs: env.WM_AUTOSPAWN_INTERVAL_MS,
      inactivityMs: env.WM_AUTOSPAWN_INACTIVITY_MS,
      regions: env.WM_AUTOSPAWN_REGIONS,
    },
    reconcile: { intervalMs: env.WM_RECONCILE_INTERVAL_MS, minGapMs: env.WM_RECONCILE_MIN_GAP_MS },
    pool: {
      regions: boundedPools(env.WM_POOL, env.WM_POOL_MAX),
      max: env.WM_POOL_MAX,
      followDemand: env.WM_POOL_FOLLOW_DEMAND,
    },
    retention: {
      maxAgeMs: env.WM_RETENTION,
      maxFinished: env.WM_RETENTION_MAX_FINISHED || undefined,
      compactIntervalMs: env.WM_COMPACT_INTERVAL,
      archiveSegments: env.WM_ARCHIVE_SEGMENTS || undefined,
    },
    snapshotIntervalMs: env.WM_SNAPSHOT_INTERVAL,
  };
}

/** The pools' targets within the overall bound, the first regions named served first. */
export function boundedPools(
  pools: readonly { region: string; target: number }[],
  max: number,
): { region: string; target: number }[] {
  let left = max;
  return pools.map(({ region, target }) => {
    const t = Math.min(target, left);
    left -= t;
    return { region, target: t };
  });
}
