/**
 * The landing app's actor runtime on chosen ports, for benches: the real ActorRuntime and effect
 * runner against the Fly fake in immediate mode (zero provider latency), and a driver that takes
 * one launch through its whole life: requested → capacity → create → started → "listening"
 * callback → "stopping" callback → the machine exits and is auto-destroyed → both actors final.
 */
import { launchChart, launchStatusOf } from '../../machines/index.js';
import { FakeFlyMachines } from '../../src/adapters/fly/fakeFlyMachines.js';
import { MemoryCapacityLedger } from '../../src/adapters/memory/memoryCoordination.js';
import { SystemTimers, systemClock } from '../../src/adapters/system/systemClock.js';
import { UlidIds } from '../../src/adapters/system/ulidIds.js';
import type { EventEnvelope, StoredEvent } from '../../src/events/envelope.js';
import type { CapacityLedger } from '../../src/ports/capacity.js';
import type { AppendResult, EventStore } from '../../src/ports/eventStore.js';
import {
  ActorRuntime,
  type ActorChange,
  type ActorRecord,
} from '../../src/runtime/actorRuntime.js';
import { createEffectRunner } from '../../src/runtime/effects.js';
import { parseEnv } from '../../src/shared/env.js';
import { silentLogger } from '../../src/shared/log.js';
import { toConfig, whereEnv, type WhereConfig } from '../../src/where/config.js';
import { machineSpec } from '../../src/where/machineSpec.js';
import type { WhereMetrics } from '../../src/where/metrics.js';
import type { FlyAction, FlyMachines } from '../../src/ports/flyMachines.js';
import { inSpan } from '../../src/shared/trace.js';

export const INSTANCE = 'bench-1';
export const REGION = 'ams';
export const READY_TIMEOUT_MS = 60_000;
export const TTL_MS = 600_000;

const SPEC_CFG = {
  vm: {
    image: 'wheremachines:bench',
    cmd: ['node', 'dist/useless.mjs'],
    publicUrl: 'http://useless-machine.localhost:8080',
  },
  callback: {
    baseUrl: 'http://127.0.0.1:4001',
    fallbackUrl: 'http://127.0.0.1:4001',
    secret: 's'.repeat(40),
  },
  publicUrl: 'http://localhost:8080',
};

/** A ledger that records nothing: isolates the actors' own memory in the heap bench. */
/**
 * The whole landing app's configuration over a real store (the file store in `dataDir`, or NATS):
 * one instance, no listeners, a fake Fly client. For the soak bench and the migration test; `name`
 * only tells their tokens apart in a log.
 */
export function storeRigConfig(rig: {
  name: string;
  dataDir: string;
  natsUrl?: string | undefined;
  env?: Record<string, string> | undefined;
}): WhereConfig {
  return toConfig(
    parseEnv(whereEnv, {
      WM_LOCAL: '1',
      LOG_LEVEL: 'silent',
      HOST: '127.0.0.1',
      PORT: '0',
      PRIVATE_HOST: '127.0.0.1',
      PRIVATE_PORT: '0',
      WM_INSTANCE_ID: INSTANCE,
      FLY_REGION: REGION,
      WM_CALLBACK_SECRET: 's'.repeat(40),
      // buildPorts makes the Fly client, which wants a token; the fake replaces it.
      FLY_API_TOKEN: `${rig.name}-unused`,
      DEBUG_TOKEN: `${rig.name}-debug-token`,
      WM_AUTOSPAWN: '0',
      WM_MAX_MACHINES: '1000',
      WM_DATA_DIR: rig.dataDir,
      ...(rig.natsUrl ? { NATS_URL: rig.natsUrl } : {}),
      ...rig.env,
    }),
  );
}

/**
 * The fake as the HTTP client would report it to the metrics: each create, wait and destroy one
 * request observed (status 200, its duration). Other calls pass through unobserved.
 */
