/**
 * Records the golden event histories of G13: every path the chart model tests generate (every
 * reachable state, then every fact it takes), run through today's ActorRuntime onto a memory store,
 * stored as the runtime wrote them with the final persisted snapshot, into
 * test/fixtures/golden/<chart id>.json. test/reliability/golden.test.ts folds them with the charts
 * of the day: a chart change that cannot replay stored history fails CI. Run this only when a new
 * chart version is released (its histories go into a new file; old files are never rewritten).
 * `node --import tsx bench/reliability/recordGolden.ts [--force]`
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as prettier from 'prettier';
import { encodeTime } from 'ulid';
import type { AnyMachineSnapshot, SnapshotFrom } from 'xstate';
import {
  autospawnerMachine,
  JITTER,
  type AutospawnerMachine,
} from '../../machines/autospawner/autospawner.machine.js';
import { CHARTS, type Chart, type ChartKind } from '../../machines/index.js';
import type { ChartEvent, FactType } from '../../machines/facts.js';
import { launchMachine, type LaunchMachine } from '../../machines/launch/launch.machine.js';
import { vmMachine, type VmMachine } from '../../machines/vm/vm.machine.js';
import { MemoryEventStore } from '../../src/adapters/memory/memoryEventStore.js';
import { ManualClock } from '../../src/adapters/system/manualClock.js';
import type { StoredEvent } from '../../src/events/envelope.js';
import type { Ids } from '../../src/ports/ids.js';
import { ActorRuntime } from '../../src/runtime/actorRuntime.js';
import { silentLogger } from '../../src/shared/log.js';
import { T0 } from '../../test/support/charts.js';
import { explore, fact } from '../../test/model/harness.js';
import { isMain } from './lib.js';

export const GOLDEN_DIR = 'test/fixtures/golden';

export interface GoldenHistory {
  /** The facts of the path, for people reading the file. */
  name: string;
  stream: string;
  /** The events exactly as the runtime stored them (envelope, version, position). */
  events: StoredEvent[];
  /** `machine.getPersistedSnapshot()` after the last event. */
  final: unknown;
}

export interface GoldenFile {
  chart: string;
  recordedAt: string;
  /** The commit the histories were recorded from. */
  commit: string;
  histories: GoldenHistory[];
}

const e = fact;
const INTERVAL = 60_000;
const L = '01JZ0000000000000000000003';
const M = 'aaaaaaaaaaaaaa';
const VL = '01JZ0000000000000000000004';
const VM_ID = 'bbbbbbbbbbbbbb';
void JITTER;

// ---- the fact generators of test/model/*.model.test.ts (copied: test files cannot be imported) ----

function launchEvents(s: SnapshotFrom<LaunchMachine>): ChartEvent[] {
  const c = s.context;
  const t = Math.max(T0, c.updatedAt) + 1000;
  const out: ChartEvent[] = [
    e(
      'launch.requested',
      {
        launchId: L,
        region: 'fra',
        source: 'dash',
        owner: 'i1',
        readyTimeoutMs: 20_000,
        ttlMs: 60_000,
      },
      T0,
      1,
    ),
    e('capacity.reserved', { launchId: L, live: 1, limit: 2 }, t, 2),
    e('capacity.exhausted', { launchId: L, live: 2, limit: 2 }, t, 3),
    e(
      'fly.machineCreated',
      {
        machineId: M,
        launchId: L,
        region: 'fra',
        instanceId: 'I1',
        state: 'created',
        createdAt: t,
      },
      t,
      4,
    ),
    e('fly.createFailed', { launchId: L, status: 0, message: 'timeout', retryable: true }, t, 5),
    e(
      'fly.createFailed',
      { launchId: L, status: 429, message: 'slow down', retryable: false },
      t,
      6,
    ),
    e('fly.machineObserved', { machineId: M, state: 'started', region: 'fra' }, t, 7),
    e('fly.machineObserved', { machineId: M, state: 'stopped', region: 'fra' }, t, 8),
    e('fly.machineObserved', { machineId: M, state: 'destroyed', region: 'fra' }, t, 9),
    e('fly.machineGone', { machineId: M, launchId: L }, t, 10),
    e('fly.machineDestroyed', { machineId: M, launchId: L }, t, 11),
    e('vm.listening', { machineId: M, launchId: L, region: 'fra' }, t, 12),
    e('vm.stopping', { machineId: M, launchId: L, reason: 'finished' }, t, 13),
    e('fly.noMachineFound', { launchId: L, settled: true }, t, 16),
    e('fly.noMachineFound', { launchId: L, settled: false }, t, 17),
  ];
  if (c.timers.ready !== undefined)
    out.push(
      e('clock.readyElapsed', { key: 'ready', due: c.timers.ready, roll: 0.5 }, c.timers.ready, 14),
    );
  if (c.timers.cleanup !== undefined)
    out.push(
      e(
        'clock.cleanupElapsed',
        { key: 'cleanup', due: c.timers.cleanup, roll: 0.5 },
        c.timers.cleanup,
        15,
      ),
    );
  return out;
}

