/**
 * The landing app's Prometheus metrics (ADR 0016): one prom-client Registry per app instance (never
 * the global one, so a test process can hold several apps), fed by the runtime's change feed, the
 * Fly client's observer, a wrapper around the event store's append, and small hooks in the HTTP
 * routes; gauges are read when scraped. Labels stay bounded: regions from the known list, no ids.
 */
import {
  collectDefaultMetrics,
  Counter,
  Gauge,
  Histogram,
  Registry,
  type LabelValues,
} from 'prom-client';
import type { EventStore } from '../ports/eventStore.js';
import type { ActorChange, ActorRuntime } from '../runtime/actorRuntime.js';
import type { FlyCallObserver } from '../adapters/fly/request.js';
import { isRegionCode } from '../shared/regions.js';
import type { ReconcileReport } from './services/reconciler.js';

/** The launch phases whose durations are measured, from fact times (the facts' `at`). */
export const LAUNCH_PHASES = [
  'click_to_created',
  'created_to_started',
  'started_to_listening',
  'click_to_ready',
  'ready_to_destroyed',
] as const;
export type LaunchPhase = (typeof LAUNCH_PHASES)[number];

const PHASE_BUCKETS = [
  0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 8, 13, 20, 30, 60, 120, 300, 600, 1800, 3600,
];
const API_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
const STORE_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
const LAG_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** A region label: a known region code, else `other` (so a label never carries free text). */
export function regionLabel(region: unknown): string {
  return typeof region === 'string' && isRegionCode(region) ? region : 'other';
}

/** A source label: one of the three the facts know, else `other`. */
function sourceLabel(source: unknown): string {
  return source === 'button' || source === 'dash' || source === 'auto' ? source : 'other';
}

const CALLBACK_RESULTS: Record<string, string> = {
  SIGNATURE_MISSING: 'forged',
  SIGNATURE_MALFORMED: 'forged',
  SIGNATURE_INVALID: 'forged',
  SIGNATURE_EXPIRED: 'stale',
  CALLBACK_REPLAYED: 'replayed',
  LAUNCH_NOT_FOUND: 'unknown',
  LAUNCH_GONE: 'unknown',
  MACHINE_MISMATCH: 'mismatch',
  BAD_JSON: 'malformed',
  BAD_CALLBACK: 'malformed',
  BAD_REGION: 'malformed',
};

/** The `result` label of a refused callback, from its error code (anything else: `error`). */
export function callbackResult(code: string): string {
  return CALLBACK_RESULTS[code] ?? 'error';
}

/** What the metrics read at scrape time; each part optional (tests and benches pass what they have). */
export interface MetricsSources {
  runtime: ActorRuntime;
  capacity?: () => { live: number; limit: number };
  sseClients?: () => Partial<Record<'fleet' | 'launch', number>>;
  isLeader?: () => boolean;
  /** Absent without NATS: the gauge is then not exported. */
  natsConnected?: () => boolean;
}

/** Per launch, the times (epoch ms) of the facts that end a phase, while the launch is open. */
interface LaunchTimes {
  requested?: number;
  created?: number;
  started?: number;
  listening?: number;
  ready?: number;
}

export class WhereMetrics {
  readonly registry = new Registry();
  private readonly launches: Counter<'region' | 'source' | 'outcome'>;
  private readonly phases: Histogram<'region' | 'phase'>;
  private readonly flyRequests: Counter<'action' | 'status'>;
  private readonly flySeconds: Histogram<'action'>;
  private readonly flyRateLimited: Counter<'action'>;
  private readonly flyRetries: Counter<'action'>;
  private readonly flyTokenWait: Histogram<'action'>;
  private readonly appended: Counter;
  private readonly appendSeconds: Histogram;
  private readonly lag: Histogram;
  private readonly reconcilerRuns: Counter<'result'>;
  private readonly orphans: Counter;
  private readonly callbacks: Counter<'result'>;
  private readonly times = new Map<string, LaunchTimes>();
  private sources: MetricsSources | undefined;
  private stopFeed: (() => void) | undefined;
  private live = false;

