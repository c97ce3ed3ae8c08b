/**
 * Launch times as visitors see them: per-region typical times (LaunchTimesStats) fed by the
 * runtime's change feed, each launch's timeline, and the fleet SSE `launchTimes` message. Boot adds
 * the ready launches the runtime folded without announcing them (a saved copy, then the store after it).
 */
import { readFile } from 'node:fs/promises';
import type { AnyMachineSnapshot, SnapshotFrom } from 'xstate';
import { z } from 'zod';
import { launchChart, launchPublic, type LaunchMachine } from '../../../machines/index.js';
import { kindOf, launchStream } from '../../../machines/vocabulary.js';
import { toChartEvent } from '../../events/envelope.js';
import type { Clock, Timers } from '../../ports/clock.js';
import type { EventStore } from '../../ports/eventStore.js';
import type { ActorChange, ActorRuntime } from '../../runtime/actorRuntime.js';
import { decider } from '../../runtime/decide.js';
import { writeFileAtomic } from '../../runtime/snapshot.js';
import { errorMessage } from '../../shared/errors.js';
import type { Logger } from '../../shared/log.js';
import { frame } from '../sse.js';
import type { LaunchTimesView, LaunchView } from '../wire.js';
import { LaunchTimesStats, type ReadyLaunch } from './launchTimes.js';
import { foldStep, statusOf, stepsUpTo, timelineOf, type TimelineEntry } from './launchTimeline.js';

/** The fleet message goes out at most this often. */
export const LAUNCH_TIMES_EVERY_MS = 1000;
/** Timelines kept in memory (the oldest read go first; a reader replays from the store). */
const TIMELINES = 1000;
const BROADCAST_TIMER = 'where/launchTimes';
const SAVE_TIMER = 'where/launchTimes.save';
const FORMAT = 1;

/** The saved copy lives beside the boot snapshot: `snapshot.json` → `snapshot.launch-times.json`. */
export const launchTimesPath = (snapshotPath: string) =>
  `${snapshotPath.replace(/\.json$/, '')}.launch-times.json`;

const entry = z.object({ launchId: z.string(), ms: z.number(), at: z.number() });
const savedFile = z.object({
  format: z.literal(FORMAT),
  store: z.string(),
  /** Every ready fact at or below this store position is counted in `regions`. */
  position: z.number().int().min(0),
  regions: z.record(
    z.string(),
    z.object({ recent: z.array(entry), day: z.number(), today: z.array(entry) }),
  ),
});

interface Timeline {
  steps: readonly TimelineEntry[];
  /** Stream version of the last fact folded. */
  version: number;
  /** First version folded here: 1 means the timeline has every step. */
  from: number;
}

export interface LaunchTimesDeps {
  runtime: ActorRuntime;
  store: EventStore;
  clock: Clock;
  timers: Timers;
  log: Logger;
  /** Writes a frame to every fleet SSE client. */
  broadcast: (chunk: string) => void;
  /** Where the stats are saved (periodically and at stop) so a boot reads only the store after. */
  file?: { path: string; store: string; everyMs: number } | undefined;
}

export class LaunchTimesFeed {
  readonly stats = new LaunchTimesStats();
  private readonly timelines = new Map<string, Timeline>();
  private readonly stopFeed: () => void;
  private lastSent = '';
  private dirty = false;
  private stopped = false;
  /** A fleet message is due (changes until then go out with it). */
  private broadcastArmed = false;

  constructor(private readonly deps: LaunchTimesDeps) {
    this.stopFeed = deps.runtime.onChange((c) => this.onChange(c));
  }

  /** The fleet message: every region's typical time. */
  view(): LaunchTimesView {
    return { regions: this.stats.all(), at: new Date(this.deps.clock.now()).toISOString() };
  }

  /** The fleet message as a frame, for a client that just connected. */
  frame(): string {
    return frame('launchTimes', this.view());
  }

  /**
   * A launch view with its timeline (when every step is known here) and, once ready, its time and
   * how that compared. Synchronous: call `load()` first for a launch that may not be in memory.
   */
  extend(view: LaunchView): LaunchView {
    const t = this.timelines.get(launchStream(view.launchId));
    const out: LaunchView = { ...view };
    if (t && t.from === 1) out.timeline = stepsUpTo(t.steps, view.version);
    const ready =
      view.status === 'ready' ? view.at : out.timeline?.find((s) => s.step === 'ready')?.at;
    const ms = ready === undefined ? NaN : Date.parse(ready) - Date.parse(view.requestedAt);
    if (Number.isFinite(ms)) {
      const l = { launchId: view.launchId, region: view.region, ms, at: Date.parse(ready!) };
      out.readyTime = { ms: Math.round(ms), ...this.stats.compare(l) };
    }
    return out;
  }

  /** Make sure a launch's whole timeline is in memory (replayed from the store when it is not). */
  async load(launchId: string): Promise<void> {
    const stream = launchStream(launchId);
    if (this.timelines.get(stream)?.from === 1) return;
    const replay = await this.deps.runtime.replay(stream);
    const last = replay.at(-1);
    if (!last) return;
    const steps = timelineOf(replay.map((s) => ({ event: s.event, snapshot: s.snapshot })));
    const live = this.timelines.get(stream);
    const version = last.event.version;
    // Live facts folded while the store was read: keep those the replay did not reach.
    if (live && live.version > version) {
      if (live.from > version + 1) return;
      let merged: readonly TimelineEntry[] = steps;
      for (const s of live.steps)
        if (s.version > version && merged.at(-1)?.step !== s.step) merged = [...merged, s];
      this.remember(stream, { steps: merged, version: live.version, from: 1 });
      return;
    }
    this.remember(stream, { steps, version, from: 1 });
  }