const launchAbstract = (s: SnapshotFrom<LaunchMachine>) => ({
  value: s.value,
  machine: s.context.machineId !== undefined,
  instance: s.context.instanceId !== undefined,
  reason: s.context.reason,
  attempts: s.context.cleanupAttempts,
  timers: Object.keys(s.context.timers).sort(),
});

function vmEvents(s: SnapshotFrom<VmMachine>): ChartEvent[] {
  const c = s.context;
  const t = Math.max(T0, c.updatedAt) + 1000;
  const out: ChartEvent[] = [
    e(
      'fly.machineCreated',
      {
        machineId: VM_ID,
        launchId: VL,
        region: 'gru',
        instanceId: 'I',
        state: 'created',
        source: 'auto',
        ttlMs: 60_000,
        createdAt: t,
      },
      t,
      1,
    ),
    e(
      'fly.machineCreated',
      {
        machineId: VM_ID,
        launchId: VL,
        region: 'gru',
        instanceId: 'I',
        state: 'started',
        source: 'auto',
        ttlMs: 60_000,
        createdAt: t,
      },
      t,
      2,
    ),
    e('fly.machineObserved', { machineId: VM_ID, state: 'starting', region: 'gru' }, t, 3),
    e('fly.machineObserved', { machineId: VM_ID, state: 'started', region: 'gru' }, t, 4),
    e('fly.machineObserved', { machineId: VM_ID, state: 'stopped', region: 'gru' }, t, 5),
    e('fly.machineObserved', { machineId: VM_ID, state: 'destroyed', region: 'gru' }, t, 6),
    e('vm.listening', { machineId: VM_ID, launchId: VL, region: 'gru' }, t, 7),
    e('vm.stopping', { machineId: VM_ID, launchId: VL, reason: 'ttl' }, t, 8),
    e('fly.machineGone', { machineId: VM_ID }, t, 9),
    e('fly.machineDestroyed', { machineId: VM_ID }, t, 10),
    e(
      'fly.destroyFailed',
      { machineId: VM_ID, status: 404, message: 'gone', retryable: false },
      t,
      11,
    ),
    e(
      'fly.destroyFailed',
      { machineId: VM_ID, status: 500, message: 'oops', retryable: true },
      t,
      12,
    ),
    e('reconcile.orphanFound', { machineId: VM_ID, launchId: VL, why: 'noLiveLaunch' }, t, 13),
  ];
  if (c.timers.ttl !== undefined)
    out.push(
      e(
        'clock.ttlElapsed',
        { key: 'ttl', due: c.timers.ttl, roll: 0.5 },
        Math.max(t, c.timers.ttl),
        14,
      ),
    );
  if (c.timers.stop !== undefined)
    out.push(
      e(
        'clock.stopElapsed',
        { key: 'stop', due: c.timers.stop, roll: 0.5 },
        Math.max(t, c.timers.stop),
        15,
      ),
    );
  return out;
}

const vmAbstract = (s: SnapshotFrom<VmMachine>) => ({
  value: s.value,
  attempts: Math.min(s.context.destroyAttempts, 2),
  timers: Object.keys(s.context.timers).sort(),
});

function autospawnerEvents(s: SnapshotFrom<AutospawnerMachine>): ChartEvent[] {
  const c = s.context;
  const t = T0 + 1000 * (c.spawns + 1);
  const out: ChartEvent[] = [
    e(
      'autospawner.configured',
      { intervalMs: INTERVAL, inactivityMs: 5 * INTERVAL, regions: ['ams', 'sin'], enabled: true },
      t,
      1,
    ),
    e(
      'autospawner.configured',
      { intervalMs: INTERVAL, inactivityMs: 5 * INTERVAL, regions: ['ams', 'sin'], enabled: false },
      t,
      2,
    ),
    e('autospawner.switched', { on: true, by: 'test' }, t, 3),
    e('autospawner.switched', { on: false, by: 'test' }, t, 4),
    e('presence.changed', { visitors: 0, roll: 0.5 }, t, 5),
    e('presence.changed', { visitors: 2, roll: 0.9 }, t, 6),
  ];
  if (c.timers.spawn !== undefined)
    out.push(
      e(
        'clock.spawnElapsed',
        { key: 'spawn', due: c.timers.spawn, roll: 0.1 },
        Math.max(t, c.timers.spawn),
        7,
      ),
    );
  if (c.timers.inactivity !== undefined)
    out.push(
      e(
        'clock.inactivityElapsed',
        { key: 'inactivity', due: c.timers.inactivity, roll: 0.5 },
        Math.max(t, c.timers.inactivity),
        8,
      ),
    );
  return out;
}

