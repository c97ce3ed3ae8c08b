/**
 * FlyMachinesHttp: the FlyMachines port over HTTP, against api.machines.dev or the local emulator.
 * Each method describes its call (path, query, body, answer schema); request.ts sends it, validates
 * the answer, retries only idempotent calls and paces every action inside Fly's rate limits (per
 * action; start, update and metadata per action and machine, as Fly counts them).
 */
import type { Clock } from '../../ports/clock.js';
import type {
  CallScope,
  CreateMachineInput,
  CreateOptions,
  FlyAction,
  FlyMachine,
  FlyMachines,
  WaitState,
} from '../../ports/flyMachines.js';
import type { Logger } from '../../shared/log.js';
import { DEFAULT_BACKOFF, type BackoffPolicy } from './backoff.js';
import { FlyRequests, type FlyCallObserver } from './request.js';
import {
  machineListSchema,
  machineSchema,
  metadataSchema,
  okSchema,
  secondsToGoDuration,
} from './schemas.js';
import {
  ActionBuckets,
  FLY_DEFAULT_LIMIT,
  FLY_GET_LIMIT,
  type BucketLimit,
} from './tokenBucket.js';
import { clampWaitSeconds, createRequestBody, toFlyMachine } from './wire.js';

export type { FlyCallObserver };

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

const realSleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export class FlyMachinesHttp implements FlyMachines {
  private readonly app: string;
  private readonly requests: FlyRequests;

  constructor(opts: FlyMachinesHttpOptions) {
    if (!opts.token) throw new Error('FlyMachinesHttp: a token is required');
    if (!opts.app) throw new Error('FlyMachinesHttp: an app name is required');
    this.app = opts.app;
    const clock = opts.clock ?? { now: () => Date.now() };
    const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const limits = opts.rateLimits;
    this.requests = new FlyRequests({
      baseUrl: opts.baseUrl.replace(/\/+$/, ''),
      token: opts.token,
      fetch: opts.fetch ?? globalThis.fetch.bind(globalThis),
      clock,
      sleep: opts.sleep ?? realSleep,
      random: opts.random ?? Math.random,
      timeoutMs,
      attemptTimeoutMs: opts.attemptTimeoutMs ?? Math.min(DEFAULT_ATTEMPT_TIMEOUT_MS, timeoutMs),
      maxAttempts: Math.max(1, opts.maxAttempts ?? DEFAULT_MAX_ATTEMPTS),
      backoff: opts.backoff ?? DEFAULT_BACKOFF,
      buckets:
        limits === false
          ? undefined
          : new ActionBuckets<string>(
              (key) => {
                // Keys are an action, or `<action> <machine id>` for the ones Fly limits per machine.
                const a = key.split(' ')[0] as FlyAction;
                return limits?.[a] ?? (a === 'get' ? FLY_GET_LIMIT : FLY_DEFAULT_LIMIT);
              },
              () => clock.now(),
            ),
      logger: opts.logger?.child({ component: 'fly-client', app: opts.app }),
      userAgent: opts.userAgent ?? 'wheremachines/0.1',
      observer: opts.observer,
    });
  }

  private machinesPath(machineId?: string, suffix = ''): string {
    const app = encodeURIComponent(this.app);
    return machineId === undefined
      ? `/apps/${app}/machines`
      : `/apps/${app}/machines/${encodeURIComponent(machineId)}${suffix}`;
  }

  async create(input: CreateMachineInput, opts: CreateOptions = {}): Promise<FlyMachine> {
    const m = await this.requests.call({
      action: 'create',
      method: 'POST',
      path: this.machinesPath(),
      body: createRequestBody(input),
      schema: machineSchema,
      ...(opts.proceed ? { proceed: opts.proceed } : {}),
      scope: opts.scope,
    });
    return toFlyMachine(m);
  }

  async get(machineId: string): Promise<FlyMachine> {
    const m = await this.requests.call({
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
    const ms = await this.requests.call({
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
    opts: { timeoutS?: number; instanceId?: string; scope?: CallScope } = {},
  ): Promise<boolean> {
    const timeoutS = clampWaitSeconds(opts.timeoutS);
    let instanceId = opts.instanceId;
    // The API refuses a wait for `stopped` without the version it should watch: look it up.
    if (state === 'stopped' && !instanceId) instanceId = (await this.get(machineId)).instanceId;
    const query = new URLSearchParams({ state, timeout: String(timeoutS) });
    if (instanceId) query.set('instance_id', instanceId);
    return this.requests.call<boolean>({
      action: 'wait',
      method: 'GET',
      path: this.machinesPath(machineId, '/wait'),
      query,
      schema: okSchema.transform(() => true),
      machineId,
      extraMs: timeoutS * 1000,
      scope: opts.scope,
      onStatus: (status) => (status === 408 ? { value: false } : undefined),
    });
  }

  async stop(machineId: string, opts: { signal?: string; timeoutS?: number } = {}): Promise<void> {
    const body: Record<string, string> = {};
    if (opts.signal) body.signal = opts.signal;
    if (opts.timeoutS !== undefined) body.timeout = secondsToGoDuration(opts.timeoutS);
    await this.requests.call({
      action: 'stop',
      method: 'POST',
      path: this.machinesPath(machineId, '/stop'),
      body,
      schema: okSchema,
      machineId,
    });
  }

  async destroy(
    machineId: string,
    opts: { force?: boolean; scope?: CallScope } = {},
  ): Promise<void> {
    const query = new URLSearchParams();
    if (opts.force ?? true) query.set('force', 'true');
    await this.requests.call({
      action: 'destroy',
      method: 'DELETE',
      path: this.machinesPath(machineId),
      query,
      schema: okSchema,
      machineId,
      scope: opts.scope,
      // Already gone is what we wanted.
      onStatus: (status) => (status === 404 ? { value: {} } : undefined),
    });
  }

  async start(machineId: string): Promise<void> {
    await this.requests.call({
      action: 'start',
      method: 'POST',
      path: this.machinesPath(machineId, '/start'),
      schema: okSchema,
      machineId,
      // Fly limits starts per machine: ten pooled machines may start in the same second.
      bucket: `start ${machineId}`,
    });
  }

  async update(
    machineId: string,
    input: CreateMachineInput,
    opts: { currentVersion?: string } = {},
  ): Promise<FlyMachine> {
    const { config } = createRequestBody(input);
    const m = await this.requests.call({
      action: 'update',
      method: 'POST',
      path: this.machinesPath(machineId),
      body: {
        config,
        ...(input.skipLaunch ? { skip_launch: true } : {}),
        ...(opts.currentVersion ? { current_version: opts.currentVersion } : {}),
      },
      schema: machineSchema,
      machineId,
      bucket: `update ${machineId}`,
    });
    return toFlyMachine(m);
  }

  async getMetadata(machineId: string): Promise<Record<string, string>> {
    return this.requests.call({
      action: 'getMetadata',
      method: 'GET',
      path: this.machinesPath(machineId, '/metadata'),
      schema: metadataSchema,
      machineId,
      bucket: `getMetadata ${machineId}`,
    });
  }

  async setMetadata(machineId: string, key: string, value: string): Promise<void> {
    await this.requests.call({
      action: 'setMetadata',
      method: 'POST',
      path: this.machinesPath(machineId, `/metadata/${encodeURIComponent(key)}`),
      body: { value },
      schema: okSchema,
      machineId,
      bucket: `setMetadata ${machineId}`,
    });
  }

  async deleteMetadata(machineId: string, key: string): Promise<void> {
    await this.requests.call({
      action: 'deleteMetadata',
      method: 'DELETE',
      path: this.machinesPath(machineId, `/metadata/${encodeURIComponent(key)}`),
      schema: okSchema,
      machineId,
      bucket: `deleteMetadata ${machineId}`,
    });
  }
}
