/**
 * G13 model run: fast-check command sequences (fc.asyncModelRun) against the real landing system
 * (runtime, launch/vm charts, services, reconciler) on in-memory adapters, the Fly fake and one
 * manual clock: clicks, VM callbacks, VM exits, Fly create/destroy faults, time passing. After every
 * command: live VMs ≤ cap, ≤ 1 machine per launch. After the sequence, time runs on until nothing
 * is left to do; then every machine made is destroyed, no slot is held, every actor is finished,
 * every stream's versions are contiguous with each id once, and a fresh replay of every stream
 * gives the live snapshot. `node --import tsx bench/reliability/modelRun.ts [runs]`
 * (CI: test/integration/reliability/modelRun.test.ts, 100 sequences)
 */
import fc from 'fast-check';
import { FakeFlyMachines } from '../../src/adapters/fly/fakeFlyMachines.js';
import { MemoryEventStore } from '../../src/adapters/memory/memoryEventStore.js';
import {
  MemoryCapacityLedger,
  MemoryLeases,
  MemoryPresence,
} from '../../src/adapters/memory/memoryCoordination.js';
import { ManualClock } from '../../src/adapters/system/manualClock.js';
import { UlidIds } from '../../src/adapters/system/ulidIds.js';
import type { StoredEvent } from '../../src/events/envelope.js';
import { ActorRuntime } from '../../src/runtime/actorRuntime.js';
import { deriveLaunchKey, SIGNATURE_HEADER, signBody } from '../../src/shared/callbackAuth.js';
import { AppError } from '../../src/shared/errors.js';
import { silentLogger } from '../../src/shared/log.js';
import { createWhere, type WhereSystem } from '../../src/where/system.js';
import { testConfig } from '../../test/support/whereRig.js';
import { isMain, table, type Row } from './lib.js';

const SECRET = 'm'.repeat(48);
const REGION = 'fra';
export const CAP = 3;
/** Simulated time the drain may take after a sequence before a leftover counts as a violation. */
const DRAIN_HORIZON_MS = 3 * 3_600_000;

interface World {
  clock: ManualClock;
  fly: FakeFlyMachines;
  store: MemoryEventStore;
  ledger: MemoryCapacityLedger;
  system: WhereSystem;
  launches: string[];
  /** Counters over the whole run (for the figure). */
  stats: Stats;
}

export interface Stats {
  commands: Record<string, number>;
  launches: number;
  refusedCapacity: number;
  machines: number;
  faults: number;
  events: number;
  maxLive: number;
}

async function makeWorld(stats: Stats): Promise<World> {
  const clock = new ManualClock(Date.UTC(2026, 11, 3, 12));
  const fly = new FakeFlyMachines({ clock, timers: clock });
  const store = new MemoryEventStore();
  const ledger = new MemoryCapacityLedger();
  const cfg = testConfig({
    WM_AUTOSPAWN: 'off',
    WM_CALLBACK_SECRET: SECRET,
    WM_COOLDOWN_MS: '0',
    WM_LAUNCHES_PER_MINUTE: '10000',
    WM_REQUESTS_PER_MINUTE: '1000000',
    WM_MAX_MACHINES: String(CAP),
    WM_READY_TIMEOUT_MS: '10000',
    WM_TTL_BUTTON_MS: '30000',
    WM_RECONCILE_INTERVAL_MS: '20000',
    FLY_REGION: REGION,
  });
  const system = await createWhere(
    cfg,
    {
      store,
      ledger,
      leases: new MemoryLeases(),
      presence: new MemoryPresence(),
      fly,
      clock,
      timers: clock,
      ids: new UlidIds(),
      log: silentLogger(),
    },
    { beatMs: 5_000 },
  );
  await system.start(false);
  return { clock, fly, store, ledger, system, launches: [], stats };
}

/**
 * Let the system finish what it can without time passing: everything in flight, except effects
 * that wait on the manual clock (a Fly wait, a backoff), which only a later `advance` moves.
 */
async function settle(w: World): Promise<void> {
  let done = false;
  void w.system.services.runtime.settled().then(() => (done = true));
  for (let i = 0; i < 50 && !done; i++) await new Promise<void>((r) => setImmediate(r));
}

function machineOf(w: World, launchId: string) {
  return w.fly.ledger().find((m) => m.metadata.launch_id === launchId);
}

