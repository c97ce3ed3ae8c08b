/**
 * Waits in the process's own time, beside the Clock/Timers ports on purpose. The ports carry the
 * domain's time (deadlines, facts' times), which tests and simulations move by hand; these waits
 * bound what a person or the process experiences instead (a request waiting for a decision, the
 * shutdown grace, a pause before calling a remote API again, freeing memory), so they must pass
 * even when the domain's clock stands still.
 */

/** Run `fn` after `ms` real milliseconds without keeping the process alive; returns a cancel. */
export function afterReal(ms: number, fn: () => void): () => void {
  const handle = setTimeout(fn, ms);
  handle.unref?.();
  return () => clearTimeout(handle);
}

/** Resolve after `ms` real milliseconds (the process stays alive meanwhile). */
export const sleepReal = (ms: number): Promise<void> =>
  new Promise<void>((resolve) => setTimeout(resolve, ms));
