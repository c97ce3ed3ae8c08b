/**
 * What a test scripts into the Fly fake: failures queued per call, and gates that hold a call before
 * it is "sent". The fake asks here at each call; its failures are FlyApiErrors like the client's.
 */
import { FlyApiError, isRetryableStatus, type FlyAction } from '../../ports/flyMachines.js';

export interface ScriptedFailure {
  /** HTTP status to report; 0 = no response (network error or timeout). */
  readonly status: number;
  readonly message?: string;
  /** Default: isRetryableStatus(status), as the HTTP client reports it. */
  readonly retryable?: boolean;
  readonly requestId?: string;
  /** Do the work, then fail: a create whose machine exists although the caller saw an error. */
  readonly commit?: boolean;
}

function defaultMessage(status: number): string {
  if (status === 0) return 'network error (scripted)';
  if (status === 404) return 'not_found: machine not found';
  if (status === 429) return 'rate_limited: too many requests (scripted)';
  if (status === 412) return 'insufficient_capacity: no capacity (scripted)';
  return `scripted failure ${status}`;
}

/** The error a scripted failure of `op` throws. */
export function scriptedError(op: FlyAction, f: ScriptedFailure): FlyApiError {
  return new FlyApiError(
    op,
    f.status,
    f.message ?? defaultMessage(f.status),
    f.retryable ?? isRetryableStatus(f.status),
    f.requestId,
  );
}

export class FakeScript {
  private readonly failures = new Map<FlyAction, ScriptedFailure[]>();
  private readonly gates = new Map<FlyAction, Promise<void>[]>();

  /** The next `times` calls of `op` fail like this (queued after any already scripted). */
  failNext(op: FlyAction, failure: ScriptedFailure, times = 1): void {
    const q = this.failures.get(op) ?? [];
    for (let i = 0; i < times; i++) q.push(failure);
    this.failures.set(op, q);
  }

  /** Hold the next call of `op` until the returned function is called. */
  holdNext(op: FlyAction): () => void {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const q = this.gates.get(op) ?? [];
    q.push(gate);
    this.gates.set(op, q);
    return release;
  }

  /** The gate this call of `op` must wait for, if one was set. */
  gate(op: FlyAction): Promise<void> | undefined {
    return this.gates.get(op)?.shift();
  }

  /** The failure this call of `op` must report, if one is queued. */
  take(op: FlyAction): ScriptedFailure | undefined {
    return this.failures.get(op)?.shift();
  }

  /**
   * Takes the next failure of `op` only if it has this status: a scripted 408 on wait or 404 on
   * destroy is an answer the caller turns into a value, as the HTTP client does.
   */
  takeIf(op: FlyAction, status: number): boolean {
    if (this.failures.get(op)?.[0]?.status !== status) return false;
    this.failures.get(op)?.shift();
    return true;
  }
}
