/**
 * The Fly client's request loop: a call takes a rate-limit token, sends attempts each under its own
 * timeout, retries idempotent calls with backoff (never before `Retry-After`), validates the answer,
 * and turns every failure into a FlyApiError with the token scrubbed out.
 */
import type { z } from 'zod';
import type { Clock } from '../../ports/clock.js';
import {
  CREATE_WITHDRAWN,
  FlyApiError,
  type CallScope,
  isRetryableStatus,
  type FlyAction,
} from '../../ports/flyMachines.js';
import type { Logger } from '../../shared/log.js';
import { TRACEPARENT } from '../../shared/trace.js';
import { backoffMs, parseRetryAfterMs, type BackoffPolicy } from './backoff.js';
import type { ActionBuckets } from './tokenBucket.js';
import { authorizationHeader, describeErrorBody, snippet } from './wire.js';

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

/** The client's options, defaults filled in (see FlyMachinesHttpOptions). */
export interface RequestSettings {
  readonly baseUrl: string;
  readonly token: string;
  readonly fetch: typeof globalThis.fetch;
  readonly clock: Clock;
  readonly sleep: (ms: number) => Promise<void>;
  readonly random: () => number;
  readonly timeoutMs: number;
  readonly attemptTimeoutMs: number;
  readonly maxAttempts: number;
  readonly backoff: BackoffPolicy;
  /** Undefined: no client-side pacing. Keyed by CallSpec.bucket, else by action. */
  readonly buckets: ActionBuckets<string> | undefined;
  readonly logger: Logger | undefined;
  readonly userAgent: string;
  readonly observer: FlyCallObserver | undefined;
}

/** One call of the API, as an endpoint method describes it. */
export interface CallSpec<T> {
  readonly action: FlyAction;
  readonly method: 'GET' | 'POST' | 'DELETE';
  readonly path: string;
  readonly query?: URLSearchParams;
  readonly body?: unknown;
  readonly schema: z.ZodType<T>;
  readonly machineId?: string;
  /** The rate-limit bucket when it is not the action's own (Fly limits some actions per machine). */
  readonly bucket?: string;
  /** Extra budget on top of timeoutMs (a wait's own server-side timeout). */
  readonly extraMs?: number;
  /** Statuses with a meaning of their own (408 on wait, 404 on destroy): return a value instead of failing. */
  readonly onStatus?: (status: number) => { value: T } | undefined;
  /** Asked right before each send: false withdraws the call (nothing sent, nothing made). */
  readonly proceed?: () => boolean;
  /** The work the call is made for: its logger and traceparent (ADR 0021). */
  readonly scope?: CallScope | undefined;
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

/**
 * Fly limits each action per machine, except creates and lists, which have no machine yet and are
 * limited per app: a wait on one machine must not queue behind waits on ten others.
 */
function bucketOf(spec: { action: FlyAction; machineId?: string }): string {
  return spec.machineId === undefined ? spec.action : `${spec.action} ${spec.machineId}`;
}

/** Actions that change a machine (logged at info with Fly's request id). */
const MUTATES: ReadonlySet<FlyAction> = new Set<FlyAction>([
  'create',
  'start',
  'stop',
  'update',
  'destroy',
  'setMetadata',
  'deleteMetadata',
]);

/** A create that failed this way may have made its machine all the same. */
const OUTCOME_UNKNOWN =
  'outcome unknown: look for the machine by its metadata before creating again';

export class FlyRequests {
  constructor(private readonly s: RequestSettings) {}

