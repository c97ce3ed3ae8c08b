/**
 * NATS plumbing shared by the NATS adapters: one connection that reconnects forever (jittered) and
 * logs its status, and ensureStream() that creates or updates the JetStream event stream and the
 * archive stream retention moves finished actors to (ADR 0014).
 */
import { connect, type NatsConnection, type Status } from '@nats-io/transport-node';
import {
  DiscardPolicy,
  JetStreamApiError,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
  type StreamConfig,
  type StreamInfo,
} from '@nats-io/jetstream';
import type { Logger } from '../../shared/log.js';
import { errorMessage, StoreUnavailableError } from '../../shared/errors.js';
import { isTransientNatsError } from './retry.js';

export type { NatsConnection };

export interface NatsConnectOptions {
  /** One URL or several (a cluster); e.g. `nats://127.0.0.1:4222`. */
  servers: string | readonly string[];
  /** Connection name shown by the server (`nats server report connections`). */
  name: string;
  logger: Logger;
  /** Wait between reconnect attempts. Default 1000 ms. */
  reconnectTimeWaitMs?: number;
  /** Random extra wait per attempt, so many clients do not reconnect in lockstep. Default 500 ms. */
  reconnectJitterMs?: number;
  /** Keep retrying the first connect too instead of failing at once. Default false (fail fast at boot). */
  waitOnFirstConnect?: boolean;
  /** Connect timeout. Default 5000 ms. */
  timeoutMs?: number;
  /** Credentials, when the server asks for them (user + password, or a token). */
  auth?: { user: string; pass: string } | { token: string };
}

/** Connect with reconnect forever and status logging. Throws StoreUnavailableError if the first connect fails. */
export async function connectNats(opts: NatsConnectOptions): Promise<NatsConnection> {
  const log = opts.logger.child({ nats: opts.name });
  let nc: NatsConnection;
  try {
    nc = await connect({
      servers: typeof opts.servers === 'string' ? opts.servers : [...opts.servers],
      name: opts.name,
      maxReconnectAttempts: -1,
      reconnectTimeWait: opts.reconnectTimeWaitMs ?? 1000,
      reconnectJitter: opts.reconnectJitterMs ?? 500,
      waitOnFirstConnect: opts.waitOnFirstConnect ?? false,
      timeout: opts.timeoutMs ?? 5000,
      // Notice a dead peer within ~30 s even when no socket error arrives (a partition).
      pingInterval: 10_000,
      maxPingOut: 3,
      ...(opts.auth ?? {}),
    });
  } catch (err) {
    throw new StoreUnavailableError(
      `cannot connect to NATS at ${String(opts.servers)}: ${errorMessage(err)}`,
      { cause: err },
    );
  }
  log.info({ server: nc.getServer() }, 'nats connected');
  void logStatus(nc, log);
  return nc;
}

async function logStatus(nc: NatsConnection, log: Logger): Promise<void> {
  try {
    for await (const s of nc.status()) logOne(s, log);
  } catch (err) {
    log.warn({ err: errorMessage(err) }, 'nats status feed ended');
  }
}

/** The line each connection status is logged with; ping, cluster updates and forced reconnects get none. */
const STATUS_LINES: Partial<Record<Status['type'], ['debug' | 'info' | 'warn' | 'error', string]>> =
  {
    disconnect: ['warn', 'nats disconnected'],
    reconnecting: ['debug', 'nats reconnecting'],
    reconnect: ['info', 'nats reconnected'],
    error: ['error', 'nats error'],
    staleConnection: ['warn', 'nats connection stale'],
    slowConsumer: ['warn', 'nats slow consumer'],
    ldm: ['info', 'nats server entering lame duck mode'],
    close: ['info', 'nats connection closed'],
  };

function logOne(s: Status, log: Logger): void {
  const line = STATUS_LINES[s.type];
  if (!line) return;
  const fields =
    s.type === 'error'
      ? { err: errorMessage(s.error) }
      : s.type === 'slowConsumer'
        ? { pending: s.pending, subject: s.sub.getSubject() }
        : 'server' in s
          ? { server: s.server }
          : {};
  log[line[0]](fields, line[1]);
}

/**
 * The stream finished actors' facts are copied to before retention purges them from the live
 * stream (ADR 0014). Bounded by age and bytes: it is history for people, not state for the app.
 */
export interface ArchiveStreamConfig {
  /** Stream name. Default `WM_ARCHIVE` (for another live stream: its name with `_ARCHIVE`). */
  readonly name: string;
  /** Subject prefix, disjoint from the live one. Default `wm.archive`. */
  readonly subjectPrefix: string;
  /** Archived facts are dropped this long after they were archived. Default 30 days; 0 = never. */
  readonly maxAgeMs: number;
  /** Oldest archived facts are dropped beyond this size. Default -1 = unlimited. */
  readonly maxBytes: number;
}

