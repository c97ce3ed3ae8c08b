/**
 * The actor runtime: the one place that folds facts through the charts. For each fact: route it,
 * fold it into the actor's snapshot (dropping what the snapshot cannot take), append it with the
 * expected stream version, publish the change, then run the effects it named. Generic over charts:
 * it reads a snapshot only through its chart's accessors (deadlines, launch, outstanding intents).
 */
import type { AnyMachineSnapshot } from 'xstate';
import {
  CHARTS,
  effectsIn,
  type Chart,
  type FactType,
  type TimerKey,
} from '../../machines/index.js';
import { kindOf, launchStream, vmStream, type StreamKind } from '../../machines/vocabulary.js';
import {
  makeEnvelope,
  toChartEvent,
  type EventEnvelope,
  type StoredEvent,
} from '../events/envelope.js';
import { StreamArchivedError, VersionConflictError, errorMessage } from '../shared/errors.js';
import type {
  ActorChange,
  ActorRecord,
  ApplyOutcome,
  BootReport,
  Fact,
  RuntimeOptions,
} from './actorTypes.js';
import { readStore, type BootRead } from './bootRead.js';
import { Deciders } from './decide.js';
import { Driving } from './driving.js';
import { KeyedLock } from './keyedLock.js';
import { afterReal } from './realTime.js';
import { routeFact } from './router.js';
import type { BootSnapshot } from './snapshot.js';
import { Tasks } from './tasks.js';

export type * from './actorTypes.js';

const MAX_CONFLICT_RETRIES = 8;

export class ActorRuntime {
  private readonly records = new Map<string, ActorRecord>();
  /** One reusable decider per chart (XState's transition() builds a new actor on every call). */
  private readonly deciders = new Deciders();
  private readonly lock = new KeyedLock();
  private readonly listeners = new Set<(c: ActorChange) => void>();
  private readonly tasks: Tasks;
  private readonly driving: Driving;
  private stopTail: (() => void) | undefined;
  private position = 0;
  /** Positions fed by the store and not yet folded (a snapshot covers only what is below them). */
  private readonly pendingIngest = new Set<number>();
  private booted = false;
  private closed = false;
  private readonly o: Required<Omit<RuntimeOptions, 'drives'>> & Pick<RuntimeOptions, 'drives'>;

  constructor(opts: RuntimeOptions) {
    this.o = {
      random: Math.random,
      finishedRetentionMs: 10 * 60_000,
      recentSize: 6,
      workScope: true,
      ...opts,
    };
    this.tasks = new Tasks(opts.log);
    this.driving = new Driving({
      ...this.o,
      tasks: this.tasks,
      apply: (stream, fact) => this.apply(stream, fact),
      dispatch: (fact) => this.dispatch(fact),
      traceOf: (launchId) => {
        const launch = this.actor(launchStream(launchId));
        return launch?.chart.trace(launch.snapshot);
      },
    });
  }

  // ---------------------------------------------------------------- boot

  /**
   * Replay the store into actors, re-arm their timers, re-drive what is outstanding, then follow
   * the store. `beforeDrive` sees the rebuilt open actors before any timer or intent runs (the
   * capacity ledger is restored there, so a re-driven reservation cannot pass the cap).
   */
  async boot(
    opts: {
      beforeDrive?: (open: readonly ActorRecord[]) => Promise<unknown>;
      /** Open actors restored from a snapshot (ADR 0015): only the store after it is read. */
      from?: BootSnapshot;
    } = {},
  ): Promise<BootReport> {
    const started = performance.now();
    let read = opts.from ? await this.read(opts.from) : undefined;
    const fromSnapshot = read !== undefined;
    read ??= (await this.read(undefined))!;
    await opts.beforeDrive?.(this.open());
    const redriven = this.driveAll();
    this.follow();
    this.booted = true;
    const report = {
      events: read.events,
      skipped: read.skipped,
      fromSnapshot,
      actors: this.records.size,
      live: this.open().length,
      redriven,
      ms: Math.round(performance.now() - started),
    };
    this.o.log.info(report, 'runtime booted');
    return report;
  }

