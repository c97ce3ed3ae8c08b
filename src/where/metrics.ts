/**
 * The landing app's Prometheus metrics (ADR 0016): one prom-client Registry per app instance (never
 * the global one, so a test process can hold several apps), fed by the runtime's change feed
 * (launch outcomes and phases: launchMetrics.ts), the Fly client's observer, a wrapper around the
 * event store's append, and small hooks in the HTTP routes; gauges are read when scraped. Labels
 * stay bounded (metricLabels.ts).
 */
import { childrenByKey, regionLabel } from './metricLabels.js';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { EventStore } from '../ports/eventStore.js';
import type { ActorChange, ActorRuntime } from '../runtime/actorRuntime.js';
import type { FlyCallObserver } from '../adapters/fly/request.js';
import { LaunchMetrics } from './launchMetrics.js';
import type { ReconcileReport } from './services/reconciler.js';
import type { PoolActorView } from '../../machines/index.js';

export { LAUNCH_PHASES, type LaunchPhase } from './launchMetrics.js';
export { callbackResult, regionLabel } from './metricLabels.js';

const API_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
const STORE_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
const LAG_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** What the metrics read at scrape time; each part optional (tests and benches pass what they have). */
export interface MetricsSources {
  runtime: ActorRuntime;
  capacity?: () => { live: number; limit: number };
  sseClients?: () => Partial<Record<'fleet' | 'launch', number>>;
  isLeader?: () => boolean;
  /** The warm pools this instance has folded (ADR 0022). */
  pools?: () => readonly PoolActorView[];
  /** Absent without NATS: the gauge is then not exported. */
  natsConnected?: () => boolean;
}