/** Settings of the JetStream stream that holds every actor's events. */
export interface EventStreamConfig {
  /** Stream name. Default `WM_EVENTS`. */
  readonly name: string;
  /** Subject prefix; actor streams live at `<prefix>.<chart>.<id>`. Default `wm.events`. */
  readonly subjectPrefix: string;
  /** Replicas (1 on one server, 3 in a cluster). Default 1. Applies to the archive too. */
  readonly replicas: number;
  /** Drop events older than this; 0 keeps them forever. Default 0. Must outlive every actor stream. */
  readonly maxAgeMs: number;
  /** Publish dedupe window for `Nats-Msg-Id`. Default 2 minutes (capped at maxAgeMs). */
  readonly duplicateWindowMs: number;
  /** Where retention archives finished actors. */
  readonly archive: ArchiveStreamConfig;
}

export const ARCHIVE_MAX_AGE_MS = 30 * 86_400_000;

export const DEFAULT_EVENT_STREAM: Omit<EventStreamConfig, 'archive'> = {
  name: 'WM_EVENTS',
  subjectPrefix: 'wm.events',
  replicas: 1,
  maxAgeMs: 0,
  duplicateWindowMs: 120_000,
};

/** The archive's default name and prefix for a live stream: `WM_EVENTS`/`wm.events` → `WM_ARCHIVE`/`wm.archive`. */
function defaultArchive(name: string, prefix: string): ArchiveStreamConfig {
  const tokens = prefix.split('.');
  const last = tokens.pop()!;
  return {
    name: name.endsWith('_EVENTS') ? `${name.slice(0, -7)}_ARCHIVE` : `${name}_ARCHIVE`,
    // Replacing or suffixing the last token keeps the archive's subjects out of `<prefix>.>`.
    subjectPrefix: [...tokens, last === 'events' ? 'archive' : `${last}_archive`].join('.'),
    maxAgeMs: ARCHIVE_MAX_AGE_MS,
    maxBytes: -1,
  };
}

const STREAM_NAME = /^[A-Za-z0-9_-]{1,64}$/;
const SUBJECT_TOKEN = /^[A-Za-z0-9_-]+$/;

/** What a caller may set of an EventStreamConfig; eventStreamConfig() fills the rest. */
export type EventStreamOptions = Partial<Omit<EventStreamConfig, 'archive'>> & {
  archive?: Partial<ArchiveStreamConfig>;
};

/** Fill defaults and check a stream config; throws on a name or prefix NATS would reject. */
export function eventStreamConfig(opts: EventStreamOptions = {}): EventStreamConfig {
  const { archive: archiveOpts, ...rest } = opts;
  const base = { ...DEFAULT_EVENT_STREAM, ...rest };
  const archive = { ...defaultArchive(base.name, base.subjectPrefix), ...archiveOpts };
  const cfg = { ...base, archive };
  for (const [name, prefix] of [
    [cfg.name, cfg.subjectPrefix],
    [archive.name, archive.subjectPrefix],
  ] as const) {
    if (!STREAM_NAME.test(name)) throw new Error(`bad JetStream stream name "${name}"`);
    if (!prefix.split('.').every((t) => SUBJECT_TOKEN.test(t))) {
      throw new Error(`bad subject prefix "${prefix}": dot-separated tokens of [A-Za-z0-9_-]`);
    }
  }
  if (archive.name === cfg.name) throw new Error('the archive needs a stream of its own');
  if (
    `${archive.subjectPrefix}.`.startsWith(`${cfg.subjectPrefix}.`) ||
    `${cfg.subjectPrefix}.`.startsWith(`${archive.subjectPrefix}.`)
  )
    throw new Error(`archive subjects ${archive.subjectPrefix}.> overlap ${cfg.subjectPrefix}.>`);
  if (!Number.isInteger(cfg.replicas) || cfg.replicas < 1 || cfg.replicas > 5)
    throw new Error(`replicas must be 1..5`);
  if (!(cfg.maxAgeMs >= 0) || !(cfg.duplicateWindowMs > 0))
    throw new Error('maxAgeMs >= 0 and duplicateWindowMs > 0');
  if (!(archive.maxAgeMs >= 0) || !(archive.maxBytes === -1 || archive.maxBytes > 0))
    throw new Error('archive maxAgeMs >= 0 and maxBytes -1 (unlimited) or > 0');
  const duplicateWindowMs =
    cfg.maxAgeMs > 0 ? Math.min(cfg.duplicateWindowMs, cfg.maxAgeMs) : cfg.duplicateWindowMs;
  return { ...cfg, duplicateWindowMs };
}

