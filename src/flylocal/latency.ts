/**
 * How slow the emulated platform is: latency profiles (`fly`, Fly's published figures, the
 * default; `fast`, about nothing, for tests) and the per-region image cache that makes the first
 * create of an image in a region pay for the pull. Durations are drawn from a seeded PRNG.
 */
import { z } from 'zod';
import type { Clock, Timers } from '../ports/clock.js';
import { latencySchema, type Latency } from './faults.js';
import { mulberry32, type Prng } from './prng.js';

export const latencyProfileSchema = z.strictObject({
  /** Pulling an image the first time it is used in a region (then cached for that region). */
  imagePullMs: latencySchema,
  /** Booting the new VM of a create, once its image is there. */
  createBootMs: latencySchema,
  /** Starting a machine that exists (stopped, suspended, or created with skip_launch). */
  startMs: latencySchema,
  /** From the end of a stopped machine's process to `stopped` (VM teardown). */
  stopMs: latencySchema,
});
export type LatencyProfile = z.infer<typeof latencyProfileSchema>;

export const LATENCY_PROFILE_NAMES = ['fly', 'fast'] as const;
export type LatencyProfileName = (typeof LATENCY_PROFILE_NAMES)[number];
export const latencyProfileName = z.enum(LATENCY_PROFILE_NAMES);

const none: Latency = { minMs: 0, maxMs: 0 };

/** The named profiles; docs/emulator.md gives the sources of the `fly` figures. */
export const LATENCY_PROFILES: Readonly<Record<LatencyProfileName, LatencyProfile>> = {
  fly: {
    imagePullMs: { minMs: 1_500, maxMs: 3_000 },
    createBootMs: { minMs: 700, maxMs: 1_500 },
    startMs: { minMs: 200, maxMs: 600 },
    stopMs: { minMs: 100, maxMs: 400 },
  },
  fast: { imagePullMs: none, createBootMs: none, startMs: none, stopMs: none },
};

export function resolveProfile(p: LatencyProfileName | LatencyProfile | undefined): LatencyProfile {
  if (p === undefined) return LATENCY_PROFILES.fly;
  return typeof p === 'string' ? LATENCY_PROFILES[p] : latencyProfileSchema.parse(p);
}

/** One draw from a latency range. */
export function draw(l: Latency, prng: Prng): number {
  const roll = prng.next();
  return l.maxMs <= l.minMs ? l.minMs : l.minMs + Math.floor(roll * (l.maxMs - l.minMs + 1));
}

/** The emulator's time: what time it is and timers that fire at a time (a ManualClock in tests). */
export interface EmulatorTime {
  readonly clock: Clock;
  readonly timers: Timers;
}

/**
 * Images known per region. `ensure` calls back once the image is there: at once when it was pulled
 * before, after the pull when this is the first use, or when the pull under way ends.
 */
export class ImageCache {
  private readonly ready = new Set<string>();
  private readonly pulling = new Map<string, (() => void)[]>();
  private seq = 0;

  constructor(
    private readonly time: EmulatorTime,
    private readonly pullMs: () => number,
  ) {}

  has(region: string, image: string): boolean {
    return this.ready.has(`${region}\u0000${image}`);
  }

  ensure(region: string, image: string, then: () => void): void {
    const key = `${region}\u0000${image}`;
    if (this.ready.has(key)) return then();
    const waiting = this.pulling.get(key);
    if (waiting) {
      waiting.push(then);
      return;
    }
    const ms = this.pullMs();
    if (ms <= 0) {
      this.ready.add(key);
      return then();
    }
    this.pulling.set(key, [then]);
    this.time.timers.set(`flylocal-pull-${++this.seq}`, this.time.clock.now() + ms, () => {
      const waiters = this.pulling.get(key) ?? [];
      this.pulling.delete(key);
      this.ready.add(key);
      for (const w of waiters) w();
    });
  }
}

/** A profile with its PRNG: the durations the lifecycle waits. */
export class LatencyModel {
  private readonly prng: Prng;
  constructor(
    readonly profile: LatencyProfile,
    seed = 3,
  ) {
    this.prng = mulberry32(seed);
  }
  imagePullMs = (): number => draw(this.profile.imagePullMs, this.prng);
  createBootMs = (): number => draw(this.profile.createBootMs, this.prng);
  startMs = (): number => draw(this.profile.startMs, this.prng);
  stopMs = (): number => draw(this.profile.stopMs, this.prng);
}