export class WhereMetrics {
  readonly registry = new Registry();
  private readonly launches: LaunchMetrics;
  /** The Fly client's observer (FlyMachinesHttpOptions.observer). */
  readonly fly: FlyCallObserver;
  private readonly appended: Counter;
  private readonly appendSeconds: Histogram;
  private readonly lag: Histogram;
  private readonly reconcilerRuns: Counter<'result'>;
  private readonly orphans: Counter;
  private readonly callbacks: Counter<'result'>;
  private readonly poolClaims: Counter<'region' | 'result'>;
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
    const registers = [this.registry];
    if (opts.defaults ?? true) collectDefaultMetrics({ register: this.registry });
    this.launches = new LaunchMetrics(registers);
    this.fly = flyCallMetrics(registers);
    this.appended = new Counter({
      name: 'wm_events_appended_total',
      help: 'Events this instance appended to the event store.',
      registers,
    });
    this.appendSeconds = new Histogram({
      name: 'wm_event_store_append_seconds',
      help: 'Duration of one append to the event store (successful or not).',
      buckets: STORE_BUCKETS,
      registers,
    });
    this.lag = new Histogram({
      name: 'wm_event_store_lag_seconds',
      help: 'From a fact recorded by another instance to this instance folding it (live feed only).',
      buckets: LAG_BUCKETS,
      registers,
    });
    this.reconcilerRuns = new Counter({
      name: 'wm_reconciler_runs_total',
      help: 'Reconciliation runs, by result (ok, list_failed, error).',
      labelNames: ['result'],
      registers,
    });
    this.orphans = new Counter({
      name: 'wm_orphans_destroyed_total',
      help: 'Machines with our metadata and no live launch that the reconciler destroyed.',
      registers,
    });
    this.callbacks = new Counter({
      name: 'wm_callbacks_total',
      help: 'VM callbacks (machine_status), by result: accepted, duplicate, forged, stale, replayed, unknown, mismatch, malformed.',
      labelNames: ['result'],
      registers,
    });
    this.poolClaims = new Counter({
      name: 'wm_pool_claims_total',
      help: 'Launches that asked a warm pool for a machine, by region and result: claimed, empty, raced (every try lost to another instance), failed (the start failed; the launch created instead).',
      labelNames: ['region', 'result'],
      registers,
    });
    scrapedGauges(this.registry, () => this.sources);
  }

  /** Follow the runtime's changes and read the gauges' sources. Returns a function that stops. */
  attach(sources: MetricsSources): () => void {
    this.sources = sources;
    const connected = sources.natsConnected;
    // Only with NATS: a gauge stuck at 0 would read as "disconnected" on an instance without it.
    if (connected && !this.registry.getSingleMetric('wm_nats_connected')) {
      gauge(
        this.registry,
        'wm_nats_connected',
        '1 while the NATS connection is up (exported only with NATS_URL).',
        (g) => g.set(connected() ? 1 : 0),
      );
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

  /** The same store, with every append counted and timed. */
  instrumentStore(store: EventStore): EventStore {
    const wrapped: EventStore = {
      read: (stream, after) => store.read(stream, after),
      append: async (stream, events, opts) => {
        const started = performance.now();
        try {
          const res = await store.append(stream, events, opts);
          this.appended.inc(events.length);
          return res;
        } finally {
          this.appendSeconds.observe((performance.now() - started) / 1000);
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
    this.launches.refused(region, source, code);
  }

  /** One VM callback, by what became of it. */
  callback(result: string): void {
    this.callbacks.inc({ result });
  }

  /** One launch's ask of its region's warm pool. */
  poolClaim(region: string, result: 'claimed' | 'empty' | 'raced' | 'failed'): void {
    this.poolClaims.inc({ region: regionLabel(region), result });
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
    this.launches.clear();
  }

  private onChange(c: ActorChange): void {
    if (!c.local && this.live && c.event.meta.instance !== undefined) {
      this.lag.observe(Math.max(0, (this.opts.now() - Date.parse(c.event.at)) / 1000));
    }
    if (c.record.kind === 'launch') this.launches.changed(c);
  }
}

/** Counters and histograms of the Machines API calls, as the Fly client's observer. */
function flyCallMetrics(registers: Registry[]): FlyCallObserver {
  const requests = new Counter({
    name: 'wm_fly_api_requests_total',
    help: 'HTTP requests sent to the Machines API, by action and status (none: no response).',
    labelNames: ['action', 'status'],
    registers,
  });
  const duration = new Histogram({
    name: 'wm_fly_api_seconds',
    help: 'Duration of one Machines API request (one attempt), by action.',
    labelNames: ['action'],
    buckets: API_BUCKETS,
    registers,
  });
  const rateLimited = new Counter({
    name: 'wm_fly_api_rate_limited_total',
    help: 'Machines API answers with status 429, by action.',
    labelNames: ['action'],
    registers,
  });
  const retries = new Counter({
    name: 'wm_fly_api_retries_total',
    help: 'Machines API requests sent again after a 429, a 5xx or no response, by action.',
    labelNames: ['action'],
    registers,
  });
  const tokenWait = new Histogram({
    name: 'wm_fly_api_token_wait_seconds',
    help: 'Time a call waited for a token of the client-side rate limit, by action.',
    labelNames: ['action'],
    buckets: [0, ...API_BUCKETS],
    registers,
  });
  const requestsOf = childrenByKey((key) => {
    const [action, status] = key.split(' ') as [string, string];
    return requests.labels({ action, status });
  });
  const durationOf = childrenByKey((action) => duration.labels({ action }));
  const tokenWaitOf = childrenByKey((action) => tokenWait.labels({ action }));
  return {
    request: (action, status, seconds) => {
      requestsOf(`${action} ${status === 0 ? 'none' : status}`).inc();
      durationOf(action).observe(seconds);
      if (status === 429) rateLimited.inc({ action });
    },
    retry: (action) => retries.inc({ action }),
    tokenWait: (action, seconds) => tokenWaitOf(action).observe(seconds),
  };
}

/** A gauge read when scraped: `read` sets its value(s), or leaves it unset. */
function gauge<L extends string = string>(
  registry: Registry,
  name: string,
  help: string,
  read: (g: Gauge<L>) => void,
  labelNames: readonly L[] = [],
): void {
  new Gauge<L>({
    name,
    help,
    labelNames,
    registers: [registry],
    collect() {
      read(this);
    },
  });
}

/** The gauges read from the sources at scrape time (nothing is set before `attach`). */
function scrapedGauges(registry: Registry, sources: () => MetricsSources | undefined): void {
  gauge(
    registry,
    'wm_capacity_live',
    'Machines alive plus launches waiting for theirs: what the cap counts.',
    (g) => {
      const c = sources()?.capacity?.();
      if (c) g.set(c.live);
    },
  );
  gauge(registry, 'wm_capacity_limit', 'The cap on live machines (WM_MAX_MACHINES).', (g) => {
    const c = sources()?.capacity?.();
    if (c) g.set(c.limit);
  });
  gauge(
    registry,
    'wm_actors_open',
    'Actors still active in this instance, by kind.',
    (g) => {
      const rt = sources()?.runtime;
      if (!rt) return;
      const n: Record<string, number> = { launch: 0, vm: 0, autospawner: 0, pool: 0 };
      for (const a of rt.actors())
        if (a.snapshot.status === 'active') n[a.kind] = (n[a.kind] ?? 0) + 1;
      for (const [kind, v] of Object.entries(n)) g.set({ kind }, v);
    },
    ['kind'],
  );
  gauge(
    registry,
    'wm_pool_machines',
    'Machines of each warm pool by state: ready (stopped, claimable), warming (a create in flight), claimed, retiring.',
    (g) => {
      const pools = sources()?.pools?.();
      if (!pools) return;
      for (const p of pools)
        for (const [state, v] of Object.entries(p.counts))
          g.set({ region: regionLabel(p.region), state }, v);
    },
    ['region', 'state'],
  );
  gauge(
    registry,
    'wm_sse_clients',
    'Open SSE streams on this instance, by stream (fleet: the map, launch: one launch).',
    (g) => {
      const s = sources()?.sseClients?.();
      if (!s) return;
      g.set({ stream: 'fleet' }, s.fleet ?? 0);
      g.set({ stream: 'launch' }, s.launch ?? 0);
    },
    ['stream'],
  );
  gauge(registry, 'wm_leader', '1 while this instance holds the leader lease.', (g) => {
    const l = sources()?.isLeader;
    if (l) g.set(l() ? 1 : 0);
  });
}
