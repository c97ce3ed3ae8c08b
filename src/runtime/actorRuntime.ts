/**
 * The actor runtime: the one place that folds facts through the charts. For each fact: route it, fold it into
 * the actor's snapshot (dropping what the snapshot cannot take), append it with the expected stream
 * version, publish the change, then run the effects it named. Timers are kept in step with the
 * deadlines recorded in each actor's context, so they survive restarts; boot replays every stream
 * and re-drives intents still outstanding.
 */
import type { AnyMachineSnapshot } from 'xstate';
import {
  CHARTS,
  isEffect,
  timerFactType,
  type Chart,
  type Effect,
  type FactData,
  type FactType,
  type TimerKey,
} from '../../machines/index.js';
import {
  makeEnvelope,
  toChartEvent,
  type EventMeta,
  type StoredEvent,
} from '../events/envelope.js';
import type { Clock, Timers } from '../ports/clock.js';
import type { EventStore } from '../ports/eventStore.js';
import type { Ids } from '../ports/ids.js';
import { StreamArchivedError, VersionConflictError, errorMessage } from '../shared/errors.js';
import type { Logger } from '../shared/log.js';
import { KeyedLock } from './keyedLock.js';
import { decider, type Decider } from './decide.js';
import { routeFact } from './router.js';
import { kindOf, type StreamKind } from '../../machines/vocabulary.js';
import type { BootSnapshot } from './snapshot.js';

/** A fact as the outside world hands it to the runtime (the envelope is made here). */
export interface Fact<T extends FactType = FactType> {
  readonly type: T;
  readonly data: FactData<T>;
  /** When it happened (epoch ms); default: now. */
  readonly at?: number;
  readonly meta?: Pick<EventMeta, 'causationId' | 'correlationId'>;
}

/** One live actor, as the registry (and the debug endpoint) sees it. */
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
}

/** Runs one effect; returns the facts that are its outcome (they re-enter the runtime). */
export type EffectRunner = (effect: Effect, ctx: EffectContext) => Promise<Fact[]>;

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
}

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

const MAX_CONFLICT_RETRIES = 8;

export class ActorRuntime {
  private readonly records = new Map<string, ActorRecord>();
  /** One reusable decider per chart (XState's transition() builds a new actor on every call). */
  private readonly deciders = new Map<string, Decider>();
  private readonly lock = new KeyedLock();
  private readonly listeners = new Set<(c: ActorChange) => void>();
  private readonly inflight = new Set<Promise<unknown>>();
  /** Timer deadlines this instance has armed, per stream and key. */
  private readonly armed = new Map<string, Map<TimerKey, number>>();
  /** Streams this instance drives (arms timers for, re-drives on takeover). */
  private readonly driven = new Set<string>();
  private stopTail: (() => void) | undefined;
  private position = 0;
  /** Positions fed by the store and not yet folded (a snapshot covers only what is below them). */
  private readonly pendingIngest = new Set<number>();
  private booted = false;
  private closed = false;
  private readonly o: Required<Omit<RuntimeOptions, 'drives'>> & Pick<RuntimeOptions, 'drives'>;

  constructor(opts: RuntimeOptions) {
    this.o = { random: Math.random, finishedRetentionMs: 10 * 60_000, recentSize: 6, ...opts };
  }

  // ---------------------------------------------------------------- boot

  /**
   * Replay the whole store into actors, re-arm their timers, re-drive what is outstanding, then
   * follow the store. `beforeDrive` sees the rebuilt open actors before any timer or intent runs
   * (the capacity ledger is restored there, so a re-driven reservation cannot pass the cap).
   */
  async boot(
    opts: {
      beforeDrive?: (open: readonly ActorRecord[]) => Promise<unknown>;
      /** Open actors restored from a snapshot (ADR 0015): only the store after it is read. */
      from?: BootSnapshot;
    } = {},
  ): Promise<BootReport> {
    const started = performance.now();
    let read = opts.from ? await this.load(opts.from) : undefined;
    const fromSnapshot = read !== undefined;
    read ??= (await this.load(undefined))!;
    const { events, skipped } = read;
    await opts.beforeDrive?.(
      [...this.records.values()].filter((r) => r.snapshot.status === 'active'),
    );
    let redriven = 0;
    const now = this.o.clock.now();
    for (const rec of [...this.records.values()]) {
      if (rec.snapshot.status !== 'active') {
        if (now - rec.touchedAt > this.o.finishedRetentionMs) this.records.delete(rec.stream);
        continue;
      }
      if (!this.drives(rec)) continue;
      this.driven.add(rec.stream);
      this.syncTimers(rec);
      redriven += this.redrive(rec);
    }
    // Follow the store: other instances' appends (and our own, which we skip by version).
    this.stopTail = this.o.store.subscribe(this.position, (e) => {
      if (e.position > this.position) this.position = e.position;
      this.pendingIngest.add(e.position);
      this.track(
        this.lock
          .run(e.stream, () => this.ingest(e))
          .finally(() => this.pendingIngest.delete(e.position)),
      );
    });
    this.booted = true;
    const live = [...this.records.values()].filter((r) => r.snapshot.status === 'active').length;
    const report = {
      events,
      skipped,
      fromSnapshot,
      actors: this.records.size,
      live,
      redriven,
      ms: Math.round(performance.now() - started),
    };
    this.o.log.info(report, 'runtime booted');
    return report;
  }