  constructor(
    private readonly opts: {
      /** The clock facts are stamped with (store lag is measured against it). */
      now: () => number;
      /** Process and event-loop metrics (default true). */
      defaults?: boolean;
    },
  ) {
    const r = [this.registry];
    if (opts.defaults ?? true) collectDefaultMetrics({ register: this.registry });
    this.launches = new Counter({
      name: 'wm_launches_total',
      help: 'Launches that ended their wait: outcome ready, failed:<reason> or refused:<code>.',
      labelNames: ['region', 'source', 'outcome'],
      registers: r,
    });
    this.phases = new Histogram({
      name: 'wm_launch_phase_seconds',
      help: 'Duration of each launch phase, from the times of the facts that start and end it.',
      labelNames: ['region', 'phase'],
      buckets: PHASE_BUCKETS,
      registers: r,
    });
    this.flyRequests = new Counter({
      name: 'wm_fly_api_requests_total',
      help: 'HTTP requests sent to the Machines API, by action and status (none: no response).',
      labelNames: ['action', 'status'],
      registers: r,
    });
    this.flySeconds = new Histogram({
      name: 'wm_fly_api_seconds',
      help: 'Duration of one Machines API request (one attempt), by action.',
      labelNames: ['action'],
      buckets: API_BUCKETS,
      registers: r,
    });
    this.flyRateLimited = new Counter({
      name: 'wm_fly_api_rate_limited_total',
      help: 'Machines API answers with status 429, by action.',
      labelNames: ['action'],
      registers: r,
    });
    this.flyRetries = new Counter({
      name: 'wm_fly_api_retries_total',
      help: 'Machines API requests sent again after a 429, a 5xx or no response, by action.',
      labelNames: ['action'],
      registers: r,
    });
    this.flyTokenWait = new Histogram({
      name: 'wm_fly_api_token_wait_seconds',
      help: 'Time a call waited for a token of the client-side rate limit, by action.',
      labelNames: ['action'],
      buckets: [0, ...API_BUCKETS],
      registers: r,
    });
    this.appended = new Counter({
      name: 'wm_events_appended_total',
      help: 'Events this instance appended to the event store.',
      registers: r,
    });
    this.appendSeconds = new Histogram({
      name: 'wm_event_store_append_seconds',
      help: 'Duration of one append to the event store (successful or not).',
      buckets: STORE_BUCKETS,
      registers: r,
    });
    this.lag = new Histogram({
      name: 'wm_event_store_lag_seconds',
      help: 'From a fact recorded by another instance to this instance folding it (live feed only).',
      buckets: LAG_BUCKETS,
      registers: r,
    });
    this.reconcilerRuns = new Counter({
      name: 'wm_reconciler_runs_total',
      help: 'Reconciliation runs, by result (ok, list_failed, error).',
      labelNames: ['result'],
      registers: r,
    });
    this.orphans = new Counter({
      name: 'wm_orphans_destroyed_total',
      help: 'Machines with our metadata and no live launch that the reconciler destroyed.',
      registers: r,
    });
    this.callbacks = new Counter({
      name: 'wm_callbacks_total',
      help: 'VM callbacks (machine_status), by result: accepted, duplicate, forged, stale, replayed, unknown, mismatch, malformed.',
      labelNames: ['result'],
      registers: r,
    });
    const sources = (): MetricsSources | undefined => this.sources;
    new Gauge({
      name: 'wm_capacity_live',
      help: 'Machines alive plus launches waiting for theirs: what the cap counts.',
      registers: r,
      collect() {
        const c = sources()?.capacity?.();
        if (c) this.set(c.live);
      },
    });
    new Gauge({
      name: 'wm_capacity_limit',
      help: 'The cap on live machines (WM_MAX_MACHINES).',
      registers: r,
      collect() {
        const c = sources()?.capacity?.();
        if (c) this.set(c.limit);
      },
    });
    new Gauge({
      name: 'wm_actors_open',
      help: 'Actors still active in this instance, by kind.',
      labelNames: ['kind'],
      registers: r,
      collect() {
        const rt = sources()?.runtime;
        if (!rt) return;
        const n: Record<string, number> = { launch: 0, vm: 0, autospawner: 0 };
        for (const a of rt.actors())
          if (a.snapshot.status === 'active') n[a.kind] = (n[a.kind] ?? 0) + 1;
        for (const [kind, v] of Object.entries(n)) this.set({ kind }, v);
      },
    });
    new Gauge({
      name: 'wm_sse_clients',
      help: 'Open SSE streams on this instance, by stream (fleet: the map, launch: one launch).',
      labelNames: ['stream'],
      registers: r,
      collect() {
        const s = sources()?.sseClients?.();
        if (!s) return;
        this.set({ stream: 'fleet' }, s.fleet ?? 0);
        this.set({ stream: 'launch' }, s.launch ?? 0);
      },
    });
    new Gauge({
      name: 'wm_leader',
      help: '1 while this instance holds the leader lease.',
      registers: r,
      collect() {
        const l = sources()?.isLeader;
        if (l) this.set(l() ? 1 : 0);
      },
    });
  }

  /** Follow the runtime's changes and read the gauges' sources. Returns a function that stops. */
  attach(sources: MetricsSources): () => void {
    this.sources = sources;
    const connected = sources.natsConnected;
    // Only with NATS: a gauge stuck at 0 would read as "disconnected" on an instance without it.
    if (connected && !this.registry.getSingleMetric('wm_nats_connected')) {
      new Gauge({
        name: 'wm_nats_connected',
        help: '1 while the NATS connection is up (exported only with NATS_URL).',
        registers: [this.registry],
        collect() {
          this.set(connected() ? 1 : 0);
        },
      });
    }
    this.stopFeed?.();
    const stop = sources.runtime.onChange((c) => this.onChange(c));
    this.stopFeed = stop;
    return () => {
      stop();
      if (this.stopFeed === stop) this.stopFeed = undefined;
    };
  }