function observedFake(fake: FakeFlyMachines, metrics: WhereMetrics): FlyMachines {
  const observer = metrics.fly;
  const timed =
    <A extends unknown[], R>(action: FlyAction, call: (...a: A) => Promise<R>) =>
    async (...a: A): Promise<R> => {
      const t = performance.now();
      observer.tokenWait?.(action, 0);
      const r = await call(...a);
      observer.request?.(action, 200, (performance.now() - t) / 1000);
      return r;
    };
  return {
    create: timed('create', fake.create.bind(fake)),
    get: fake.get.bind(fake),
    list: fake.list.bind(fake),
    wait: timed('wait', fake.wait.bind(fake)),
    stop: fake.stop.bind(fake),
    destroy: timed('destroy', fake.destroy.bind(fake)),
    start: fake.start.bind(fake),
    update: fake.update.bind(fake),
    getMetadata: fake.getMetadata.bind(fake),
    setMetadata: fake.setMetadata.bind(fake),
    deleteMetadata: fake.deleteMetadata.bind(fake),
  };
}

export class NullLedger implements CapacityLedger {
  async reserve(): Promise<{ ok: true; live: number }> {
    return { ok: true, live: 0 };
  }
  async hold(): Promise<void> {}
  async release(): Promise<void> {}
  async holds(): Promise<[]> {
    return [];
  }
}

/**
 * An EventStore that keeps nothing: appends succeed with the version the caller expected plus
 * one. Only for measuring the runtime's own memory per actor (the store's copy of the events is
 * the store's cost, not the actor's).
 */
export class DiscardingEventStore implements EventStore {
  private position = 0;
  async read(): Promise<StoredEvent[]> {
    return [];
  }
  async append(
    _stream: string,
    events: readonly EventEnvelope[],
    opts: { expectedVersion: number },
  ): Promise<AppendResult> {
    this.position += events.length;
    return { version: opts.expectedVersion + events.length, position: this.position };
  }
  async *readAll(): AsyncIterable<StoredEvent> {}
  subscribe(): () => void {
    return () => undefined;
  }
  async close(): Promise<void> {}
}

export interface RuntimeRig {
  runtime: ActorRuntime;
  fly: FakeFlyMachines;
  store: EventStore;
  ids: UlidIds;
  /** Resolves when `pred` holds for the actor of `stream` (checked on every change of it). */
  until(
    stream: string,
    pred: (r: ActorRecord) => boolean,
    timeoutMs?: number,
  ): Promise<ActorRecord>;
  close(): Promise<void>;
}

export function makeRuntimeRig(
  store: EventStore,
  opts: {
    ledger?: CapacityLedger;
    fly?: FakeFlyMachines;
    instance?: string;
    /** Which actors this runtime drives (default all); `() => false` folds without re-driving. */
    drives?: (r: ActorRecord) => boolean;
    /**
     * Observability as the landing app runs it: metrics on the store, the change feed and the Fly
     * calls, and effects in their work scope (logger and trace, ADR 0021). Default off; the
     * observability bench compares the two.
     */
    observed?: WhereMetrics;
  } = {},
): RuntimeRig {
  const fake = opts.fly ?? new FakeFlyMachines({ mode: 'immediate', region: REGION });
  const fly = opts.observed ? observedFake(fake, opts.observed) : fake;
  const clock = systemClock;
  const timers = new SystemTimers(clock);
  const ids = new UlidIds();
  const log = silentLogger();
  const runEffect = createEffectRunner({
    fly,
    ledger: opts.ledger ?? new MemoryCapacityLedger(),
    clock,
    log,
    maxMachines: () => 1_000_000,
    machineSpec: (p) => machineSpec(SPEC_CFG, p),
    autoLaunch: { owner: INSTANCE, readyTimeoutMs: READY_TIMEOUT_MS, ttlMs: TTL_MS },
  });
  const runtime = new ActorRuntime({
    store: opts.observed ? opts.observed.instrumentStore(store) : store,
    workScope: opts.observed !== undefined,
    clock,
    timers,
    ids,
    log,
    instance: opts.instance ?? INSTANCE,
    runEffect,
    ...(opts.drives ? { drives: opts.drives } : {}),
  });

  const { until, stop } = changeWaiters(runtime);
  const detach = opts.observed?.attach({ runtime });
  opts.observed?.markLive();

  return {
    runtime,
    fly: fake,
    store,
    ids,
    until,
    async close() {
      detach?.();
      stop();
      await runtime.close(1000);
      timers.clearAll();
    },
  };
}

/**
 * `until(stream, pred)` over any runtime: one change listener for every waiter (a map by stream),
 * so waiting costs the same at any concurrency. `stop()` removes the listener.
 */
