/** A failure of an emulated Machines API call, with Fly's status code and `{"error": ...}` text. */
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
