/**
 * The reconciler: the API is the truth about which machines exist. It lists them (at start,
 * periodically, and when asked, debounced to at most one call per gap) and feeds the differences
 * to the vm actors as facts. An API error changes nothing: the fleet is never emptied, the count
 * never lowered. Machines with our metadata and no live launch are orphans and are destroyed;
 * machines nobody here launched are adopted (shown on the map, destroyed at their TTL).
 */
import {
  isUlid,
  LAUNCH_SOURCES,
  launchChart,
  launchStream,
  vmChart,
  vmStream,
  type LaunchSource,
} from '../../../machines/index.js';
import type { CapacityLedger } from '../../ports/capacity.js';
import type { ActorRecord, ActorRuntime } from '../../runtime/actorRuntime.js';
import type { Clock, Timers } from '../../ports/clock.js';
import { FlyApiError, type FlyMachine, type FlyMachines } from '../../ports/flyMachines.js';
import { METADATA, type InFlightCreates } from '../../runtime/effects.js';
import { errorMessage } from '../../shared/errors.js';
import type { Logger } from '../../shared/log.js';
import { isRegionCode } from '../../shared/regions.js';
import { Debounced } from './debounce.js';
import { isPooled, reconcilePools, type PoolReconcileReport } from './poolReconcile.js';

/** A machine younger than this may be missing from a list yet (the API lags a create). */
export const LIST_GRACE_MS = 30_000;
/** At most this many machines missing from a list are looked up one by one per run. */
const MAX_CONFIRMATIONS = 10;

export interface ReconcileReport {
  ok: boolean;
  listed: number;
  observed: number;
  orphans: number;
  gone: number;
  /** What the pools' part did, when it did anything. */
  pools?: PoolReconcileReport;
  error?: string;
}

export class Reconciler {
  private readonly debounced: Debounced;
  private interval: NodeJS.Timeout | undefined;
  last: ReconcileReport | undefined;

  constructor(
    private readonly deps: {
      fly: FlyMachines;
      runtime: ActorRuntime;
      clock: Clock;
      timers: Timers;
      log: Logger;
      minGapMs: number;
      intervalMs: number;
      ttl: { buttonMs: number; autoMs: number };
      /** Only the leader reconciles (one API caller for the whole cluster). */
      isLeader: () => boolean;
      /** When given, every listed machine keeps its cap slot until the next runs (ADR 0010). */
      ledger?: CapacityLedger;
      /**
       * Creates in flight here, and whether this instance drives a launch: with both, a launch
       * sweeping for a machine that the list shows does not exist is told so (one list serves every
       * sweep whose own lookups the API keeps failing).
       */
      creates?: InFlightCreates;
      drives?: (rec: ActorRecord) => boolean;
      /** Told each run's report (undefined: the run threw), for metrics. */
      onRun?: (report: ReconcileReport | undefined) => void;
    },
  ) {
    this.debounced = new Debounced(
      () => this.runGuarded(),
      deps.minGapMs,
      deps.clock,
      deps.timers,
      'reconcile',
    );
  }

  start(): void {
    this.request();
    this.interval = setInterval(() => this.request(), this.deps.intervalMs);
    this.interval.unref();
  }

  stop(): void {
    if (this.interval) clearInterval(this.interval);
    this.debounced.stop();
  }

  /** Ask for a reconciliation soon (leading edge now if the gap allows, else one trailing run). */
  request(): void {
    if (this.deps.isLeader()) this.debounced.request();
  }

  get runs(): number {
    return this.debounced.runs;
  }

  idle(): Promise<void> {
    return this.debounced.idle();
  }

  private async runGuarded(): Promise<void> {
    try {
      this.last = await this.runOnce();
      this.deps.onRun?.(this.last);
    } catch (err) {
      this.deps.onRun?.(undefined);
      this.deps.log.error({ err: errorMessage(err) }, 'reconciliation failed');
    }
  }

