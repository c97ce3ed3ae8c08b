/**
 * Machine leases as Fly keeps them: one lease per machine with a nonce, an owner and an expiry;
 * while it lasts, a call that changes the machine must carry its nonce in `fly-machine-lease-nonce`.
 */
import { randomBytes } from 'node:crypto';
import { EmulatorError } from './emulatorError.js';
import type { EmulatedMachine, MachineLease } from './machine.js';

export const LEASE_NONCE_HEADER = 'fly-machine-lease-nonce';
/** Who holds a lease taken through this emulator (Fly says the token's user). */
export const LEASE_OWNER = 'local@flylocal';
const DEFAULT_TTL_S = 30;

export function activeLease(m: EmulatedMachine, now: number): MachineLease | undefined {
  if (m.lease && m.lease.expiresAtMs <= now) m.lease = undefined;
  return m.lease;
}

const held = (m: EmulatedMachine, lease: MachineLease): EmulatorError =>
  new EmulatorError(
    409,
    `failed_precondition: machine ${m.id} lease currently held by ${lease.owner}, expires at ${new Date(lease.expiresAtMs).toISOString()}; send its nonce in the ${LEASE_NONCE_HEADER} header`,
  );

/** A call that changes the machine: refused while someone else's lease is on it. */
export function assertLease(m: EmulatedMachine, nonce: string | undefined, now: number): void {
  const lease = activeLease(m, now);
  if (lease && lease.nonce !== nonce) throw held(m, lease);
}

/** The Lease as the spec shapes it, inside fly-go's `{status, data}` envelope too. */
export function leaseJson(lease: MachineLease, withNonce: boolean): Record<string, unknown> {
  const data = {
    ...(withNonce ? { nonce: lease.nonce } : {}),
    owner: lease.owner,
    description: lease.description,
    version: lease.version,
    expires_at: Math.floor(lease.expiresAtMs / 1000),
  };
  return { ...data, status: 'success', data };
}

/**
 * Take a lease, or refresh the one whose nonce is given (its expiry moves to now + ttl). Someone
 * else's live lease is a 409.
 */
export function acquireLease(
  m: EmulatedMachine,
  req: { ttl?: number; description?: string },
  nonce: string | undefined,
  now: number,
): MachineLease {
  const ttlMs = (req.ttl ?? DEFAULT_TTL_S) * 1000;
  const lease = activeLease(m, now);
  if (lease) {
    if (lease.nonce !== nonce) throw held(m, lease);
    lease.expiresAtMs = now + ttlMs;
    return lease;
  }
  m.lease = {
    nonce: randomBytes(8).toString('hex'),
    owner: LEASE_OWNER,
    description: req.description ?? '',
    version: m.instanceId,
    expiresAtMs: now + ttlMs,
  };
  m.event('lease', 'acquired', 'user');
  return m.lease;
}

export function releaseLease(m: EmulatedMachine, nonce: string | undefined, now: number): void {
  const lease = activeLease(m, now);
  if (!lease) throw new EmulatorError(404, `not_found: machine ${m.id} has no active lease`);
  if (nonce === undefined)
    throw new EmulatorError(
      400,
      `invalid_argument: releasing a lease needs its nonce in the ${LEASE_NONCE_HEADER} header`,
    );
  if (lease.nonce !== nonce) throw held(m, lease);
  m.lease = undefined;
  m.event('lease', 'released', 'user');
}
