/**
 * FlyMachinesHttp: the FlyMachines port over HTTP, against api.machines.dev or the local emulator.
 * Every response is zod-validated, every failure is a FlyApiError, only idempotent calls retry, and
 * per-action token buckets keep us inside Fly's published rate limits.
 */
import type { z } from 'zod';
import type { Clock } from '../../ports/clock.js';
import {
  FlyApiError,
  CREATE_WITHDRAWN,
  type CreateMachineInput,
  type CreateOptions,
  type FlyMachine,
  type FlyMachines,
  type WaitState,
} from '../../ports/flyMachines.js';
import type { Logger } from '../../shared/log.js';
import { backoffMs, DEFAULT_BACKOFF, parseRetryAfterMs, type BackoffPolicy } from './backoff.js';
import {
  errorBodySchema,
  machineListSchema,
  machineSchema,
  okSchema,
  secondsToGoDuration,
  type CreateMachineRequest,
  type MachineJson,
  type StopRequest,
} from './schemas.js';
import {
  ActionBuckets,
  FLY_DEFAULT_LIMIT,
  FLY_GET_LIMIT,
  type BucketLimit,
} from './tokenBucket.js';

export type FlyAction = 'create' | 'get' | 'list' | 'wait' | 'stop' | 'destroy';
export const FLY_ACTIONS: readonly FlyAction[] = [
  'create',
  'get',
  'list',
  'wait',
  'stop',
  'destroy',
];

/**
 * Told about every request the client sends (metrics, ADR 0016); each hook optional, none may throw.
 * `request`: one HTTP attempt with its status (0: no response) and duration; `retry`: an attempt is
 * about to be sent again; `tokenWait`: how long a call waited for a client-side rate-limit token.
 */
export interface FlyCallObserver {
  request?(action: FlyAction, status: number, seconds: number): void;
  retry?(action: FlyAction): void;
  tokenWait?(action: FlyAction, seconds: number): void;
}

export interface FlyMachinesHttpOptions {
  /** API root including the version, e.g. `https://api.machines.dev/v1` or `http://127.0.0.1:4280/v1`. */
  readonly baseUrl: string;
  readonly token: string;
  /** The Fly app machines are created in (`WM_VM_APP`). */
  readonly app: string;
  readonly fetch?: typeof globalThis.fetch;
  readonly clock?: Clock;
  /** Waits between retries and for rate-limit tokens; inject to run retries on a manual clock. */
  readonly sleep?: (ms: number) => Promise<void>;
  /** Jitter source in [0, 1). */
  readonly random?: () => number;
  /** Overall budget per call (token wait + attempts + backoff). A wait call adds its own timeout. */
  readonly timeoutMs?: number;
  /**
   * Budget of one attempt of an idempotent call, so a hung request leaves time to retry. A create
   * has one attempt, which may use the whole call budget.
   */
  readonly attemptTimeoutMs?: number;
  /** Attempts per idempotent call, the first included. */
  readonly maxAttempts?: number;
  readonly backoff?: BackoffPolicy;
  /** Client-side limits per action; `false` turns pacing off (tests against a permissive emulator). */
  readonly rateLimits?: false | Partial<Record<FlyAction, BucketLimit>>;
  readonly logger?: Logger;
  readonly userAgent?: string;
  /** Sees every request, retry and token wait (metrics); absent: nothing is observed. */
  readonly observer?: FlyCallObserver;
}

export const DEFAULT_TIMEOUT_MS = 30_000;
export const DEFAULT_ATTEMPT_TIMEOUT_MS = 10_000;
export const DEFAULT_MAX_ATTEMPTS = 4;
/** Fly's proxy cuts requests at 60 s, so a wait never asks for more (fly-go clamps the same way). */
export const WAIT_MAX_S = 60;

const realSleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** The body we POST to create a machine: our port's input in Fly's wire shape. */
export function createRequestBody(input: CreateMachineInput): CreateMachineRequest {
  const config: CreateMachineRequest['config'] = {
    image: input.image,
    env: { ...input.env },
    metadata: { ...input.metadata },
    // One public HTTP service in front of the VM's port, as the VM is visited through Fly's proxy;
    // autostop off: the VM decides when it is done.
    services: [
      {
        protocol: 'tcp',
        internal_port: input.internalPort,
        autostop: 'off',
        autostart: false,
        min_machines_running: 0,
        ports: [
          { port: 80, handlers: ['http'], force_https: false },
          { port: 443, handlers: ['http', 'tls'] },
        ],
      },
    ],
    auto_destroy: input.autoDestroy,
    restart: {
      policy: input.restart.policy,
      ...(input.restart.maxRetries === undefined ? {} : { max_retries: input.restart.maxRetries }),
    },
    stop_config: {
      signal: toSignal(input.stop.signal),
      timeout: secondsToGoDuration(input.stop.timeoutS),
    },
  };
  if (input.guest) {
    config.guest = {
      cpu_kind: input.guest.cpuKind,
      cpus: input.guest.cpus,
      memory_mb: input.guest.memoryMb,
    };
  }
  if (input.cmd && input.cmd.length > 0) config.init = { cmd: [...input.cmd] };
  return {
    ...(input.region ? { region: input.region } : {}),
    ...(input.name ? { name: input.name } : {}),
    config,
  };
}

function toSignal(s: string): NonNullable<StopRequest['signal']> {
  // The port takes a plain string; the wire wants a known name. Unknown names go through unchanged
  // in type only, so Fly (or the emulator) answers 400 and the caller sees it.
  return s as NonNullable<StopRequest['signal']>;
}

export function toFlyMachine(m: MachineJson): FlyMachine {
  return {
    id: m.id,
    name: m.name,
    state: m.state,
    region: m.region,
    instanceId: m.instance_id,
    privateIp: m.private_ip ? m.private_ip : undefined,
    createdAt: m.created_at,
    updatedAt: m.updated_at,
    metadata: { ...(m.config?.metadata ?? m.incomplete_config?.metadata ?? {}) },
  };
}

export function clampWaitSeconds(timeoutS: number | undefined): number {
  if (timeoutS === undefined || !Number.isFinite(timeoutS)) return WAIT_MAX_S;
  return Math.min(WAIT_MAX_S, Math.max(1, Math.round(timeoutS)));
}

/** Flyctl's rule: macaroon tokens ("FlyV1 …") go as they are; anything else is a bearer token. */
export function authorizationHeader(token: string): string {
  return token.startsWith('FlyV1 ') ? token : `Bearer ${token}`;
}

interface CallSpec<T> {
  readonly action: FlyAction;
  readonly method: 'GET' | 'POST' | 'DELETE';
  readonly path: string;
  readonly query?: URLSearchParams;
  readonly body?: unknown;
  readonly schema: z.ZodType<T>;
  readonly machineId?: string;
  /** Extra budget on top of timeoutMs (a wait's own server-side timeout). */
  readonly extraMs?: number;
  /** Statuses with a meaning of their own (408 on wait, 404 on destroy): return a value instead of failing. */
  readonly onStatus?: (status: number) => { value: T } | undefined;
  /** Asked right before each send: false withdraws the call (nothing sent, nothing made). */
  readonly proceed?: () => boolean;
}

type Attempt =
  | {
      kind: 'response';
      status: number;
      text: string;
      contentType: string;
      requestId: string | undefined;
      retryAfter: string | null;
    }
  | { kind: 'noResponse'; timedOutAfterMs: number | undefined; cause: Error };

export class FlyMachinesHttp implements FlyMachines {
  private readonly baseUrl: string;
  private readonly token: string;
  private readonly app: string;
  private readonly fetchImpl: typeof globalThis.fetch;
  private readonly clock: Clock;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly random: () => number;
  private readonly timeoutMs: number;
  private readonly attemptTimeoutMs: number;
  private readonly maxAttempts: number;
  private readonly backoff: BackoffPolicy;
  private readonly buckets: ActionBuckets<FlyAction> | undefined;
  private readonly logger: Logger | undefined;
  private readonly userAgent: string;
  private readonly observer: FlyCallObserver | undefined;

