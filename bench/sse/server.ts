/**
 * Child process of the `sse` section: one fleet-stream server, either the landing app itself
 * (`product`: createWhere on in-memory ports, GET /events, a fleet change made through the runtime)
 * or the floor (`raw`: node:http writing the same frame bytes to every open response). Driven over
 * IPC; stamps each change with the host-wide monotonic clock (process.hrtime) relative to `base`.
 */
import { createServer, type ServerResponse } from 'node:http';
import { readdirSync } from 'node:fs';
import { initialTransition, transition } from 'xstate';
import { FakeFlyMachines } from '../../src/adapters/fly/fakeFlyMachines.js';
import { MemoryEventStore } from '../../src/adapters/memory/memoryEventStore.js';
import {
  MemoryCapacityLedger,
  MemoryLeases,
  MemoryPresence,
} from '../../src/adapters/memory/memoryCoordination.js';
import { SystemTimers, systemClock } from '../../src/adapters/system/systemClock.js';
import { UlidIds } from '../../src/adapters/system/ulidIds.js';
import { toChartEvent, makeEnvelope } from '../../src/events/envelope.js';
import { vmMachine } from '../../machines/index.js';
import { parseEnv } from '../../src/shared/env.js';
import { silentLogger } from '../../src/shared/log.js';
import { toConfig, whereEnv } from '../../src/where/config.js';
import { frame } from '../../src/where/sse.js';
import { toFleetMachine } from '../../src/where/services/views.js';
import { createWhere } from '../../src/where/system.js';

export type ServerMsg =
  | { type: 'ready'; port: number }
  | {
      type: 'changed';
      k: number;
      t0: number;
      syncMs: number;
      bytes: number;
      fanoutMs: number;
      frames: number;
    }
  | {
      type: 'stats';
      rss: number;
      heapUsed: number;
      fds: number;
      clients: number;
      storeEvents: number;
    };
export type ServerCmd =
  | { type: 'base'; base: string }
  | { type: 'change'; k: number }
  | { type: 'stats' }
  | { type: 'stop' };

export const machineIdFor = (k: number) => `ssek${k.toString().padStart(6, '0')}x`;

const mode = process.argv[2];
if (mode !== 'product' && mode !== 'raw') throw new Error('usage: server.ts product|raw');
const send = (m: ServerMsg) => process.send!(m);
let base = 0n;
const sinceBase = () => Number(process.hrtime.bigint() - base) / 1e6;
const gc = (globalThis as { gc?: () => void }).gc!;
// The parent gone (even killed): nothing left to serve.
process.on('disconnect', () => process.exit(0));

const fact = (k: number) => ({
  machineId: machineIdFor(k),
  state: 'started',
  region: 'ams',
  createdAt: Date.UTC(2026, 0, 1) + k,
});

let change: (
  k: number,
) => Promise<{ syncMs: number; bytes: number; fanoutMs: number; frames: number }>;
let clients: () => number;
let storeEvents: () => Promise<number> = async () => 0;
let stop: () => Promise<void>;

