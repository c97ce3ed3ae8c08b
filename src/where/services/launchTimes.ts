/**
 * Launch times per region, pure: the click→ready durations of the last ready launches (their
 * median is what a visitor should expect there) and of the launch's UTC day (to say how one launch
 * compared). Fed with durations measured between facts' own times, so every instance agrees.
 */

/** How many of a region's latest ready launches make its typical time. */
export const RECENT_LAUNCHES = 50;
/** At most this many launches per region and day are kept for comparisons (the oldest go first). */
export const DAY_LAUNCHES = 2000;
const DAY_MS = 86_400_000;

/** One launch that got ready: its region, click→ready milliseconds and when it got ready. */
export interface ReadyLaunch {
  readonly launchId: string;
  readonly region: string;
  readonly ms: number;
  /** Epoch ms of the fact that made it ready. */
  readonly at: number;
}

/** A region's typical launch: the median of its last `count` (≤ RECENT_LAUNCHES) ready launches. */
export interface RegionTimes {
  readonly medianMs: number;
  readonly count: number;
}

/** How a launch compared with the other launches of its region and UTC day. */
export interface Comparison {
  /** Percentage (rounded down) of those others that took longer; absent when there were none. */
  readonly fasterThanPct?: number;
  /** How many others there were. */
  readonly of: number;
}

type Entry = Omit<ReadyLaunch, 'region'>;

/** What one region keeps; also the saved form (plain data). */
export interface RegionState {
  /** The latest ready launches, oldest first (by ready time). */
  recent: Entry[];
  /** The UTC day (days since the epoch) `today` is about. */
  day: number;
  /** That day's ready launches, in the order they arrived. */
  today: Entry[];
}

export const utcDay = (at: number) => Math.floor(at / DAY_MS);

export function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  if (s.length === 0) return 0;
  return s.length % 2 === 1 ? s[mid]! : Math.round((s[mid - 1]! + s[mid]!) / 2);
}

export class LaunchTimesStats {
  private readonly regions = new Map<string, RegionState>();

  constructor(
    private readonly limits: { recent: number; day: number } = {
      recent: RECENT_LAUNCHES,
      day: DAY_LAUNCHES,
    },
  ) {}

  /**
   * Count a ready launch. Returns false when it was already counted (a fact seen twice: at boot and
   * live) or is too old to change anything.
   */
  add(l: ReadyLaunch): boolean {
    if (!Number.isFinite(l.ms) || l.ms < 0 || !Number.isFinite(l.at)) return false;
    let r = this.regions.get(l.region);
    if (!r) this.regions.set(l.region, (r = { recent: [], day: utcDay(l.at), today: [] }));
    if (r.recent.some((e) => e.launchId === l.launchId)) return false;
    if (r.today.some((e) => e.launchId === l.launchId)) return false;
    const entry: Entry = { launchId: l.launchId, ms: Math.round(l.ms), at: l.at };
    let changed = false;
    const day = utcDay(l.at);
    if (day > r.day) {
      r.day = day;
      r.today = [];
    }
    if (day === r.day) {
      r.today.push(entry);
      if (r.today.length > this.limits.day) r.today.shift();
      changed = true;
    }
    // Sorted by ready time, so the set does not depend on the order facts arrived in.
    const full = r.recent.length >= this.limits.recent;
    if (!full || entry.at >= r.recent[0]!.at) {
      let i = r.recent.length;
      while (i > 0 && r.recent[i - 1]!.at > entry.at) i--;
      r.recent.splice(i, 0, entry);
      if (r.recent.length > this.limits.recent) r.recent.shift();
      changed = true;
    }
    return changed;
  }

  typical(region: string): RegionTimes | undefined {
    const r = this.regions.get(region);
    if (!r || r.recent.length === 0) return undefined;
    return { medianMs: median(r.recent.map((e) => e.ms)), count: r.recent.length };
  }

  /** Every region with at least one ready launch, by code. */
  all(): Record<string, RegionTimes> {
    const out: Record<string, RegionTimes> = {};
    for (const code of [...this.regions.keys()].sort()) {
      const t = this.typical(code);
      if (t) out[code] = t;
    }
    return out;
  }

  /** How `l` compared with the other ready launches of its region on its UTC day. */
  compare(l: ReadyLaunch): Comparison {
    const r = this.regions.get(l.region);
    if (!r || r.day !== utcDay(l.at)) return { of: 0 };
    let of = 0;
    let slower = 0;
    for (const e of r.today) {
      if (e.launchId === l.launchId) continue;
      of++;
      if (e.ms > l.ms) slower++;
    }
    return of === 0 ? { of } : { fasterThanPct: Math.floor((100 * slower) / of), of };
  }

  /** Everything, as plain data (to save). */
  state(): Record<string, RegionState> {
    const out: Record<string, RegionState> = {};
    for (const [code, r] of this.regions)
      out[code] = { recent: [...r.recent], day: r.day, today: [...r.today] };
    return out;
  }

  /** Add what a saved state holds (duplicates are ignored, limits apply). */
  restore(saved: Record<string, RegionState>): void {
    for (const [region, r] of Object.entries(saved)) {
      for (const e of [...r.recent, ...r.today]) this.add({ ...e, region });
    }
  }
}