  constructor(opts: FlyMachinesHttpOptions) {
    if (!opts.token) throw new Error('FlyMachinesHttp: a token is required');
    if (!opts.app) throw new Error('FlyMachinesHttp: an app name is required');
    this.baseUrl = opts.baseUrl.replace(/\/+$/, '');
    this.token = opts.token;
    this.app = opts.app;
    this.fetchImpl = opts.fetch ?? globalThis.fetch.bind(globalThis);
    this.clock = opts.clock ?? { now: () => Date.now() };
    this.sleep = opts.sleep ?? realSleep;
    this.random = opts.random ?? Math.random;
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.attemptTimeoutMs =
      opts.attemptTimeoutMs ?? Math.min(DEFAULT_ATTEMPT_TIMEOUT_MS, this.timeoutMs);
    this.maxAttempts = Math.max(1, opts.maxAttempts ?? DEFAULT_MAX_ATTEMPTS);
    this.backoff = opts.backoff ?? DEFAULT_BACKOFF;
    const limits = opts.rateLimits;
    this.buckets =
      limits === false
        ? undefined
        : new ActionBuckets<FlyAction>(
            (a) => limits?.[a] ?? (a === 'get' ? FLY_GET_LIMIT : FLY_DEFAULT_LIMIT),
            () => this.clock.now(),
          );
    this.logger = opts.logger?.child({ component: 'fly-client', app: opts.app });
    this.userAgent = opts.userAgent ?? 'wheremachines/0.1';
    this.observer = opts.observer;
  }

  private machinesPath(machineId?: string, suffix = ''): string {
    const app = encodeURIComponent(this.app);
    return machineId === undefined
      ? `/apps/${app}/machines`
      : `/apps/${app}/machines/${encodeURIComponent(machineId)}${suffix}`;
  }

  async create(input: CreateMachineInput, opts: CreateOptions = {}): Promise<FlyMachine> {
    const m = await this.call({
      action: 'create',
      method: 'POST',
      path: this.machinesPath(),
      body: createRequestBody(input),
      schema: machineSchema,
      ...(opts.proceed ? { proceed: opts.proceed } : {}),
    });
    return toFlyMachine(m);
  }

  async get(machineId: string): Promise<FlyMachine> {
    const m = await this.call({
      action: 'get',
      method: 'GET',
      path: this.machinesPath(machineId),
      schema: machineSchema,
      machineId,
    });
    return toFlyMachine(m);
  }

  async list(
    filter: { metadata?: Readonly<Record<string, string>>; includeDeleted?: boolean } = {},
  ): Promise<FlyMachine[]> {
    const query = new URLSearchParams();
    if (filter.includeDeleted) query.set('include_deleted', 'true');
    for (const [k, v] of Object.entries(filter.metadata ?? {})) query.append(`metadata.${k}`, v);
    const ms = await this.call({
      action: 'list',
      method: 'GET',
      path: this.machinesPath(),
      query,
      schema: machineListSchema,
    });
    return ms.map(toFlyMachine);
  }

  async wait(
    machineId: string,
    state: WaitState,
    opts: { timeoutS?: number; instanceId?: string } = {},
  ): Promise<boolean> {
    const timeoutS = clampWaitSeconds(opts.timeoutS);
    let instanceId = opts.instanceId;
    // The API refuses a wait for `stopped` without the version it should watch: look it up.
    if (state === 'stopped' && !instanceId) instanceId = (await this.get(machineId)).instanceId;
    const query = new URLSearchParams({ state, timeout: String(timeoutS) });
    if (instanceId) query.set('instance_id', instanceId);
    return this.call<boolean>({
      action: 'wait',
      method: 'GET',
      path: this.machinesPath(machineId, '/wait'),
      query,
      schema: okSchema.transform(() => true),
      machineId,
      extraMs: timeoutS * 1000,
      onStatus: (status) => (status === 408 ? { value: false } : undefined),
    });
  }

  async stop(machineId: string, opts: { signal?: string; timeoutS?: number } = {}): Promise<void> {
    const body: Record<string, string> = {};
    if (opts.signal) body.signal = opts.signal;
    if (opts.timeoutS !== undefined) body.timeout = secondsToGoDuration(opts.timeoutS);
    await this.call({
      action: 'stop',
      method: 'POST',
      path: this.machinesPath(machineId, '/stop'),
      body,
      schema: okSchema,
      machineId,
    });
  }

  async destroy(machineId: string, opts: { force?: boolean } = {}): Promise<void> {
    const query = new URLSearchParams();
    if (opts.force ?? true) query.set('force', 'true');
    await this.call({
      action: 'destroy',
      method: 'DELETE',
      path: this.machinesPath(machineId),
      query,
      schema: okSchema,
      machineId,
      // Already gone is what we wanted.
      onStatus: (status) => (status === 404 ? { value: {} } : undefined),
    });
  }

