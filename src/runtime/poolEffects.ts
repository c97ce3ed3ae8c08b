/**
 * The warm pool's effects (ADR 0022): create a stopped machine for a region's pool (Fly's
 * skip_launch), retire (destroy) pooled machines that leave the pool unclaimed, stop one found
 * running. Idempotent: a re-driven create first looks for the machine by its name, a destroy of a
 * machine that is gone is a success, a stop of a stopped machine changes nothing.
 */
import { poolChart, type EffectParams } from '../../machines/index.js';
import { CREATE_WITHDRAWN, FlyApiError, type FlyMachine } from '../ports/flyMachines.js';
import { errorMessage } from '../shared/errors.js';
import type { EffectContext, Fact } from './actorTypes.js';
import { METADATA, clip, type EffectDeps, type Settled } from './effectDeps.js';

type Deps = Settled<EffectDeps>;

export function poolEffects(deps: Deps) {
  /** The machine a pooled create made, found by its name (names are unique per app). */
  async function findNamed(region: string, name: string): Promise<FlyMachine | undefined> {
    const found = await deps.fly.list({ metadata: { [METADATA.pool]: region } });
    return found.find((m) => m.name === name && m.state !== 'destroyed');
  }

  const added = (p: EffectParams['createPooled'], m: FlyMachine): Fact<'pool.machineAdded'> => ({
    type: 'pool.machineAdded',
    data: {
      region: p.region,
      machineId: m.id,
      name: p.name,
      instanceId: m.instanceId,
      image: p.image,
    },
  });

  const failed = (p: EffectParams['createPooled'], err: unknown): Fact<'pool.createFailed'> => {
    const e = err instanceof FlyApiError ? err : undefined;
    return {
      type: 'pool.createFailed',
      data: {
        region: p.region,
        name: p.name,
        status: e?.status ?? 0,
        message: clip(e?.flyMessage ?? errorMessage(err)),
      },
    };
  };

  async function createPooled(p: EffectParams['createPooled'], ctx: EffectContext) {
    // Sent only while the pool still waits for this very create (not after its deadline passed).
    const wanted = () => {
      const rec = ctx.record;
      return rec.snapshot.status === 'active' && poolChart.view(rec.snapshot).creating === p.name;
    };
    if (!deps.poolSpec) return [failed(p, new Error('no pool spec configured'))];
    if (!wanted()) return [];
    try {
      if (ctx.redrive) {
        const seen = await findNamed(p.region, p.name);
        if (seen) return [added(p, seen)];
      }
      const m = await deps.fly.create(deps.poolSpec(p), { proceed: wanted, scope: ctx });
      ctx.log.info({ region: p.region, machineId: m.id, name: p.name }, 'pooled machine created');
      return [added(p, m)];
    } catch (err) {
      if (err instanceof FlyApiError && err.flyMessage === CREATE_WITHDRAWN) return [];
      ctx.log.warn(
        { region: p.region, name: p.name, err: errorMessage(err) },
        'pooled create failed',
      );
      // 409: the name is taken, so an earlier attempt made it. An unknown outcome may have made
      // it too: look once; whatever is missed here the reconciler adopts later.
      const e = err instanceof FlyApiError ? err : undefined;
      if (!e || e.status === 409 || e.status === 0 || e.status >= 500) {
        try {
          const seen = await findNamed(p.region, p.name);
          if (seen) return [added(p, seen)];
        } catch {
          // The pool backs off and tries again; the reconciler adopts a machine made meanwhile.
        }
      }
      return [failed(p, err)];
    }
  }

  async function retirePooled(p: EffectParams['retirePooled'], ctx: EffectContext) {
    const out: Fact[] = [];
    for (const { machineId, reason } of p.machines) {
      for (let attempt = 1; ; attempt++) {
        try {
          await deps.fly.destroy(machineId, { force: true, scope: ctx });
          out.push({ type: 'pool.machineRetired', data: { region: p.region, machineId, reason } });
          break;
        } catch (err) {
          const e = err instanceof FlyApiError ? err : undefined;
          if (e?.status === 404) {
            out.push({
              type: 'pool.machineRetired',
              data: { region: p.region, machineId, reason },
            });
            break;
          }
          ctx.log.warn(
            { machineId, attempt, err: errorMessage(err) },
            'retiring a pooled machine failed',
          );
          // Left `retiring`: re-driven when the pool is taken over, found again by the reconciler.
          if (attempt >= 3) break;
          await deps.sleep(500 * attempt);
        }
      }
    }
    return out;
  }

  async function stopPooled(p: EffectParams['stopPooled'], ctx: EffectContext) {
    try {
      await deps.fly.stop(p.machineId);
      ctx.log.info(
        { region: p.region, machineId: p.machineId },
        'stopped an unclaimed pooled machine',
      );
      // Pooled machines are auto-destroyed when they stop (they are consumed after a claim), so a
      // stray start costs the machine: say so at once, and the pool replaces it.
      const after = await deps.fly.get(p.machineId).catch((err: unknown) => {
        if (err instanceof FlyApiError && err.status === 404) return undefined;
        throw err;
      });
      if (!after || after.state === 'destroyed' || after.state === 'destroying')
        return [
          {
            type: 'pool.machineRetired',
            data: { region: p.region, machineId: p.machineId, reason: 'gone' },
          },
        ] as Fact[];
    } catch (err) {
      // The reconciler finds it again on its next pass.
      ctx.log.warn(
        { machineId: p.machineId, err: errorMessage(err) },
        'could not stop a pooled machine',
      );
    }
    return [] as Fact[];
  }

  return { createPooled, retirePooled, stopPooled };
}
