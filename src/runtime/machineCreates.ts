/**
 * The `createMachine` effect: one Useless Machine per launch over its whole life, whatever
 * crashes, re-drives and unknown outcomes happen. A create goes out only while the launch still
 * waits for one; a re-drive, a 409 or an unknown outcome first looks for what the launch already
 * made; never a blind retry. Every outcome is a fact: `fly.machineCreated` or `fly.createFailed`.
 */
import { launchChart, type EffectParams } from '../../machines/index.js';
import { CREATE_WITHDRAWN, FlyApiError, type FlyMachine } from '../ports/flyMachines.js';
import { errorMessage } from '../shared/errors.js';
import { nearestRegions } from '../shared/regions.js';
import type { Logger } from '../shared/log.js';
import { inSpan, parseTraceparent } from '../shared/trace.js';
import type { EffectContext, Fact } from './actorTypes.js';
import { METADATA, clip, type EffectDeps, type Settled } from './effectDeps.js';

type CreateParams = EffectParams['createMachine'];

/** Outcome unknown: no answer, or the server failed mid-way. A 4xx (429 included) is a refusal. */
const outcomeUnknown = (err: FlyApiError) =>
  err.status === 0 || err.status === 408 || err.status >= 500;

/** Runs creates one at a time per launch (a re-drive that overlaps one in flight waits for it). */
export function machineCreator(deps: Settled<EffectDeps>) {
  const creates = new MachineCreates(deps);
  return (p: CreateParams, ctx: EffectContext) => creates.run(p, ctx);
}

class MachineCreates {
  constructor(private readonly deps: Settled<EffectDeps>) {}

  async run(p: CreateParams, ctx: EffectContext): Promise<Fact[]> {
    const creating = this.deps.creates;
    const prior = creating.get(p.launchId);
    if (prior) await prior.catch(() => undefined);
    const run = this.createOnce(p, ctx);
    creating.set(p.launchId, run);
    try {
      return await run;
    } finally {
      if (creating.get(p.launchId) === run) creating.delete(p.launchId);
    }
  }

  /**
   * `fresh`: this create's own answer. Its deadlines are then counted from no earlier than our own
   * clock's now, so a clock running ahead of Fly's cannot cut a VM's life short; a machine found
   * later keeps Fly's creation time (it may be older than this call).
   */
  private created(m: FlyMachine, p: CreateParams, fresh = false): Fact<'fly.machineCreated'> {
    const flyCreatedAt = Date.parse(m.createdAt);
    const now = this.deps.clock.now();
    const { launchId, source, ttlMs } = p;
    return {
      type: 'fly.machineCreated',
      data: {
        machineId: m.id,
        launchId,
        region: m.region,
        instanceId: m.instanceId,
        state: m.state,
        source,
        ttlMs,
        createdAt: fresh ? Math.max(flyCreatedAt || 0, now) : flyCreatedAt || now,
      },
    };
  }

  /**
   * What a launch already made, destroyed machines included: a launch gets one machine over its
   * whole life, so a machine of its that is already gone forbids another create as much as a live
   * one does (Fly frees a destroyed machine's name, so the name alone cannot stop a second one).
   */
  private async madeBefore(p: CreateParams, log: Logger): Promise<Fact[] | undefined> {
    const found = await this.deps.fly.list({
      metadata: { [METADATA.launchId]: p.launchId },
      includeDeleted: true,
    });
    const live = found.find((m) => m.state !== 'destroyed');
    if (live) {
      log.info(
        { launchId: p.launchId, machineId: live.id },
        'found the machine an earlier create made',
      );
      return [this.created(live, p)];
    }
    const gone = found[0];
    if (!gone) return undefined;
    log.warn(
      { launchId: p.launchId, machineId: gone.id },
      'this launch already had a machine and it is destroyed; not creating another',
    );
    return [refused(p.launchId, `machine ${gone.id} of this launch is already destroyed`)];
  }

  /** After a failed attempt: the facts to answer with, or undefined to try again. */
  private async afterFailure(
    p: CreateParams,
    log: Logger,
    err: unknown,
    attempt: number,
  ): Promise<Fact[] | undefined> {
    const e = err instanceof FlyApiError ? err : undefined;
    if (e?.flyMessage === CREATE_WITHDRAWN) return [refused(p.launchId, CREATE_WITHDRAWN)];
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
    // The name is taken (409: made by a concurrent or an earlier create), or the create may have
    // happened (unknown outcome). Look before deciding: never a blind retry.
    let seen: Fact[] | undefined;
    try {
      seen = await this.madeBefore(p, log);
    } catch (lookErr) {
      log.warn(
        { err: errorMessage(lookErr), launchId: p.launchId },
        'lookup after a failed create failed',
      );
      return [failure(p.launchId, err, named || undefined)];
    }
    if (seen) return seen;
    if (named) return [failure(p.launchId, err, true)];
    if (attempt >= this.deps.createAttempts) return [failure(p.launchId, err)];
    await this.deps.sleep(500 * attempt);
    return undefined;
  }