  /**
   * Read the store into open actors. Without a snapshot: every fact, each stream held until its end,
   * and a stream that closed is dropped unfolded (ADR 0009). With one: its actors first, then only
   * the facts after its position; a restored actor closed in the tail is folded and then dropped, a
   * stream first seen past its first fact finished before the snapshot (it was not in it). Returns
   * undefined when the store contradicts the snapshot (the caller then reads everything).
   */
  private async load(
    from: BootSnapshot | undefined,
  ): Promise<{ events: number; skipped: number } | undefined> {
    this.records.clear();
    this.position = from?.position ?? 0;
    const restored = new Set<string>();
    for (const r of from?.records ?? []) {
      this.records.set(r.stream, { ...r, recent: [...r.recent] });
      restored.add(r.stream);
    }
    let events = 0;
    let skipped = 0;
    const touched = new Set<string>();
    const open = new Map<string, StoredEvent[]>();
    const closed = new Set<string>();
    for await (const e of this.o.store.readAll(this.position)) {
      events++;
      if (e.position > this.position) this.position = e.position;
      if (closed.has(e.stream)) {
        skipped++;
        continue;
      }
      if (restored.has(e.stream)) {
        const have = this.records.get(e.stream)!.version;
        if (e.version > have + 1) {
          this.o.log.warn(
            { stream: e.stream, have, next: e.version },
            'boot snapshot skips facts the store has: reading the whole store',
          );
          return undefined;
        }
        touched.add(e.stream);
        this.foldStored(e, false);
        if (e.meta.closes) closed.add(e.stream);
        continue;
      }
      if (from && e.version > 1 && !open.has(e.stream)) {
        skipped++;
        closed.add(e.stream);
        continue;
      }
      if (e.meta.closes) {
        skipped += (open.get(e.stream)?.length ?? 0) + 1;
        open.delete(e.stream);
        closed.add(e.stream);
        continue;
      }
      const held = open.get(e.stream);
      if (held) held.push(e);
      else open.set(e.stream, [e]);
    }
    for (const s of restored) if (closed.has(s)) this.records.delete(s);
    // A restored actor the tail never mentions must still be in this store: one retention archived
    // finished while we were away; one the store does not know means the snapshot is another store's.
    if (from && this.o.store.status) {
      for (const s of restored) {
        if (touched.has(s)) continue;
        const status = await this.o.store.status(s);
        if (status === 'archived') this.records.delete(s);
        else if (status === 'unknown') {
          this.o.log.warn(
            { stream: s },
            'boot snapshot names a stream the store does not know: reading the whole store',
          );
          return undefined;
        }
      }
    }
    for (const held of open.values()) for (const e of held) this.foldStored(e, false);
    return { events, skipped };
  }

  /**
   * What a boot snapshot would hold now (ADR 0015): the open actors and the highest position every
   * fact at or below which they reflect. Undefined before boot. Synchronous, so consistent.
   */
  snapshotState(): BootSnapshot | undefined {
    if (!this.booted) return undefined;
    let position = this.position;
    for (const p of this.pendingIngest) if (p - 1 < position) position = p - 1;
    // Copies: the live records change under a caller that serialises later.
    const records = [...this.records.values()]
      .filter((r) => r.snapshot.status === 'active' && r.version > 0)
      .map((r) => ({ ...r, recent: [...r.recent] }));
    return { position, records };
  }