  // -------------------------------------------------------------------------------------------

  private async call<T>(spec: CallSpec<T>): Promise<T> {
    const idempotent = spec.action !== 'create';
    const started = this.clock.now();
    const deadline = started + this.timeoutMs + (spec.extraMs ?? 0);
    const query =
      spec.query && [...spec.query.keys()].length > 0 ? `?${spec.query.toString()}` : '';
    const url = `${this.baseUrl}${spec.path}${query}`;
    const log = this.logger?.child({ action: spec.action, machineId: spec.machineId });

    for (let attempt = 1; ; attempt++) {
      await this.takeToken(spec.action, deadline);
      if (spec.proceed && !spec.proceed())
        throw new FlyApiError(spec.action, 0, CREATE_WITHDRAWN, false, undefined);
      const remaining = deadline - this.clock.now();
      if (remaining <= 0)
        throw this.noResponseError(spec.action, this.clock.now() - started, undefined, idempotent);
      const attemptMs = idempotent
        ? Math.min(remaining, this.attemptTimeoutMs + (spec.extraMs ?? 0))
        : remaining;

      const sentAt = performance.now();
      const a = await this.send(spec, url, attemptMs);
      this.observer?.request?.(
        spec.action,
        a.kind === 'response' ? a.status : 0,
        (performance.now() - sentAt) / 1000,
      );
      const lastAttempt = !idempotent || attempt >= this.maxAttempts;

      if (a.kind === 'noResponse') {
        log?.warn(
          { attempt, timedOut: a.timedOutAfterMs !== undefined, ms: this.clock.now() - started },
          'fly call got no response',
        );
        if (!lastAttempt) {
          const delay = backoffMs(this.backoff, attempt, this.random());
          if (this.clock.now() + delay < deadline) {
            await this.sleep(delay);
            this.observer?.retry?.(spec.action);
            continue;
          }
        }
        throw this.noResponseError(spec.action, a.timedOutAfterMs, a.cause, idempotent);
      }

      const special = spec.onStatus?.(a.status);
      if (special) {
        log?.debug({ attempt, status: a.status, requestId: a.requestId }, 'fly call');
        return special.value;
      }

      if (a.status >= 200 && a.status < 300) {
        log?.debug(
          { attempt, status: a.status, requestId: a.requestId, ms: this.clock.now() - started },
          'fly call',
        );
        return this.parse(spec, a.status, a.text, a.requestId);
      }

      const retryable = a.status === 429 || a.status >= 500;
      const flyMessage = this.scrub(describeErrorBody(a.text, a.contentType));
      if (retryable && !lastAttempt) {
        const asked = parseRetryAfterMs(a.retryAfter, this.clock.now());
        const delay = Math.max(asked ?? 0, backoffMs(this.backoff, attempt, this.random()));
        if (this.clock.now() + delay < deadline) {
          log?.warn(
            { attempt, status: a.status, requestId: a.requestId, delayMs: Math.round(delay) },
            'fly call will retry',
          );
          await this.sleep(delay);
          this.observer?.retry?.(spec.action);
          continue;
        }
      }
      const unknownOutcome = spec.action === 'create' && a.status >= 500;
      throw new FlyApiError(
        spec.action,
        a.status,
        unknownOutcome
          ? `${flyMessage} (outcome unknown: look for the machine by its metadata before creating again)`
          : flyMessage,
        retryable,
        a.requestId,
      );
    }
  }

  private async takeToken(action: FlyAction, deadline: number): Promise<void> {
    if (!this.buckets) return;
    const wait = this.buckets.bucket(action).reserve(Math.max(0, deadline - this.clock.now()));
    if (wait === undefined) {
      throw new FlyApiError(
        action,
        0,
        'not sent: the client-side rate limit has no token for this action within the call timeout',
        true,
        undefined,
      );
    }
    this.observer?.tokenWait?.(action, wait / 1000);
    if (wait > 0) await this.sleep(wait);
  }

