/**
 * The runtime's vocabulary: its options, a fact as the outside world hands it in, an actor's
 * record, a change as listeners hear it, what applying a fact came to, and the effect runner's
 * contract.
 */
import type { AnyMachineSnapshot } from 'xstate';
import type { Chart, Effect, FactData, FactType } from '../../machines/index.js';
import type { StreamKind } from '../../machines/vocabulary.js';
import type { EventMeta, StoredEvent } from '../events/envelope.js';
import type { Clock, Timers } from '../ports/clock.js';
import type { EventStore } from '../ports/eventStore.js';
import type { Ids } from '../ports/ids.js';
import type { Logger } from '../shared/log.js';

/** A fact as the outside world hands it to the runtime (the envelope is made here). */
export interface Fact<T extends FactType = FactType> {
  readonly type: T;
  readonly data: FactData<T>;
  /** When it happened (epoch ms); default: now. */
  readonly at?: number;
  readonly meta?: Pick<EventMeta, 'causationId' | 'correlationId'>;
}

/**
 * One live actor, as the registry (and the debug endpoint) sees it. Its snapshot is read through
 * its chart: `chart.timers(snapshot)` and the other accessors, or `chart.view(snapshot)`.
 */
export interface ActorRecord {
  readonly stream: string;
  readonly kind: StreamKind;
  readonly chart: Chart;
  snapshot: AnyMachineSnapshot;
  /** Number of events in its stream (0: nothing stored yet). */
  version: number;
  /** Type, time and version of its latest events, newest last (a short ring). */
  recent: { type: string; at: string; version: number; instance: string | undefined }[];
  /** When this instance last saw it change (epoch ms). */
  touchedAt: number;
}

export interface ActorChange {
  readonly record: ActorRecord;
  readonly event: StoredEvent;
  /** True when this instance appended the event (false: folded from another instance). */
  readonly local: boolean;
}

export interface EffectContext {
  readonly stream: string;
  readonly record: ActorRecord;
  /** The stored event whose transition named this effect. */
  readonly cause: StoredEvent | undefined;
  /** True when re-driven at boot or on takeover (the effect may have run before). */
  readonly redrive: boolean;
  /** Logs about this actor's work: its stream, launch and trace on every line. */
  readonly log: Logger;
  /** The trace of the launch this work belongs to, sent with its Fly calls (ADR 0021). */
  readonly traceparent?: string | undefined;
}

/** Runs one effect; returns the facts that are its outcome (they re-enter the runtime). */
export type EffectRunner = (effect: Effect, ctx: EffectContext) => Promise<Fact[]>;

export type ApplyOutcome =
  | { accepted: true; stream: string; event: StoredEvent; effects: Effect[] }
  | { accepted: false; stream: string; why: 'cannotTake' | 'finished' };

export interface BootReport {
  events: number;
  /** Events of finished streams, read but not folded. */
  skipped: number;
  actors: number;
  live: number;
  redriven: number;
  /** True when boot restored a snapshot and read only the store after it. */
  fromSnapshot: boolean;
  ms: number;
}

export interface RuntimeOptions {
  store: EventStore;
  clock: Clock;
  timers: Timers;
  ids: Ids;
  log: Logger;
  /** This instance's id (recorded in every event it appends). */
  instance: string;
  runEffect: EffectRunner;
  /**
   * Whether this instance drives an actor: arms its timers and re-drives its outstanding intents.
   * Default: every actor (a single instance).
   */
  drives?: (record: ActorRecord) => boolean;
  /** Random numbers for timer facts' `roll` (default Math.random). */
  random?: () => number;
  /** Finished actors stay in memory this long, then only in the store. */
  finishedRetentionMs?: number;
  recentSize?: number;
  /**
   * Give each effect its work scope: a logger naming the actor's launch and trace, and the trace
   * sent with its Fly calls (ADR 0021). Default true; false only for the bench's baseline, which
   * measures what tracing costs.
   */
  workScope?: boolean;
}
