/**
 * A debounced job with a leading and a trailing edge and a minimum gap: the first request runs at
 * once, requests during a run or within the gap collapse into one more run when the gap is up.
 * Never two runs at once, never two starts closer than the gap.
 */
import type { Clock, Timers } from '../../ports/clock.js';

export class Debounced {
  private lastStart = Number.NEGATIVE_INFINITY;
  private running: Promise<void> | undefined;
  private trailing = false;
  private armed = false;
  private stopped = false;
  runs = 0;

  constructor(
    private readonly job: () => Promise<void>,
    private readonly minGapMs: number,
    private readonly clock: Clock,
    private readonly timers: Timers,
    private readonly key = 'debounce',
  ) {}

  request(): void {
    if (this.stopped) return;
    const now = this.clock.now();
    if (this.running || this.armed) {
      this.trailing = true;
      return;
    }
    if (now - this.lastStart >= this.minGapMs) void this.start();
    else this.arm();
  }

  /** Resolves when no run is in progress. */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  stop(): void {
    this.stopped = true;
    this.timers.clear(this.key);
  }

  private arm(): void {
    this.armed = true;
    this.trailing = false;
    this.timers.set(this.key, this.lastStart + this.minGapMs, () => {
      this.armed = false;
      void this.start();
    });
  }

  private async start(): Promise<void> {
    if (this.stopped) return;
    this.lastStart = this.clock.now();
    this.trailing = false;
    this.runs++;
    this.running = this.job().finally(() => {
      this.running = undefined;
      if (this.trailing && !this.stopped) this.arm();
    });
    await this.running;
  }
}
