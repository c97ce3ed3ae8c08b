/**
 * Drives the warm pools (ADR 0022): the leader states each region's target and the current image
 * (`pool.configured`) at boot and when leadership moves, and drains pools no longer configured.
 * Refills and retirements follow from the charts; claims come from the launch path
 * (src/runtime/poolClaims.ts). With WM_POOL_FOLLOW_DEMAND, a region with a launch in the last hour
 * keeps one machine too. Also what the metrics and the dashboard read of the pools.
 */
import { poolChart, poolStream, type PoolActorView } from '../../../machines/index.js';
import type { Clock } from '../../ports/clock.js';
import type { ActorRuntime } from '../../runtime/actorRuntime.js';
import { errorMessage } from '../../shared/errors.js';
import type { Logger } from '../../shared/log.js';
import type { WhereConfig } from '../config.js';

/** A region keeps a machine this long after its last launch, under WM_POOL_FOLLOW_DEMAND. */
export const DEMAND_WINDOW_MS = 60 * 60_000;
/** How often the demand is looked at again (regions whose hour is up drain). */
const DEMAND_CHECK_MS = 5 * 60_000;

export class PoolDriver {
  /** The latest launch per region this instance has folded (for the demand rule). */
  private readonly lastLaunch = new Map<string, number>();
  private stopWatch: (() => void) | undefined;
  private interval: NodeJS.Timeout | undefined;
  /** The demand regions the pools were last configured with. */
  private demandKey = '';

  constructor(
    private readonly deps: {
      runtime: ActorRuntime;
      log: Logger;
      cfg: WhereConfig['pool'];
      image: string;
      isLeader: () => boolean;
      /** This instance's id, and whether another one is alive (the cluster's view). */
      instance: string;
      isAlive: (instance: string) => boolean;
      clock: Clock;
    },
  ) {}

  /**
   * Under the demand rule: follow every launch (this instance folds the whole cluster's), and look
   * again every few minutes so regions whose hour is up drain.
   */
  start(): void {
    if (!this.deps.cfg.followDemand) return;
    for (const r of this.deps.runtime.actors('launch'))
      this.saw(r.chart.region(r.snapshot), r.touchedAt);
    this.stopWatch = this.deps.runtime.onChange((c) => {
      if (c.event.type !== 'launch.requested') return;
      this.saw(c.record.chart.region(c.record.snapshot), Date.parse(c.event.at));
      // A region newly in demand gets its machine now, not at the next check.
      if (this.demandRegions().join() !== this.demandKey) void this.configure();
    });
    this.interval = setInterval(() => void this.configure(), DEMAND_CHECK_MS);
    this.interval.unref();
  }

  stop(): void {
    this.stopWatch?.();
    if (this.interval) clearInterval(this.interval);
  }

  private saw(region: string | undefined, at: number): void {
    if (region && at > (this.lastLaunch.get(region) ?? 0)) this.lastLaunch.set(region, at);
  }

  /** Regions with a launch in the last hour, the most recent first. */
  demandRegions(): string[] {
    const since = this.deps.clock.now() - DEMAND_WINDOW_MS;
    return [...this.lastLaunch]
      .filter(([, at]) => at >= since)
      .sort((a, b) => b[1] - a[1])
      .map(([region]) => region);
  }

  /** Each region's target: the configured ones, then one per region in demand, within the bound. */
  targets(): Map<string, number> {
    const { cfg } = this.deps;
    const wanted = new Map(cfg.regions.map((r) => [r.region, r.target]));
    if (!cfg.followDemand) return wanted;
    let left = cfg.max - [...wanted.values()].reduce((a, b) => a + b, 0);
    for (const region of this.demandRegions()) {
      if (left <= 0) break;
      if ((wanted.get(region) ?? 0) > 0) continue;
      wanted.set(region, 1);
      left--;
    }
    return wanted;
  }

  /** Every pool this instance has folded, by region. */
  pools(): PoolActorView[] {
    return this.deps.runtime
      .actors('pool')
      .filter((r) => r.version > 0 && r.snapshot.status === 'active')
      .map((r) => poolChart.view(r.snapshot));
  }

  pool(region: string): PoolActorView | undefined {
    const rec = this.deps.runtime.actor(poolStream(region));
    return rec?.version ? poolChart.view(rec.snapshot) : undefined;
  }

  /**
   * Pooled creates whose instance died with them in flight: the pool would otherwise wait for the
   * create's deadline. At boot (`booting`), the creates this very instance sent before it went
   * down; on a cluster change, the leader's view of creates sent by instances no longer alive.
   * The instance that sent a create is the one that stored the fact naming it (its id is in the
   * machine's name).
   */
  async recoverLostCreates(booting: boolean): Promise<void> {
    const { runtime, instance, isAlive, isLeader, log } = this.deps;
    // A leader at boot re-drives its pools' creates itself (outstanding intents).
    if (booting ? isLeader() : !isLeader()) return;
    for (const p of this.pools()) {
      if (p.state !== 'creating' || !p.creating) continue;
      const eventId = p.creating.slice(p.creating.lastIndexOf('-') + 1).toUpperCase();
      try {
        const history = await runtime.history(poolStream(p.region));
        const sender = history.findLast((e) => e.id === eventId)?.meta.instance;
        const lost = booting ? sender === instance : sender !== instance && !isAlive(sender ?? '');
        if (!lost) continue;
        log.warn(
          { region: p.region, name: p.creating, sender },
          'pooled create lost with its instance',
        );
        await runtime.dispatch({
          type: 'pool.createLost',
          data: { region: p.region, name: p.creating },
        });
      } catch (err) {
        log.warn({ region: p.region, err: errorMessage(err) }, 'could not check a pooled create');
      }
    }
  }

  /** Bring every pool's target and image in line with ours; only the leader speaks. */
  async configure(): Promise<void> {
    if (!this.deps.isLeader()) return;
    this.demandKey = this.demandRegions().join();
    const wanted = this.targets();
    // A pool dropped from the configuration drains: target 0 retires its ready machines.
    for (const p of this.pools()) if (!wanted.has(p.region)) wanted.set(p.region, 0);
    for (const [region, target] of wanted) {
      const cur = this.pool(region);
      if (cur && cur.target === target && cur.image === this.deps.image) continue;
      if (!cur && target === 0) continue;
      try {
        await this.deps.runtime.dispatch({
          type: 'pool.configured',
          data: { region, target, image: this.deps.image },
        });
      } catch (err) {
        this.deps.log.warn({ region, err: errorMessage(err) }, 'could not configure a pool');
      }
    }
  }
}