  async call<T>(spec: CallSpec<T>): Promise<T> {
    const { clock, observer } = this.s;
    const idempotent = spec.action !== 'create';
    const started = clock.now();
    const deadline = started + this.s.timeoutMs + (spec.extraMs ?? 0);
    const query =
      spec.query && [...spec.query.keys()].length > 0 ? `?${spec.query.toString()}` : '';
    const url = `${this.s.baseUrl}${spec.path}${query}`;
    // For a launch's work the lines carry its launch and trace ids.
    const scope = spec.scope;
    const base = scope?.log ?? this.s.logger;
    const log = base?.child({ action: spec.action, machineId: spec.machineId });
    const traceparent = scope?.traceparent;
    /** Wait `delay` before the next attempt if the budget allows it; false: it does not. */
    const retryAfter = async (delay: number, onRetry?: () => void): Promise<boolean> => {
      if (clock.now() + delay >= deadline) return false;
      onRetry?.();
      await this.s.sleep(delay);
      observer?.retry?.(spec.action);
      return true;
    };

    for (let attempt = 1; ; attempt++) {
      await this.takeToken(spec.action, deadline, spec.bucket ?? bucketOf(spec));
      if (spec.proceed && !spec.proceed())
        throw new FlyApiError(spec.action, 0, CREATE_WITHDRAWN, false, undefined);
      const remaining = deadline - clock.now();
      if (remaining <= 0)
        throw this.noResponseError(spec.action, clock.now() - started, undefined, idempotent);
      const attemptMs = idempotent
        ? Math.min(remaining, this.s.attemptTimeoutMs + (spec.extraMs ?? 0))
        : remaining;

      const sentAt = performance.now();
      const a = await this.send(spec, url, attemptMs, traceparent);
      observer?.request?.(
        spec.action,
        a.kind === 'response' ? a.status : 0,
        (performance.now() - sentAt) / 1000,
      );
      const lastAttempt = !idempotent || attempt >= this.s.maxAttempts;

      if (a.kind === 'noResponse') {
        log?.warn(
          { attempt, timedOut: a.timedOutAfterMs !== undefined, ms: clock.now() - started },
          'fly call got no response',
        );
        if (!lastAttempt && (await retryAfter(this.backoff(attempt)))) continue;
        throw this.noResponseError(spec.action, a.timedOutAfterMs, a.cause, idempotent);
      }

      const special = spec.onStatus?.(a.status);
      if (special) {
        log?.debug({ attempt, status: a.status, flyRequestId: a.requestId }, 'fly call');
        return special.value;
      }

      if (a.status >= 200 && a.status < 300) {
        // Calls that change a machine are worth a line each (with Fly's request id, for support);
        // reads and waits repeat too often for more than debug.
        const level = MUTATES.has(spec.action) ? 'info' : 'debug';
        log?.[level](
          { attempt, status: a.status, flyRequestId: a.requestId, ms: clock.now() - started },
          'fly call',
        );
        return this.parse(spec, a.status, a.text, a.requestId);
      }

      const retryable = isRetryableStatus(a.status);
      if (retryable && !lastAttempt) {
        const asked = parseRetryAfterMs(a.retryAfter, clock.now());
        const delay = Math.max(asked ?? 0, this.backoff(attempt));
        const warn = () =>
          log?.warn(
            { attempt, status: a.status, flyRequestId: a.requestId, delayMs: Math.round(delay) },
            'fly call will retry',
          );
        if (await retryAfter(delay, warn)) continue;
      }
      const flyMessage = this.scrub(describeErrorBody(a.text, a.contentType));
      const unknownOutcome = spec.action === 'create' && a.status >= 500;
      throw new FlyApiError(
        spec.action,
        a.status,
        unknownOutcome ? `${flyMessage} (${OUTCOME_UNKNOWN})` : flyMessage,
        retryable,
        a.requestId,
      );
    }
  }

  private backoff(attempt: number): number {
    return backoffMs(this.s.backoff, attempt, this.s.random());
  }

  private async takeToken(action: FlyAction, deadline: number, bucket?: string): Promise<void> {
    if (!this.s.buckets) return;
    const wait = this.s.buckets
      .bucket(bucket ?? action)
      .reserve(Math.max(0, deadline - this.s.clock.now()));
    if (wait === undefined) {
      throw new FlyApiError(
        action,
        0,
        'not sent: the client-side rate limit has no token for this action within the call timeout',
        isRetryableStatus(0),
        undefined,
      );
    }
    this.s.observer?.tokenWait?.(action, wait / 1000);
    if (wait > 0) await this.s.sleep(wait);
  }

  private async send<T>(
    spec: CallSpec<T>,
    url: string,
    timeoutMs: number,
    traceparent: string | undefined,
  ): Promise<Attempt> {
    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, timeoutMs);
    try {
      const headers: Record<string, string> = {
        authorization: authorizationHeader(this.s.token),
        accept: 'application/json',
        'user-agent': this.s.userAgent,
      };
      if (traceparent) headers[TRACEPARENT] = traceparent;
      let body: string | undefined;
      if (spec.body !== undefined) {
        headers['content-type'] = 'application/json';
        body = JSON.stringify(spec.body);
      }
      const res = await this.s.fetch(url, {
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

  /** A 2xx body checked against the call's schema; anything else is a non-retryable FlyApiError. */
  private parse<T>(
    spec: CallSpec<T>,
    status: number,
    text: string,
    requestId: string | undefined,
  ): T {
    const malformed = (why: string) =>
      new FlyApiError(
        spec.action,
        status,
        `malformed response: ${this.scrub(why)}`,
        isRetryableStatus(status),
        requestId,
      );
    let json: unknown = {};
    if (text.trim() !== '') {
      try {
        json = JSON.parse(text);
      } catch {
        throw malformed(`not JSON (${snippet(text)})`);
      }
    }
    const parsed = spec.schema.safeParse(json);
    if (!parsed.success) {
      throw malformed(
        parsed.error.issues
          .slice(0, 3)
          .map((i) => `${i.path.map(String).join('.') || '(body)'}: ${i.message}`)
          .join('; '),
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
    return new FlyApiError(
      action,
      0,
      this.scrub(idempotent ? what : `${what} (${OUTCOME_UNKNOWN})`),
      isRetryableStatus(0),
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
    const token = this.s.token;
    const parts = [token, ...token.replace(/^FlyV1 /, '').split(/[,\s]+/)].filter(
      (p) => p.length >= 8,
    );
    for (const p of parts) out = out.split(p).join('[redacted]');
    return out;
  }
}
