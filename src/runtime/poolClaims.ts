/**
 * The launch path's warm start (ADR 0022): before a launch creates its machine, take a ready one
 * from its region's pool. The claim is the fact `pool.machineClaimed`, appended with the pool
 * stream's expected version, so of two instances racing for the same machine one is refused (the
 * runtime re-folds on a version conflict and the chart takes a claim only for a `ready` machine).
 * Then the machine gets the launch's metadata (so the create path's lookups by `launch_id` find
 * it) and is started, and the launch hears `fly.machineCreated` as from a create. Any failure after
 * the claim retires that machine and the launch creates as it would have: it never gets two.
 */
import {
  poolChart,
  poolStream,
  type EffectParams,
  type PoolActorView,
} from '../../machines/index.js';
import type { Clock } from '../ports/clock.js';
import { FlyApiError, type FlyMachines } from '../ports/flyMachines.js';
import { errorMessage } from '../shared/errors.js';
import type { ActorRecord, ApplyOutcome, EffectContext, Fact } from './actorTypes.js';
import { METADATA } from './effectDeps.js';

/** How a claim went: a machine started, the pool was empty, every try lost a race, or it failed. */
export type PoolClaimResult = 'claimed' | 'empty' | 'raced' | 'failed';

export interface PoolClaimDeps {
  fly: FlyMachines;
  clock: Clock;
  /** The pool actor of a region as this instance has folded it. */
  pool: (stream: string) => ActorRecord | undefined;
  dispatch: (fact: Fact) => Promise<ApplyOutcome[]>;
  onClaim?: (region: string, result: PoolClaimResult) => void;
}

/** Races a claim may lose in a row before the launch creates instead. */
const CLAIM_TRIES = 3;

export type PoolClaimer = (
  p: EffectParams['createMachine'],
  owner: string,
  ctx: EffectContext,
  wanted: () => boolean,
) => Promise<Fact[] | undefined>;

export function poolClaimer(deps: PoolClaimDeps): PoolClaimer {
  const view = (region: string): PoolActorView | undefined => {
    const rec = deps.pool(poolStream(region));
    return rec && rec.snapshot.status === 'active' ? poolChart.view(rec.snapshot) : undefined;
  };

  /** Machines a claim from this instance is being appended for right now. */
  const inFlight = new Set<string>();

  /** A machine this launch already claimed (a re-drive after a crash resumes it). */
  const claimedBefore = (region: string, launchId: string) => {
    const v = view(region);
    if (!v) return undefined;
    for (const [id, m] of Object.entries(v.machines))
      if (m.state === 'claimed' && m.launchId === launchId) return id;
    return undefined;
  };

  async function claimOne(
    p: EffectParams['createMachine'],
  ): Promise<{ machineId: string } | 'empty' | 'raced'> {
    let raced = false;
    for (let i = 0; i < CLAIM_TRIES; i++) {
      // Claims made here at the same moment each take a different machine: ten clicks at once
      // would otherwise all ask for the first one, and nine lose the race (another instance's
      // claims are still settled by the stream's compare-and-set).
      const candidate = view(p.region)?.ready.find((id) => !inFlight.has(id));
      if (!candidate) return raced ? 'raced' : 'empty';
      inFlight.add(candidate);
      try {
        const outcomes = await deps.dispatch({
          type: 'pool.machineClaimed',
          data: { region: p.region, machineId: candidate, launchId: p.launchId },
        });
        if (outcomes.some((o) => o.accepted)) return { machineId: candidate };
      } finally {
        inFlight.delete(candidate);
      }
      raced = true;
    }
    return 'raced';
  }

  /**
   * Start the claimed machine. A start refused because it is already starting or running for this
   * very launch is a success: a re-drive of the same claim (its owner came back while the leader
   * had taken over) got there first. One that already ran for this launch and is past running is
   * `spent`: it stays the launch's one machine (never a second), and the launch sees it go.
   */
  async function startOnce(machineId: string, launchId: string): Promise<'started' | 'spent'> {
    try {
      await deps.fly.start(machineId);
      return 'started';
    } catch (err) {
      if (!(err instanceof FlyApiError) || err.status !== 412) throw err;
      const m = await deps.fly.get(machineId);
      if (m.metadata[METADATA.launchId] !== launchId) throw err;
      return m.state === 'starting' || m.state === 'started' ? 'started' : 'spent';
    }
  }

  /** Undo a claim whose start failed: the machine leaves the pool, destroyed. */
  async function giveUp(p: EffectParams['createMachine'], machineId: string, ctx: EffectContext) {
    try {
      await deps.fly.deleteMetadata(machineId, METADATA.launchId);
      await deps.fly.destroy(machineId, { force: true, scope: ctx });
    } catch (err) {
      // Left with no launch (or the launch's id): the reconciler finds it and retires it.
      ctx.log.warn({ machineId, err: errorMessage(err) }, 'could not retire a failed pooled claim');
    }
    await retired(p, machineId);
  }

  const retired = (p: EffectParams['createMachine'], machineId: string) =>
    deps.dispatch({
      type: 'pool.machineRetired',
      data: { region: p.region, machineId, reason: 'claimFailed' },
    });

  return async (p, owner, ctx, wanted) => {
    if (!wanted()) return undefined;
    // A claim this launch made before a crash or a takeover is resumed: metadata, start.
    let machineId = claimedBefore(p.region, p.launchId);
    if (!machineId) {
      // A re-drive may follow a create that went out before the crash: the create path looks
      // for it first, and only a first attempt takes from the pool.
      if (ctx.redrive) return undefined;
      const got = await claimOne(p);
      if (got === 'empty' || got === 'raced') {
        // No pool for the region says nothing worth counting.
        if (view(p.region)) deps.onClaim?.(p.region, got);
        return undefined;
      }
      machineId = got.machineId;
    }
    const v = view(p.region);
    const m = v?.machines[machineId];
    try {
      // The launch's identity first (a create's lookups by launch_id find this machine), then start.
      // Three keys, no more: Fly allows a burst of three calls per action and machine, and a
      // fourth would wait a second on the visitor's path. The trace reaches the VM in its claim.
      await Promise.all([
        deps.fly.setMetadata(machineId, METADATA.launchId, p.launchId),
        deps.fly.setMetadata(machineId, METADATA.source, p.source),
        deps.fly.setMetadata(machineId, METADATA.owner, owner),
      ]);
      const how = await startOnce(machineId, p.launchId);
      if (how === 'spent')
        ctx.log.warn(
          { launchId: p.launchId, machineId },
          'the pooled machine of this launch already ran',
        );
    } catch (err) {
      ctx.log.warn(
        { launchId: p.launchId, machineId, err: errorMessage(err) },
        'starting a pooled machine failed; creating one instead',
      );
      deps.onClaim?.(p.region, 'failed');
      // Gone already (404): only the pool's record is left to clear; the create path then looks
      // for what this launch had (on a re-drive) before it creates.
      if (err instanceof FlyApiError && err.status === 404) await retired(p, machineId);
      else await giveUp(p, machineId, ctx);
      return undefined;
    }
    deps.onClaim?.(p.region, 'claimed');
    ctx.log.info({ launchId: p.launchId, machineId, region: p.region }, 'pooled machine started');
    return [
      {
        type: 'fly.machineCreated',
        data: {
          machineId,
          launchId: p.launchId,
          region: p.region,
          instanceId: m?.instanceId ?? '',
          // Started, not yet seen running: the launch watches it reach `started` as after a create.
          state: 'created',
          source: p.source,
          ttlMs: p.ttlMs,
          createdAt: deps.clock.now(),
          pooled: true,
        },
      },
    ];
  };
}