export function changeWaiters(runtime: ActorRuntime): {
  until: RuntimeRig['until'];
  stop: () => void;
} {
  const waiters = new Map<
    string,
    Set<{ pred: (r: ActorRecord) => boolean; resolve: (r: ActorRecord) => void }>
  >();
  const stop = runtime.onChange((c: ActorChange) => {
    const set = waiters.get(c.record.stream);
    if (!set) return;
    for (const w of set) {
      if (w.pred(c.record)) {
        set.delete(w);
        w.resolve(c.record);
      }
    }
    if (set.size === 0) waiters.delete(c.record.stream);
  });
  const until: RuntimeRig['until'] = (stream, pred, timeoutMs = 10_000) => {
    const now = runtime.actor(stream);
    if (now && pred(now)) return Promise.resolve(now);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        waiters.get(stream)?.delete(w);
        reject(
          new Error(
            `${stream}: condition not reached within ${timeoutMs} ms (state ${JSON.stringify(runtime.actor(stream)?.snapshot.value)})`,
          ),
        );
      }, timeoutMs);
      const w = {
        pred,
        resolve: (r: ActorRecord) => {
          clearTimeout(timer);
          resolve(r);
        },
      };
      let set = waiters.get(stream);
      if (!set) waiters.set(stream, (set = new Set()));
      set.add(w);
    });
  };
  return { until, stop };
}

const isFinal = (r: ActorRecord) => r.snapshot.status === 'done';

/**
 * One launch through its whole life, each step as the outside world would cause it. Resolves
 * with the machine id once the launch and its machine's actor are both final (destroyed).
 */
export async function runLaunch(
  rig: Pick<RuntimeRig, 'runtime' | 'fly' | 'ids' | 'until'>,
  opts: { traced?: boolean } = {},
): Promise<string> {
  const { runtime, fly } = rig;
  const launchId = rig.ids.next();
  // What POST /launches does for a traced launch: a span, and its position in the first fact.
  const traceparent = opts.traced
    ? await inSpan('POST /launches', undefined, {}, async (tp) => tp)
    : undefined;
  const stream = `launch.${launchId}`;
  await runtime.dispatch({
    type: 'launch.requested',
    data: {
      launchId,
      region: REGION,
      source: 'button',
      owner: INSTANCE,
      readyTimeoutMs: READY_TIMEOUT_MS,
      ttlMs: TTL_MS,
      ...(traceparent ? { traceparent } : {}),
    },
  });
  // capacity.reserved → createMachine → fly.machineCreated → awaitMachine(started) → observed.
  const started = await rig.until(stream, (r) => launchStatusOf(r.snapshot) === 'started');
  const machineId = launchChart.view(started.snapshot).machineId!;
  // The VM's signed callbacks, as the private API hands them over after checking them.
  await runtime.dispatch({
    type: 'vm.listening',
    data: { machineId, launchId, region: REGION, ttlMs: TTL_MS },
  });
  await runtime.dispatch({
    type: 'vm.stopping',
    data: { machineId, launchId, reason: 'finished' },
  });
  // The VM exits 0; auto_destroy removes it; awaitMachine(destroyed) reports it.
  fly.exit(machineId, 0);
  await Promise.all([rig.until(stream, isFinal), rig.until(`vm.${machineId}`, isFinal)]);
  return machineId;
}

/** Events one launch appends: 6 on the launch stream, 5 on the machine's. Checked by the bench. */
export const EVENTS_PER_LAUNCH = 11;

/**
 * The same history with every `1/every`-th actor stream left open (by first appearance): its
 * closing fact (`meta.closes`) is dropped, so a boot over it has live actors to fold (issue 10:
 * a replay of finished streams only folds nothing). Versions stay contiguous.
 */
export function withOpenStreams(
  events: readonly StoredEvent[],
  every = 10,
): { events: StoredEvent[]; streams: number; open: number } {
  const order = new Map<string, number>();
  for (const e of events) if (!order.has(e.stream)) order.set(e.stream, order.size);
  const isOpen = (stream: string) => order.get(stream)! % every === every - 1;
  const kept = events.filter((e) => !(e.meta.closes && isOpen(e.stream)));
  let open = 0;
  for (const s of order.keys()) if (isOpen(s)) open++;
  return { events: kept, streams: order.size, open };
}
