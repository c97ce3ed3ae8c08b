/**
 * Tests that need something the machine may lack (nats-server, Chromium) call `needs()`: locally it
 * skips them with a loud reason; under CI=true a missing requirement fails the run instead.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

export function which(bin: string): string | undefined {
  try {
    return (
      execFileSync('sh', ['-c', `command -v ${bin}`], { encoding: 'utf8' }).trim() || undefined
    );
  } catch {
    return undefined;
  }
}

export const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) =>
  existsSync(p),
);
export const NATS_SERVER = which('nats-server');

/**
 * Returns true when the requirement is met. Otherwise: under CI throws (the suite fails);
 * locally prints a warning and returns false, so the caller can `describe.skipIf(!ok)`.
 */
export function needs(what: string, present: unknown): boolean {
  if (present) return true;
  const msg = `requirement missing: ${what}`;
  if (process.env.CI === 'true' || process.env.CI === '1')
    throw new Error(`${msg} (CI=true: failing instead of skipping)`);
  process.stderr.write(`\n\x1b[33m⚠ SKIPPING: ${msg}\x1b[0m\n`);
  return false;
}