const autospawnerAbstract = (s: SnapshotFrom<AutospawnerMachine>) => ({
  value: s.value,
  visitors: s.context.visitors > 0,
  enabled: s.context.enabled,
  configured: s.context.intervalMs === INTERVAL,
  spawned: Math.min(s.context.spawns, 2),
  timers: Object.keys(s.context.timers).sort(),
});

// ---- recording ---------------------------------------------------------------------------------

/** Deterministic ULIDs: the time part from the clock, then a counter. */
class CountingIds implements Ids {
  private n = 0;
  constructor(private readonly clock: ManualClock) {}
  next(): string {
    return encodeTime(this.clock.now(), 10) + encodeTime(++this.n, 16);
  }
}

function factOf(ev: ChartEvent): { type: FactType; data: never; at: number } {
  const { type, at, eventId: _id, ...data } = ev;
  return { type, data: data as never, at };
}

/** Apply a path's facts through a fresh runtime; the stream as stored, and the final snapshot. */
async function record(chart: Chart, stream: string, events: readonly ChartEvent[]) {
  const clock = new ManualClock(T0);
  const store = new MemoryEventStore();
  const runtime = new ActorRuntime({
    store,
    clock,
    // Timers armed but never fired: a deadline is a fact of the path (clock.*Elapsed), not of the clock.
    timers: new ManualClock(0),
    ids: new CountingIds(clock),
    log: silentLogger(),
    instance: 'golden',
    // Effects are not run: the history is the facts, and their outcomes are facts of the path.
    runEffect: () => Promise.resolve([]),
  });
  for (const ev of events) {
    clock.setTime(Math.max(clock.now(), ev.at));
    await runtime.apply(stream, factOf(ev));
  }
  await runtime.settled();
  const rec = runtime.actor(stream);
  const stored = await store.read(stream);
  await runtime.close(0);
  await store.close();
  const snapshot: AnyMachineSnapshot =
    rec?.snapshot ?? chart.machine.getInitialSnapshot(null as never);
  return { events: stored, final: chart.machine.getPersistedSnapshot(snapshot) };
}

const SOURCES: Record<ChartKind, { stream: string; paths: () => { events: ChartEvent[] }[] }> = {
  launch: {
    stream: `launch.${L}`,
    paths: () => explore(launchMachine, { events: launchEvents, abstract: launchAbstract }),
  },
  vm: {
    stream: `vm.${VM_ID}`,
    paths: () => explore(vmMachine, { events: vmEvents, abstract: vmAbstract }),
  },
  autospawner: {
    stream: 'autospawner.main',
    paths: () =>
      explore(autospawnerMachine, { events: autospawnerEvents, abstract: autospawnerAbstract }),
  },
};

export async function recordGolden(kind: ChartKind): Promise<GoldenFile> {
  const chart: Chart = CHARTS[kind];
  const src = SOURCES[kind];
  const histories: GoldenHistory[] = [];
  const seen = new Set<string>();
  for (const p of src.paths()) {
    const h = await record(chart, src.stream, p.events);
    if (h.events.length === 0) continue;
    // Paths that store the same facts are one history.
    const key = JSON.stringify(h.events.map((x) => [x.type, x.data, x.at]));
    if (seen.has(key)) continue;
    seen.add(key);
    histories.push({
      name: h.events.map((x) => x.type).join(' → '),
      stream: src.stream,
      events: h.events,
      final: h.final,
    });
  }
  let commit = 'unknown';
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
  } catch {
    // not a git checkout
  }
  return { chart: chart.id, recordedAt: new Date().toISOString(), commit, histories };
}

/** One history per line: small, and a diff shows which histories changed. */
function render(file: GoldenFile): string {
  const { histories, ...head } = file;
  const lines = histories.map((h) => JSON.stringify(h));
  return `${JSON.stringify(head).slice(0, -1)},"histories":[\n${lines.join(',\n')}\n]}\n`;
}

export const goldenPath = (chartId: string) => join(GOLDEN_DIR, `${chartId}.json`);

if (isMain(import.meta)) {
  const force = process.argv.includes('--force');
  mkdirSync(GOLDEN_DIR, { recursive: true });
  for (const kind of Object.keys(CHARTS) as ChartKind[]) {
    const file = await recordGolden(kind);
    const path = goldenPath(file.chart);
    // Stored history is history: a released chart's goldens are not rewritten to match new code.
    if (existsSync(path) && !force) {
      console.log(`${path}: exists, kept (pass --force to rewrite)`);
      continue;
    }
    // Formatted as `npm run lint` wants it (prettier checks JSON too).
    const options = (await prettier.resolveConfig(path)) ?? {};
    writeFileSync(path, await prettier.format(render(file), { ...options, parser: 'json' }));
    const finals = new Set(
      file.histories.map((h) => JSON.stringify((h.final as { value: unknown }).value)),
    );
    console.log(
      `${path}: ${file.histories.length} histories, ${file.histories.reduce((n, h) => n + h.events.length, 0)} events, ${finals.size} distinct final states`,
    );
  }
}
