/**
 * Section `runtime`: the actor runtime against a zero-latency Fly fake and the in-memory store.
 * (a) launches through their whole life: throughput (64 in flight) and per-launch time
 *     (sequential), beside bare XState actors driven through the same events;
 * (b) heap per idle vm actor (10k in `listening`), beside bare XState actors;
 * (c) boot replay of ~100k events from the file store, 10 % of their actor streams left open (so
 *     boot folds live actors), beside a raw read of the same file.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { vmChart } from '../../machines/index.js';
import { FileEventStore } from '../../src/adapters/file/fileEventStore.js';
import { MemoryEventStore } from '../../src/adapters/memory/memoryEventStore.js';
import type { StoredEvent } from '../../src/events/envelope.js';
import type { EventStore } from '../../src/ports/eventStore.js';
import { bareLaunch, bareListeningVm } from '../lib/bare.js';
import { defer } from '../lib/cleanup.js';
import { observabilityCost } from '../lib/observability.js';
import type { SectionContext, SectionDef, SectionOutput } from '../lib/context.js';
import { atMost, row } from '../lib/report.js';
import { systemClock } from '../../src/adapters/system/systemClock.js';
import { Fleet } from '../../src/where/services/fleet.js';
import {
  DiscardingEventStore,
  EVENTS_PER_LAUNCH,
  NullLedger,
  REGION,
  makeRuntimeRig,
  runLaunch,
  withOpenStreams,
  type RuntimeRig,
} from '../lib/runtimeRig.js';
import { fmtBytes, fmtMs, fmtRate, p50, p99, settleHeap, summarize } from '../lib/stats.js';

/** Run `total` tasks with at most `concurrency` in flight. */
async function pool(
  total: number,
  concurrency: number,
  task: (i: number) => Promise<unknown>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < total) await task(next++);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, total) }, worker));
}

/** Time spent inside the fake's synchronous work (its create makes a ULID with the default PRNG). */
function meterFake(rig: RuntimeRig): () => number {
  let ms = 0;
  const fly = rig.fly;
  const create = fly.create.bind(fly);
  const exit = fly.exit.bind(fly);
  fly.create = (input) => {
    const t = performance.now();
    const p = create(input);
    ms += performance.now() - t;
    return p;
  };
  fly.exit = (id, code) => {
    const t = performance.now();
    exit(id, code);
    ms += performance.now() - t;
  };
  return () => ms;
}

async function countEvents(store: EventStore): Promise<StoredEvent[]> {
  const out: StoredEvent[] = [];
  for await (const e of store.readAll()) out.push(e);
  return out;
}