/** Invariants that hold after every command. */
function checkAlways(w: World): void {
  const live = w.fly.live().length;
  w.stats.maxLive = Math.max(w.stats.maxLive, live);
  if (live > CAP) throw new Error(`${live} live machines over the cap of ${CAP}`);
  const perLaunch = new Map<string, number>();
  for (const m of w.fly.ledger()) {
    const l = m.metadata.launch_id ?? '?';
    perLaunch.set(l, (perLaunch.get(l) ?? 0) + 1);
  }
  for (const [l, n] of perLaunch) if (n > 1) throw new Error(`launch ${l} made ${n} machines`);
}

async function callback(w: World, launchId: string, status: 'listening' | 'stopping') {
  const m = machineOf(w, launchId);
  if (!m) return;
  const raw = JSON.stringify({
    machineId: m.id,
    launchId,
    region: REGION,
    status,
    ...(status === 'stopping' ? { reason: 'finished' } : {}),
    at: new Date(w.clock.now()).toISOString(),
  });
  const res = await w.system.privateApp.inject({
    method: 'POST',
    url: '/api/machine_status',
    headers: {
      'content-type': 'application/json',
      [SIGNATURE_HEADER]: signBody(deriveLaunchKey(SECRET, launchId), raw, w.clock.now()),
    },
    payload: raw,
  });
  // A call for a launch we made is never refused for its form: 200, or 409 for a same-second replay.
  if (res.statusCode >= 500) throw new Error(`callback answered ${res.statusCode}: ${res.body}`);
}

type Model = { launches: number };
type Cmd = fc.AsyncCommand<Model, World>;

const count = (w: World, name: string) =>
  (w.stats.commands[name] = (w.stats.commands[name] ?? 0) + 1);

export class Click implements Cmd {
  check = () => true;
  async run(m: Model, w: World) {
    count(w, 'click');
    try {
      const v = await w.system.services.launches.start({ region: REGION, source: 'button' });
      w.launches.push(v.launchId);
      m.launches++;
      w.stats.launches++;
    } catch (err) {
      if (!(err instanceof AppError && err.statusCode === 503)) throw err;
      w.stats.refusedCapacity++;
    }
    await settle(w);
    checkAlways(w);
  }
  toString = () => 'click';
}

export class Call implements Cmd {
  constructor(
    readonly i: number,
    readonly status: 'listening' | 'stopping',
    readonly exit: boolean,
  ) {}
  check = (m: Readonly<Model>) => m.launches > 0;
  async run(_m: Model, w: World) {
    count(w, this.status);
    const launchId = w.launches[this.i % w.launches.length]!;
    await callback(w, launchId, this.status);
    // A VM that said "stopping" usually exits right after.
    const mc = machineOf(w, launchId);
    if (this.exit && mc) w.fly.exit(mc.id);
    await settle(w);
    checkAlways(w);
  }
  toString = () => `${this.status}(${this.i}${this.exit ? ', exits' : ''})`;
}

export class Exit implements Cmd {
  constructor(
    readonly i: number,
    readonly code: number,
  ) {}
  check = (m: Readonly<Model>) => m.launches > 0;
  async run(_m: Model, w: World) {
    count(w, 'exit');
    const mc = machineOf(w, w.launches[this.i % w.launches.length]!);
    if (mc) w.fly.exit(mc.id, this.code);
    await settle(w);
    checkAlways(w);
  }
  toString = () => `exit(${this.i}, ${this.code})`;
}

export class Fault implements Cmd {
  constructor(
    readonly op: 'create' | 'destroy' | 'wait' | 'list',
    readonly status: number,
    readonly commit: boolean,
  ) {}
  check = () => true;
  async run(_m: Model, w: World) {
    count(w, `fault:${this.op}`);
    w.stats.faults++;
    w.fly.failNext(this.op, {
      status: this.status,
      // A 429 is refused before any work (Fly's rate limit); a timeout or 5xx may have made the machine.
      ...(this.op === 'create' && this.commit && this.status !== 429 ? { commit: true } : {}),
    });
    checkAlways(w);
  }
  toString = () =>
    `fault(${this.op} ${this.status}${this.op === 'create' && this.commit && this.status !== 429 ? ' committed' : ''})`;
}

