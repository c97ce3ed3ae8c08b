/**
 * A pooled VM asks for its claim when it starts (`POST /api/pool_claim` on the private listener,
 * ADR 0022): signed with its pool key, HMAC(secret, its name). The answer is the identity of the
 * launch that claimed it, including that launch's callback key, so only the machine itself (the
 * holder of its pool key, bound to its id by the pool's record) can learn it. No claim yet (the
 * claim may still be folding here): 404 POOL_UNCLAIMED, and the VM asks again.
 */
import { z } from 'zod';
import { launchChart, launchStream, poolChart, poolStream } from '../../../machines/index.js';
import type { Clock } from '../../ports/clock.js';
import type { ActorRuntime } from '../../runtime/actorRuntime.js';
import {
  deriveLaunchKey,
  derivePoolKey,
  poolClaimBody,
  verifySignature,
  type PoolClaimAnswer,
} from '../../shared/callbackAuth.js';
import { AppError } from '../../shared/errors.js';

export class PoolClaimDesk {
  constructor(
    private readonly deps: {
      runtime: ActorRuntime;
      clock: Clock;
      secret: string;
      /** The idle time a VM is given (WM_VM_IDLE_MS), as a created one gets it in its env. */
      idleMs: number;
    },
  ) {}

  handle(rawBody: string, signature: string | undefined): PoolClaimAnswer {
    let json: unknown;
    try {
      json = JSON.parse(rawBody);
    } catch {
      throw new AppError('BAD_JSON', 'the body is not JSON');
    }
    const parsed = poolClaimBody.safeParse(json);
    if (!parsed.success) throw new AppError('BAD_POOL_CLAIM', z.prettifyError(parsed.error));
    const body = parsed.data;
    const key = derivePoolKey(this.deps.secret, body.name);
    const check = verifySignature(key, rawBody, signature, this.deps.clock.now());
    if (!check.ok) throw new AppError(check.code, check.message);

    const rec = this.deps.runtime.actor(poolStream(body.region));
    const m = rec?.version ? poolChart.view(rec.snapshot).machines[body.machineId] : undefined;
    // The name signs the request; the pool's record binds the name to one machine id.
    if (m && m.name !== body.name)
      throw new AppError('MACHINE_MISMATCH', 'this machine has another name in its pool');
    if (!m || m.state !== 'claimed' || !m.launchId)
      throw new AppError('POOL_UNCLAIMED', 'no launch has claimed this machine (yet)');
    const launch = this.deps.runtime.actor(launchStream(m.launchId));
    if (!launch)
      throw new AppError('POOL_UNCLAIMED', 'the claiming launch is not known here (yet)');
    const l = launchChart.view(launch.snapshot);
    if (!l.open) throw new AppError('LAUNCH_GONE', 'the launch that claimed this machine is over');
    return {
      launchId: l.launchId,
      callbackKey: deriveLaunchKey(this.deps.secret, l.launchId),
      ttlMs: l.ttlMs,
      idleMs: this.deps.idleMs,
      source: l.source,
      ...(l.traceparent ? { traceparent: l.traceparent } : {}),
    };
  }
}
