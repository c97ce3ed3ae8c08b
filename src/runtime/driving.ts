/**
 * What an instance does for the actors it drives (all of them alone; its share in a cluster, ADR
 * 0008): keep their real timers in step with the deadlines their charts record, run the effects
 * their facts name (feeding the outcome facts back), and re-drive intents still outstanding when it
 * takes one over or boots.
 */
import { timerFactType, type Effect, type TimerKey } from '../../machines/index.js';
import type { StoredEvent } from '../events/envelope.js';
import type { Clock, Timers } from '../ports/clock.js';
import { errorMessage } from '../shared/errors.js';
import type { Logger } from '../shared/log.js';
import type { ActorRecord, ApplyOutcome, EffectContext, EffectRunner, Fact } from './actorTypes.js';
import { traceIdOf } from '../shared/trace.js';
import { ActorTimers } from './actorTimers.js';
import type { Tasks } from './tasks.js';

export interface DrivingDeps {
  clock: Clock;
  timers: Timers;
  log: Logger;
  runEffect: EffectRunner;
  /** Whether this instance drives an actor (default: every actor). */
  drives?: ((record: ActorRecord) => boolean) | undefined;
  random: () => number;
  tasks: Tasks;
  /** Facts in: a timer's firing goes to its actor, an effect's outcome is routed. */
  apply: (stream: string, fact: Fact) => Promise<ApplyOutcome>;
  dispatch: (fact: Fact) => Promise<ApplyOutcome[]>;
  /** The traceparent of a launch held here, for the effects of its machine's actor. */
  traceOf?: (launchId: string) => string | undefined;
  /** False: effects get the runtime's logger and no trace (RuntimeOptions.workScope). */
  workScope?: boolean | undefined;
}

export class Driving {
  private readonly timers: ActorTimers;
  /** Streams this instance drives (arms timers for, re-drives on takeover). */
  private readonly driven = new Set<string>();

  constructor(private readonly o: DrivingDeps) {
    // A deadline fell due: its firing is a fact, stamped no earlier than the deadline itself.
    this.timers = new ActorTimers(o.timers, (stream, key, due) =>
      o.tasks.track(
        o.apply(stream, {
          type: timerFactType(key),
          data: { key, due, roll: o.random() },
          at: Math.max(due, o.clock.now()),
        }),
      ),
    );
  }

  mine(rec: ActorRecord): boolean {
    return this.o.drives ? this.o.drives(rec) : true;
  }

  /** Drive an actor here: its real timers follow the deadlines its chart records. */
  drive(rec: ActorRecord): void {
    this.driven.add(rec.stream);
    this.timers.sync(rec.stream, rec.chart.timers(rec.snapshot), rec.snapshot.status === 'active');
  }

  /** Stop driving an actor here (finished, or driven elsewhere now): disarm its timers. */
  release(stream: string): void {
    this.timers.clear(stream);
    this.driven.delete(stream);
  }

  /** Drive an actor just taken over (or rebuilt at boot): arm, and re-run what it waits on. */
  takeOver(rec: ActorRecord): number {
    this.drive(rec);
    const effects = rec.chart.outstanding(rec.snapshot);
    if (effects.length > 0) {
      this.o.log.info(
        { stream: rec.stream, effects: effects.map((e) => e.type) },
        're-driving outstanding intents',
      );
      this.run(rec, effects, undefined, true);
    }
    return effects.length;
  }

  /**
   * Re-evaluate which open actors are driven here (after a change of leader or an owner's death):
   * take over the newly ours, release the ones driven elsewhere now. Returns how many were taken.
   */
  rebalance(open: Iterable<ActorRecord>): number {
    let taken = 0;
    for (const rec of open) {
      const mine = this.mine(rec);
      const had = this.timers.has(rec.stream) || this.driven.has(rec.stream);
      if (mine && !had) {
        this.takeOver(rec);
        taken++;
      } else if (!mine && had) {
        this.release(rec.stream);
      }
    }
    return taken;
  }

  /** Run each effect in the background; the facts it returns are dispatched in turn. */
  run(
    rec: ActorRecord,
    effects: readonly Effect[],
    cause: StoredEvent | undefined,
    redrive: boolean,
  ): void {
    if (effects.length === 0) return;
    if (this.o.workScope === false) {
      for (const effect of effects) {
        const ctx = { stream: rec.stream, record: rec, cause, redrive, log: this.o.log };
        this.o.tasks.track(this.runOne(effect, ctx));
      }
      return;
    }
    const launchId = rec.chart.launchOf(rec.snapshot);
    const traceparent =
      rec.chart.trace(rec.snapshot) ?? (launchId ? this.o.traceOf?.(launchId) : undefined);
    // Made on first use: most effects never log, and a child logger costs more than the check.
    const parent = this.o.log;
    let log: Logger | undefined;
    const lazy = () =>
      (log ??= parent.child({
        stream: rec.stream,
        ...(launchId ? { launchId } : {}),
        ...(traceparent ? { traceId: traceIdOf(traceparent) } : {}),
      }));
    for (const effect of effects) {
      const ctx: EffectContext = {
        stream: rec.stream,
        record: rec,
        cause,
        redrive,
        traceparent,
        get log() {
          return lazy();
        },
      };
      this.o.tasks.track(this.runOne(effect, ctx));
    }
  }

  pending(stream: string): ReadonlyMap<TimerKey, number> {
    return this.timers.pending(stream);
  }

  /** Disarm every timer (shutdown). */
  disarmAll(): void {
    this.timers.clearAll();
  }

  private async runOne(effect: Effect, ctx: EffectContext): Promise<void> {
    let facts: Fact[];
    try {
      facts = await this.o.runEffect(effect, ctx);
    } catch (err) {
      // A runner must turn failures into facts; an escape here is a bug, logged, never a crash.
      ctx.log.error({ err: errorMessage(err), effect: effect.type }, 'effect failed');
      return;
    }
    for (const f of facts) {
      await this.o.dispatch({ ...f, meta: { causationId: ctx.cause?.id, ...f.meta } });
    }
  }
}