  /**
   * Re-evaluate which actors this instance drives (after a change of leader or an owner's death):
   * newly driven ones get their timers armed and outstanding intents re-driven; ones driven
   * elsewhere now are disarmed here. Returns how many were taken over.
   */
  rebalance(): number {
    let taken = 0;
    for (const rec of this.records.values()) {
      if (rec.snapshot.status !== 'active') continue;
      const mine = this.drives(rec);
      const had = this.armed.has(rec.stream) || this.driven.has(rec.stream);
      if (mine && !had) {
        this.driven.add(rec.stream);
        this.syncTimers(rec);
        this.redrive(rec);
        taken++;
      } else if (!mine && had) {
        this.driven.delete(rec.stream);
        this.clearTimers(rec.stream);
      }
    }
    return taken;
  }

  // ---------------------------------------------------------------- facts in

  /** Route a fact to every actor it concerns and apply it to each. */
  async dispatch<T extends FactType>(fact: Fact<T>): Promise<ApplyOutcome[]> {
    const streams = routeFact(fact.type, fact.data, (m) => this.launchOfMachine(m));
    const out: ApplyOutcome[] = [];
    for (const s of streams) out.push(await this.apply(s, fact));
    return out;
  }

  /** Apply a fact to one actor: decide, append (retrying on a lost race), publish, act. */
  apply<T extends FactType>(stream: string, fact: Fact<T>): Promise<ApplyOutcome> {
    if (this.closed) return Promise.resolve({ accepted: false, stream, why: 'finished' });
    return this.lock.run(stream, async () => {
      for (let attempt = 0; ; attempt++) {
        const rec = this.records.get(stream) ?? this.fresh(stream);
        if (rec.snapshot.status !== 'active') return { accepted: false, stream, why: 'finished' };
        const at = fact.at ?? this.o.clock.now();
        const envelope = makeEnvelope({
          id: this.o.ids.next(),
          type: fact.type,
          stream,
          at,
          data: fact.data,
          meta: { chart: rec.chart.id, instance: this.o.instance, ...fact.meta },
        });
        const event = toChartEvent(envelope);
        if (!rec.snapshot.can(event)) return { accepted: false, stream, why: 'cannotTake' };
        const [next, actions] = this.decide(rec.chart).next(rec.snapshot, event);
        // A fact that finishes its actor says so, so boot can skip the whole stream.
        const toStore =
          next.status === 'active'
            ? envelope
            : { ...envelope, meta: { ...envelope.meta, closes: true as const } };
        let stored: StoredEvent;
        try {
          const res = await this.o.store.append(stream, [toStore], {
            expectedVersion: rec.version,
          });
          stored = { ...toStore, version: res.version, position: res.position };
        } catch (err) {
          // Retention archived the stream: its actor finished long ago, so the fact is late.
          if (err instanceof StreamArchivedError)
            return { accepted: false, stream, why: 'finished' };
          if (err instanceof VersionConflictError && attempt < MAX_CONFLICT_RETRIES) {
            // Another writer got there first: learn what it wrote, then decide again.
            await this.catchUp(stream);
            continue;
          }
          throw err;
        }
        const effects = actions
          .filter(isEffect)
          .map((a) => ({ type: a.type, params: a.params }) as unknown as Effect);
        this.commit(rec, next, stored, true);
        this.runEffects(rec, effects, stored, false);
        return { accepted: true, stream, event: stored, effects };
      }
    });
  }

  // ---------------------------------------------------------------- reading

  actor(stream: string): ActorRecord | undefined {
    return this.records.get(stream);
  }

  actors(kind?: StreamKind): ActorRecord[] {
    const all = [...this.records.values()];
    return kind ? all.filter((r) => r.kind === kind) : all;
  }

