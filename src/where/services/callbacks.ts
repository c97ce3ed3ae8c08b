/**
 * The VM's calls home ("listening", "stopping"): parsed, authenticated with the launch's own key,
 * checked against what we know of the launch, then handed to the runtime as facts. Forged,
 * replayed, unknown or malformed calls get a 4xx and change nothing; a duplicate is harmless.
 */
import { launchChart, launchStream } from '../../../machines/index.js';
import { z } from 'zod';
import type { ActorRuntime } from '../../runtime/actorRuntime.js';
import type { Clock } from '../../ports/clock.js';
import {
  deriveLaunchKey,
  machineStatusBody,
  verifySignature,
  SIGNATURE_TOLERANCE_S,
} from '../../shared/callbackAuth.js';
import { AppError } from '../../shared/errors.js';
import { isRegionCode } from '../../shared/regions.js';
import type { Launches } from './launches.js';

export interface CallbackResult {
  accepted: boolean;
  launchId: string;
  machineId: string;
  status: 'listening' | 'stopping';
}

export class Callbacks {
  /** Signatures seen within the tolerance window: the same signed request twice is a replay. */
  private readonly seen = new Map<string, number>();

  constructor(
    private readonly deps: {
      runtime: ActorRuntime;
      launches: Launches;
      clock: Clock;
      secret: string;
    },
  ) {}

  async handle(rawBody: string, signature: string | undefined): Promise<CallbackResult> {
    const now = this.deps.clock.now();
    let json: unknown;
    try {
      json = JSON.parse(rawBody);
    } catch {
      throw new AppError('BAD_JSON', 'the body is not JSON');
    }
    const parsed = machineStatusBody.safeParse(json);
    if (!parsed.success) throw new AppError('BAD_CALLBACK', z.prettifyError(parsed.error));
    const body = parsed.data;

    const check = verifySignature(
      deriveLaunchKey(this.deps.secret, body.launchId),
      rawBody,
      signature,
      now,
    );
    if (!check.ok) throw new AppError(check.code, check.message);
    this.prune(now);
    if (this.seen.has(signature!))
      throw new AppError('CALLBACK_REPLAYED', 'this signed request was already received');
    if (!isRegionCode(body.region))
      throw new AppError('BAD_REGION', `unknown region "${body.region}"`);

    const launch = await this.deps.launches.current(body.launchId);
    if (!launch) throw new AppError('LAUNCH_NOT_FOUND', 'no such launch');
    const known = launch.view.machineId;
    if (known && known !== body.machineId) {
      throw new AppError('MACHINE_MISMATCH', 'this launch belongs to another machine');
    }
    this.seen.set(signature!, now);

    const rec = this.deps.runtime.actor(launchStream(body.launchId));
    const ttlMs = rec && launchChart.view(rec.snapshot).ttlMs;
    // A repeat (a VM retrying, or reaching both URLs) is refused by the charts: nothing stored.
    const outcomes =
      body.status === 'listening'
        ? await this.deps.runtime.dispatch({
            type: 'vm.listening',
            data: {
              machineId: body.machineId,
              launchId: body.launchId,
              region: body.region,
              ...(ttlMs ? { ttlMs } : {}),
            },
          })
        : await this.deps.runtime.dispatch({
            type: 'vm.stopping',
            data: {
              machineId: body.machineId,
              launchId: body.launchId,
              ...(body.reason ? { reason: body.reason } : {}),
            },
          });
    return {
      accepted: outcomes.some((o) => o.accepted),
      launchId: body.launchId,
      machineId: body.machineId,
      status: body.status,
    };
  }

  private prune(now: number): void {
    const horizon = now - 2 * SIGNATURE_TOLERANCE_S * 1000;
    for (const [sig, at] of this.seen) {
      if (at >= horizon) break;
      this.seen.delete(sig);
    }
  }
}
