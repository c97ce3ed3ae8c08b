/**
 * Which NATS failures are worth retrying (the server is restarting, a cluster is electing a leader,
 * the connection is reconnecting) and which mean the store is gone for good (closed connection).
 */
import {
  ClosedConnectionError,
  ConnectionError,
  DrainingConnectionError,
  RequestError,
  TimeoutError,
} from '@nats-io/transport-node';
import { JetStreamApiError } from '@nats-io/jetstream';
import { errorMessage, StoreUnavailableError } from '../../shared/errors.js';

/** A request that may succeed if tried again: timeouts, no responders, JetStream briefly unavailable. */
export function isTransientNatsError(err: unknown): boolean {
  if (err instanceof TimeoutError) return true;
  if (err instanceof RequestError) return err.isNoResponders();
  if (err instanceof JetStreamApiError) {
    // 503 / 10008: "JetStream system temporarily unavailable" (no meta or stream leader yet);
    // 10005: "no suitable peers for placement" (a forming cluster that has not met all its peers).
    return err.status === 503 || err.code === 10008 || err.code === 10005;
  }
  if (err instanceof ConnectionError) return true;
  // Thrown by the JetStream client when a request found no responders (the server is restarting).
  return (
    err instanceof Error && (err.name === 'JetStreamNotEnabled' || err.name === 'NoRespondersError')
  );
}

/** The connection is closed or closing: nothing will ever get through it again. */
export function isConnectionGone(err: unknown): boolean {
  return err instanceof ClosedConnectionError || err instanceof DrainingConnectionError;
}

export function asUnavailable(what: string, err: unknown): StoreUnavailableError {
  return err instanceof StoreUnavailableError
    ? err
    : new StoreUnavailableError(`cannot ${what}: ${errorMessage(err)}`, { cause: err });
}

/**
 * A write refused because the subject (or KV key) is no longer at the sequence it expected: another
 * writer got there first (10071: wrong last sequence; 10164: the KV flavour of it).
 */
export function isWrongLastSequence(err: unknown): boolean {
  return err instanceof JetStreamApiError && (err.code === 10071 || err.code === 10164);
}

export const sleep = (ms: number): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Run an idempotent NATS operation, retrying transient failures with capped exponential backoff
 * until `deadline` (epoch ms). Errors from a closed connection, and transient ones past the deadline,
 * become StoreUnavailableError; anything else (a JetStream API answer) is the caller's to handle.
 */
export async function retryTransient<T>(
  what: string,
  deadline: number,
  op: () => Promise<T>,
  opts: { isClosed?: () => boolean; onRetry?: (err: unknown) => void } = {},
): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    if (opts.isClosed?.())
      throw new StoreUnavailableError(`cannot ${what}: the connection is closed`);
    try {
      return await op();
    } catch (err) {
      if (isConnectionGone(err)) throw asUnavailable(what, err);
      if (!isTransientNatsError(err)) throw err;
      if (Date.now() >= deadline) throw asUnavailable(what, err);
      if (attempt === 0) opts.onRetry?.(err);
      await sleep(Math.min(1000, 50 * 2 ** attempt));
    }
  }
}
