/**
 * The environment a composition root (main.ts) reads to build the Machines API client. A fragment
 * for `z.object({...})`: spread `flyEnvShape` into the program's own env schema.
 */
import { z } from 'zod';
import { envUrl } from '../shared/env.js';

export const FLY_API_BASE_URL_DEFAULT = 'https://api.machines.dev/v1';
export const FLY_VM_APP_DEFAULT = 'useless-machine';

export const flyEnvShape = {
  /** Machines API root, version included; the emulator is `http://127.0.0.1:4280/v1`. */
  FLY_API_BASE_URL: envUrl.default(FLY_API_BASE_URL_DEFAULT),
  FLY_API_TOKEN: z.string().trim().min(1, 'a Machines API token is required'),
  /** The Fly app the Useless Machines are created in. */
  FLY_VM_APP: z
    .string()
    .trim()
    .regex(/^[a-z0-9][a-z0-9-]*$/, 'a Fly app name')
    .default(FLY_VM_APP_DEFAULT),
};