if (mode === 'product') {
  const cfg = toConfig(
    parseEnv(whereEnv, {
      WM_LOCAL: '1',
      LOG_LEVEL: 'silent',
      WM_INSTANCE_ID: 'sse-bench',
      FLY_REGION: 'ams',
      HOST: '127.0.0.1',
      PORT: '0',
      PRIVATE_HOST: '127.0.0.1',
      PRIVATE_PORT: '0',
      WM_CALLBACK_SECRET: 'x'.repeat(40),
      DEBUG_TOKEN: 'debug-token-for-bench',
      WM_REQUESTS_PER_MINUTE: '1000000',
      WM_MAX_MACHINES: '1000',
      // The autospawner would start launches of its own once visitors arrive; its driver still
      // reports every visitor count (see the notes), the chart just never spawns.
      WM_AUTOSPAWN: '0',
      WM_RECONCILE_MIN_GAP_MS: '600000',
      WM_RECONCILE_INTERVAL_MS: '600000',
    }),
  );
  const store = new MemoryEventStore();
  const clock = systemClock;
  const system = await createWhere(cfg, {
    store,
    ledger: new MemoryCapacityLedger(),
    leases: new MemoryLeases(),
    presence: new MemoryPresence(),
    fly: new FakeFlyMachines(),
    clock,
    timers: new SystemTimers(clock),
    ids: new UlidIds(),
    log: silentLogger(),
  });
  const urls = await system.start();
  const runtime = system.services.runtime;
  // Time spent in the Fleet's fan-out loop (bench-side wrapper, the method itself unchanged).
  const fleet = system.services.fleet;
  const broadcast = fleet.broadcast.bind(fleet);
  let fanoutMs = 0;
  let frames = 0;
  fleet.broadcast = (chunk: string) => {
    const t = performance.now();
    broadcast(chunk);
    fanoutMs += performance.now() - t;
    frames++;
  };
  change = async (k) => {
    fanoutMs = 0;
    frames = 0;
    const t = performance.now();
    await runtime.dispatch({ type: 'fly.machineObserved', data: fact(k) });
    return { syncMs: performance.now() - t, bytes: 0, fanoutMs, frames };
  };
  clients = () => system.services.fleet.visitors;
  storeEvents = async () => {
    let n = 0;
    for await (const _ of store.readAll()) n++;
    return n;
  };
  stop = () => system.stop();
  send({ type: 'ready', port: Number(new URL(urls.publicUrl!).port) });
} else {
  const open = new Set<ServerResponse>();
  const server = createServer((req, res) => {
    if (req.url !== '/events') {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
    });
    res.flushHeaders();
    res.socket?.setNoDelay(true);
    res.write('retry: 2000\n\n');
    open.add(res);
    res.once('close', () => open.delete(res));
  });
  server.keepAliveTimeout = 0;
  await new Promise<void>((resolve) =>
    server.listen({ port: 0, host: '127.0.0.1', backlog: 4096 }, resolve),
  );
  // The very frame the landing app writes for this change: same code, same bytes.
  const frameFor = (k: number) => {
    const at = Date.UTC(2026, 0, 1) + k;
    const env = makeEnvelope({
      id: '01K00000000000000000000000',
      type: 'fly.machineObserved',
      stream: `vm.${machineIdFor(k)}`,
      at,
      data: fact(k),
    });
    const [snap] = transition(
      vmMachine,
      initialTransition(vmMachine)[0],
      toChartEvent(env) as never,
    );
    return frame('machine', toFleetMachine(snap));
  };
  change = async (k) => {
    const chunk = frameFor(k);
    const t = performance.now();
    for (const res of open) res.write(chunk);
    const ms = performance.now() - t;
    return { syncMs: ms, bytes: Buffer.byteLength(chunk), fanoutMs: ms, frames: 1 };
  };
  clients = () => open.size;
  stop = async () => {
    for (const res of open) res.destroy();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  send({ type: 'ready', port: (server.address() as { port: number }).port });
}

process.on('message', (cmd: ServerCmd) => {
  void (async () => {
    switch (cmd.type) {
      case 'base':
        base = BigInt(cmd.base);
        return;
      case 'change': {
        // t0 is taken before the change is made, so the product's figure includes its runtime work.
        const t0 = sinceBase();
        const r = await change(cmd.k);
        send({ type: 'changed', k: cmd.k, t0, ...r });
        return;
      }
      case 'stats': {
        for (let i = 0; i < 3; i++) {
          gc();
          await new Promise((r) => setImmediate(r));
        }
        const m = process.memoryUsage();
        send({
          type: 'stats',
          rss: m.rss,
          heapUsed: m.heapUsed,
          fds: readdirSync('/proc/self/fd').length,
          clients: clients(),
          storeEvents: await storeEvents(),
        });
        return;
      }
      case 'stop':
        await stop();
        process.exit(0);
    }
  })();
});