  async runOnce(): Promise<ReconcileReport> {
    const { fly, runtime, clock, log } = this.deps;
    let machines: FlyMachine[];
    try {
      machines = await fly.list();
    } catch (err) {
      log.warn({ err: errorMessage(err) }, 'could not list machines; keeping the fleet as it is');
      return { ok: false, listed: 0, observed: 0, orphans: 0, gone: 0, error: errorMessage(err) };
    }
    const report: ReconcileReport = {
      ok: true,
      listed: machines.length,
      observed: 0,
      orphans: 0,
      gone: 0,
    };
    const seen = new Set<string>();
    const launchesWithMachines = new Set<string>();
    // Pooled machines waiting for a claim are the pools' (poolReconcile.ts), never orphans.
    const pools = await reconcilePools(
      { runtime, fly, log, now: clock.now(), graceMs: LIST_GRACE_MS },
      machines,
    );
    if (pools.adopted + pools.stopped + pools.gone + pools.destroyed > 0) report.pools = pools;
    for (const m of machines) {
      if (m.state === 'destroyed' || !/^[a-z0-9]{8,32}$/.test(m.id) || isPooled(m)) continue;
      seen.add(m.id);
      const owner = m.metadata[METADATA.launchId];
      if (owner) launchesWithMachines.add(owner);
      if (!isRegionCode(m.region)) {
        log.warn(
          { machineId: m.id, region: m.region },
          'machine in a region we do not know; not shown',
        );
        continue;
      }
      const launchId = validLaunchId(m.metadata[METADATA.launchId]);
      const source = validSource(m.metadata[METADATA.source]);
      const createdAt = Date.parse(m.createdAt);
      const outcomes = await runtime.dispatch({
        type: 'fly.machineObserved',
        data: {
          machineId: m.id,
          state: m.state,
          region: m.region,
          ...(launchId ? { launchId } : {}),
          ...(source ? { source } : {}),
          ...(Number.isFinite(createdAt) ? { createdAt } : {}),
          ...(source
            ? { ttlMs: source === 'auto' ? this.deps.ttl.autoMs : this.deps.ttl.buttonMs }
            : {}),
        },
      });
      if (outcomes.some((o) => o.accepted)) report.observed++;
      await this.keepSlot(m.id, launchId);
      if (launchId && !(await this.launchIsLive(launchId))) {
        const [o] = await runtime.dispatch({
          type: 'reconcile.orphanFound',
          data: { machineId: m.id, launchId, why: 'noLiveLaunch' },
        });
        if (o?.accepted) {
          report.orphans++;
          log.warn(
            { machineId: m.id, launchId },
            'orphan machine (its launch is over or unknown): destroying it',
          );
        }
      }
    }
    const now = clock.now();
    let confirmations = 0;
    for (const rec of runtime.actors('vm')) {
      const vm = vmChart.view(rec.snapshot);
      if (!vm.open || vm.state === 'unknown' || seen.has(vm.machineId)) continue;
      // The grace is for a list that has not caught up with a create; a machine that said it is
      // stopping and is no longer listed has gone the way it said. A young one is asked for.
      if (now - vm.createdAt < LIST_GRACE_MS && vm.state !== 'stopping') {
        if (confirmations++ >= MAX_CONFIRMATIONS || !(await this.confirmedGone(vm.machineId)))
          continue;
      }
      const [o] = await runtime.dispatch({
        type: 'fly.machineGone',
        data: { machineId: vm.machineId, ...(vm.launchId ? { launchId: vm.launchId } : {}) },
      });
      if (o?.accepted) report.gone++;
    }
    // A launch still following a machine Fly no longer lists, whose own actor has finished: the
    // fact that ended the machine reached its actor but not the launch (a crash between the two
    // appends). Tell the launch, or it would wait for ever.
    for (const rec of runtime.actors('launch')) {
      const launch = launchChart.view(rec.snapshot);
      if (!launch.open || launch.machineId === undefined || seen.has(launch.machineId)) continue;
      if (now - launch.requestedAt < LIST_GRACE_MS) continue;
      if (this.vmOpen(launch.machineId)) continue;
      const [, o] = await runtime.dispatch({
        type: 'fly.machineGone',
        data: { machineId: launch.machineId, launchId: launch.launchId },
      });
      if (o?.accepted) report.gone++;
    }
    // A launch sweeping for a machine it never learned of, when the list shows none with its id
    // and no create of it is on its way here: there is nothing to wait for.
    const { creates, drives } = this.deps;
    if (creates && drives) {
      for (const rec of runtime.actors('launch')) {
        const launch = launchChart.view(rec.snapshot);
        if (!launch.open || launch.state !== 'cleanup') continue;
        if (launch.machineId !== undefined || launchesWithMachines.has(launch.launchId)) continue;
        if (!drives(rec) || creates.has(launch.launchId)) continue;
        await runtime.dispatch({
          type: 'fly.noMachineFound',
          data: { launchId: launch.launchId, settled: true },
        });
      }
    }
    log.debug(report, 'reconciled');
    return report;
  }

  /**
   * A machine Fly lists still exists, so it holds a slot whatever the ledger forgot or let expire
   * (a destroy that keeps failing outlives its hold). Only while its actor is open: a machine
   * destroyed since the list answered is left to release its slot.
   */
  private async keepSlot(machineId: string, launchId: string | undefined): Promise<void> {
    const { ledger, clock, log, intervalMs, minGapMs } = this.deps;
    if (!ledger || !this.vmOpen(machineId)) return;
    const holder = launchId ?? `vm:${machineId}`;
    const now = clock.now();
    try {
      await ledger.hold(holder, now, now + 2 * (intervalMs + minGapMs));
    } catch (err) {
      log.warn({ err: errorMessage(err), holder }, 'could not keep the slot of a listed machine');
    }
  }

  /** Fly says the machine is destroyed or does not exist (an API error proves nothing). */
  private async confirmedGone(machineId: string): Promise<boolean> {
    try {
      return (await this.deps.fly.get(machineId)).state === 'destroyed';
    } catch (err) {
      return err instanceof FlyApiError && err.status === 404;
    }
  }

  private async launchIsLive(launchId: string): Promise<boolean> {
    const stream = launchStream(launchId);
    const rec = this.deps.runtime.actor(stream);
    if (rec) return launchChart.view(rec.snapshot).open;
    const last = (await this.deps.runtime.replay(stream)).at(-1);
    return last !== undefined && launchChart.view(last.snapshot).open;
  }

  /** This instance holds an open actor for the machine (not one it has seen destroyed). */
  private vmOpen(machineId: string): boolean {
    const rec = this.deps.runtime.actor(vmStream(machineId));
    return rec !== undefined && vmChart.view(rec.snapshot).open;
  }
}

const validLaunchId = (v: string | undefined) => (isUlid(v) ? v : undefined);
const validSource = (v: string | undefined) =>
  (LAUNCH_SOURCES as readonly (string | undefined)[]).includes(v) ? (v as LaunchSource) : undefined;