  /**
   * Count the ready launches the runtime folded at boot without announcing them: the saved copy,
   * then the store after its position. Call after the runtime booted (facts after that arrive
   * live; one seen both ways is counted once).
   */
  async boot(): Promise<{ fromFile: boolean; ready: number }> {
    const saved = await this.readFile();
    if (saved) this.stats.restore(saved.regions);
    const ready = await this.scan(saved?.position ?? 0);
    this.armSave();
    return { fromFile: saved !== undefined, ready };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.stopFeed();
    this.deps.timers.clear(BROADCAST_TIMER);
    this.deps.timers.clear(SAVE_TIMER);
    await this.save();
  }

  private onChange(c: ActorChange): void {
    if (c.record.kind !== 'launch') return;
    const stream = c.record.stream;
    const t = this.timelines.get(stream) ?? { steps: [], version: 0, from: c.event.version };
    if (c.event.version <= t.version) return;
    // A gap (facts folded without being announced): the steps before it are unknown here.
    if (t.version > 0 && c.event.version !== t.version + 1) t.from = c.event.version;
    t.steps = foldStep(t.steps, c.event, c.record.snapshot);
    t.version = c.event.version;
    this.remember(stream, t);
    this.countIfReady(c.record.snapshot);
  }

  private countIfReady(snapshot: AnyMachineSnapshot): boolean {
    const p = launchPublic(snapshot as SnapshotFrom<LaunchMachine>);
    // While ready, the launch's last touch is the fact that made it ready.
    if (p?.status !== 'ready') return false;
    return this.count({
      launchId: p.launchId,
      region: p.region,
      ms: p.updatedAt - p.requestedAt,
      at: p.updatedAt,
    });
  }

  private count(l: ReadyLaunch): boolean {
    if (!this.stats.add(l)) return false;
    this.dirty = true;
    this.scheduleBroadcast();
    return true;
  }

  private remember(stream: string, t: Timeline): void {
    this.timelines.delete(stream);
    this.timelines.set(stream, t);
    if (this.timelines.size > TIMELINES) {
      const oldest = this.timelines.keys().next().value;
      if (oldest !== undefined) this.timelines.delete(oldest);
    }
  }

  private scheduleBroadcast(): void {
    const { timers, clock } = this.deps;
    if (this.stopped || this.broadcastArmed) return;
    this.broadcastArmed = true;
    timers.set(BROADCAST_TIMER, clock.now() + LAUNCH_TIMES_EVERY_MS, () => {
      this.broadcastArmed = false;
      const view = this.view();
      const key = JSON.stringify(view.regions);
      if (key === this.lastSent) return;
      this.lastSent = key;
      this.deps.broadcast(frame('launchTimes', view));
    });
  }

  /**
   * Fold the launch facts after `position` through the launch chart, counting each launch that got
   * ready. A launch is held only until it is ready or over; one that began before `position` (its
   * first facts are not in this read) is replayed from its own stream if it got ready here.
   */
  private async scan(position: number): Promise<number> {
    const chart = decider(launchChart.machine);
    const open = new Map<string, AnyMachineSnapshot>();
    const begunBefore = new Set<string>();
    let ready = 0;
    for await (const e of this.deps.store.readAll(position)) {
      if (kindOf(e.stream) !== 'launch') continue;
      if (e.version > 1 && !open.has(e.stream)) {
        if (e.type === 'vm.listening') begunBefore.add(e.stream);
        continue;
      }
      const [next] = chart.next(open.get(e.stream) ?? chart.initial()[0], toChartEvent(e));
      if (this.countIfReady(next)) ready++;
      const status = statusOf(next);
      if (status === 'requested' || status === 'created' || status === 'started')
        open.set(e.stream, next);
      else open.delete(e.stream);
    }
    for (const stream of begunBefore) {
      const replay = await this.deps.runtime.replay(stream);
      const s = replay.find((r) => statusOf(r.snapshot) === 'ready');
      if (s && this.countIfReady(s.snapshot)) ready++;
    }
    return ready;
  }

  private async readFile(): Promise<z.infer<typeof savedFile> | undefined> {
    const f = this.deps.file;
    if (!f) return undefined;
    let text: string;
    try {
      text = await readFile(f.path, 'utf8');
    } catch {
      return undefined; // none yet: the scan reads the whole store
    }
    const parsed = savedFile.safeParse(safeJson(text));
    if (!parsed.success || parsed.data.store !== f.store) {
      this.deps.log.warn({ path: f.path }, 'launch times file refused: reading the whole store');
      return undefined;
    }
    return parsed.data;
  }

  private armSave(): void {
    const f = this.deps.file;
    if (!f || this.stopped) return;
    this.deps.timers.set(SAVE_TIMER, this.deps.clock.now() + f.everyMs, () => {
      void this.save().finally(() => this.armSave());
    });
  }

  private async save(): Promise<void> {
    const f = this.deps.file;
    const position = this.deps.runtime.snapshotState()?.position;
    if (!f || !this.dirty || position === undefined) return;
    this.dirty = false;
    const saved = { format: FORMAT, store: f.store, position, regions: this.stats.state() };
    try {
      await writeFileAtomic(f.path, JSON.stringify(saved));
    } catch (err) {
      this.dirty = true;
      this.deps.log.warn({ path: f.path, err: errorMessage(err) }, 'launch times not saved');
    }
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}
