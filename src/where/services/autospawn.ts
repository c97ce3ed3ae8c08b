/**
 * Drives the autospawner chart from the outside world: its configuration at boot, visitor presence
 * (open fleet streams across the cluster), re-stated while visitors stay so the inactivity safety
 * only fires when presence really stops, and the operator's switch. Only the leader speaks.
 */
import {
  AUTOSPAWNER_STREAM,
  autospawnerChart,
  type AutospawnerActorView,
} from '../../../machines/index.js';
import type { ActorRuntime } from '../../runtime/actorRuntime.js';
import type { Clock } from '../../ports/clock.js';
import { errorMessage } from '../../shared/errors.js';
import type { Logger } from '../../shared/log.js';
import type { WhereConfig } from '../config.js';

export interface AutospawnerView {
  state: 'off' | 'idle' | 'active';
  enabled: boolean;
  intervalMs: number;
  regions: string[];
  nextRegion: string | undefined;
  nextSpawnAt: string | undefined;
  lastSpawnAt: string | undefined;
  visitors: number;
  spawns: number;
}

export class AutospawnDriver {
  private lastStatedAt = 0;
  private interval: NodeJS.Timeout | undefined;

  constructor(
    private readonly deps: {
      runtime: ActorRuntime;
      clock: Clock;
      log: Logger;
      cfg: WhereConfig['autospawn'];
      isLeader: () => boolean;
      visitors: () => number;
      random?: () => number;
    },
  ) {}

  /** The chart as it stands, once it has a stored fact. */
  private current(): AutospawnerActorView | undefined {
    const rec = this.deps.runtime.actor(AUTOSPAWNER_STREAM);
    return rec?.version ? autospawnerChart.view(rec.snapshot) : undefined;
  }

  /** Bring the chart's configuration in line with ours (keeping a run-time switch as it was). */
  async configure(): Promise<void> {
    if (!this.deps.isLeader()) return;
    const c = this.current();
    const { cfg } = this.deps;
    const enabled = c ? c.enabled : cfg.enabled;
    if (
      c &&
      c.intervalMs === cfg.intervalMs &&
      c.inactivityMs === cfg.inactivityMs &&
      c.regions.join() === cfg.regions.join()
    )
      return;
    await this.deps.runtime.dispatch({
      type: 'autospawner.configured',
      data: {
        intervalMs: cfg.intervalMs,
        inactivityMs: cfg.inactivityMs,
        regions: cfg.regions,
        enabled,
      },
    });
  }

  start(): void {
    // Re-state presence a few times per inactivity period while visitors stay.
    const every = Math.max(1000, Math.floor(this.deps.cfg.inactivityMs / 3));
    this.interval = setInterval(() => void this.sync(), every);
    this.interval.unref();
  }

  stop(): void {
    if (this.interval) clearInterval(this.interval);
  }

  /** Tell the chart how many visitors there are, when that changed or is due to be re-stated. */
  async sync(): Promise<void> {
    if (!this.deps.isLeader()) return;
    try {
      const visitors = this.deps.visitors();
      const c = this.current();
      const now = this.deps.clock.now();
      const restate = visitors > 0 && now - this.lastStatedAt >= this.deps.cfg.inactivityMs / 3;
      // The chart cares whether anybody watches, not how many: store a fact only when that flips
      // (or to re-state presence), so page views do not grow the autospawner's stream.
      if (c && c.visitors > 0 === visitors > 0 && !restate) return;
      this.lastStatedAt = now;
      await this.deps.runtime.dispatch({
        type: 'presence.changed',
        data: { visitors, roll: (this.deps.random ?? Math.random)() },
      });
    } catch (err) {
      this.deps.log.warn(
        { err: errorMessage(err) },
        'could not report presence to the autospawner',
      );
    }
  }

  async switch(on: boolean, by: string): Promise<boolean> {
    const [o] = await this.deps.runtime.dispatch({
      type: 'autospawner.switched',
      data: { on, by },
    });
    return o?.accepted ?? false;
  }

  view(): AutospawnerView {
    const rec = this.deps.runtime.actor(AUTOSPAWNER_STREAM);
    // Read even before its first stored fact (its initial snapshot), as the dashboard always was.
    const c = rec && autospawnerChart.view(rec.snapshot);
    const cfg = this.deps.cfg;
    const iso = (ms: number | undefined) =>
      ms === undefined ? undefined : new Date(ms).toISOString();
    return {
      state: c ? c.state : cfg.enabled ? 'idle' : 'off',
      enabled: c?.enabled ?? cfg.enabled,
      intervalMs: c?.intervalMs ?? cfg.intervalMs,
      regions: c?.regions ?? cfg.regions,
      nextRegion: c ? c.nextRegion : cfg.regions[0],
      nextSpawnAt: iso(c?.timers.spawn),
      lastSpawnAt: iso(c?.lastSpawnAt),
      visitors: this.deps.visitors(),
      spawns: c?.spawns ?? 0,
    };
  }
}