  private async read(from: BootSnapshot | undefined): Promise<BootRead | undefined> {
    const read = await readStore(this.o, from, this.records, (e) => this.foldStored(e, false));
    if (read) this.position = read.position;
    return read;
  }

  private open(): ActorRecord[] {
    return [...this.records.values()].filter((r) => r.snapshot.status === 'active');
  }

  /** After the read: forget finished actors past retention, drive the open ones that are ours. */
  private driveAll(): number {
    let redriven = 0;
    const now = this.o.clock.now();
    for (const rec of [...this.records.values()]) {
      if (rec.snapshot.status !== 'active') {
        if (now - rec.touchedAt > this.o.finishedRetentionMs) this.records.delete(rec.stream);
        continue;
      }
      if (this.driving.mine(rec)) redriven += this.driving.takeOver(rec);
    }
    return redriven;
  }

  /** Follow the store: other instances' appends (and our own, which we skip by version). */
  private follow(): void {
    this.stopTail = this.o.store.subscribe(this.position, (e) => {
      if (e.position > this.position) this.position = e.position;
      this.pendingIngest.add(e.position);
      this.tasks.track(
        this.lock
          .run(e.stream, () => this.ingest(e))
          .finally(() => this.pendingIngest.delete(e.position)),
      );
    });
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
    const records = this.open()
      .filter((r) => r.version > 0)
      .map((r) => ({ ...r, recent: [...r.recent] }));
    return { position, records };
  }