  /** Every change (this instance's appends and other instances' folded in), after it is stored. */
  onChange(listener: (c: ActorChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Resolves with the actor once `until` holds for it, or undefined after `timeoutMs`. */
  waitFor(
    stream: string,
    until: (r: ActorRecord) => boolean,
    timeoutMs: number,
  ): Promise<ActorRecord | undefined> {
    const now = this.records.get(stream);
    if (now && until(now)) return Promise.resolve(now);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        stop();
        resolve(undefined);
      }, timeoutMs);
      timer.unref?.();
      const stop = this.onChange((c) => {
        if (c.record.stream === stream && until(c.record)) {
          clearTimeout(timer);
          stop();
          resolve(c.record);
        }
      });
    });
  }

  /** The whole stored history of an actor (from the store, not memory). */
  history(stream: string): Promise<StoredEvent[]> {
    return this.o.store.read(stream);
  }

  /** Rebuild an actor's snapshot at every version of its stream (for SSE resume of any launch). */
  async replay(stream: string): Promise<{ event: StoredEvent; snapshot: AnyMachineSnapshot }[]> {
    const kind = kindOf(stream);
    if (!kind) return [];
    const chart: Chart = CHARTS[kind];
    let [snap] = this.decide(chart).initial();
    const out: { event: StoredEvent; snapshot: AnyMachineSnapshot }[] = [];
    for (const e of await this.o.store.read(stream)) {
      const ev = toChartEvent(e);
      if (snap.status === 'active' && snap.can(ev)) [snap] = this.decide(chart).next(snap, ev);
      out.push({ event: e, snapshot: snap });
    }
    return out;
  }

  pendingTimers(stream: string): ReadonlyMap<TimerKey, number> {
    return this.armed.get(stream) ?? new Map();
  }

  // ---------------------------------------------------------------- shutdown

  /** Stop taking facts, disarm timers, wait (bounded) for effects in flight. */
  async close(graceMs = 5000): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.stopTail?.();
    for (const [stream, keys] of this.armed)
      for (const k of keys.keys()) this.o.timers.clear(`${stream}/${k}`);
    this.armed.clear();
    await Promise.race([
      Promise.allSettled([...this.inflight]),
      new Promise((r) => setTimeout(r, graceMs).unref?.()),
    ]);
    await this.lock.idle();
    this.listeners.clear();
  }

  // ---------------------------------------------------------------- internals

  private decide(chart: Chart): Decider {
    let d = this.deciders.get(chart.id);
    if (!d) this.deciders.set(chart.id, (d = decider(chart.machine)));
    return d;
  }

  private drives(rec: ActorRecord): boolean {
    return this.o.drives ? this.o.drives(rec) : true;
  }

  private launchOfMachine(machineId: string): string | undefined {
    const rec = this.records.get(`vm.${machineId}`);
    return (rec?.snapshot.context as { launchId?: string } | undefined)?.launchId;
  }

  private fresh(stream: string): ActorRecord {
    const kind = kindOf(stream);
    if (!kind) throw new Error(`not an actor stream: ${stream}`);
    const chart: Chart = CHARTS[kind];
    const [snapshot] = this.decide(chart).initial();
    return { stream, kind, chart, snapshot, version: 0, recent: [], touchedAt: this.o.clock.now() };
  }

  /** Fold a stored event (at boot, or appended by another instance). Runs no effects. */
  private foldStored(e: StoredEvent, live: boolean): void {
    if (!live && e.position > this.position) this.position = e.position;
    const rec = this.records.get(e.stream) ?? this.fresh(e.stream);
    if (e.version <= rec.version) return;
    let next = rec.snapshot;
    const ev = toChartEvent(e);
    // Stored facts were accepted when appended, so fold without asking can() first (it costs as
    // much as the step itself). A step that changed nothing and named nothing may have been
    // refused: only then ask, and say so — the chart changed under its stream.
    const [n, actions] =
      rec.snapshot.status === 'active'
        ? this.decide(rec.chart).next(rec.snapshot, ev)
        : [rec.snapshot, []];
    if (
      n === rec.snapshot &&
      actions.length === 0 &&
      !(rec.snapshot.status === 'active' && rec.snapshot.can(ev))
    ) {
      this.o.log.warn(
        { stream: e.stream, type: e.type, version: e.version },
        'stored fact no longer applies',
      );
    }
    next = n;
    this.records.set(e.stream, rec);
    if (live) {
      this.commit(rec, next, e, false);
      if (this.drives(rec)) {
        this.driven.add(rec.stream);
        this.syncTimers(rec);
      }
    } else {
      rec.snapshot = next;
      rec.version = e.version;
      this.remember(rec, e);
    }
  }

  /** An event from the store's feed: skip what we have, fill a gap from the store, fold the rest. */
  private async ingest(e: StoredEvent): Promise<void> {
    const have = this.records.get(e.stream)?.version ?? 0;
    if (have >= e.version) return;
    if (have + 1 < e.version) return this.catchUp(e.stream);
    this.foldStored(e, true);
  }

  private async catchUp(stream: string): Promise<void> {
    const rec = this.records.get(stream) ?? this.fresh(stream);
    this.records.set(stream, rec);
    for (const e of await this.o.store.read(stream, rec.version)) this.foldStored(e, true);
  }

  private remember(rec: ActorRecord, e: StoredEvent): void {
    rec.recent.push({ type: e.type, at: e.at, version: e.version, instance: e.meta.instance });
    if (rec.recent.length > this.o.recentSize) rec.recent.shift();
    rec.touchedAt = Date.parse(e.at);
  }

  private commit(rec: ActorRecord, next: AnyMachineSnapshot, e: StoredEvent, local: boolean): void {
    rec.snapshot = next;
    rec.version = e.version;
    this.remember(rec, e);
    this.records.set(rec.stream, rec);
    if (local && this.drives(rec)) {
      this.driven.add(rec.stream);
      this.syncTimers(rec);
    }
    for (const l of this.listeners) {
      try {
        l({ record: rec, event: e, local });
      } catch (err) {
        this.o.log.error({ err: errorMessage(err), stream: rec.stream }, 'change listener failed');
      }
    }
    if (next.status !== 'active') this.scheduleEviction(rec);
  }

  private scheduleEviction(rec: ActorRecord): void {
    this.clearTimers(rec.stream);
    const t = setTimeout(() => {
      const cur = this.records.get(rec.stream);
      if (cur === rec && cur.snapshot.status !== 'active') this.records.delete(rec.stream);
    }, this.o.finishedRetentionMs);
    t.unref?.();
  }

  /**
   * Make the armed timers match the deadlines in the actor's context: arm new or moved ones,
   * disarm the rest. An overdue deadline fires at once (with the time it actually fired).
   */
  private syncTimers(rec: ActorRecord): void {
    const wanted =
      (rec.snapshot.context as { timers?: Partial<Record<TimerKey, number>> }).timers ?? {};
    const have = this.armed.get(rec.stream) ?? new Map<TimerKey, number>();
    for (const [key, at] of have) {
      if (wanted[key] !== at) {
        this.o.timers.clear(`${rec.stream}/${key}`);
        have.delete(key);
      }
    }
    if (rec.snapshot.status === 'active') {
      for (const [key, at] of Object.entries(wanted) as [TimerKey, number][]) {
        if (have.get(key) === at) continue;
        have.set(key, at);
        this.o.timers.set(`${rec.stream}/${key}`, at, () => {
          this.armed.get(rec.stream)?.delete(key);
          const fired = this.apply(rec.stream, {
            type: timerFactType(key),
            data: { key, due: at, roll: this.o.random() },
            at: Math.max(at, this.o.clock.now()),
          });
          this.track(fired);
        });
      }
    }
    if (have.size > 0) this.armed.set(rec.stream, have);
    else this.armed.delete(rec.stream);
  }

  private clearTimers(stream: string): void {
    for (const key of this.armed.get(stream)?.keys() ?? []) this.o.timers.clear(`${stream}/${key}`);
    this.armed.delete(stream);
    this.driven.delete(stream);
  }

  private redrive(rec: ActorRecord): number {
    const effects = rec.chart.outstanding(rec.snapshot as never);
    if (effects.length > 0) {
      this.o.log.info(
        { stream: rec.stream, effects: effects.map((e) => e.type) },
        're-driving outstanding intents',
      );
      this.runEffects(rec, effects, undefined, true);
    }
    return effects.length;
  }

  private runEffects(
    rec: ActorRecord,
    effects: readonly Effect[],
    cause: StoredEvent | undefined,
    redrive: boolean,
  ): void {
    for (const effect of effects) {
      const ctx: EffectContext = { stream: rec.stream, record: rec, cause, redrive };
      const run = (async () => {
        let facts: Fact[];
        try {
          facts = await this.o.runEffect(effect, ctx);
        } catch (err) {
          // A runner must turn failures into facts; an escape here is a bug, logged, never a crash.
          this.o.log.error(
            { err: errorMessage(err), stream: rec.stream, effect: effect.type },
            'effect failed',
          );
          return;
        }
        for (const f of facts) {
          const meta = { causationId: cause?.id, ...f.meta };
          await this.dispatch({ ...f, meta });
        }
      })();
      this.track(run);
    }
  }

  private track(p: Promise<unknown>): void {
    const guarded = p.catch((err: unknown) => {
      this.o.log.error({ err: errorMessage(err) }, 'runtime task failed');
    });
    this.inflight.add(guarded);
    void guarded.finally(() => this.inflight.delete(guarded));
  }

  /** Resolves when no effect or timer-fired fact is in flight (tests and benches). */
  async settled(): Promise<void> {
    while (this.inflight.size > 0) await Promise.allSettled([...this.inflight]);
    await this.lock.idle();
  }
}
