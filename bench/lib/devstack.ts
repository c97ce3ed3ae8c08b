/**
 * The whole local platform as `npm start` runs it, for a bench: the tests' stack (dist/devstack.mjs
 * on free ports, test/support/stack.ts), with its stop registered for the bench's interrupt
 * cleanup and a helper to call the emulator's API with its token.
 */
import { startStack, type Stack } from '../../test/support/stack.js';
import { defer } from './cleanup.js';

export interface DevStack extends Stack {
  /** Call the Machines API emulator (`/v1/apps/…`, `/__flylocal/…`) with its token. */
  api(path: string, init?: RequestInit): Promise<Response>;
}

/** `env` overrides the stack's (which picks the emulator's fast profile unless told otherwise). */
export async function startDevStack(env: Record<string, string>): Promise<DevStack> {
  const stack = await startStack(env);
  const stop = defer('devstack', () => stack.stop());
  return {
    ...stack,
    stop,
    api: (path, init = {}) =>
      fetch(`${stack.flyUrl}${path}`, {
        ...init,
        headers: { authorization: `Bearer ${stack.flyToken}`, ...(init.headers ?? {}) },
      }),
  };
}
