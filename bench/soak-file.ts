/**
 * One-off soak measure of the file event store alone (issue 10, item 3): heap held per finished
 * launch once the store is open, open time, a full readAll, and what compaction leaves behind.
 * Run: node --expose-gc --import tsx bench/soak-file.ts [launches=20000]; each open is measured in a
 * fresh process. SOAK_STORES=a.ts,b.ts compares store modules. Figures go in reports, not tests.
 */
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { monotonicFactory } from 'ulid';
import { FileEventStore } from '../src/adapters/file/fileEventStore.js';
import { makeEnvelope, type EventEnvelope } from '../src/events/envelope.js';
import type { FactType } from '../machines/facts.js';

const N = Number(process.argv[2] ?? 20_000);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with --expose-gc');
const ulid = monotonicFactory();

/** V8 heap plus array buffers (the store's typed-array index lives outside the V8 heap). */
function heapMb(): number {
  for (let i = 0; i < 4; i++) gc!();
  const m = process.memoryUsage();
  return (m.heapUsed + m.arrayBuffers) / 1e6;
}

/** One finished launch as the runtime stores it: 6 facts on its launch, 5 on its vm, both closed. */
function launch(t0: number): EventEnvelope[][] {
  const launchId = ulid(t0);
  const machineId = ulid(t0).toLowerCase().slice(0, 14);
  const ls = `launch.${launchId}`;
  const vs = `vm.${machineId}`;
  const meta = (chart: string, closes = false) => ({
    chart,
    instance: 'where-fra-1',
    correlationId: launchId,
    causationId: ulid(t0),
    ...(closes ? { closes: true as const } : {}),
  });
  const ev = <T extends FactType>(stream: string, type: T, data: unknown, at: number, m: object) =>
    makeEnvelope({ id: ulid(t0), type, stream, at, data: data as never, meta: m });
  const created = { machineId, launchId, region: 'fra', instanceId: 'i-1', state: 'created' };
  const seen = (state: string) => ({ machineId, launchId, region: 'fra', state });
  return [
    [
      ev(
        ls,
        'launch.requested',
        {
          launchId,
          region: 'fra',
          source: 'button',
          owner: 'where-fra-1',
          readyTimeoutMs: 60_000,
          ttlMs: 120_000,
        },
        t0,
        meta('launch.v1'),
      ),
      ev(ls, 'capacity.reserved', { launchId, live: 3, limit: 20 }, t0 + 5, meta('launch.v1')),
      ev(
        ls,
        'fly.machineCreated',
        { ...created, createdAt: t0 + 900 },
        t0 + 900,
        meta('launch.v1'),
      ),
      ev(ls, 'fly.machineObserved', seen('started'), t0 + 2000, meta('launch.v1')),
      ev(ls, 'vm.listening', { machineId, launchId, region: 'fra' }, t0 + 2500, meta('launch.v1')),
      ev(ls, 'fly.machineObserved', seen('destroyed'), t0 + 60_000, meta('launch.v1', true)),
    ],
    [
      ev(
        vs,
        'fly.machineCreated',
        { ...created, ttlMs: 120_000, createdAt: t0 + 900 },
        t0 + 900,
        meta('vm.v1'),
      ),
      ev(vs, 'fly.machineObserved', seen('started'), t0 + 2000, meta('vm.v1')),
      ev(vs, 'vm.listening', { machineId, launchId, region: 'fra' }, t0 + 2500, meta('vm.v1')),
      ev(
        vs,
        'vm.stopping',
        { machineId, launchId, reason: 'finished' },
        t0 + 50_000,
        meta('vm.v1'),
      ),
      ev(vs, 'fly.machineObserved', seen('destroyed'), t0 + 60_000, meta('vm.v1', true)),
    ],
  ];
}

/** Opens the log in a fresh process (clean heap) and reports what the open store holds. */
async function measure(path: string, storeModule: string): Promise<void> {
  const { FileEventStore: Store } = (await import(storeModule)) as {
    FileEventStore: typeof FileEventStore;
  };
  const base = heapMb();
  let t = performance.now();
  const store = Store.open(path, { fsync: false });
  const openMs = performance.now() - t;
  const held = heapMb() - base;
  t = performance.now();
  let n = 0;
  for await (const _e of store.readAll()) n++;
  const readAllMs = performance.now() - t;
  console.log(
    JSON.stringify({
      store: storeModule.split('/').at(-1),
      events: n,
      fileMb: +(statSync(path).size / 1e6).toFixed(1),
      openMs: Math.round(openMs),
      readAllMs: Math.round(readAllMs),
      heapHeldMb: +held.toFixed(1),
      heapBytesPerLaunch: Math.round((held * 1e6) / N),
      rssMb: Math.round(process.memoryUsage().rss / 1e6),
    }),
  );
  await store.close();
}

function measureInChild(path: string, storeModule: string): void {
  execFileSync(
    process.execPath,
    [
      '--expose-gc',
      '--import',
      'tsx',
      fileURLToPath(import.meta.url),
      String(N),
      path,
      storeModule,
    ],
    { stdio: 'inherit' },
  );
}

const here = dirname(fileURLToPath(import.meta.url));
const storeModules = (
  process.env.SOAK_STORES ?? join(here, '../src/adapters/file/fileEventStore.ts')
).split(',');
if (process.argv[3]) {
  await measure(process.argv[3], process.argv[4]!);
  process.exit(0);
}
const dir = mkdtempSync(join(tmpdir(), 'wm-soak-file-'));
const path = join(dir, 'events.log');
try {
  const start = Date.UTC(2026, 0, 1);
  {
    const w = FileEventStore.open(path, { fsync: false });
    for (let i = 0; i < N; i++) {
      for (const stream of launch(start + i * 1000)) {
        // Appended one fact at a time, as the runtime does.
        for (const [v, e] of stream.entries())
          await w.append(e.stream, [e], { expectedVersion: v });
      }
    }
    await w.close();
  }
  for (const m of storeModules) measureInChild(path, m);
  // Compaction: keep the newest 20 % of closed streams, archive the rest.
  const store = FileEventStore.open(path, {
    fsync: true,
    retention: { maxClosedStreams: Math.round(N * 0.2) },
  });
  const t = performance.now();
  const r = await store.compact();
  const compactMs = performance.now() - t;
  await store.close();
  const archives = readdirSync(dir).filter((f) => f.includes('.archive.'));
  console.log(
    JSON.stringify({
      compact: r,
      compactMs: Math.round(compactMs),
      archives: archives.map((f) => `${f} ${(statSync(join(dir, f)).size / 1e6).toFixed(1)} MB`),
    }),
  );
  measureInChild(path, storeModules[0]!);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
