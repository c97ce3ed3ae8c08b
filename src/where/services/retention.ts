/**
 * Retention of finished actors (ADR 0013): runs the store's retention pass (`compact()`) every
 * WM_COMPACT_INTERVAL, one at a time, and tells the routes whether a stream they cannot read was
 * archived (410 Gone) or never existed (404). A store without `compact()` (memory) makes it a
 * no-op.
 */
import type { Timers } from '../../ports/clock.js';
import type { CompactionSummary, EventStore, StreamStatus } from '../../ports/eventStore.js';
import { errorMessage } from '../../shared/errors.js';
import type { Logger } from '../../shared/log.js';
import type { WhereConfig } from '../config.js';

const TIMER = 'retention.compact';

export type RetentionRun =
  | { ok: true; at: number; ms: number; summary: CompactionSummary }
  | { ok: false; at: number; ms: number; error: string };

/** `86400000` → "24 h", `604800000` → "7 d", `1800000` → "30 min": the window in a 410 message. */
export function describeWindow(ms: number): string {
  const units: [number, string][] = [
    [86_400_000, 'd'],
    [3_600_000, 'h'],
    [60_000, 'min'],
    [1000, 's'],
  ];
  for (const [size, name] of units)
    // Days from two on: a day reads better as "24 h".
    if (ms >= (name === 'd' ? 2 : 1) * size && ms % size === 0) return `${ms / size} ${name}`;
  return `${ms} ms`;
}

export class Retention {
  private running: Promise<RetentionRun> | undefined;
  private started = false;
  /** The last pass, for the debug page and tests. */
  last: RetentionRun | undefined;

  constructor(
    private readonly deps: {
      store: EventStore;
      clock: { now(): number };
      timers: Timers;
      log: Logger;
      cfg: WhereConfig['retention'];
    },
  ) {}

  /** Whether this store runs retention passes here (file and JetStream do; memory does not). */
  get active(): boolean {
    return typeof this.deps.store.compact === 'function';
  }

  /**
   * The 410 message: the launch or actor finished longer ago than retention keeps finished ones,
   * e.g. "… kept 24 h, at most the newest 50000 …".
   */
  goneMessage(what: string): string {
    const { maxAgeMs, maxFinished } = this.deps.cfg;
    const cap =
      maxFinished === undefined
        ? ''
        : `, at most the newest ${maxFinished.toLocaleString('en-US')}`;
    return `this ${what} finished more than the retention window ago (finished actors are kept ${describeWindow(maxAgeMs)}${cap}); its history is no longer kept`;
  }

  /** Arm the first pass one interval from now (boot has just read the whole store). */
  start(): void {
    if (!this.active) {
      this.deps.log.info('the event store runs no retention passes here; nothing to schedule');
      return;
    }
    this.started = true;
    this.arm();
    this.deps.log.info(
      {
        maxAgeMs: this.deps.cfg.maxAgeMs,
        maxFinished: this.deps.cfg.maxFinished ?? null,
        intervalMs: this.deps.cfg.compactIntervalMs,
      },
      'retention scheduled',
    );
  }

  /**
   * One retention pass now. A call while one runs gets that one (passes never overlap). Never
   * rejects: a failure is logged and the next interval tries again.
   */
  run(): Promise<RetentionRun> {
    this.running ??= this.pass().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  /** Stop scheduling and wait for a pass in flight (the store must not close under it). */
  async stop(): Promise<void> {
    this.started = false;
    this.deps.timers.clear(TIMER);
    await this.running;
  }

  /** Where a stream is; a store that cannot tell says `unknown` for everything it cannot read. */
  async status(stream: string): Promise<StreamStatus> {
    const { store } = this.deps;
    if (!store.status) return 'unknown';
    return store.status(stream);
  }

  private arm(): void {
    if (!this.started) return;
    this.deps.timers.set(TIMER, this.deps.clock.now() + this.deps.cfg.compactIntervalMs, () => {
      // The next pass counts from the end of this one, so a slow pass never queues another.
      void this.run().then(() => this.arm());
    });
  }

  private async pass(): Promise<RetentionRun> {
    const { store, clock, log } = this.deps;
    const at = clock.now();
    const began = performance.now();
    let run: RetentionRun;
    try {
      if (!store.compact) throw new Error('this event store has no retention pass');
      const summary = await store.compact();
      run = { ok: true, at, ms: Math.round(performance.now() - began), summary };
      if (summary.droppedStreams > 0)
        log.info({ ...summary, ms: run.ms }, 'retention archived finished actors');
      else log.debug({ ...summary, ms: run.ms }, 'retention: nothing past retention');
    } catch (err) {
      run = { ok: false, at, ms: Math.round(performance.now() - began), error: errorMessage(err) };
      log.error({ err: run.error }, 'retention pass failed; it runs again at the next interval');
    }
    this.last = run;
    return run;
  }
}
