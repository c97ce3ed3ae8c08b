/**
 * Launches as visitors see them: starting one (after the caller has checked origin and limits),
 * and each launch's status stream — history first (resumable with Last-Event-ID), then live
 * changes, ending at a final status.
 */
import type { ActorChange, ActorRecord, ActorRuntime } from '../../runtime/actorRuntime.js';
import type { Clock } from '../../ports/clock.js';
import type { Ids } from '../../ports/ids.js';
import { launchChart, type LaunchSnapshot, type LaunchSource } from '../../../machines/index.js';
import { AppError } from '../../shared/errors.js';
import type { WhereConfig } from '../config.js';
import type { LaunchView } from '../wire.js';
import { frame, type SseClient } from '../sse.js';
import type { Retention } from './retention.js';
import { toLaunchView } from './views.js';
import type { LaunchTimesFeed } from './launchTimesFeed.js';
import { launchStream } from '../../../machines/vocabulary.js';

const FINAL = new Set(['failed', 'done']);
/** How long a POST waits for the cap decision before answering 202 anyway. */
const DECISION_WAIT_MS = 5000;

interface Watcher {
  client: SseClient;
  lastKey: string;
  lastVersion: number;
  /** Live changes that arrived while the history was being read, sent after it. */
  pending: LaunchView[] | undefined;
}

/** What identifies one SSE message: a status (and the machine it concerns). */
const viewKey = (v: LaunchView) => `${v.status}|${v.machineId ?? ''}|${v.url ?? ''}`;

export class Launches {
  private readonly watchers = new Map<string, Set<Watcher>>();
  private readonly stopFeed: () => void;

  constructor(
    private readonly deps: {
      runtime: ActorRuntime;
      clock: Clock;
      ids: Ids;
      cfg: Pick<WhereConfig, 'instance' | 'readyTimeoutMs' | 'ttl' | 'vm'>;
      /** Tells an archived launch (410 Gone) from one never seen (404). */
      retention?: Pick<Retention, 'status' | 'goneMessage'>;
      /** Adds each view's timeline and ready time (launchTimesFeed.ts). */
      times?: Pick<LaunchTimesFeed, 'extend' | 'load'>;
    },
  ) {
    this.stopFeed = deps.runtime.onChange((c) => this.onChange(c));
  }

  /** Start a launch. Resolves once the cap has decided; throws AppError CAPACITY when it said no. */
  async start(p: {
    region: string;
    source: LaunchSource;
    launchId?: string;
    /** Where the launch's trace starts (the request's span), carried by its first fact. */
    traceparent?: string;
  }): Promise<LaunchView> {
    const { runtime, cfg } = this.deps;
    const launchId = p.launchId ?? this.deps.ids.next();
    const stream = launchStream(launchId);
    const [outcome] = await runtime.dispatch({
      type: 'launch.requested',
      data: {
        launchId,
        region: p.region,
        source: p.source,
        owner: cfg.instance,
        readyTimeoutMs: cfg.readyTimeoutMs,
        ttlMs: p.source === 'auto' ? cfg.ttl.autoMs : cfg.ttl.buttonMs,
        ...(p.traceparent ? { traceparent: p.traceparent } : {}),
      },
    });
    if (!outcome?.accepted) throw new AppError('LAUNCH_EXISTS', 'that launch already exists');
    const decided = await runtime.waitFor(
      stream,
      (r) => launchChart.view(r.snapshot).state !== 'requested',
      DECISION_WAIT_MS,
    );
    const rec = decided ?? runtime.actor(stream);
    const view = rec && this.view(rec.snapshot, rec.version);
    if (!view) throw new AppError('LAUNCH_LOST', 'the launch could not be read back');
    if (view.status === 'failed' && view.reason === 'capacity') {
      throw new AppError('CAPACITY', view.message ?? 'every machine slot is taken', {
        details: { launchId },
      });
    }
    return view;
  }

  /**
   * The current view of a launch, from memory or (for an old one) rebuilt from its stream;
   * undefined when it never existed. Throws AppError LAUNCH_GONE (410) when retention archived it.
   */
  async current(launchId: string): Promise<{ view: LaunchView; owner: string } | undefined> {
    await this.deps.times?.load(launchId);
    const rec = this.deps.runtime.actor(launchStream(launchId));
    if (rec) {
      // A finished launch stays in memory a while; retention may have archived it meanwhile.
      if (!launchChart.view(rec.snapshot).open) await this.refuseIfArchived(launchId);
      return this.withOwner(rec.snapshot, rec.version);
    }
    const steps = await this.deps.runtime.replay(launchStream(launchId));
    const last = steps.at(-1);
    // Nothing to read: archived by retention (410), or never stored (undefined: 404).
    if (!last) return this.refuseIfArchived(launchId);
    return this.withOwner(last.snapshot, last.event.version);
  }

