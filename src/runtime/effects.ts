/**
 * The effect runner: turns each intent a chart names into calls on the ports (capacity ledger,
 * Fly Machines) and turns every outcome — success or failure — into facts. Idempotent by design:
 * a create first looks for the machine its launch may already have made, a destroy of a machine
 * that is gone is a success, a spawn of a launch that exists is a no-op.
 */
import type { Effect, EffectParams, LaunchSource } from '../../machines/index.js';
import type { CapacityLedger } from '../ports/capacity.js';
import type { Clock } from '../ports/clock.js';
import {
  CREATE_WITHDRAWN,
  FlyApiError,
  type CreateMachineInput,
  type FlyMachine,
  type FlyMachines,
} from '../ports/flyMachines.js';
import { errorMessage } from '../shared/errors.js';
import type { Logger } from '../shared/log.js';
import { isRegionCode } from '../shared/regions.js';
import type { EffectContext, EffectRunner, Fact } from './actorRuntime.js';

export const METADATA = { launchId: 'launch_id', source: 'source', owner: 'owner' } as const;

export interface EffectDeps {
  fly: FlyMachines;
  ledger: CapacityLedger;
  clock: Clock;
  log: Logger;
  /** The cap on live machines (read at each reservation, so it can change at run time). */
  maxMachines: () => number;
  /** The create request for a launch's machine (image, env with its callback key, metadata…). */
  machineSpec: (p: {
    launchId: string;
    region: string;
    source: LaunchSource;
    ttlMs: number;
    owner: string;
  }) => CreateMachineInput;
  /** What an autospawned launch is started with (its region and id come from the spawn intent). */
  autoLaunch: { owner: string; readyTimeoutMs: number; ttlMs: number };
  /** Rounds of Fly's 60 s wait before giving up on seeing a state (the charts' deadlines cover the rest). */
  waitRounds?: { started: number; destroyed: number };
  /** How often a create with an unknown outcome is re-tried (after checking it made nothing). */
  createAttempts?: number;
  sleep?: (ms: number) => Promise<void>;
  /** The registry of creates in flight (default: one of its own). */
  creates?: InFlightCreates;
}

/**
 * The creates running in this process, per launch id. A sweep that finds no machine for a launch
 * may conclude "none will appear" only if no create of that launch is still on its way.
 */
export type InFlightCreates = Map<string, Promise<Fact[]>>;

const sleepReal = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Outcome unknown: no answer, or the server failed mid-way. A 4xx (429 included) is a refusal. */
const outcomeUnknown = (err: FlyApiError) =>
  err.status === 0 || err.status === 408 || err.status >= 500;

