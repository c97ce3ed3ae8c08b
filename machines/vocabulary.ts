/**
 * The project's vocabulary, defined once: stream kinds and names, id patterns, the statuses and
 * reasons a visitor sees, and every error code with its HTTP status. Charts, runtime, routes, wire
 * schemas and the browser bundle all import it, so it is plain data: no zod, no xstate, no IO.
 */

// -- streams ---------------------------------------------------------------------------------

/** Every chart's stream prefix: a stream is `<kind>.<id>`. */
export const STREAM_KINDS = ['launch', 'vm', 'autospawner', 'pool'] as const;
export type StreamKind = (typeof STREAM_KINDS)[number];

/** The autospawner is a singleton: one stream for the whole cluster. */
export const AUTOSPAWNER_STREAM = 'autospawner.main';

export const streamName = (kind: StreamKind, id: string) => `${kind}.${id}`;
export const launchStream = (launchId: string) => streamName('launch', launchId);
export const vmStream = (machineId: string) => streamName('vm', machineId);
/** A region's warm pool of stopped machines: one actor per region (`pool.ams`). */
export const poolStream = (region: string) => streamName('pool', region);

/** The machine-name prefix of pooled machines (`wm-pool-<region>-<id>`). */
export const POOL_NAME_PREFIX = 'wm-pool-';

/** The kind of a stream name, or `undefined` for a name no chart owns. */
export function kindOf(stream: string): StreamKind | undefined {
  const k = stream.slice(0, stream.indexOf('.'));
  return (STREAM_KINDS as readonly string[]).includes(k) ? (k as StreamKind) : undefined;
}

/** The id part of a stream name (`launch.01H…` → `01H…`). */
export const idOf = (stream: string) => stream.slice(stream.indexOf('.') + 1);

// -- ids -------------------------------------------------------------------------------------

/** A ULID in Crockford's base 32: launch ids and event ids. */
export const ULID_PATTERN = /^[0-9A-HJKMNP-TV-Z]{26}$/;
/** A Fly machine id. */
export const MACHINE_ID_PATTERN = /^[a-z0-9]{8,32}$/;
/** A Fly region code. */
/** A W3C traceparent, version 00: `00-<trace id>-<span id>-<flags>` (docs/adr/0021). */
export const TRACEPARENT_PATTERN = /^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/;
export const REGION_PATTERN = /^[a-z]{3}$/;
/** The name part of a stream: safe in a NATS subject and a file name. */
export const STREAM_NAME_PATTERN = new RegExp(
  `^(${STREAM_KINDS.join('|')})\\.[A-Za-z0-9_-]{1,64}$`,
);

export const isUlid = (v: unknown): v is string => typeof v === 'string' && ULID_PATTERN.test(v);

// -- what visitors see -----------------------------------------------------------------------

/** Who asked for a launch: the visitor's button, the dev dashboard, or the autospawner. */
export const LAUNCH_SOURCES = ['button', 'dash', 'auto'] as const;
export type LaunchSource = (typeof LAUNCH_SOURCES)[number];
/** A machine on the map may also be one nobody here launched. */
export const MACHINE_SOURCES = [...LAUNCH_SOURCES, 'foreign'] as const;
export type MachineSource = (typeof MACHINE_SOURCES)[number];

/** A launch's public status, in the order a launch goes through them. */
export const LAUNCH_STATUSES = [
  'requested',
  'created',
  'started',
  'ready',
  'failed',
  'done',
] as const;
export type LaunchStatus = (typeof LAUNCH_STATUSES)[number];

/** A live machine's status on the map. */
export const MACHINE_STATUSES = ['created', 'started', 'listening', 'stopping'] as const;
export type MachineStatus = (typeof MACHINE_STATUSES)[number];

/** Why a launch failed. */
export const FAILURE_REASONS = [
  'capacity',
  'rateLimited',
  'flyError',
  'readyTimeout',
  'machineLost',
  /** The region and the nearest ones tried after it had no capacity. */
  'noCapacity',
] as const;
export type FailureReason = (typeof FAILURE_REASONS)[number];

// -- errors ----------------------------------------------------------------------------------

/**
 * Every error code an HTTP answer can carry, with its status. A code, once published, never
 * changes meaning; `AppError` takes its status from here so the two cannot disagree.
 */
export const ERROR_CODES = {
  // any route
  BAD_REQUEST: 400,
  BAD_JSON: 400,
  CROSS_SITE: 403,
  NOT_FOUND: 404,
  INTERNAL: 500,
  NOT_READY: 503,
  // launches
  BAD_REGION: 400,
  BAD_LAUNCH_ID: 400,
  LAUNCH_NOT_FOUND: 404,
  WRONG_INSTANCE: 409,
  LAUNCH_EXISTS: 409,
  LAUNCH_GONE: 410,
  RATE_LIMITED: 429,
  COOLDOWN: 429,
  LAUNCH_LOST: 500,
  CAPACITY: 503,
  TOO_MANY_STREAMS: 503,
  // operators
  UNAUTHORIZED: 401,
  BAD_ACTOR_ID: 400,
  ACTOR_NOT_FOUND: 404,
  ACTOR_GONE: 410,
  // the VM's calls home
  BAD_CALLBACK: 400,
  SIGNATURE_MISSING: 401,
  SIGNATURE_MALFORMED: 401,
  SIGNATURE_INVALID: 401,
  SIGNATURE_EXPIRED: 401,
  MACHINE_MISMATCH: 409,
  CALLBACK_REPLAYED: 409,
  // a pooled VM asking for its claim
  BAD_POOL_CLAIM: 400,
  POOL_UNCLAIMED: 404,
  // the VM's own page
  BAD_INSTANCE: 400,
  BAD_VIEWER_ID: 400,
  VIEWER_UNKNOWN: 404,
  MACHINE_STOPPING: 410,
  TOO_MANY_VIEWERS: 503,
} as const satisfies Record<string, number>;
export type ErrorCode = keyof typeof ERROR_CODES;