export const runtimeSection: SectionDef = {
  name: 'runtime',
  title: 'actor runtime: launch lifecycle, memory per actor, boot replay',
  async run(ctx: SectionContext): Promise<SectionOutput> {
    const q = ctx.quick;
    const N_SEQ = q ? 200 : 2000;
    const N_WARM = q ? 50 : 300;
    const N_THROUGHPUT = q ? 500 : Math.ceil(100_000 / EVENTS_PER_LAUNCH);
    const CONCURRENCY = 64;
    const N_VM = q ? 1000 : 10_000;
    /** The raw read is cheap: best of 3. Each replay into actors is one run (each costs seconds). */
    const FLOOR_REPS = q ? 1 : 3;
    const rows: SectionOutput['rows'] = [];
    const notes: string[] = [];
    const data: Record<string, unknown> = {};

    // ---- (a) warm up both paths (JIT, module init), then measure ------------------------------
    ctx.progress(`runtime: warm-up (${N_WARM} launches each way)`);
    {
      const rig = makeRuntimeRig(new MemoryEventStore());
      await rig.runtime.boot();
      for (let i = 0; i < N_WARM; i++) await runLaunch(rig);
      await rig.close();
      for (let i = 0; i < N_WARM; i++) bareLaunch(1_000_000 + i);
    }

    ctx.progress(`runtime: ${N_SEQ} sequential launches, runtime and bare, interleaved in blocks`);
    const seqRig = makeRuntimeRig(new MemoryEventStore());
    const fakeMs = meterFake(seqRig);
    await seqRig.runtime.boot();
    const perLaunch: number[] = [];
    const perBare: number[] = [];
    // Blocks of 100 alternate between the two, so drift in machine load hits both alike.
    for (let block = 0; block < N_SEQ / 100; block++) {
      for (let i = 0; i < 100; i++) {
        const t = performance.now();
        await runLaunch(seqRig);
        perLaunch.push(performance.now() - t);
      }
      for (let i = 0; i < 100; i++) {
        const t = performance.now();
        bareLaunch(block * 100 + i);
        perBare.push(performance.now() - t);
      }
    }
    const seqEvents = (await countEvents(seqRig.store)).length;
    const fakePerLaunch = fakeMs() / N_SEQ;
    await seqRig.close();

    ctx.progress(`runtime: observability, launches with metrics + tracing and without`);
    const obsFile = await observabilityCost(q ? 100 : 1500, 'file');
    const obsMemory = await observabilityCost(N_SEQ, 'memory');

    ctx.progress(`runtime: throughput, ${N_THROUGHPUT} launches with ${CONCURRENCY} in flight`);
    const sourceStore = new MemoryEventStore();
    const tpRig = makeRuntimeRig(sourceStore);
    await tpRig.runtime.boot();
    await settleHeap();
    const t0 = performance.now();
    await pool(N_THROUGHPUT, CONCURRENCY, () => runLaunch(tpRig));
    await tpRig.runtime.settled();
    const tpMs = performance.now() - t0;

    // The landing app's Fleet projection on the same runtime: its cost per change, with the
    // finished actors the runtime keeps in memory (10 min) after those launches.
    const changeCost = async (prefix: string): Promise<number> => {
      const xs: number[] = [];
      for (let i = 0; i < (q ? 50 : 300); i++) {
        const machineId = `${prefix}${i.toString(16).padStart(12, '0')}`;
        const t = performance.now();
        await tpRig.runtime.dispatch({
          type: 'fly.machineObserved',
          data: { machineId, state: 'started', region: REGION, createdAt: Date.now() },
        });
        xs.push(performance.now() - t);
      }
      return p50(xs);
    };
    const retained = tpRig.runtime.actors().length;
    const withoutFleet = await changeCost('fa');
    const fleet = new Fleet(tpRig.runtime, systemClock, () => 1000);
    const withFleet = await changeCost('fb');
    fleet.close();
    await tpRig.close();
    // The lifecycle events only (the probe above appended a few more after them).
    const events = (await countEvents(sourceStore)).slice(0, N_THROUGHPUT * EVENTS_PER_LAUNCH);
    ctx.shared.lifecycleEvents = events;
    if (
      events.length !== N_THROUGHPUT * EVENTS_PER_LAUNCH ||
      seqEvents !== N_SEQ * EVENTS_PER_LAUNCH
    ) {
      throw new Error(
        `expected ${EVENTS_PER_LAUNCH} events per launch; got ${events.length / N_THROUGHPUT} and ${seqEvents / N_SEQ}`,
      );
    }
    await settleHeap();
    const b0 = performance.now();
    for (let i = 0; i < N_THROUGHPUT; i++) bareLaunch(2_000_000 + i);
    const bareMs = performance.now() - b0;

    const launchRate = (N_THROUGHPUT / tpMs) * 1000;
    const bareRate = (N_THROUGHPUT / bareMs) * 1000;
    const seqP99 = p99(perLaunch);
    const bareP99 = p99(perBare);
    rows.push(
      row({
        metric: `launches/s, whole lifecycle, ${CONCURRENCY} in flight`,
        value: launchRate,
        unit: 'launches/s',
        fmt: (v) => fmtRate(v, 'launches'),
        floor: bareRate,
        ratio: bareRate / launchRate,
        checks: [atMost(bareRate / launchRate, 3, '≤ 3× floor')],
      }),
      row({
        metric: 'events/s appended (same run)',
        value: (events.length / tpMs) * 1000,
        unit: 'events/s',
        fmt: (v) => fmtRate(v, 'events'),
      }),
      row({
        metric: 'per-launch time, sequential, p50',
        value: p50(perLaunch),
        unit: 'ms',
        fmt: fmtMs,
        floor: p50(perBare),
        checks: [atMost(p50(perLaunch) / p50(perBare), 3, '≤ 3× floor')],
      }),
      row({
        metric: 'per-launch time, sequential, p99',
        value: seqP99,
        unit: 'ms',
        fmt: fmtMs,
        floor: bareP99,
        checks: [atMost(seqP99, 5, '≤ 5 ms'), atMost(seqP99 / bareP99, 3, '≤ 3× floor')],
      }),
      row({
        metric: "  of which the Fly fake's own CPU (mean)",
        value: fakePerLaunch,
        unit: 'ms',
        fmt: fmtMs,
      }),
      ...obsFile.rows,
      ...obsMemory.rows,
      row({
        metric: `one vm change, ${retained} actors in memory, with the Fleet projection (floor: without), p50`,
        value: withFleet,
        unit: 'ms',
        fmt: fmtMs,
        floor: withoutFleet,
      }),
    );
    data.lifecycle = {
      launchesSequential: N_SEQ,
      launchesThroughput: N_THROUGHPUT,
      concurrency: CONCURRENCY,
      eventsPerLaunch: EVENTS_PER_LAUNCH,
      throughputMs: tpMs,
      bareMs,
      perLaunchMs: summarize(perLaunch),
      bareLaunchMs: summarize(perBare),
      fakeCpuPerLaunchMs: fakePerLaunch,
      observability: [obsFile.data, obsMemory.data],
      fleetProbe: {
        actorsInMemory: retained,
        withoutFleetMs: withoutFleet,
        withFleetMs: withFleet,
      },
    };
    notes.push(
      `(a) one launch = ${EVENTS_PER_LAUNCH} appended events: launch.requested, capacity.reserved, fly.machineCreated ×2, fly.machineObserved(started) ×2, vm.listening ×2, vm.stopping, fly.machineObserved(destroyed) ×2; the fake (immediate mode) answers at once, the VM's callbacks are dispatched as the private API would.`,
      '(a) floor = createActor(launch)+createActor(vm) and send() of the same 11 events, no persistence; ratio for rates = floor rate ÷ runtime rate (how many times slower).',
      obsFile.note,
      obsMemory.note,
      "(a) the Fleet probe: after the throughput run, 300 changes (a new machine observed started) through the same runtime, without and then with the landing app's Fleet projection subscribed (src/where/services/fleet.ts), finished actors still in memory as they are for 10 min.",
    );

    // ---- (b) heap per idle vm actor ---------------------------------------------------------------
    ctx.progress(`runtime: heap of ${N_VM} vm actors in listening, runtime and bare`);
    {
      // Warm both code paths first so the measured delta holds actors, not compiled code.
      const warm = makeRuntimeRig(new DiscardingEventStore(), { ledger: new NullLedger() });
      await warm.runtime.boot();
      await makeListeningVms(warm, 500, 'w');
      await warm.close();
      for (let i = 0; i < 500; i++) bareListeningVm(3_000_000 + i).stop();
    }
    const heapRig = makeRuntimeRig(new DiscardingEventStore(), { ledger: new NullLedger() });
    await heapRig.runtime.boot();
    await settleHeap();
    const h0 = process.memoryUsage();
    await makeListeningVms(heapRig, N_VM, 'h');
    await settleHeap();
    const h1 = process.memoryUsage();
    const live = heapRig.runtime
      .actors('vm')
      .filter((r) => vmChart.view(r.snapshot).state === 'listening').length;
    if (live !== N_VM) throw new Error(`expected ${N_VM} vm actors in listening, found ${live}`);
    const runtimeHeap = (h1.heapUsed - h0.heapUsed) / N_VM;
    const runtimeRss = (h1.rss - h0.rss) / N_VM;
    await heapRig.close();
    await settleHeap();

    const g0 = process.memoryUsage();
    const held: { stop(): void }[] = [];
    for (let i = 0; i < N_VM; i++) held.push(bareListeningVm(4_000_000 + i));
    await settleHeap();
    const g1 = process.memoryUsage();
    const bareHeap = (g1.heapUsed - g0.heapUsed) / N_VM;
    for (const a of held) a.stop();
    held.length = 0;
    rows.push(
      row({
        metric: `heap per idle vm actor (N=${N_VM}, listening)`,
        value: runtimeHeap,
        unit: 'bytes',
        fmt: fmtBytes,
        floor: bareHeap,
        checks: [atMost(runtimeHeap, 10 * 1024, '≤ 10 KB')],
      }),
    );
    data.heap = {
      n: N_VM,
      runtimeHeapPerActor: runtimeHeap,
      runtimeRssPerActor: runtimeRss,
      bareHeapPerActor: bareHeap,
    };
    notes.push(
      '(b) runtime actors are made by fly.machineCreated(started) + vm.listening; heap counts the actor record, its snapshot, the recent-events ring, its armed TTL timer; the store (a discarding one) and the capacity ledger (a null one) hold nothing, so only the actor is measured. Floor: createActor(vm).start() + the same two send()s, actors kept running.',
    );

    // ---- (c) boot replay --------------------------------------------------------------------------
    // The lifecycle history with every 10th actor stream left open: boot reads it all and folds
    // the open ones (a history of finished streams only would fold nothing, issue 10).
    const replay = withOpenStreams(events, 10);
    const replayEvents = replay.events;
    const dir = mkdtempSync(join(tmpdir(), 'wm-bench-replay-'));
    const removeDir = defer('replay temp dir', () => rmSync(dir, { recursive: true, force: true }));
    try {
      const path = join(dir, 'events.log');
      ctx.progress(
        `runtime: writing ${replayEvents.length} events (${replay.open} of ${replay.streams} streams open) to a file store`,
      );
      {
        const writer = FileEventStore.open(path, { fsync: false });
        for (const e of replayEvents) {
          const { version, position: _p, ...envelope } = e;
          await writer.append(e.stream, [envelope], { expectedVersion: version - 1 });
        }
        await writer.close();
      }
      const rawRead = (): number => {
        const t = performance.now();
        const text = readFileSync(path, 'utf8');
        let n = 0;
        for (const line of text.split('\n')) {
          if (line.length === 0) continue;
          JSON.parse(line.slice(9));
          n++;
        }
        if (n !== replayEvents.length)
          throw new Error(`raw read found ${n} records, expected ${replayEvents.length}`);
        return performance.now() - t;
      };
      const fileBoot = async (): Promise<{
        open: number;
        boot: number;
        total: number;
        actors: number;
        live: number;
      }> => {
        const t = performance.now();
        const store = FileEventStore.open(path, { fsync: false });
        const opened = performance.now();
        const rig = makeRuntimeRig(store);
        const report = await rig.runtime.boot();
        const done = performance.now();
        if (report.events !== replayEvents.length)
          throw new Error(`file boot replayed ${report.events} of ${replayEvents.length}`);
        await rig.close();
        await store.close();
        return {
          open: opened - t,
          boot: done - opened,
          total: done - t,
          actors: report.actors,
          live: report.live,
        };
      };
      ctx.progress(
        `runtime: replay ${replayEvents.length} events: raw read ×${FLOOR_REPS}, file-store open + boot`,
      );
      const raws: number[] = [];
      for (let r = 0; r < FLOOR_REPS; r++) {
        await settleHeap();
        raws.push(rawRead());
      }
      await settleHeap();
      const file = await fileBoot();
      const raw = Math.min(...raws);
      rows.push(
        row({
          metric: `replay ${replayEvents.length} events (${file.live} of ${replay.streams} actors open), file store: open + boot`,
          value: file.total,
          unit: 'ms',
          fmt: fmtMs,
          floor: raw,
          checks: [atMost(file.total / raw, 2.5, '≤ 2.5× floor')],
        }),
        row({
          metric: '  of which open (read, CRC, JSON.parse, index)',
          value: file.open,
          unit: 'ms',
          fmt: fmtMs,
        }),
        row({
          metric: `  of which runtime.boot (read + decode every event, fold the ${file.live} open actors)`,
          value: file.boot,
          unit: 'ms',
          fmt: fmtMs,
        }),
      );
      data.replay = {
        events: replayEvents.length,
        streams: replay.streams,
        openStreams: replay.open,
        actors: file.actors,
        fileBytes: readFileSync(path).length,
        rawReadMs: raws,
        fileBootMs: file,
      };
      notes.push(
        `(c) the ${N_THROUGHPUT} launches (a) appended, with every 10th actor stream left open (its closing fact dropped): ${replay.open} of ${replay.streams} actors for boot to fold. Floor = readFileSync + split lines + JSON.parse of every record of the same ${((data.replay as { fileBytes: number }).fileBytes / 1e6).toFixed(1)} MB file, best of ${FLOOR_REPS}; measured once: FileEventStore.open + ActorRuntime.boot. The "of which" rows have no floor: neither part does the floor's work alone. (The memory-store replay row is gone: it iterated events already in memory, unlike the floor's disk read.)`,
      );
    } finally {
      await removeDir();
    }
    return { rows, notes, data };
  },
};

/** `n` vm actors taken to `listening` by the facts the platform and the VM would send. */
async function makeListeningVms(rig: RuntimeRig, n: number, prefix: string): Promise<void> {
  const at = Date.now();
  for (let i = 0; i < n; i++) {
    const machineId = `${prefix}${i.toString(16).padStart(13, '0')}`;
    await rig.runtime.dispatch({
      type: 'fly.machineCreated',
      data: { machineId, region: REGION, instanceId: 'i', state: 'started', createdAt: at },
    });
    await rig.runtime.dispatch({ type: 'vm.listening', data: { machineId, region: REGION } });
  }
  await rig.runtime.settled();
}
