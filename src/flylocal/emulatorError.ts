/**
 * The emulator's failures as Fly answers them: a status code and the `{"error": ...}` text, and
 * the few that several places raise (not found, shutting down, a body that does not parse).
 */
import type { ZodError } from 'zod';

/** A failure of an emulated Machines API call, with Fly's status code and error text. */
export class EmulatorError extends Error {
  constructor(
    readonly status: number,
    readonly error: string,
    /** Fly's ErrorResponse.status, e.g. "insufficient_capacity". */
    readonly flyStatus?: string,
  ) {
    super(error);
    this.name = 'EmulatorError';
  }
}

export const notFound = (): EmulatorError => new EmulatorError(404, 'not_found: machine not found');

export const shuttingDown = (): EmulatorError =>
  new EmulatorError(503, 'unavailable: flylocal is shutting down');

/** A zod failure as Fly's `invalid_argument` text: the first few issues with their paths. */
export function zodIssues(err: ZodError): string {
  return err.issues
    .slice(0, 5)
    .map((i) => `${i.path.map(String).join('.') || '(body)'}: ${i.message}`)
    .join('; ');
}

export const invalidArgument = (err: ZodError): EmulatorError =>
  new EmulatorError(400, `invalid_argument: ${zodIssues(err)}`);