  /**
   * One create inside its span: the span's position goes to Fly as the request's traceparent and
   * into the machine's metadata and environment, so the VM's callbacks continue the same trace.
   */
  private createTraced(p: CreateParams, ctx: EffectContext, owner: string, wanted: () => boolean) {
    const attributes = { 'wm.launch_id': p.launchId, 'wm.region': p.region };
    return inSpan('fly.create', parseTraceparent(p.traceparent), attributes, (traceparent) =>
      this.deps.fly.create(this.deps.machineSpec({ ...p, owner, traceparent }), {
        proceed: wanted,
        // The effect's logger (made only if used), with the create span's position.
        scope: {
          get log() {
            return ctx.log;
          },
          traceparent,
        },
      }),
    );
  }

  private async createOnce(p: CreateParams, ctx: EffectContext): Promise<Fact[]> {
    const { record } = ctx;
    const owner = record.chart.owner(record.snapshot) ?? '';
    // A create goes out only while its launch still waits for one. A launch that gave up (and
    // swept for what it may have made) or already has its machine must never get another.
    const wanted = () => {
      const launch = launchChart.view(record.snapshot);
      return launch.open && launch.state === 'creating';
    };
    // Said when the launch moved on before this create went out: nothing was made by it (an
    // earlier attempt's unknown outcome was looked up and found nothing), so the launch, if it
    // is sweeping, need not wait for it.
    if (!wanted()) return [refused(p.launchId, CREATE_WITHDRAWN)];
    // A stopped machine of the region's warm pool starts far sooner than a create (ADR 0022).
    const pooled = await this.deps.claimPooled?.(p, owner, ctx, wanted);
    if (pooled) return pooled;
    if (ctx.redrive) {
      // We may have made it before a crash (or another instance did): look before making one.
      try {
        const seen = await this.madeBefore(p, ctx.log);
        if (seen) return seen;
      } catch (err) {
        ctx.log.warn(
          { err: errorMessage(err), launchId: p.launchId },
          'could not look for an existing machine',
        );
        return [failure(p.launchId, err)];
      }
    }
    // The launch's region first, then the nearest ones while Fly says each is full.
    const regions = placesToTry(p);
    const full: Fact[] = [];
    for (let attempt = 1, at = 0; ; attempt++) {
      if (!wanted()) return [...full, refused(p.launchId, CREATE_WITHDRAWN)];
      const region = regions[at];
      if (region === undefined) return [...full, noRegionLeft(p)];
      try {
        const m = await this.createTraced({ ...p, region }, ctx, owner, wanted);
        ctx.log.info(
          { launchId: p.launchId, machineId: m.id, region: m.region, state: m.state },
          region === p.region ? 'machine created' : 'machine created in a nearby region',
        );
        return [...full, this.created(m, p, true)];
      } catch (err) {
        if (err instanceof FlyApiError && isNoCapacity(err)) {
          // A definite refusal (nothing was made): record why, and try the next nearest region.
          ctx.log.warn({ region, status: err.status, flyRequestId: err.requestId }, 'region full');
          full.push(regionFull(p.launchId, region, err));
          at++;
          attempt = 0;
          continue;
        }
        const answer = await this.afterFailure(p, ctx.log, err, attempt);
        if (answer) return [...full, ...answer];
      }
    }
  }
}

/** How many regions after its own a launch tries when Fly says each is full (issue 13). */
export const NEARBY_TRIES = 2;

/** Its own region, then the nearest by great-circle distance. */
const candidates = (p: CreateParams) => [p.region, ...nearestRegions(p.region, NEARBY_TRIES)];

/** The candidates not already found full. */
function placesToTry(p: CreateParams): string[] {
  const skip = new Set(p.exclude ?? []);
  return candidates(p).filter((r) => !skip.has(r));
}

/**
 * Fly's answer when a region cannot take the machine: 412 with `insufficient_capacity` (the
 * emulator, the OpenAPI error shape), or a message saying the region lacks capacity or resources.
 */
export function isNoCapacity(err: FlyApiError): boolean {
  return (
    (err.status === 412 || err.status === 503) &&
    /insufficient[ _](capacity|resources)|no capacity|capacity (is )?(exhausted|unavailable)/i.test(
      err.flyMessage,
    )
  );
}

function regionFull(launchId: string, region: string, err: FlyApiError): Fact<'launch.regionFull'> {
  return {
    type: 'launch.regionFull',
    data: { launchId, region, status: err.status, message: clip(err.flyMessage) },
  };
}

/** Every place tried was full: a refusal (nothing was made), reason `noCapacity`. */
function noRegionLeft(p: CreateParams): Fact<'fly.createFailed'> {
  const tried = candidates(p).join(', ');
  return {
    type: 'fly.createFailed',
    data: {
      launchId: p.launchId,
      status: 412,
      message: clip(`insufficient capacity in ${tried}`),
      machineMayExist: false,
    },
  };
}

/** Nothing was made, for certain: the launch fails without sweeping. */
function refused(launchId: string, message: string): Fact<'fly.createFailed'> {
  return {
    type: 'fly.createFailed',
    data: { launchId, status: 0, message: clip(message), machineMayExist: false },
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