  /** Boot is over: folds from now on are the live feed, and their lag is measured. */
  markLive(): void {
    this.live = true;
  }

  /** The Fly client's observer (FlyMachinesHttpOptions.observer). */
  readonly fly: FlyCallObserver = {
    request: (action, status, seconds) => {
      const s = status === 0 ? 'none' : String(status);
      this.flyRequests.inc({ action, status: s });
      this.flySeconds.observe({ action }, seconds);
      if (status === 429) this.flyRateLimited.inc({ action });
    },
    retry: (action) => this.flyRetries.inc({ action }),
    tokenWait: (action, seconds) => this.flyTokenWait.observe({ action }, seconds),
  };

  /** The same store, with every append counted and timed. */
  instrumentStore(store: EventStore): EventStore {
    const wrapped: EventStore = {
      read: (stream, after) => store.read(stream, after),
      append: async (stream, events, opts) => {
        const end = this.appendSeconds.startTimer();
        try {
          const res = await store.append(stream, events, opts);
          this.appended.inc(events.length);
          return res;
        } finally {
          end();
        }
      },
      readAll: (after) => store.readAll(after),
      subscribe: (after, onEvent) => store.subscribe(after, onEvent),
      close: () => store.close(),
    };
    if (store.status) wrapped.status = (s) => store.status!(s);
    if (store.compact) wrapped.compact = () => store.compact!();
    return wrapped;
  }

  /** POST /launches (or the dashboard's) said no before a launch existed. */
  launchRefused(region: string, source: string, code: string): void {
    this.launches.inc({
      region: regionLabel(region),
      source: sourceLabel(source),
      outcome: `refused:${code}`,
    });
  }

  /** One VM callback, by what became of it. */
  callback(result: string): void {
    this.callbacks.inc({ result });
  }

  /** One reconciliation run (undefined: it threw). */
  reconciled(report: ReconcileReport | undefined): void {
    const result = !report ? 'error' : report.ok ? 'ok' : 'list_failed';
    this.reconcilerRuns.inc({ result });
    if (report?.orphans) this.orphans.inc(report.orphans);
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  close(): void {
    this.stopFeed?.();
    this.stopFeed = undefined;
    this.sources = undefined;
    this.times.clear();
  }

  /**
   * Launch outcomes and phases, counted by the instance that appended the fact that ended them
   * (each fact is appended once cluster-wide, so the sum over instances counts each launch once);
   * the times of earlier facts come from every change folded here, ours or not.
   */
  private onChange(c: ActorChange): void {
    const { record: rec, event: e, local } = c;
    if (!local && this.live && e.meta.instance !== undefined) {
      this.lag.observe(Math.max(0, (this.opts.now() - Date.parse(e.at)) / 1000));
    }
    if (rec.kind !== 'launch') return;
    const at = Date.parse(e.at);
    const ctx = rec.snapshot.context as { region?: string; source?: string; reason?: string };
    const region = regionLabel(ctx.region);
    const t = this.times.get(rec.stream) ?? {};
    this.times.set(rec.stream, t);
    const phase = (p: LaunchPhase, from: number | undefined) => {
      if (local && from !== undefined)
        this.phases.observe({ region, phase: p }, Math.max(0, at - from) / 1000);
    };
    const data = e.data as { state?: string };
    if (e.type === 'launch.requested') t.requested ??= at;
    else if (e.type === 'fly.machineCreated' && t.created === undefined) {
      t.created = at;
      phase('click_to_created', t.requested);
    } else if (
      e.type === 'fly.machineObserved' &&
      data.state === 'started' &&
      t.started === undefined
    ) {
      t.started = at;
      phase('created_to_started', t.created);
    } else if (e.type === 'vm.listening' && t.listening === undefined) {
      t.listening = at;
      phase('started_to_listening', t.started);
    }
    const labels: LabelValues<'region' | 'source' | 'outcome'> = {
      region,
      source: sourceLabel(ctx.source),
    };
    if (t.ready === undefined && rec.snapshot.matches('redirect')) {
      t.ready = at;
      phase('click_to_ready', t.requested);
      if (local) this.launches.inc({ ...labels, outcome: 'ready' });
    } else if (rec.snapshot.matches('destroyed')) {
      phase('ready_to_destroyed', t.ready);
    } else if (rec.snapshot.matches('failed')) {
      if (local) this.launches.inc({ ...labels, outcome: `failed:${ctx.reason ?? 'unknown'}` });
    }
    if (rec.snapshot.status !== 'active') this.times.delete(rec.stream);
  }
}
