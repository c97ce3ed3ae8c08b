/**
 * The effect runner: turns each intent a chart names into calls on the ports (capacity ledger,
 * Fly Machines) and turns every outcome — success or failure — into facts. Idempotent by design:
 * a create first looks for the machine its launch may already have made (machineCreates.ts), a
 * destroy of a machine that is gone is a success (machineDestroys.ts), a spawn of a launch that
 * exists is a no-op.
 */
import type { Effect, EffectParams } from '../../machines/index.js';
import { FlyApiError } from '../ports/flyMachines.js';
import { errorMessage } from '../shared/errors.js';
import type { EffectContext, EffectRunner, Fact } from './actorTypes.js';
import type { EffectDeps } from './effectDeps.js';
import { machineCreator } from './machineCreates.js';
import { machineDestroyer } from './machineDestroys.js';
import { poolEffects } from './poolEffects.js';
import { sleepReal } from './realTime.js';
import { formatTraceparent, mintTrace } from '../shared/trace.js';

export { METADATA, type EffectDeps, type InFlightCreates } from './effectDeps.js';

type Handlers = {
  [K in Effect['type']]: (p: EffectParams[K], ctx: EffectContext) => Promise<Fact[]>;
};

export function createEffectRunner(deps: EffectDeps): EffectRunner {
  const settled = {
    ...deps,
    sleep: deps.sleep ?? sleepReal,
    waitRounds: deps.waitRounds ?? { started: 2, destroyed: 5 },
    createAttempts: deps.createAttempts ?? 2,
    // Shared with whoever must know what is being created (the reconciler, the sweeps).
    creates: deps.creates ?? new Map<string, Promise<Fact[]>>(),
  };
  const { sleep, waitRounds } = settled;
  const pool = poolEffects(settled);

  const handlers: Handlers = {
    async reserveCapacity(p, ctx) {
      const limit = deps.maxMachines();
      for (let attempt = 0; ; attempt++) {
        try {
          const r = await deps.ledger.reserve(p.launchId, limit, deps.clock.now(), p.until);
          return [
            {
              type: r.ok ? 'capacity.reserved' : 'capacity.exhausted',
              data: { launchId: p.launchId, live: r.live, limit },
            },
          ];
        } catch (err) {
          // Fail closed: without a working ledger we cannot prove there is room.
          if (attempt >= 2) {
            ctx.log.error(
              { err: errorMessage(err), launchId: p.launchId },
              'capacity ledger unavailable; refusing the launch',
            );
            return [
              { type: 'capacity.exhausted', data: { launchId: p.launchId, live: limit, limit } },
            ];
          }
          await sleep(200 * 2 ** attempt);
        }
      }
    },

    async holdCapacity(p, ctx) {
      try {
        await deps.ledger.hold(p.holder, deps.clock.now(), p.until);
      } catch (err) {
        ctx.log.warn(
          { err: errorMessage(err), holder: p.holder },
          'could not record a capacity hold',
        );
      }
      return [];
    },

    async releaseCapacity(p, ctx) {
      try {
        await deps.ledger.release(p.holder);
      } catch (err) {
        // The hold expires on its own; the slot comes back later rather than never.
        ctx.log.warn(
          { err: errorMessage(err), holder: p.holder },
          'could not release a capacity hold',
        );
      }
      return [];
    },

    createMachine: machineCreator(settled),

    async awaitMachine(p, ctx) {
      const { record } = ctx;
      const region = record.chart.region(record.snapshot) ?? '';
      const rounds = p.state === 'started' ? waitRounds.started : waitRounds.destroyed;
      for (let i = 0; i < rounds; i++) {
        try {
          if (await deps.fly.wait(p.machineId, p.state, { timeoutS: 60, scope: ctx })) {
            return [
              {
                type: 'fly.machineObserved',
                data: { machineId: p.machineId, launchId: p.launchId, state: p.state, region },
              },
            ];
          }
        } catch (err) {
          if (err instanceof FlyApiError && err.status === 404) {
            return [
              { type: 'fly.machineGone', data: { machineId: p.machineId, launchId: p.launchId } },
            ];
          }
          ctx.log.warn(
            { err: errorMessage(err), machineId: p.machineId, state: p.state },
            'waiting on a machine failed',
          );
          await sleep(1000);
        }
      }
      return [];
    },

    destroyMachine: machineDestroyer(settled),

    async spawnLaunch(p) {
      // An autospawned launch has no request to continue: its trace starts here.
      const traceparent = formatTraceparent(mintTrace());
      return [
        {
          type: 'launch.requested',
          data: { ...p, source: 'auto', ...deps.autoLaunch, traceparent },
        },
      ];
    },

    createPooled: pool.createPooled,
    retirePooled: pool.retirePooled,
    stopPooled: pool.stopPooled,
  };

  return (effect, ctx) => {
    const run = handlers[effect.type] as (p: unknown, ctx: EffectContext) => Promise<Fact[]>;
    return run(effect.params, ctx);
  };
}