export function createEffectRunner(deps: EffectDeps): EffectRunner {
  const sleep = deps.sleep ?? sleepReal;
  const waitRounds = deps.waitRounds ?? { started: 2, destroyed: 5 };
  const createAttempts = deps.createAttempts ?? 2;
  const log = deps.log;

  const contextOf = (ctx: EffectContext) =>
    ctx.record.snapshot.context as { region?: string; owner?: string; launchId?: string };

  /**
   * `fresh`: this create's own answer. Its deadlines are then counted from no earlier than our own
   * clock's now, so a clock running ahead of Fly's cannot cut a VM's life short; a machine found
   * later keeps Fly's creation time (it may be older than this call).
   */
  function created(
    m: FlyMachine,
    p: { launchId: string; source: LaunchSource; ttlMs: number },
    fresh = false,
  ): Fact<'fly.machineCreated'> {
    const flyCreatedAt = Date.parse(m.createdAt);
    return {
      type: 'fly.machineCreated',
      data: {
        machineId: m.id,
        launchId: p.launchId,
        region: m.region,
        instanceId: m.instanceId,
        state: m.state,
        source: p.source,
        ttlMs: p.ttlMs,
        createdAt: fresh
          ? Math.max(flyCreatedAt || 0, deps.clock.now())
          : flyCreatedAt || deps.clock.now(),
      },
    };
  }

  async function findMachines(launchId: string): Promise<FlyMachine[]> {
    return deps.fly.list({ metadata: { [METADATA.launchId]: launchId } });
  }

  /**
   * What a launch already made, destroyed machines included: a launch gets one machine over its
   * whole life, so a machine of its that is already gone forbids another create as much as a live
   * one does (Fly frees a destroyed machine's name, so the name alone cannot stop a second one).
   */
  async function madeBefore(p: {
    launchId: string;
    source: LaunchSource;
    ttlMs: number;
  }): Promise<Fact[] | undefined> {
    const found = await deps.fly.list({
      metadata: { [METADATA.launchId]: p.launchId },
      includeDeleted: true,
    });
    const live = found.find((m) => m.state !== 'destroyed');
    if (live) {
      log.info(
        { launchId: p.launchId, machineId: live.id },
        'found the machine an earlier create made',
      );
      return [created(live, p)];
    }
    const gone = found[0];
    if (gone) {
      log.warn(
        { launchId: p.launchId, machineId: gone.id },
        'this launch already had a machine and it is destroyed; not creating another',
      );
      return [
        {
          type: 'fly.createFailed',
          data: {
            launchId: p.launchId,
            status: 0,
            message: clip(`machine ${gone.id} of this launch is already destroyed`),
            machineMayExist: false,
          },
        },
      ];
    }
    return undefined;
  }

  /** Creates in flight, per launch id (shared with whoever must know, e.g. the reconciler). */
  const creating: InFlightCreates = deps.creates ?? new Map<string, Promise<Fact[]>>();

  async function createOnce(p: EffectParams['createMachine'], ctx: EffectContext): Promise<Fact[]> {
    const owner = contextOf(ctx).owner ?? '';
    // A create goes out only while its launch still waits for one. A launch that gave up (and
    // swept for what it may have made) or already has its machine must never get another.
    const wanted = () =>
      ctx.record.snapshot.status === 'active' && ctx.record.snapshot.matches('creating');
    // Said when the launch moved on before this create went out: nothing was made by it (an
    // earlier attempt's unknown outcome was looked up and found nothing), so the launch, if it
    // is sweeping, need not wait for it.
    const withdrawn = (): Fact[] => [
      {
        type: 'fly.createFailed',
        data: {
          launchId: p.launchId,
          status: 0,
          message: CREATE_WITHDRAWN,
          machineMayExist: false,
        },
      },
    ];
    if (!wanted()) return withdrawn();
    if (ctx.redrive) {
      // We may have made it before a crash (or another instance did): look before making one.
      try {
        const seen = await madeBefore(p);
        if (seen) return seen;
      } catch (err) {
        log.warn(
          { err: errorMessage(err), launchId: p.launchId },
          'could not look for an existing machine',
        );
        return [failure(p.launchId, err)];
      }
    }
    for (let attempt = 1; ; attempt++) {
      if (!wanted()) return withdrawn();
      try {
        const m = await deps.fly.create(deps.machineSpec({ ...p, owner }), { proceed: wanted });
        log.info(
          { launchId: p.launchId, machineId: m.id, region: m.region, state: m.state },
          'machine created',
        );
        return [created(m, p, true)];
      } catch (err) {
        const e = err instanceof FlyApiError ? err : undefined;
        if (e?.flyMessage === CREATE_WITHDRAWN) return withdrawn();
        log.warn(
          {
            launchId: p.launchId,
            region: p.region,
            attempt,
            status: e?.status,
            flyRequestId: e?.requestId,
            err: errorMessage(err),
          },
          'create failed',
        );
        const named = e?.status === 409;
        if (!named && (!e || !outcomeUnknown(e))) return [failure(p.launchId, err)];
        // The name is taken (409: made by a concurrent or an earlier create), or the create
        // may have happened (unknown outcome). Look before deciding: never a blind retry.
        let seen: Fact[] | undefined;
        try {
          seen = await madeBefore(p);
        } catch (lookErr) {
          log.warn(
            { err: errorMessage(lookErr), launchId: p.launchId },
            'lookup after a failed create failed',
          );
          return [failure(p.launchId, err, named || undefined)];
        }
        if (seen) return seen;
        if (named) return [failure(p.launchId, err, true)];
        if (attempt >= createAttempts) return [failure(p.launchId, err)];
        await sleep(500 * attempt);
      }
    }
  }

  const handlers: {
    [K in Effect['type']]: (p: EffectParams[K], ctx: EffectContext) => Promise<Fact[]>;
  } = {
    async reserveCapacity(p) {
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
            log.error(
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

    async holdCapacity(p) {
      try {
        await deps.ledger.hold(p.holder, deps.clock.now(), p.until);
      } catch (err) {
        log.warn({ err: errorMessage(err), holder: p.holder }, 'could not record a capacity hold');
      }
      return [];
    },

    async releaseCapacity(p) {
      try {
        await deps.ledger.release(p.holder);
      } catch (err) {
        // The hold expires on its own; the slot comes back later rather than never.
        log.warn({ err: errorMessage(err), holder: p.holder }, 'could not release a capacity hold');
      }
      return [];
    },

    async createMachine(p, ctx) {
      // One create at a time per launch in this process: a re-drive that overlaps a create still
      // in flight waits for it, then finds the launch no longer creating.
      const prior = creating.get(p.launchId);
      if (prior) await prior.catch(() => undefined);
      const run = createOnce(p, ctx);
      creating.set(p.launchId, run);
      try {
        return await run;
      } finally {
        if (creating.get(p.launchId) === run) creating.delete(p.launchId);
      }
    },

    async awaitMachine(p, ctx) {
      const region = contextOf(ctx).region ?? '';
      const rounds = p.state === 'started' ? waitRounds.started : waitRounds.destroyed;
      for (let i = 0; i < rounds; i++) {
        try {
          if (await deps.fly.wait(p.machineId, p.state, { timeoutS: 60 })) {
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
          log.warn(
            { err: errorMessage(err), machineId: p.machineId, state: p.state },
            'waiting on a machine failed',
          );
          await sleep(1000);
        }
      }
      return [];
    },

    async destroyMachine(p) {
      let ids: string[];
      const out: Fact[] = [];
      if (p.machineId) ids = [p.machineId];
      else if (p.launchId) {
        try {
          const found = await findMachines(p.launchId);
          ids = found.map((m) => m.id);
          // Say what the sweep found before acting on it: the machine's actor adopts it (and
          // holds its slot), and a launch that never heard of it learns it, so a destroy that
          // fails here is not forgotten when the launch stops sweeping.
          for (const m of found) {
            if (!isRegionCode(m.region)) continue;
            const createdAt = Date.parse(m.createdAt);
            out.push({
              type: 'fly.machineObserved',
              data: {
                machineId: m.id,
                state: m.state,
                region: m.region,
                launchId: p.launchId,
                ...(Number.isFinite(createdAt) ? { createdAt } : {}),
              },
            });
          }
          if (ids.length === 0) {
            // Nothing alive carries the launch's id. Whether that is final depends on a create of
            // it still running here (its answer may yet make one): the chart waits for that.
            return [
              {
                type: 'fly.noMachineFound',
                data: { launchId: p.launchId, settled: !creating.has(p.launchId) },
              },
            ];
          }
        } catch (err) {
          log.warn(
            { err: errorMessage(err), launchId: p.launchId },
            'could not list machines to clean up',
          );
          return [];
        }
      } else return [];
      for (const machineId of ids) {
        try {
          await deps.fly.destroy(machineId, { force: true });
          out.push({ type: 'fly.machineDestroyed', data: { machineId, launchId: p.launchId } });
        } catch (err) {
          const e = err instanceof FlyApiError ? err : undefined;
          if (e?.status === 404)
            out.push({ type: 'fly.machineGone', data: { machineId, launchId: p.launchId } });
          else {
            log.warn(
              {
                machineId,
                launchId: p.launchId,
                status: e?.status,
                flyRequestId: e?.requestId,
                err: errorMessage(err),
              },
              'destroy failed',
            );
            out.push({
              type: 'fly.destroyFailed',
              data: {
                machineId,
                launchId: p.launchId,
                status: e?.status ?? 0,
                message: clip(errorMessage(err)),
                retryable: e?.retryable ?? true,
              },
            });
          }
        }
      }
      return out;
    },

    async spawnLaunch(p) {
      return [{ type: 'launch.requested', data: { ...p, source: 'auto', ...deps.autoLaunch } }];
    },
  };

  return (effect, ctx) => {
    const run = handlers[effect.type] as (p: unknown, ctx: EffectContext) => Promise<Fact[]>;
    return run(effect.params, ctx);
  };
}

function failure(launchId: string, err: unknown, mayExist?: boolean): Fact<'fly.createFailed'> {
  const e = err instanceof FlyApiError ? err : undefined;
  return {
    type: 'fly.createFailed',
    data: {
      launchId,
      status: e?.status ?? 0,
      message: clip(e?.flyMessage ?? errorMessage(err)),
      machineMayExist: mayExist ?? (e ? outcomeUnknown(e) : true),
    },
  };
}

const clip = (s: string) => (s.length > 500 ? `${s.slice(0, 497)}...` : s);
