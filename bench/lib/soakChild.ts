/**
 * One process of the soak bench (`bench/sections/soak.ts`): the landing app as production
 * assembles it (`createWhere` on the ports `buildPorts` makes, the Fly fake in immediate mode in
 * place of Fly's API), run under the heap limit the parent passes (`--max-old-space-size`).
 * It opens the store left by the previous process and boots on it (measured: open, boot, heap,
 * RSS), drives launches `from` → `to` to their end 32 at a time, runs the retention service's pass
 * at the checkpoint, measures again, reports over IPC and exits. A process per step keeps every heap
 * figure clean of the last one's garbage and compiled code.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import { FakeFlyMachines } from '../../src/adapters/fly/fakeFlyMachines.js';
import { MemoryCapacityLedger } from '../../src/adapters/memory/memoryCoordination.js';
import { eventStreamConfig, type NatsConnection } from '../../src/adapters/nats/connection.js';
import { SystemTimers, systemClock } from '../../src/adapters/system/systemClock.js';
import { UlidIds } from '../../src/adapters/system/ulidIds.js';
import { silentLogger } from '../../src/shared/log.js';
import type { WhereConfig } from '../../src/where/config.js';
import { buildPorts, openNatsPorts } from '../../src/where/wiring.js';
import type { RetentionRun } from '../../src/where/services/retention.js';
import { createWhere, type WherePorts } from '../../src/where/system.js';
import { changeWaiters, REGION, runLaunch, storeRigConfig } from './runtimeRig.js';
import { settleHeap } from './stats.js';

export type SoakStore = 'file' | 'nats';

export interface SoakTask {
  store: SoakStore;
  /** WM_DATA_DIR (file store). */
  dataDir: string;
  natsUrl?: string;
  /** Finished launches already in the store's history, and how many to have when done. */
  from: number;
  to: number;
  concurrency: number;
  /** The environment the app runs with (retention settings), on top of the bench's own. */
  env: Record<string, string>;
  /** NATS: the archive copy's age before a purge (production 10 min; see soak.ts). */
  purgeGraceMs: number;
}

export interface Memory {
  heapUsed: number;
  arrayBuffers: number;
  external: number;
  rss: number;
}

export interface Disk {
  /** File: events.log; NATS: the live stream's bytes. */
  live: number;
  /** File: archive segments and name files; NATS: the archive stream's bytes. */
  archive: number;
  liveMessages?: number;
  archiveMessages?: number;
  archiveFiles?: number;
}

export interface SoakReport {
  type: 'report';
  from: number;
  to: number;
  openMs: number;
  bootMs: number;
  /** Actors the runtime holds after boot (open ones folded; finished ones are not). */
  actorsAfterBoot: number;
  afterBoot: Memory;
  diskAtBoot: Disk;
  /** File: readFileSync + JSON.parse of every record of the live log at boot (the floor). */
  rawReadMs?: number;
  driveMs: number;
  /** Retention passes at the checkpoint, until one moves nothing (NATS: the purge grace between). */
  passes: RetentionRun[];
  running: Memory;
  diskAtEnd: Disk;
  peakRss: number;
}

export type SoakOut = SoakReport | { type: 'error'; message: string };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function memory(): Promise<Memory> {
  await settleHeap();
  const m = process.memoryUsage();
  return { heapUsed: m.heapUsed, arrayBuffers: m.arrayBuffers, external: m.external, rss: m.rss };
}

async function disk(task: SoakTask, cfg: WhereConfig, nc?: NatsConnection): Promise<Disk> {
  if (task.store === 'file') {
    let archive = 0;
    let archiveFiles = 0;
    for (const f of readdirSync(task.dataDir)) {
      if (!f.startsWith('events.archive.')) continue;
      archive += statSync(join(task.dataDir, f)).size;
      archiveFiles++;
    }
    return { live: statSync(join(task.dataDir, 'events.log')).size, archive, archiveFiles };
  }
  const jsm = await jetstreamManager(nc!);
  const live = (await jsm.streams.info(cfg.nats!.stream)).state;
  const archiveName = eventStreamConfig({
    name: cfg.nats!.stream,
    archive: cfg.nats!.archive,
  }).archive.name;
  const archive = (await jsm.streams.info(archiveName)).state;
  return {
    live: live.bytes,
    archive: archive.bytes,
    liveMessages: live.messages,
    archiveMessages: archive.messages,
  };
}

/** The floor of a file-store boot: read the same live log, split it, JSON.parse every record. */
function rawRead(path: string): number {
  const t = performance.now();
  const text = readFileSync(path, 'utf8');
  for (const line of text.split('\n')) if (line.length > 0) JSON.parse(line.slice(9));
  return performance.now() - t;
}