  private async send<T>(spec: CallSpec<T>, url: string, timeoutMs: number): Promise<Attempt> {
    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, timeoutMs);
    try {
      const headers: Record<string, string> = {
        authorization: authorizationHeader(this.token),
        accept: 'application/json',
        'user-agent': this.userAgent,
      };
      let body: string | undefined;
      if (spec.body !== undefined) {
        headers['content-type'] = 'application/json';
        body = JSON.stringify(spec.body);
      }
      const res = await this.fetchImpl(url, {
        method: spec.method,
        headers,
        body,
        signal: controller.signal,
      });
      const text = await res.text();
      return {
        kind: 'response',
        status: res.status,
        text,
        contentType: res.headers.get('content-type') ?? '',
        requestId: res.headers.get('fly-request-id') ?? undefined,
        retryAfter: res.headers.get('retry-after'),
      };
    } catch (err) {
      return {
        kind: 'noResponse',
        timedOutAfterMs: timedOut ? timeoutMs : undefined,
        cause: this.safeCause(err),
      };
    } finally {
      clearTimeout(timer);
    }
  }

  private parse<T>(
    spec: CallSpec<T>,
    status: number,
    text: string,
    requestId: string | undefined,
  ): T {
    let json: unknown = {};
    if (text.trim() !== '') {
      try {
        json = JSON.parse(text);
      } catch {
        throw new FlyApiError(
          spec.action,
          status,
          `malformed response: not JSON (${this.scrub(snippet(text))})`,
          false,
          requestId,
        );
      }
    }
    const parsed = spec.schema.safeParse(json);
    if (!parsed.success) {
      const where = parsed.error.issues
        .slice(0, 3)
        .map((i) => `${i.path.map(String).join('.') || '(body)'}: ${i.message}`)
        .join('; ');
      throw new FlyApiError(
        spec.action,
        status,
        `malformed response: ${this.scrub(where)}`,
        false,
        requestId,
      );
    }
    return parsed.data;
  }

  private noResponseError(
    action: FlyAction,
    timedOutAfterMs: number | undefined,
    cause: Error | undefined,
    idempotent: boolean,
  ): FlyApiError {
    const what =
      timedOutAfterMs !== undefined
        ? `timed out after ${Math.round(timedOutAfterMs)} ms`
        : `network error: ${cause?.message ?? 'unknown'}`;
    const msg = idempotent
      ? what
      : `${what} (outcome unknown: look for the machine by its metadata before creating again)`;
    return new FlyApiError(
      action,
      0,
      this.scrub(msg),
      true,
      undefined,
      cause ? { cause } : undefined,
    );
  }

  /**
   * A cause we can hand out: name, message and code of the original (and of its own cause), with
   * the token scrubbed, and nothing else from the request attached.
   */
  private safeCause(err: unknown): Error {
    const describe = (e: unknown): string => {
      if (!(e instanceof Error)) return String(e);
      const code = (e as { code?: unknown }).code;
      return `${e.name}: ${e.message}${typeof code === 'string' ? ` (${code})` : ''}`;
    };
    const inner =
      err instanceof Error && err.cause !== undefined ? ` <- ${describe(err.cause)}` : '';
    const safe = new Error(this.scrub(`${describe(err)}${inner}`));
    safe.name = 'FlyTransportError';
    return safe;
  }

  /** Remove the token (and each part of a multi-part macaroon token) from text we hand out. */
  private scrub(text: string): string {
    let out = text;
    const parts = [this.token, ...this.token.replace(/^FlyV1 /, '').split(/[,\s]+/)].filter(
      (p) => p.length >= 8,
    );
    for (const p of parts) out = out.split(p).join('[redacted]');
    return out;
  }
}

function snippet(text: string, max = 160): string {
  const flat = text
    .replace(/<[^>]*>/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
  return flat.length > max ? `${flat.slice(0, max)}…` : flat;
}

/** Fly's error text from an error response, whatever shape the body has. */
export function describeErrorBody(text: string, contentType: string): string {
  if (text.trim() === '') return '(empty body)';
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return `non-JSON error body (${contentType || 'no content type'}): ${snippet(text)}`;
  }
  const body = errorBodySchema.safeParse(json);
  if (body.success && (body.data.error || body.data.message)) {
    const { error, message } = body.data;
    return error && message && message !== error
      ? `${error}: ${message}`
      : (error ?? message ?? '');
  }
  return `unrecognised error body: ${snippet(text)}`;
}
