/**
 * The `destroyMachine` effect: destroy a machine by id, or sweep for every machine carrying a
 * launch's id when the launch never learned which one it made. A machine already gone counts as
 * destroyed; every other failure is a fact the vm chart retries on its own deadline.
 */
import type { EffectParams } from '../../machines/index.js';
import { FlyApiError, type FlyMachine } from '../ports/flyMachines.js';
import { errorMessage } from '../shared/errors.js';
import { isRegionCode } from '../shared/regions.js';
import type { EffectContext, Fact } from './actorTypes.js';
import { METADATA, clip, type EffectDeps, type Settled } from './effectDeps.js';

type DestroyParams = EffectParams['destroyMachine'];

export function machineDestroyer(deps: Settled<EffectDeps>) {
  async function findMachines(launchId: string): Promise<FlyMachine[]> {
    return deps.fly.list({ metadata: { [METADATA.launchId]: launchId } });
  }

  /** A destroy that failed: gone already (404) counts as destroyed; anything else is retried. */
  function failed(
    ctx: EffectContext,
    machineId: string,
    launchId: string | undefined,
    err: unknown,
  ): Fact {
    const e = err instanceof FlyApiError ? err : undefined;
    if (e?.status === 404) return { type: 'fly.machineGone', data: { machineId, launchId } };
    ctx.log.warn(
      {
        machineId,
        launchId,
        status: e?.status,
        flyRequestId: e?.requestId,
        err: errorMessage(err),
      },
      'destroy failed',
    );
    return {
      type: 'fly.destroyFailed',
      data: {
        machineId,
        launchId,
        status: e?.status ?? 0,
        message: clip(errorMessage(err)),
        retryable: e?.retryable ?? true,
      },
    };
  }

  return async (p: DestroyParams, ctx: EffectContext): Promise<Fact[]> => {
    let ids: string[];
    const out: Fact[] = [];
    if (p.machineId) ids = [p.machineId];
    else if (p.launchId) {
      let found: FlyMachine[];
      try {
        found = await findMachines(p.launchId);
      } catch (err) {
        ctx.log.warn(
          { err: errorMessage(err), launchId: p.launchId },
          'could not list machines to clean up',
        );
        return [];
      }
      ids = found.map((m) => m.id);
      out.push(...observed(found, p.launchId));
      if (ids.length === 0) {
        // Nothing alive carries the launch's id. Whether that is final depends on a create of it
        // still running here (its answer may yet make one): the chart waits for that.
        const settled = !deps.creates.has(p.launchId);
        return [{ type: 'fly.noMachineFound', data: { launchId: p.launchId, settled } }];
      }
    } else return [];
    for (const machineId of ids) {
      try {
        await deps.fly.destroy(machineId, { force: true, scope: ctx });
        out.push({ type: 'fly.machineDestroyed', data: { machineId, launchId: p.launchId } });
      } catch (err) {
        out.push(failed(ctx, machineId, p.launchId, err));
      }
    }
    return out;
  };
}

/**
 * What a sweep found, said as facts before acting on it: the machine's actor adopts it (and holds
 * its slot), and a launch that never heard of it learns it, so a destroy that fails here is not
 * forgotten when the launch stops sweeping.
 */
function observed(found: readonly FlyMachine[], launchId: string): Fact[] {
  const facts: Fact[] = [];
  for (const m of found) {
    if (!isRegionCode(m.region)) continue;
    const createdAt = Date.parse(m.createdAt);
    facts.push({
      type: 'fly.machineObserved',
      data: {
        machineId: m.id,
        state: m.state,
        region: m.region,
        launchId,
        ...(Number.isFinite(createdAt) ? { createdAt } : {}),
      },
    });
  }
  return facts;
}