  /**
   * Re-evaluate which actors this instance drives (after a change of leader or an owner's death):
   * newly driven ones get their timers armed and outstanding intents re-driven; ones driven
   * elsewhere now are disarmed here. Returns how many were taken over.
   */
  rebalance(): number {
    return this.driving.rebalance(this.open());
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
        const envelope = makeEnvelope({
          id: this.o.ids.next(),
          type: fact.type,
          stream,
          at: fact.at ?? this.o.clock.now(),
          data: fact.data,
          meta: { chart: rec.chart.id, instance: this.o.instance, ...fact.meta },
        });
        const event = toChartEvent(envelope);
        if (!rec.snapshot.can(event)) return { accepted: false, stream, why: 'cannotTake' };
        const [next, actions] = this.deciders.of(rec.chart).next(rec.snapshot, event);
        // A fact that finishes its actor says so, so boot can skip the whole stream.
        const closes = next.status !== 'active';
        const stored = await this.append(rec, closes ? closing(envelope) : envelope, attempt);
        if (stored === 'archived') return { accepted: false, stream, why: 'finished' };
        if (stored === 'conflict') continue;
        const effects = effectsIn(actions);
        this.commit(rec, next, stored, true);
        this.driving.run(rec, effects, stored, false);
        return { accepted: true, stream, event: stored, effects };
      }
    });
  }

  /**
   * Append with the expected version. `archived`: retention archived the stream (its actor finished
   * long ago, so the fact is late); `conflict`: another writer got there first and what it wrote
   * has been folded, so decide again.
   */
  private async append(
    rec: ActorRecord,
    envelope: EventEnvelope,
    attempt: number,
  ): Promise<StoredEvent | 'archived' | 'conflict'> {
    try {
      const res = await this.o.store.append(rec.stream, [envelope], {
        expectedVersion: rec.version,
      });
      return { ...envelope, version: res.version, position: res.position };
    } catch (err) {
      if (err instanceof StreamArchivedError) return 'archived';
      if (err instanceof VersionConflictError && attempt < MAX_CONFLICT_RETRIES) {
        await this.catchUp(rec.stream);
        return 'conflict';
      }
      throw err;
    }
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

  /**
   * Resolves with the actor once `until` holds for it, or undefined after `timeoutMs` of real time
   * (a caller's wait, not a deadline of the domain).
   */
  waitFor(
    stream: string,
    until: (r: ActorRecord) => boolean,
    timeoutMs: number,
  ): Promise<ActorRecord | undefined> {
    const now = this.records.get(stream);
    if (now && until(now)) return Promise.resolve(now);
    return new Promise((resolve) => {
      const cancel = afterReal(timeoutMs, () => {
        stop();
        resolve(undefined);
      });
      const stop = this.onChange((c) => {
        if (c.record.stream === stream && until(c.record)) {
          cancel();
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
    const events = await this.o.store.read(stream);
    const snapshots = this.deciders.replay(CHARTS[kind], events.map(toChartEvent));
    return events.map((event, i) => ({ event, snapshot: snapshots[i]! }));
  }

  pendingTimers(stream: string): ReadonlyMap<TimerKey, number> {
    return this.driving.pending(stream);
  }

  // ---------------------------------------------------------------- shutdown

  /** Stop taking facts, disarm timers, wait (at most `graceMs` of real time) for effects in flight. */
  async close(graceMs = 5000): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.stopTail?.();
    this.driving.disarmAll();
    await this.tasks.drain(graceMs);
    await this.lock.idle();
    this.listeners.clear();
  }

  /** Resolves when no effect or timer-fired fact is in flight (tests and benches). */
  async settled(): Promise<void> {
    await this.tasks.settled();
    await this.lock.idle();
  }

  // ---------------------------------------------------------------- folding

  private launchOfMachine(machineId: string): string | undefined {
    const rec = this.records.get(vmStream(machineId));
    return rec && rec.chart.launchOf(rec.snapshot);
  }

  private fresh(stream: string): ActorRecord {
    const kind = kindOf(stream);
    if (!kind) throw new Error(`not an actor stream: ${stream}`);
    const chart: Chart = CHARTS[kind];
    const [snapshot] = this.deciders.of(chart).initial();
    return { stream, kind, chart, snapshot, version: 0, recent: [], touchedAt: this.o.clock.now() };
  }

  /**
   * Fold a stored event (at boot, or appended by another instance). Runs no effects. Stored facts
   * were accepted when appended, so this folds without asking can() first (it costs as much as the
   * step itself). A step that changed nothing and named nothing may have been refused: only then
   * ask, and say so — the chart changed under its stream.
   */
  private foldStored(e: StoredEvent, live: boolean): void {
    const rec = this.records.get(e.stream) ?? this.fresh(e.stream);
    if (e.version <= rec.version) return;
    const ev = toChartEvent(e);
    const active = rec.snapshot.status === 'active';
    const [next, actions] = active
      ? this.deciders.of(rec.chart).next(rec.snapshot, ev)
      : [rec.snapshot, []];
    if (next === rec.snapshot && actions.length === 0 && !(active && rec.snapshot.can(ev))) {
      this.o.log.warn(
        { stream: e.stream, type: e.type, version: e.version },
        'stored fact no longer applies',
      );
    }
    this.records.set(e.stream, rec);
    if (!live) {
      rec.snapshot = next;
      rec.version = e.version;
      this.remember(rec, e);
      return;
    }
    this.commit(rec, next, e, false);
    if (this.driving.mine(rec)) this.driving.drive(rec);
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
    if (local && this.driving.mine(rec)) this.driving.drive(rec);
    for (const l of this.listeners) {
      try {
        l({ record: rec, event: e, local });
      } catch (err) {
        this.o.log.error({ err: errorMessage(err), stream: rec.stream }, 'change listener failed');
      }
    }
    if (next.status !== 'active') this.evictLater(rec);
  }

  /** A finished actor: disarm it, and free its memory after the retention (process housekeeping). */
  private evictLater(rec: ActorRecord): void {
    this.driving.release(rec.stream);
    afterReal(this.o.finishedRetentionMs, () => {
      const cur = this.records.get(rec.stream);
      if (cur === rec && cur.snapshot.status !== 'active') this.records.delete(rec.stream);
    });
  }
}

/** The envelope of a fact that finishes its actor: nothing follows it in the stream. */
const closing = (envelope: EventEnvelope): EventEnvelope => ({
  ...envelope,
  meta: { ...envelope.meta, closes: true },
});
