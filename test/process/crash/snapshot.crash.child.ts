/**
 * Child of snapshot.crash.test.ts: folds many open launches, then writes boot snapshots in a loop
 * (generation n: takenAt = n, one more launch each time) and says `wrote n` once each is durable.
 * The parent SIGKILLs it at seeded moments, so some kills land inside a write.
 */
import { MemoryEventStore } from '../../../src/adapters/memory/memoryEventStore.js';
import { ManualClock } from '../../../src/adapters/system/manualClock.js';
import { UlidIds } from '../../../src/adapters/system/ulidIds.js';
import { ActorRuntime } from '../../../src/runtime/actorRuntime.js';
import { SnapshotFile } from '../../../src/runtime/snapshot.js';
import { silentLogger } from '../../../src/shared/log.js';

const path = process.env.SNAPSHOT_PATH!;
const launches = Number(process.env.LAUNCHES ?? 1500);
const start = Number(process.env.START_GENERATION ?? 1);

const clock = new ManualClock(Date.UTC(2026, 5, 1));
const rt = new ActorRuntime({
  store: new MemoryEventStore(),
  clock,
  timers: clock,
  ids: new UlidIds(clock),
  log: silentLogger(),
  instance: 'crash',
  runEffect: async () => [],
  drives: () => false,
});
await rt.boot();
const launch = (i: number) =>
  rt.dispatch({
    type: 'launch.requested',
    data: {
      launchId: `01JZ${String(i).padStart(22, '0')}`,
      region: 'ams',
      source: 'button',
      owner: 'crash',
      readyTimeoutMs: 30_000,
      ttlMs: 600_000,
    },
  });
for (let i = 0; i < launches; i++) await launch(i);
let generation = start;
const file = new SnapshotFile({ path, store: 'file', log: silentLogger(), now: () => generation });
process.stdout.write('ready\n');
for (; ; generation++) {
  await launch(launches + generation);
  const state = rt.snapshotState()!;
  if (!(await file.save(state))) throw new Error('write failed');
  process.stdout.write(`wrote ${generation} ${state.records.length}\n`);
}
