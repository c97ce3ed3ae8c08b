/**
 * Records the golden event histories of G13: every path the chart model tests generate (every
 * reachable state, then every fact it takes), run through today's ActorRuntime onto a memory store,
 * stored as the runtime wrote them with the final persisted snapshot, into
 * test/fixtures/golden/<chart id>.json. test/unit/reliability/golden.test.ts folds them with the charts
 * of the day: a chart change that cannot replay stored history fails CI. Run this only when a new
 * chart version is released (its histories go into a new file; old files are never rewritten).
 * `node --import tsx bench/reliability/recordGolden.ts [--force]`
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as prettier from 'prettier';
import { encodeTime } from 'ulid';
import type { AnyMachineSnapshot } from 'xstate';
import { autospawnerMachine } from '../../machines/autospawner/autospawner.machine.js';
import { CHARTS, type Chart, type ChartKind } from '../../machines/index.js';
import type { ChartEvent, FactType } from '../../machines/facts.js';
import { launchMachine } from '../../machines/launch/launch.machine.js';
import { vmMachine } from '../../machines/vm/vm.machine.js';
import { poolMachine } from '../../machines/pool/pool.machine.js';
import { MemoryEventStore } from '../../src/adapters/memory/memoryEventStore.js';
import { ManualClock } from '../../src/adapters/system/manualClock.js';
import type { StoredEvent } from '../../src/events/envelope.js';
import type { Ids } from '../../src/ports/ids.js';
import { ActorRuntime } from '../../src/runtime/actorRuntime.js';
import { silentLogger } from '../../src/shared/log.js';
import { T0 } from '../../test/support/charts.js';
import {
  autospawnerAbstract,
  autospawnerEvents,
  LAUNCH_ID,
  launchAbstract,
  launchEvents,
  VM_MACHINE,
  vmAbstract,
  vmEvents,
  POOL_REGION,
  poolAbstract,
  poolEvents,
} from '../../test/model/generators.js';
import { explore } from '../../test/model/harness.js';
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
    stream: `launch.${LAUNCH_ID}`,
    paths: () => explore(launchMachine, { events: launchEvents, abstract: launchAbstract }),
  },
  vm: {
    stream: `vm.${VM_MACHINE}`,
    paths: () => explore(vmMachine, { events: vmEvents, abstract: vmAbstract }),
  },
  autospawner: {
    stream: 'autospawner.main',
    paths: () =>
      explore(autospawnerMachine, { events: autospawnerEvents, abstract: autospawnerAbstract }),
  },
  pool: {
    stream: `pool.${POOL_REGION}`,
    // Coarser than the model test's abstraction: one history per kind of situation is enough here.
    paths: () =>
      explore(poolMachine, {
        events: poolEvents,
        abstract: (s) => {
          const a = poolAbstract(s);
          return { ...a, ready: Math.min(a.ready, 1), failures: 0, target: a.target > 0 };
        },
      }),
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
