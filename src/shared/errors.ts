/**
 * Typed errors with stable codes. HTTP handlers map them to `{ statusCode, code, error, message }`;
 * logs keep the cause. Codes and their statuses live in the vocabulary (`machines/vocabulary.ts`).
 */
import { ERROR_CODES, type ErrorCode } from '../../machines/vocabulary.js';

export class AppError extends Error {
  readonly code: ErrorCode;
  readonly statusCode: number;
  readonly details: Record<string, unknown> | undefined;
  /** When the client may try again (sent as `retry-after`), for refusals that pass. */
  readonly retryAfterMs: number | undefined;

  constructor(
    code: ErrorCode,
    message: string,
    options?: { cause?: unknown; details?: Record<string, unknown>; retryAfterMs?: number },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AppError';
    this.code = code;
    this.statusCode = ERROR_CODES[code];
    this.details = options?.details;
    this.retryAfterMs = options?.retryAfterMs;
  }
}

/** Two writers raced on one stream; the loser re-reads and retries. */
export class VersionConflictError extends Error {
  readonly code = 'VERSION_CONFLICT';
  constructor(
    readonly stream: string,
    readonly expected: number,
    readonly actual: number,
  ) {
    super(`stream ${stream}: expected version ${expected}, found ${actual}`);
    this.name = 'VersionConflictError';
  }
}

/** An append to a stream that retention archived: it is finished for good and takes no more. */
export class StreamArchivedError extends Error {
  readonly code = 'STREAM_ARCHIVED';
  constructor(readonly stream: string) {
    super(`stream ${stream} was archived by retention; it takes no more events`);
    this.name = 'StreamArchivedError';
  }
}

/** A stored or received event that does not decode: unknown type, bad envelope or bad payload. */
export class EventDecodeError extends Error {
  readonly code = 'EVENT_DECODE';
  constructor(
    message: string,
    readonly raw: unknown,
  ) {
    super(message);
    this.name = 'EventDecodeError';
  }
}

/** The event store or bus could not be reached; the operation did not happen (or may be retried). */
export class StoreUnavailableError extends Error {
  readonly code = 'STORE_UNAVAILABLE';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreUnavailableError';
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