async function run(task: SoakTask): Promise<SoakReport> {
  let peakRss = process.memoryUsage().rss;
  const sampler = setInterval(() => {
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
  }, 200);
  try {
    const cfg = storeRigConfig({ ...task, name: 'soak-bench' });
    const fly = new FakeFlyMachines({ mode: 'immediate', region: REGION });
    // Fly never reuses a machine id; a fresh fake counts from 1 again, and its ids would name vm
    // streams the previous process archived (refused: StreamArchivedError). Each process counts
    // from its own range (a launch takes a few counts: the create and its waits).
    (fly as unknown as { seq: number }).seq = task.from * 1000;
    await settleHeap();
    // ---- open: the production ports (the file store's open reads and indexes the live log).
    const t0 = performance.now();
    let ports: WherePorts;
    let nc: NatsConnection | undefined;
    if (task.store === 'file') {
      ports = { ...(await buildPorts(cfg, silentLogger())), fly };
      if (!(ports.ledger instanceof MemoryCapacityLedger))
        throw new Error('expected the file-store assembly');
    } else {
      // Production's NATS wiring but for the purge grace: a soak compresses days into minutes,
      // and with production's 10 min nothing would leave the live stream during a run.
      const built = await openNatsPorts(cfg, silentLogger(), systemClock, {
        purgeGraceMs: task.purgeGraceMs,
      });
      nc = built.nc;
      ports = {
        ...built.ports,
        clock: systemClock,
        timers: new SystemTimers(systemClock),
        ids: new UlidIds(),
        log: silentLogger(),
        fly,
      };
    }
    const opened = performance.now();
    // ---- boot: the whole app (cluster, runtime.boot over the live store, services).
    const system = await createWhere(cfg, ports);
    await system.start(false);
    const booted = performance.now();
    const { runtime, retention } = system.services;
    const actorsAfterBoot = runtime.actors().length;
    const afterBoot = await memory();
    const diskAtBoot = await disk(task, cfg, nc);
    const rawReadMs = task.store === 'file' ? rawRead(join(task.dataDir, 'events.log')) : undefined;

    // ---- drive `to - from` launches to their end, 32 at a time.
    const waiters = changeWaiters(runtime);
    const rig = {
      runtime,
      fly,
      ids: new UlidIds(),
      until: (...a: Parameters<typeof waiters.until>) => waiters.until(a[0], a[1], a[2] ?? 120_000),
    };
    const total = task.to - task.from;
    const d0 = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: Math.min(task.concurrency, total) }, async () => {
        while (next < total) {
          next++;
          await runLaunch(rig);
        }
      }),
    );
    await runtime.settled();
    const driveMs = performance.now() - d0;
    waiters.stop();

    // ---- the checkpoint: the retention service's pass, as its timer would run it.
    // Passes until one has nothing left to do: a call while the timer's pass runs gets that pass
    // (it may predate the last launches), and JetStream purges only copies older than the grace.
    const passes: RetentionRun[] = [];
    if (total > 0) {
      for (let i = 0; i < 10; i++) {
        const pass = await retention.run();
        passes.push(pass);
        if (!pass.ok) throw new Error(`retention pass failed: ${pass.error}`);
        const copied = (pass.summary as { copiedStreams?: number }).copiedStreams ?? 0;
        if (i > 0 && pass.summary.droppedStreams === 0 && copied === 0) break;
        if (task.store === 'nats') await sleep(task.purgeGraceMs + 200);
      }
    }
    const running = await memory();
    const diskAtEnd = await disk(task, cfg, nc);
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
    await system.stop();
    return {
      type: 'report',
      from: task.from,
      to: task.to,
      openMs: opened - t0,
      bootMs: booted - opened,
      actorsAfterBoot,
      afterBoot,
      diskAtBoot,
      ...(rawReadMs !== undefined ? { rawReadMs } : {}),
      driveMs,
      passes,
      running,
      diskAtEnd,
      peakRss,
    };
  } finally {
    clearInterval(sampler);
  }
}

// Run as a child of the soak section: the task is argv[2] (JSON); the report goes back over IPC.
if (process.send && process.argv[2]) {
  const task = JSON.parse(process.argv[2]) as SoakTask;
  run(task).then(
    (report) => {
      process.send!(report, () => process.exit(0));
    },
    (err: unknown) => {
      const message = err instanceof Error ? (err.stack ?? err.message) : String(err);
      process.send!({ type: 'error', message } satisfies SoakOut, () => process.exit(1));
    },
  );
}