export class Advance implements Cmd {
  constructor(readonly ms: number) {}
  check = () => true;
  async run(_m: Model, w: World) {
    count(w, 'advance');
    // In 1 s steps, so effects run between timers as they would in real time.
    for (let t = 0; t < this.ms; t += 1000) {
      w.clock.advance(Math.min(1000, this.ms - t));
      await settle(w);
    }
    checkAlways(w);
  }
  toString = () => `advance(${this.ms} ms)`;
}

export function commandArb(): fc.Arbitrary<Iterable<Cmd>> {
  const idx = fc.nat({ max: 50 });
  return fc.commands(
    [
      fc.constant(new Click()),
      fc
        .tuple(idx, fc.constantFrom('listening' as const, 'stopping' as const), fc.boolean())
        .map(([i, s, e]) => new Call(i, s, e)),
      fc.tuple(idx, fc.constantFrom(0, 1)).map(([i, c]) => new Exit(i, c)),
      fc
        .tuple(
          fc.constantFrom('create' as const, 'destroy' as const, 'wait' as const, 'list' as const),
          fc.constantFrom(0, 429, 500, 503),
          fc.boolean(),
        )
        .map(([op, s, c]) => new Fault(op, s, c)),
      fc.constantFrom(500, 2_000, 5_000, 12_000, 31_000).map((ms) => new Advance(ms)),
    ],
    { maxCommands: 40, size: 'large' },
  );
}

/** Let time run (1 s steps) until nothing is left to do, then check the end-state invariants. */
async function drainAndCheck(w: World): Promise<void> {
  const runtime = w.system.services.runtime;
  // Launch and vm actors end; the autospawner (switched off here) lives for ever.
  const open = () =>
    runtime.actors().filter((r) => r.kind !== 'autospawner' && r.snapshot.status === 'active');
  const busy = () => w.fly.live().length > 0 || open().length > 0;
  const end = w.clock.now() + DRAIN_HORIZON_MS;
  while (busy() && w.clock.now() < end) {
    w.clock.advance(1000);
    await settle(w);
  }
  checkAlways(w);
  const left = w.fly.live().map((m) => `${m.id} (${m.state}, launch ${m.metadata.launch_id})`);
  if (left.length > 0) throw new Error(`machines never destroyed: ${left.join(', ')}`);
  const active = open().map((r) => `${r.stream} in ${JSON.stringify(r.snapshot.value)}`);
  if (active.length > 0) throw new Error(`actors never finished: ${active.join(', ')}`);
  // No slot held: a probe with no limit sees 0 others.
  const probe = await w.ledger.reserve('probe', 1_000_000, w.clock.now(), w.clock.now() + 1);
  await w.ledger.release('probe');
  if (probe.live !== 1) throw new Error(`${probe.live - 1} capacity slots still held`);

  // Every stream: versions 1..n, each id once; a fresh runtime replays each to the live snapshot.
  const byStream = new Map<string, StoredEvent[]>();
  const ids = new Set<string>();
  for await (const e of w.store.readAll(0)) {
    if (ids.has(e.id)) throw new Error(`event ${e.id} stored twice`);
    ids.add(e.id);
    const list = byStream.get(e.stream);
    if (list) list.push(e);
    else byStream.set(e.stream, [e]);
  }
  w.stats.events += ids.size;
  const fresh = new ActorRuntime({
    store: w.store,
    clock: w.clock,
    timers: new ManualClock(0),
    ids: new UlidIds(),
    log: silentLogger(),
    instance: 'replay',
    runEffect: () => Promise.resolve([]),
    drives: () => false,
  });
  for (const [stream, evs] of byStream) {
    const versions = evs.map((e) => e.version);
    if (versions.some((v, i) => v !== i + 1))
      throw new Error(`${stream}: versions ${versions.join(',')} not contiguous`);
    const live = runtime.actor(stream);
    if (!live) continue;
    const steps = await fresh.replay(stream);
    const replayed = steps.at(-1)?.snapshot;
    const a = JSON.stringify(live.chart.machine.getPersistedSnapshot(live.snapshot));
    const b = replayed && JSON.stringify(live.chart.machine.getPersistedSnapshot(replayed));
    if (a !== b) throw new Error(`${stream}: replay gives ${b}, live is ${a}`);
  }
  await fresh.close(0);
  w.stats.machines += w.fly.ledger().length;
}