  private withOwner(
    snapshot: LaunchSnapshot,
    version: number,
  ): { view: LaunchView; owner: string } | undefined {
    const view = this.view(snapshot, version);
    return view && { view, owner: launchChart.view(snapshot).owner };
  }

  private async refuseIfArchived(launchId: string): Promise<undefined> {
    const retention = this.deps.retention;
    if (!retention || (await retention.status(launchStream(launchId))) !== 'archived') return;
    throw new AppError('LAUNCH_GONE', retention.goneMessage('launch'));
  }

  /** Every status change of a launch so far, one view per change, oldest first. */
  async changes(launchId: string): Promise<LaunchView[]> {
    const out: LaunchView[] = [];
    let last = '';
    await this.deps.times?.load(launchId);
    for (const s of await this.deps.runtime.replay(launchStream(launchId))) {
      const v = this.view(s.snapshot, s.event.version);
      if (!v || viewKey(v) === last) continue;
      last = viewKey(v);
      out.push(v);
    }
    return out;
  }

  /**
   * Stream a launch to a client: the changes after `afterVersion`, then live ones. Ends the stream
   * after a final status.
   */
  async watch(launchId: string, client: SseClient, afterVersion: number): Promise<void> {
    const stream = launchStream(launchId);
    // Subscribe before reading history (so nothing falls between the two), holding live changes
    // back until the history is out (so they stay in order).
    const w: Watcher = { client, lastKey: '', lastVersion: 0, pending: [] };
    let set = this.watchers.get(stream);
    if (!set) this.watchers.set(stream, (set = new Set()));
    set.add(w);
    const history = await this.changes(launchId);
    if (history.length === 0 && (await this.deps.retention?.status(stream)) === 'archived') {
      // Archived since the caller found it: nothing will ever come, so end the stream.
      this.unwatch(launchId, client);
      client.close();
      return;
    }
    for (const v of history) {
      if (v.version > afterVersion) this.send(stream, w, v);
      else {
        w.lastKey = viewKey(v);
        w.lastVersion = v.version;
      }
    }
    const held = w.pending ?? [];
    w.pending = undefined;
    for (const v of held) this.send(stream, w, v);
  }

  /** SSE clients watching a launch here (metrics). */
  get streams(): number {
    let n = 0;
    for (const set of this.watchers.values()) n += set.size;
    return n;
  }

  unwatch(launchId: string, client: SseClient): void {
    const set = this.watchers.get(launchStream(launchId));
    if (!set) return;
    for (const w of set) if (w.client === client) set.delete(w);
    if (set.size === 0) this.watchers.delete(launchStream(launchId));
  }

  close(): void {
    this.stopFeed();
    for (const set of this.watchers.values()) for (const w of set) w.client.close();
    this.watchers.clear();
  }

  private onChange(c: ActorChange): void {
    if (c.record.kind !== 'launch') return;
    const set = this.watchers.get(c.record.stream);
    if (!set) return;
    const v = this.view(c.record.snapshot, c.record.version);
    if (!v) return;
    for (const w of [...set]) {
      if (w.pending) w.pending.push(v);
      else this.send(c.record.stream, w, v);
    }
  }

  /** A snapshot's view, with what the launch times add to it. */
  private view(snapshot: ActorRecord['snapshot'], version: number): LaunchView | undefined {
    const v = toLaunchView(this.deps.cfg, snapshot, version);
    return v && this.deps.times ? this.deps.times.extend(v) : v;
  }

  private send(stream: string, w: Watcher, v: LaunchView): void {
    if (v.version <= w.lastVersion) return;
    w.lastVersion = v.version;
    const key = viewKey(v);
    if (key === w.lastKey) return;
    w.lastKey = key;
    w.client.write(frame('launch', v, v.version));
    if (FINAL.has(v.status)) {
      this.watchers.get(stream)?.delete(w);
      // Give the final frame a moment to flush before the stream ends.
      setTimeout(() => w.client.close(), 50).unref();
    }
  }
}
