/**
 * A runtime in a process of its own, for crash tests: the file event store in DATA_DIR, Fly calls
 * to the Machines API emulator at FLY_API_BASE_URL (VMs that never call back), commands on stdin
 * (`launch <id> <region>`), and every stored change as a JSON line on stdout.
 */
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { FileEventStore } from '../../src/adapters/file/fileEventStore.js';
import { MemoryCapacityLedger } from '../../src/adapters/memory/memoryCoordination.js';
import { SystemTimers, systemClock } from '../../src/adapters/system/systemClock.js';
import { UlidIds } from '../../src/adapters/system/ulidIds.js';
import { FlyMachinesHttp } from '../../src/adapters/fly/client.js';
import { ActorRuntime } from '../../src/runtime/actorRuntime.js';
import { createEffectRunner, METADATA } from '../../src/runtime/effects.js';
import { silentLogger } from '../../src/shared/log.js';

const env = process.env;
const dataDir = env.DATA_DIR!;
const readyTimeoutMs = Number(env.READY_TIMEOUT_MS ?? 4000);
const out = (o: unknown) => process.stdout.write(JSON.stringify(o) + '\n');

const store = FileEventStore.open(join(dataDir, 'events.log'));
const fly = new FlyMachinesHttp({
  baseUrl: env.FLY_API_BASE_URL!,
  token: env.FLY_API_TOKEN!,
  app: 'useless-machine',
  rateLimits: false,
});
const log = silentLogger();
const runtime = new ActorRuntime({
  store,
  clock: systemClock,
  timers: new SystemTimers(),
  ids: new UlidIds(),
  log,
  instance: `host-${process.pid}`,
  runEffect: createEffectRunner({
    fly,
    ledger: new MemoryCapacityLedger(),
    clock: systemClock,
    log,
    maxMachines: () => 10,
    machineSpec: (p) => ({
      region: p.region,
      image: 'test',
      cmd: ['node', env.VM_SCRIPT!],
      env: { WM_LAUNCH_ID: p.launchId },
      metadata: {
        [METADATA.launchId]: p.launchId,
        [METADATA.source]: p.source,
        [METADATA.owner]: p.owner,
      },
      internalPort: 4040,
      autoDestroy: true,
      restart: { policy: 'no' },
      stop: { signal: 'SIGTERM', timeoutS: 2 },
    }),
    autoLaunch: { owner: `host-${process.pid}`, readyTimeoutMs, ttlMs: 60_000 },
    waitRounds: { started: 1, destroyed: 1 },
  }),
});

runtime.onChange((c) =>
  out({
    kind: 'change',
    stream: c.event.stream,
    type: c.event.type,
    version: c.event.version,
    at: c.event.at,
    data: c.event.data,
    state: c.record.snapshot.value,
    local: c.local,
  }),
);

const report = await runtime.boot();
out({ kind: 'booted', ...report, pid: process.pid });

createInterface({ input: process.stdin }).on('line', (line) => {
  const [cmd, launchId, region] = line.trim().split(/\s+/);
  if (cmd === 'launch' && launchId && region) {
    void runtime.dispatch({
      type: 'launch.requested',
      data: {
        launchId,
        region,
        source: 'button',
        owner: `host-${process.pid}`,
        readyTimeoutMs,
        ttlMs: 60_000,
      },
    });
  }
});
