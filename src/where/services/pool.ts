/**
 * Drives the warm pools (ADR 0022): the leader states each region's target and the current image
 * (`pool.configured`) at boot and when leadership moves, and drains pools no longer configured.
 * Refills and retirements follow from the charts; claims come from the launch path
 * (src/runtime/poolClaims.ts). Also what the metrics and the dashboard read of the pools.
 */
import { poolChart, poolStream, type PoolActorView } from '../../../machines/index.js';
import type { ActorRuntime } from '../../runtime/actorRuntime.js';
import { errorMessage } from '../../shared/errors.js';
import type { Logger } from '../../shared/log.js';
import type { WhereConfig } from '../config.js';

export class PoolDriver {
  constructor(
    private readonly deps: {
      runtime: ActorRuntime;
      log: Logger;
      cfg: WhereConfig['pool'];
      image: string;
      isLeader: () => boolean;
    },
  ) {}

  /** Every pool this instance has folded, by region. */
  pools(): PoolActorView[] {
    return this.deps.runtime
      .actors('pool')
      .filter((r) => r.version > 0 && r.snapshot.status === 'active')
      .map((r) => poolChart.view(r.snapshot as never));
  }

  pool(region: string): PoolActorView | undefined {
    const rec = this.deps.runtime.actor(poolStream(region));
    return rec?.version ? poolChart.view(rec.snapshot as never) : undefined;
  }

  /** Bring every pool's target and image in line with ours; only the leader speaks. */
  async configure(): Promise<void> {
    if (!this.deps.isLeader()) return;
    const wanted = new Map(this.deps.cfg.regions.map((r) => [r.region, r.target]));
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