/** Run one given command sequence (a counterexample a run reported) and the end checks; throws on a violation. */
export async function runSequence(cmds: Cmd[], stats = newStats()): Promise<Stats> {
  const w = await makeWorld(stats);
  const keepAlive = setInterval(() => undefined, 1000);
  try {
    const model = { launches: 0 };
    for (const c of cmds) if (c.check(model)) await c.run(model, w);
    await drainAndCheck(w);
  } finally {
    clearInterval(keepAlive);
    void w.system.stop();
  }
  return stats;
}

export function newStats(): Stats {
  return {
    commands: {},
    launches: 0,
    refusedCapacity: 0,
    machines: 0,
    faults: 0,
    events: 0,
    maxLive: 0,
  };
}

/** One property: every generated sequence keeps the invariants. Throws fast-check's report otherwise. */
export async function runModel(opts: {
  numRuns: number;
  seed?: number;
  /** fast-check's replay path of a reported counterexample (with its seed). */
  path?: string;
  stats?: Stats;
}): Promise<Stats> {
  const stats = opts.stats ?? newStats();
  // Effects waiting on the manual clock hold no real timer; the runtime's close() waits for them
  // on an unref'd one. Keep the process alive meanwhile, so a failing run reports instead of exiting.
  const keepAlive = setInterval(() => undefined, 1000);
  try {
    await fc.assert(
      fc.asyncProperty(commandArb(), async (cmds) => {
        const w = await makeWorld(stats);
        try {
          await fc.asyncModelRun(() => ({ model: { launches: 0 }, real: w }), cmds);
          await drainAndCheck(w);
        } finally {
          // Effects still waiting on the clock (a Fly wait) end as time passes: move it while stopping.
          let stopped = false;
          const stopping = w.system.stop().finally(() => (stopped = true));
          for (let i = 0; i < 600 && !stopped; i++) {
            w.clock.advance(1000);
            await new Promise<void>((r) => setImmediate(r));
          }
          // An effect parked on a cleared timer keeps runtime.close() in its 5 s grace (real time);
          // nothing of this world is used again, so let that finish in the background.
          await Promise.race([stopping, new Promise((r) => setTimeout(r, 100))]);
        }
      }),
      {
        numRuns: opts.numRuns,
        ...(opts.seed !== undefined ? { seed: opts.seed } : {}),
        ...(opts.path !== undefined ? { path: opts.path, endOnFailure: true } : {}),
      },
    );
  } finally {
    clearInterval(keepAlive);
  }
  return stats;
}

export async function measure(runs = 1000): Promise<Row[]> {
  const t0 = performance.now();
  let failure: string | undefined;
  const stats = newStats();
  try {
    await runModel({ numRuns: runs, seed: 20261203, stats });
  } catch (err) {
    const cause =
      err instanceof Error && err.cause instanceof Error ? ` — ${err.cause.message}` : '';
    failure =
      String(err instanceof Error ? err.message : err)
        .split('\n')
        .slice(0, 3)
        .join(' ') + cause;
  }
  const s = ((performance.now() - t0) / 1000).toFixed(0);
  const cmds = Object.values(stats.commands).reduce((a, b) => a + b, 0);
  return [
    {
      goal: 'G13 determinism / replay (model run)',
      command:
        'npx vitest run test/unit/reliability/golden.test.ts test/integration/reliability/modelRun.test.ts (figures: bench/reliability/modelRun.ts)',
      figure: failure
        ? `fc.asyncModelRun: FAILED after ${s} s: ${failure}`
        : `fc.asyncModelRun: ${runs.toLocaleString('en')} command sequences (≤ 40 commands; ${cmds.toLocaleString('en')} commands: ${JSON.stringify(stats.commands)}) in ${s} s on the runtime + launch/vm charts + services, cap ${CAP}: ` +
          `${stats.launches} launches (${stats.refusedCapacity} clicks refused 503 CAPACITY), ${stats.machines} machines made, ${stats.faults} Fly faults scripted, ${stats.events.toLocaleString('en')} events; ` +
          `max live ${stats.maxLive} ≤ cap; after each sequence's drain: 0 machines left, 0 slots held, 0 actors unfinished, 0 version gaps or doubled ids, every stream's replay = live snapshot`,
      verdict: failure ? 'MISS' : 'PASS',
    },
  ];
}

if (isMain(import.meta)) {
  const runs = Number(process.argv[2] ?? 1000);
  console.log(table(await measure(runs)));
}
