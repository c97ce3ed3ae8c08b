/**
 * Signed VM callbacks. The landing app holds one secret; each launch gets its own key,
 * HMAC(secret, launch id), which is the only key its VM ever sees. A callback carries
 * `x-wm-signature: t=<unix seconds>,v1=<hex HMAC(key, "<t>.<raw body>")>`.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { MACHINE_ID_PATTERN, REGION_PATTERN, ULID_PATTERN } from '../../machines/vocabulary.js';

export const SIGNATURE_HEADER = 'x-wm-signature';
/** How far a callback's timestamp may be from our clock, either way. */
export const SIGNATURE_TOLERANCE_S = 300;

export function deriveLaunchKey(secret: string, launchId: string): string {
  return createHmac('sha256', secret).update(`wm-launch-key:v1:${launchId}`).digest('hex');
}

/**
 * A pooled machine's key (ADR 0022): HMAC(secret, its name), the name chosen before its create.
 * It signs only the machine's request for its claim; its launch's key comes in the answer.
 */
export function derivePoolKey(secret: string, name: string): string {
  return createHmac('sha256', secret).update(`wm-pool-key:v1:${name}`).digest('hex');
}

export function signBody(key: string, rawBody: string, nowMs: number): string {
  const t = Math.floor(nowMs / 1000);
  const v1 = createHmac('sha256', key).update(`${t}.${rawBody}`).digest('hex');
  return `t=${t},v1=${v1}`;
}

export type SignatureCheck =
  | { ok: true; t: number }
  | {
      ok: false;
      code: 'SIGNATURE_MISSING' | 'SIGNATURE_MALFORMED' | 'SIGNATURE_INVALID' | 'SIGNATURE_EXPIRED';
      message: string;
    };

const headerShape = /^t=(\d{1,12}),v1=([0-9a-f]{64})$/;

export function verifySignature(
  key: string,
  rawBody: string,
  header: string | undefined,
  nowMs: number,
  toleranceS = SIGNATURE_TOLERANCE_S,
): SignatureCheck {
  if (!header)
    return { ok: false, code: 'SIGNATURE_MISSING', message: `missing ${SIGNATURE_HEADER} header` };
  const m = headerShape.exec(header.trim());
  if (!m)
    return {
      ok: false,
      code: 'SIGNATURE_MALFORMED',
      message: `${SIGNATURE_HEADER} must be t=<seconds>,v1=<hex>`,
    };
  const t = Number(m[1]);
  const expected = createHmac('sha256', key).update(`${t}.${rawBody}`).digest();
  const given = Buffer.from(m[2]!, 'hex');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    return { ok: false, code: 'SIGNATURE_INVALID', message: 'signature does not match' };
  }
  if (Math.abs(nowMs / 1000 - t) > toleranceS) {
    return { ok: false, code: 'SIGNATURE_EXPIRED', message: `timestamp outside ±${toleranceS}s` };
  }
  return { ok: true, t };
}

/** The JSON body a VM posts to the private API. */
export const machineStatusBody = z.strictObject({
  machineId: z
    .string()
    .regex(MACHINE_ID_PATTERN, 'machine ids are 8–32 lowercase letters or digits'),
  launchId: z.string().regex(ULID_PATTERN, 'launch ids are ULIDs'),
  region: z.string().regex(REGION_PATTERN),
  status: z.enum(['listening', 'stopping']),
  at: z.iso.datetime(),
  /** Why the VM stops: its animation finished, its TTL ran out, or it got a signal. */
  reason: z.enum(['finished', 'idle', 'ttl', 'signal']).optional(),
});
export type MachineStatusBody = z.infer<typeof machineStatusBody>;

/** What a pooled VM posts to `POST /api/pool_claim` when it starts, signed with its pool key. */
export const poolClaimBody = z.strictObject({
  machineId: z
    .string()
    .regex(MACHINE_ID_PATTERN, 'machine ids are 8–32 lowercase letters or digits'),
  name: z.string().regex(/^wm-pool-[a-z]{3}-[a-z0-9]{1,40}$/, 'a pooled machine name'),
  region: z.string().regex(REGION_PATTERN),
  at: z.iso.datetime(),
});
export type PoolClaimBody = z.infer<typeof poolClaimBody>;

/** The landing app's answer to a claimed pooled VM: who it now is. */
export const poolClaimAnswer = z.strictObject({
  launchId: z.string().regex(ULID_PATTERN),
  callbackKey: z.string().regex(/^[0-9a-f]{64}$/),
  ttlMs: z.number().int().positive(),
  idleMs: z.number().int().nonnegative().optional(),
  source: z.enum(['button', 'dash', 'auto']),
  traceparent: z.string().max(64).optional(),
});
export type PoolClaimAnswer = z.infer<typeof poolClaimAnswer>;
