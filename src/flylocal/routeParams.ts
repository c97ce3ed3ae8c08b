/**
 * What the Machines API routes read from a request: the app and machine in the path, one query
 * value, the lease nonce header, and a zod-checked body (a 400 in Fly's words when it fails).
 */
import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import { invalidArgument } from './emulatorError.js';
import { LEASE_NONCE_HEADER } from './leases.js';

const appName = z
  .string()
  .regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'app names are lowercase letters, digits and dashes');

type Query = Record<string, string | string[] | undefined>;

export function one(req: FastifyRequest, key: string): string | undefined {
  const v = (req.query as Query)[key];
  return Array.isArray(v) ? v[0] : v;
}

export function queryKeys(req: FastifyRequest): string[] {
  return Object.keys(req.query as Query);
}

export const truthy = (v: string | undefined): boolean => v === 'true' || v === '1';

export function params(req: FastifyRequest): { app: string; id: string } {
  const p = req.params as { app_name?: string; machine_id?: string };
  const parsed = appName.safeParse(p.app_name);
  if (!parsed.success) throw invalidArgument(parsed.error);
  return { app: parsed.data, id: p.machine_id ?? '' };
}

/** The `fly-machine-lease-nonce` header, when the caller holds a lease. */
export function leaseNonce(req: FastifyRequest): string | undefined {
  const v = req.headers[LEASE_NONCE_HEADER];
  const s = Array.isArray(v) ? v[0] : v;
  return s === undefined || s === '' ? undefined : s;
}

/** The request body checked against `schema`; no body counts as `{}`. */
export function body<S extends z.ZodType>(req: FastifyRequest, schema: S): z.infer<S> {
  const parsed = schema.safeParse(req.body ?? {});
  if (!parsed.success) throw invalidArgument(parsed.error);
  return parsed.data;
}
