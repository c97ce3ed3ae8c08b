/**
 * Keeps the capacity ledger true to what may exist: at boot it is rebuilt from the open actors'
 * stored facts (a crash must not free the slots of machines that still run), and every
 * reconciliation re-asserts a slot for each machine Fly lists (ADR 0010).
 */
import { CAPACITY_GRACE_MS } from '../../../machines/index.js';
import type { CapacityLedger } from '../../ports/capacity.js';
import type { Clock } from '../../ports/clock.js';
import type { ActorRecord } from '../../runtime/actorRuntime.js';
import { errorMessage } from '../../shared/errors.js';
import type { Logger } from '../../shared/log.js';

export interface RestoreReport {
  holders: number;
  failed: number;
}

/**
 * Take a slot for every holder the open actors stand for. A hold whose recorded end has passed
 * while its actor is still open (a destroy that keeps failing) is kept for another grace period:
 * the machine may still exist, so it still counts.
 */
export async function restoreHolds(
  open: readonly ActorRecord[],
  deps: { ledger: CapacityLedger; clock: Clock; log: Logger },
): Promise<RestoreReport> {
  const now = deps.clock.now();
  const until = new Map<string, number>();
  for (const rec of open) {
    for (const h of rec.chart.holds(rec.snapshot)) {
      const end = Math.max(h.until, now + CAPACITY_GRACE_MS);
      until.set(h.holder, Math.max(end, until.get(h.holder) ?? 0));
    }
  }
  let failed = 0;
  for (const [holder, end] of until) {
    try {
      await deps.ledger.hold(holder, now, end);
    } catch (err) {
      failed++;
      deps.log.warn({ err: errorMessage(err), holder }, 'could not restore a capacity hold');
    }
  }
  if (until.size > 0)
    deps.log.info({ holders: until.size, failed }, 'capacity holds restored from stored facts');
  return { holders: until.size, failed };
}
