/**
 * Port: the Fly Machines API, only the calls we make (create, possibly without starting, get, list,
 * wait, stop, start, update, metadata, destroy). Implemented over HTTP by
 * src/adapters/fly/client.ts (against the real API or the local emulator) and by a scriptable fake
 * for tests (src/adapters/fly/fakeFlyMachines.ts); both pass test/contract/flyMachines.contract.ts.
 */
import type { Logger } from '../shared/log.js';

/** Fly's machine states; unknown future states arrive as plain strings. */
export type FlyMachineState =
  | 'created'
  | 'starting'
  | 'started'
  | 'stopping'
  | 'stopped'
  | 'suspending'
  | 'suspended'
  | 'failed'
  | 'destroying'
  | 'destroyed'
  | 'replacing'
  | 'launch_failed'
  | (string & {});

/** Who a machine is and where it runs: the fields every view of a machine starts with. */
export interface FlyMachineIdentity {
  readonly id: string;
  readonly name: string;
  readonly state: FlyMachineState;
  readonly region: string;
  readonly instanceId: string;
  readonly privateIp: string | undefined;
}

/** A machine record's identity fields, with its private address (the fake's and emulator's views). */
export function machineIdentity(
  m: Omit<FlyMachineIdentity, 'privateIp'>,
  privateIp: string | undefined,
): FlyMachineIdentity {
  const { id, name, state, region, instanceId } = m;
  return { id, name, state, region, instanceId, privateIp };
}

export interface FlyMachine extends FlyMachineIdentity {
  readonly createdAt: string;
  readonly updatedAt: string;
  readonly metadata: Readonly<Record<string, string>>;
}

export interface CreateMachineInput {
  readonly region: string;
  readonly image: string;
  readonly env: Readonly<Record<string, string>>;
  readonly metadata: Readonly<Record<string, string>>;
  /** Command the machine runs (config.init.cmd), e.g. the Useless Machine entry of a shared image. */
  readonly cmd?: readonly string[];
  readonly guest?: { cpuKind: string; cpus: number; memoryMb: number };
  readonly internalPort: number;
  readonly autoDestroy: boolean;
  readonly restart: { policy: 'no' | 'always' | 'on-failure'; maxRetries?: number };
  readonly stop: { signal: string; timeoutS: number };
  readonly name?: string;
  /** Create the machine without starting it (Fly's skip_launch): it stays `created` until start(). */
  readonly skipLaunch?: boolean;
}

export type WaitState = 'started' | 'stopped' | 'suspended' | 'destroyed';

/**
 * Who a call is made for (ADR 0021): its log lines go to `log` (a child naming the launch and its
 * trace), and `traceparent` goes out with the request. Passed, not looked up, so it costs nothing
 * where it is not given.
 */
export interface CallScope {
  readonly log?: Logger | undefined;
  readonly traceparent?: string | undefined;
}

export interface CreateOptions {
  /**
   * Asked right before the request is sent (after any client-side rate-limit wait): false withdraws
   * the create, which then fails with nothing made. A request already sent is never abandoned.
   */
  readonly proceed?: () => boolean;
  readonly scope?: CallScope;
}

/** The message of a create withdrawn by its caller before it was sent (nothing was made). */
export const CREATE_WITHDRAWN = 'not sent: the caller withdrew the create before it was sent';

/** The port's calls by name, as FlyApiError.op names them. */
export type FlyAction =
  | 'create'
  | 'get'
  | 'list'
  | 'wait'
  | 'stop'
  | 'destroy'
  | 'start'
  | 'update'
  | 'getMetadata'
  | 'setMetadata'
  | 'deleteMetadata';

export interface FlyMachines {
  create(input: CreateMachineInput, opts?: CreateOptions): Promise<FlyMachine>;
  /** Throws FlyApiError with status 404 when the machine does not exist. */
  get(machineId: string): Promise<FlyMachine>;
  /** Machines of the app; `metadata` filters on exact key/value pairs (metadata.<k>=<v>). */
  list(filter?: {
    metadata?: Readonly<Record<string, string>>;
    includeDeleted?: boolean;
  }): Promise<FlyMachine[]>;
  /**
   * Wait until the machine reaches `state` (timeout clamped to 1..60 s). Resolves true when reached,
   * false on Fly's 408 timeout. `stopped` needs the machine's instance id.
   */
  wait(
    machineId: string,
    state: WaitState,
    opts?: { timeoutS?: number; instanceId?: string; scope?: CallScope },
  ): Promise<boolean>;
  stop(machineId: string, opts?: { signal?: string; timeoutS?: number }): Promise<void>;
  /** Destroy (force: kill if running). A machine that is already gone is not an error. */
  destroy(machineId: string, opts?: { force?: boolean; scope?: CallScope }): Promise<void>;
  /**
   * Start a machine that exists and is not running (created with skipLaunch, stopped, suspended);
   * much faster than a create on Fly. Any other state is a 412 FlyApiError.
   */
  start(machineId: string): Promise<void>;
  /**
   * Give the machine a new config (a new version: its instanceId changes). A running machine is
   * restarted with it (unless skipLaunch); `currentVersion` refuses the update (412) if the machine
   * has moved on since.
   */
  update(
    machineId: string,
    input: CreateMachineInput,
    opts?: { currentVersion?: string },
  ): Promise<FlyMachine>;
  /** The machine's metadata. */
  getMetadata(machineId: string): Promise<Record<string, string>>;
  /** Set one metadata key (same version; list filters see it at once). */
  setMetadata(machineId: string, key: string, value: string): Promise<void>;
  /** Remove one metadata key; a key that is not there is not an error. */
  deleteMetadata(machineId: string, key: string): Promise<void>;
}

/**
 * Whether the same call, made again unchanged, may succeed after it failed with this HTTP status (0:
 * no response arrived): a lost answer, a rate limit (429) or a failure on Fly's side (5xx) may pass
 * next time; any other status is Fly's answer about the call itself (400, 404, 409, 412, a malformed
 * 2xx), which repeating it does not change. The HTTP client and the fake both set
 * FlyApiError.retryable with it.
 */
export function isRetryableStatus(status: number): boolean {
  return status === 0 || status === 429 || status >= 500;
}

/** The one error every FlyMachines implementation throws for a failed call. */
export class FlyApiError extends Error {
  readonly code = 'FLY_API';
  constructor(
    readonly op: string,
    /** HTTP status; 0 when no response arrived (network error, timeout). */
    readonly status: number,
    /** Fly's error text, e.g. "not_found: machine not found". Never contains the token. */
    readonly flyMessage: string,
    /**
     * The same call may succeed if made again: isRetryableStatus(status), except a create its
     * caller withdrew before it was sent (CREATE_WITHDRAWN), which is not a failure to repeat.
     */
    readonly retryable: boolean,
    readonly requestId: string | undefined,
    options?: { cause?: unknown },
  ) {
    super(`${op}: ${status === 0 ? 'no response' : `HTTP ${status}`}: ${flyMessage}`, options);
    this.name = 'FlyApiError';
  }
}
