/**
 * The reconciler's part for warm pools (ADR 0022): a machine carrying the `pool` metadata and no
 * launch is a pooled machine, never an orphan. Unknown to its pool, it is adopted
 * (`pool.machineAdded`; the chart retires it at once when its image is not the current one); a
 * ready one found running is stopped; a ready or retiring one no longer listed has gone. One whose
 * pool is not configured (a region dropped from WM_POOL) is destroyed.
 */
import { poolChart, poolStream, MACHINE_ID_PATTERN } from '../../../machines/index.js';
import type { ActorRuntime } from '../../runtime/actorRuntime.js';
import type { FlyMachine, FlyMachines } from '../../ports/flyMachines.js';
import { METADATA } from '../../runtime/effects.js';
import { errorMessage } from '../../shared/errors.js';
import type { Logger } from '../../shared/log.js';
import { isRegionCode } from '../../shared/regions.js';

const POOL_NAME = /^wm-pool-[a-z]{3}-[a-z0-9]{1,40}$/;
const RUNNING = new Set(['starting', 'started']);

/** A listed machine is a pooled one waiting for a claim (a claimed one carries its launch's id). */
export const isPooled = (m: FlyMachine): boolean =>
  m.metadata[METADATA.pool] !== undefined && m.metadata[METADATA.launchId] === undefined;

export interface PoolReconcileReport {
  adopted: number;
  stopped: number;
  gone: number;
  destroyed: number;
}

export async function reconcilePools(
  deps: { runtime: ActorRuntime; fly: FlyMachines; log: Logger; now: number; graceMs: number },
  listed: readonly FlyMachine[],
): Promise<PoolReconcileReport> {
  const { runtime, fly, log } = deps;
  const report: PoolReconcileReport = { adopted: 0, stopped: 0, gone: 0, destroyed: 0 };
  const view = (region: string) => {
    const rec = runtime.actor(poolStream(region));
    const v = rec?.version ? poolChart.view(rec.snapshot) : undefined;
    return v && v.state !== 'unconfigured' ? v : undefined;
  };
  const seen = new Set(listed.filter((m) => m.state !== 'destroyed').map((m) => m.id));
  // First what has gone (so an adopted machine below takes its place, not an extra one): ready
  // or retiring machines the list no longer shows (a young one may be missing from a list that
  // lags its create).
  for (const rec of runtime.actors('pool')) {
    if (!rec.version || rec.snapshot.status !== 'active') continue;
    const pool = poolChart.view(rec.snapshot);
    for (const [machineId, m] of Object.entries(pool.machines)) {
      if (m.state === 'claimed' || seen.has(machineId) || deps.now - m.at < deps.graceMs) continue;
      const [o] = await runtime.dispatch({
        type: 'pool.machineRetired',
        data: { region: pool.region, machineId, reason: 'gone' },
      });
      if (o?.accepted) report.gone++;
    }
  }
  for (const m of listed) {
    if (m.state === 'destroyed' || !isPooled(m) || !MACHINE_ID_PATTERN.test(m.id)) continue;
    const region = m.metadata[METADATA.pool]!;
    const pool = isRegionCode(region) ? view(region) : undefined;
    if (!pool || !POOL_NAME.test(m.name)) {
      try {
        await fly.destroy(m.id, { force: true });
        report.destroyed++;
        log.warn({ machineId: m.id, region }, 'pooled machine of no configured pool: destroyed');
      } catch (err) {
        log.warn(
          { machineId: m.id, err: errorMessage(err) },
          'could not destroy a stray pooled machine',
        );
      }
      continue;
    }
    let known = pool.machines[m.id];
    if (!known) {
      const [o] = await runtime.dispatch({
        type: 'pool.machineAdded',
        data: {
          region,
          machineId: m.id,
          name: m.name,
          instanceId: m.instanceId.slice(0, 64),
          // Without the image it was made of, it counts as an old one and is retired.
          image: (m.metadata[METADATA.poolImage] ?? 'unknown').slice(0, 256) || 'unknown',
        },
      });
      if (o?.accepted) {
        report.adopted++;
        log.info({ machineId: m.id, region }, 'adopted a pooled machine');
      }
      known = view(region)?.machines[m.id];
    }
    if (known?.state === 'ready' && RUNNING.has(m.state)) {
      const [o] = await runtime.dispatch({
        type: 'pool.machineFoundRunning',
        data: { region, machineId: m.id },
      });
      if (o?.accepted) {
        report.stopped++;
        log.warn({ machineId: m.id, region }, 'unclaimed pooled machine running: stopping it');
      }
    }
  }
  return report;
}