const msToNanos = (ms: number): number => ms * 1_000_000;

type DesiredStream = Partial<StreamConfig> & { name: string };

function desiredStream(cfg: EventStreamConfig): DesiredStream {
  return {
    name: cfg.name,
    description: 'WhereMachines: one subject per actor stream, the source of truth',
    subjects: [`${cfg.subjectPrefix}.>`],
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    discard: DiscardPolicy.Old,
    num_replicas: cfg.replicas,
    max_age: msToNanos(cfg.maxAgeMs),
    duplicate_window: msToNanos(cfg.duplicateWindowMs),
    max_msgs: -1,
    max_bytes: -1,
    max_msgs_per_subject: -1,
  };
}

function desiredArchive(cfg: EventStreamConfig): DesiredStream {
  const a = cfg.archive;
  const window = DEFAULT_EVENT_STREAM.duplicateWindowMs;
  return {
    name: a.name,
    description: `WhereMachines: finished actors retention moved out of ${cfg.name} (ADR 0014)`,
    subjects: [`${a.subjectPrefix}.>`],
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    // Full: the oldest archived facts go first. Nothing the app runs on lives here.
    discard: DiscardPolicy.Old,
    num_replicas: cfg.replicas,
    max_age: msToNanos(a.maxAgeMs),
    duplicate_window: msToNanos(a.maxAgeMs > 0 ? Math.min(window, a.maxAgeMs) : window),
    max_msgs: -1,
    max_bytes: a.maxBytes,
    max_msgs_per_subject: -1,
  };
}

/**
 * Create the event stream and its archive, or update them to the wanted config: idempotent, safe to
 * call from every instance at boot. Storage cannot change on a live stream: a mismatch throws rather than guessing.
 * Retries while a cluster is still electing (bounded by `timeoutMs`, default 30 s).
 */
export async function ensureStream(
  nc: NatsConnection,
  cfg: EventStreamConfig,
  opts: { logger?: Logger; timeoutMs?: number } = {},
): Promise<StreamInfo> {
  const deadline = Date.now() + (opts.timeoutMs ?? 30_000);
  for (let attempt = 0; ; attempt++) {
    try {
      const info = await ensureStreamOnce(nc, desiredStream(cfg), opts.logger);
      await ensureStreamOnce(nc, desiredArchive(cfg), opts.logger);
      return info;
    } catch (err) {
      if (!isTransientNatsError(err)) throw err;
      if (Date.now() > deadline) {
        throw new StoreUnavailableError(
          `JetStream not ready for stream ${cfg.name}: ${errorMessage(err)}`,
          { cause: err },
        );
      }
      await new Promise((r) => setTimeout(r, Math.min(1000, 100 * 2 ** attempt)));
    }
  }
}

async function ensureStreamOnce(
  nc: NatsConnection,
  want: DesiredStream,
  log: Logger | undefined,
): Promise<StreamInfo> {
  const jsm = await jetstreamManager(nc);
  const current = await jsm.streams.info(want.name).catch((err: unknown) => {
    if (err instanceof JetStreamApiError && err.code === 10059) return undefined; // stream not found
    throw err;
  });
  if (!current) {
    try {
      const made = await jsm.streams.add(want);
      log?.info(
        { stream: want.name, subjects: want.subjects, replicas: want.num_replicas },
        'created JetStream stream',
      );
      return made;
    } catch (err) {
      // Another instance created it between our info and add (10058: name in use): update below.
      if (!(err instanceof JetStreamApiError && err.code === 10058)) throw err;
    }
  }
  const info = current ?? (await jsm.streams.info(want.name));
  const have = info.config;
  if (have.storage !== StorageType.File) {
    throw new Error(
      `stream ${want.name} uses ${have.storage} storage; the event store needs file storage`,
    );
  }
  const same =
    JSON.stringify(have.subjects) === JSON.stringify(want.subjects) &&
    have.num_replicas === want.num_replicas &&
    have.max_age === want.max_age &&
    have.max_bytes === want.max_bytes &&
    have.duplicate_window === want.duplicate_window;
  if (same) return info;
  const { storage: _s, retention: _r, name: _n, ...changes } = want;
  const updated = await jsm.streams.update(want.name, changes);
  log?.info(
    {
      stream: want.name,
      replicas: want.num_replicas,
      maxAge: want.max_age,
      maxBytes: want.max_bytes,
    },
    'updated JetStream stream config',
  );
  return updated;
}
