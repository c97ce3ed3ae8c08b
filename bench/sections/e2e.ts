/**
 * Section `e2e`: click-to-redirect on the local platform. flylocal as its own process (the Machines API emulator, whose
 * machines are real `node dist/useless.mjs` processes, and the edge proxy) plus the landing app
 * (createWhere with the real FlyMachinesHttp client against the emulator and the file event store,
 * as `npm start` wires it). A launch: POST /launches through the proxy, then read the launch's SSE
 * through the proxy until `ready`. Each launch's machine is then finished the way a visitor
 * finishes it (viewer registered, viewer done → it calls home "stopping", exits, is auto-destroyed).
 * Beside it, interleaved, the VM's own boot-to-listening by the `vm` section's method.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileEventStore } from '../../src/adapters/file/fileEventStore.js';
import {
  MemoryCapacityLedger,
  MemoryLeases,
  MemoryPresence,
} from '../../src/adapters/memory/memoryCoordination.js';
import { SystemTimers, systemClock } from '../../src/adapters/system/systemClock.js';
import { UlidIds } from '../../src/adapters/system/ulidIds.js';
import { FlyMachinesHttp } from '../../src/adapters/fly/client.js';
import { parseEnv } from '../../src/shared/env.js';
import { silentLogger } from '../../src/shared/log.js';
import { toConfig, whereEnv } from '../../src/where/config.js';
import { createWhere, type WhereSystem } from '../../src/where/system.js';
import type { LaunchView } from '../../src/where/wire.js';
import { defer, trackChild } from '../lib/cleanup.js';
import type { SectionContext, SectionDef, SectionOutput } from '../lib/context.js';
import { freePort } from '../lib/net.js';
import { atMost, row } from '../lib/report.js';
import { readSse } from '../lib/sseClient.js';
import { fmtMs, p50, p99, summarize } from '../lib/stats.js';
import { bootUseless, requireBuild, startCallbackSink, stopChild } from '../lib/vmBoot.js';

const VM_APP = 'useless-machine';
/** Fly's published create limit is 1/s (burst 3); the client paces to it, so clicks are spaced so. */
const MIN_CLICK_GAP_MS = 1050;
const epochNow = () => performance.timeOrigin + performance.now();

interface LaunchSample {
  /** Click (POST sent) → `ready` frame read from the launch SSE, through the proxy. */
  e2e: number;
  /** POST sent → 202 received. */
  post: number;
  /** Click → the emulator reports the machine's process spawned (its `started` event). */
  clickToSpawn: number;
  /** Spawned → its "listening" callback arrives at the private listener: the VM's own boot. */
  vmOwn: number;
  /** Callback arrives → the `ready` frame is read by the client. */
  callbackToReady: number;
  /** Time the landing app's event loop was blocked in file-store appends between click and ready, and how many. */
  appendMs: number;
  appends: number;
  /** Steps on the way, each from the previous one (epoch ms; the emulator's are whole ms). */
  steps: {
    /** Click → launch.requested stored (proxy, route, limits, append + fsync). */
    requested: number;
    /** → capacity.reserved stored (effect, ledger, append + fsync). */
    reserved: number;
    /** → the emulator has made the machine (Fly client request, emulator create). */
    created: number;
    /** → its process spawned (emulator: address, start, fork/exec). */
    spawned: number;
    /** Callback arrival → vm.listening stored on the launch (verify, checks, 2 appends + fsync). */
    listeningStored: number;
    /** → the ready frame read by the client (launch SSE write, proxy, client). */
    frameRead: number;
  };
}

interface Stack {
  /** The edge proxy: what a visitor's browser talks to. */
  proxyUrl: string;
  /** The Machines API emulator. */
  api: (path: string, init?: RequestInit) => Promise<Response>;
  system: WhereSystem;
  /** Arrival (epoch ms) of each machine's "listening" callback at the private listener. */
  callbackArrivals: Map<string, number>;
  /** When (epoch ms) each fact was stored on each launch stream here: `launch.<id>/<type>`. */
  stored: Map<string, number>;
  /** Time spent so far inside the file store's append (its write + fdatasync run synchronously), and how many. */
  appendCost(): { ms: number; n: number };
  close(): Promise<void>;
}

interface MachineJson {
  state?: string;
  events?: { type: string; status: string; timestamp: number }[];
}

/** Wait until `url` answers 200 (the emulator coming up). */
async function waitOk(
  url: string,
  headers: Record<string, string>,
  alive: () => boolean,
): Promise<void> {
  const until = Date.now() + 30_000;
  for (;;) {
    try {
      if ((await fetch(url, { headers })).ok) return;
    } catch {
      // not up yet
    }
    if (!alive()) throw new Error('flylocal exited while starting');
    if (Date.now() > until) throw new Error(`${url} did not come up within 30 s`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * flylocal (emulator + edge proxy, every VM a real process) as its own process, exactly as
 * `npm start` runs it; the landing app in this process (so its steps can be timed), listening on
 * the ports the proxy was told about.
 */
async function startStack(): Promise<Stack> {
  const dir = mkdtempSync(join(tmpdir(), 'wm-bench-e2e-'));
  const parts: (() => Promise<void>)[] = [
    async () => rmSync(dir, { recursive: true, force: true }),
  ];
  const closeAll = async () => {
    while (parts.length > 0) await parts.pop()!();
  };
  const release = defer('e2e stack', closeAll);
  try {
    const [flyPort, proxyPort, publicPort, privatePort] = [
      await freePort(),
      await freePort(),
      await freePort(),
      await freePort(),
    ];
    const token = `flylocal-bench-${process.pid}`;
    const child = trackChild(
      spawn(process.execPath, [join(process.cwd(), 'dist', 'flylocal.mjs')], {
        env: {
          ...process.env,
          LOG_LEVEL: 'info',
          FLYLOCAL_PORT: String(flyPort),
          FLYLOCAL_TOKEN: token,
          FLYLOCAL_REGION: 'ams',
          FLYLOCAL_PROFILE: 'fast',
          FLYLOCAL_PROXY_PORT: String(proxyPort),
          FLYLOCAL_STATIC_INSTANCES: JSON.stringify({
            where: [{ id: 'where-ams', region: 'ams', url: `http://127.0.0.1:${publicPort}` }],
          }),
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      }),
    );
    // Its log (every VM line at info, as under npm start) is read and dropped.
    child.stdout?.resume();
    child.stderr?.resume();
    let exited = false;
    child.once('exit', () => (exited = true));
    parts.push(() => stopChild(child, 10_000));
    const apiBase = `http://127.0.0.1:${flyPort}/v1/apps/${VM_APP}/machines`;
    const auth = { authorization: `Bearer ${token}` };
    await waitOk(apiBase, auth, () => !exited);
    const proxyUrl = `http://127.0.0.1:${proxyPort}`;

    const cfg = toConfig(
      parseEnv(whereEnv, {
        WM_LOCAL: '1',
        LOG_LEVEL: 'silent',
        WM_INSTANCE_ID: 'where-ams',
        FLY_REGION: 'ams',
        HOST: '127.0.0.1',
        PORT: String(publicPort),
        PRIVATE_HOST: '127.0.0.1',
        PRIVATE_PORT: String(privatePort),
        FLY_API_BASE_URL: `http://127.0.0.1:${flyPort}/v1`,
        FLY_API_TOKEN: token,
        FLY_VM_APP: VM_APP,
        WM_VM_PUBLIC_URL: `http://useless-machine.localhost:${proxyPort}`,
        WM_PUBLIC_URL: proxyUrl,
        WM_CALLBACK_SECRET: 'b'.repeat(64),
        WM_CALLBACK_BASE_URL: `http://127.0.0.1:${privatePort}`,
        WM_CALLBACK_FALLBACK_URL: `http://127.0.0.1:${privatePort}`,
        DEBUG_TOKEN: 'bench-debug-token-0123456789',
        WM_DATA_DIR: dir,
        WM_COOLDOWN_MS: '0',
        WM_LAUNCHES_PER_MINUTE: '10000',
        WM_REQUESTS_PER_MINUTE: '1000000',
        WM_MAX_MACHINES: '50',
        WM_AUTOSPAWN: '0',
      }),
    );
    const log = silentLogger();
    const store = FileEventStore.open(join(dir, 'events.log'));
    // Bench-side meter around append (the method unchanged): its body runs synchronously to the end.
    const append = store.append.bind(store);
    let appendMs = 0;
    let appends = 0;
    store.append = (...args) => {
      const t = performance.now();
      const p = append(...args);
      appendMs += performance.now() - t;
      appends++;
      return p;
    };
    const clock = systemClock;
    const system = await createWhere(
      cfg,
      {
        store,
        ledger: new MemoryCapacityLedger(),
        leases: new MemoryLeases(),
        presence: new MemoryPresence(),
        fly: new FlyMachinesHttp({
          baseUrl: cfg.fly.baseUrl,
          token: cfg.fly.token,
          app: cfg.fly.vmApp,
          logger: log,
        }),
        clock,
        timers: new SystemTimers(clock),
        ids: new UlidIds(),
        log,
        close: () => store.close(),
      },
      { assetsDir: join(dir, 'no-assets') },
    );
    // Stamp each VM callback as it reaches the private listener (before any of our handling).
    const callbackArrivals = new Map<string, number>();
    system.privateApp.addHook('onRequest', async (req) => {
      (req as unknown as { arrivedAt: number }).arrivedAt = epochNow();
    });
    system.privateApp.addHook('preHandler', async (req) => {
      if (typeof req.body !== 'string') return;
      try {
        const b = JSON.parse(req.body) as { machineId?: string; status?: string };
        if (b.status === 'listening' && b.machineId)
          callbackArrivals.set(b.machineId, (req as unknown as { arrivedAt: number }).arrivedAt);
      } catch {
        // not a callback
      }
    });
    const stored = new Map<string, number>();
    system.services.runtime.onChange((c) => {
      if (c.local && c.record.kind === 'launch')
        stored.set(`${c.record.stream}/${c.event.type}`, epochNow());
    });
    parts.push(() => system.stop());
    await system.start();
    await waitOk(`${proxyUrl}/healthz`, {}, () => !exited);
    return {
      proxyUrl,
      api: (path, init = {}) =>
        fetch(`${apiBase}${path}`, {
          ...init,
          headers: { ...auth, ...(init.headers as Record<string, string> | undefined) },
        }),
      system,
      callbackArrivals,
      stored,
      appendCost: () => ({ ms: appendMs, n: appends }),
      close: release,
    };
  } catch (err) {
    await release();
    throw err;
  }
}

async function oneLaunch(
  stack: Stack,
): Promise<{ sample: LaunchSample; machineId: string; launchId: string }> {
  const base = stack.proxyUrl;
  const cost0 = stack.appendCost();
  const t0 = performance.now();
  const t0Epoch = epochNow();
  const res = await fetch(`${base}/launches`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', origin: base, 'sec-fetch-site': 'same-origin' },
    body: '{}',
  });
  const accepted = (await res.json()) as { launchId?: string; events?: string; message?: string };
  const tPost = performance.now();
  if (res.status !== 202 || !accepted.launchId || !accepted.events)
    throw new Error(`POST /launches answered ${res.status}: ${JSON.stringify(accepted)}`);
  const abort = new AbortController();
  let ready: LaunchView | undefined;
  let t1 = 0;
  try {
    const sse = await fetch(`${base}${accepted.events}`, {
      headers: { accept: 'text/event-stream' },
      signal: abort.signal,
    });
    if (sse.status !== 200 || !sse.body) throw new Error(`launch SSE answered ${sse.status}`);
    for await (const f of readSse(sse.body)) {
      if (f.event !== 'launch') continue;
      const v = JSON.parse(f.data) as LaunchView;
      if (v.status === 'ready') {
        t1 = performance.now();
        ready = v;
        break;
      }
      if (v.status === 'failed' || v.status === 'done')
        throw new Error(`launch ended ${v.status}: ${v.message ?? v.reason ?? ''}`);
    }
  } finally {
    abort.abort();
  }
  const cost1 = stack.appendCost();
  if (!ready?.machineId) throw new Error('the launch stream ended before ready');
  const machineId = ready.machineId;
  const t1Epoch = t0Epoch + (t1 - t0);
  const m = (await (await stack.api(`/${machineId}`)).json()) as MachineJson;
  const spawned = m.events?.find((e) => e.type === 'start' && e.status === 'started')?.timestamp;
  const made = m.events?.find((e) => e.type === 'launch' && e.status === 'created')?.timestamp;
  const arrived = stack.callbackArrivals.get(machineId);
  const at = (type: string) =>
    stack.stored.get(`launch.${accepted.launchId}/${type}`) ?? Number.NaN;
  if (spawned === undefined || made === undefined || arrived === undefined)
    throw new Error(`no spawn time or callback time for ${machineId}`);
  return {
    launchId: accepted.launchId,
    machineId,
    sample: {
      e2e: t1 - t0,
      post: tPost - t0,
      clickToSpawn: spawned - t0Epoch,
      vmOwn: arrived - spawned,
      callbackToReady: t1Epoch - arrived,
      appendMs: cost1.ms - cost0.ms,
      appends: cost1.n - cost0.n,
      steps: {
        requested: at('launch.requested') - t0Epoch,
        reserved: at('capacity.reserved') - at('launch.requested'),
        created: made - at('capacity.reserved'),
        spawned: spawned - made,
        listeningStored: at('vm.listening') - arrived,
        frameRead: t1Epoch - at('vm.listening'),
      },
    },
  };
}

/**
 * Finish the machine as a visitor does, through the proxy (register a viewer, say it is done):
 * the VM calls home "stopping", exits, is auto-destroyed. Waits until the landing app has it.
 */
async function finish(stack: Stack, launchId: string, machineId: string): Promise<boolean> {
  const vm = `${stack.proxyUrl}/_app/${VM_APP}/machine/viewers`;
  const q = `?instance=${machineId}`;
  const reg = await fetch(`${vm}${q}`, { method: 'POST' });
  const { id } = (await reg.json().catch(() => ({}))) as { id?: string };
  if (id) await fetch(`${vm}/${id}/done${q}`, { method: 'POST' }).then((r) => r.body?.cancel());
  const until = Date.now() + 15_000;
  const rt = stack.system.services.runtime;
  while (Date.now() < until) {
    const launch = rt.actor(`launch.${launchId}`);
    const vmActor = rt.actor(`vm.${machineId}`);
    if (launch?.snapshot.status === 'done' && vmActor?.snapshot.status === 'done') {
      const m = (await (await stack.api(`/${machineId}`)).json()) as MachineJson;
      if (m.state === 'destroyed') return true;
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  // Not finished in time: force it, so the next launch starts from a clean platform.
  await stack.api(`/${machineId}?force=true`, { method: 'DELETE' }).catch(() => undefined);
  return false;
}

export const e2eSection: SectionDef = {
  name: 'e2e',
  title: 'click-to-redirect on the local platform (flylocal + proxy + landing app)',
  async run(ctx: SectionContext): Promise<SectionOutput> {
    requireBuild();
    const n = ctx.quick ? 3 : 20;
    const stack = await startStack();
    const sink = await startCallbackSink();
    const samples: LaunchSample[] = [];
    const vmBoot: number[] = [];
    let forced = 0;
    try {
      // Warm-up: one launch and one bare VM boot (module caches, JIT, first connections).
      {
        const w = await oneLaunch(stack);
        if (!(await finish(stack, w.launchId, w.machineId))) forced++;
        await bootUseless(sink, { pollHealth: false });
      }
      let lastClick = performance.now();
      for (let i = 0; i < n; i++) {
        ctx.progress(`e2e: launch ${i + 1}/${n}`);
        const wait = MIN_CLICK_GAP_MS - (performance.now() - lastClick);
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        lastClick = performance.now();
        const l = await oneLaunch(stack);
        samples.push(l.sample);
        if (!(await finish(stack, l.launchId, l.machineId))) forced++;
        vmBoot.push((await bootUseless(sink, { pollHealth: false })).callbackMs);
      }
    } finally {
      await sink.close();
      await stack.close();
    }
    const e2e = samples.map((s) => s.e2e);
    const paired = samples.map((s) => s.e2e - s.vmOwn);
    const step = (label: string, pick: (x: LaunchSample['steps']) => number) => [
      row({
        metric: `    ${label}, p50`,
        value: p50(samples.map((x) => pick(x.steps))),
        unit: 'ms',
        fmt: fmtMs,
      }),
    ];
    const diffP50 = p50(e2e) - p50(vmBoot);
    const diffP99 = p99(e2e) - p99(vmBoot);
    const rows = [
      row({
        metric: 'click → ready frame (e2e), p50',
        value: p50(e2e),
        unit: 'ms',
        fmt: fmtMs,
        floor: p50(vmBoot),
      }),
      row({
        metric: 'click → ready frame (e2e), p99',
        value: p99(e2e),
        unit: 'ms',
        fmt: fmtMs,
        floor: p99(vmBoot),
      }),
      row({
        metric: 'overhead = e2e − VM boot, p50 (percentile difference)',
        value: diffP50,
        unit: 'ms',
        fmt: fmtMs,
      }),
      row({
        metric: 'overhead = e2e − VM boot, p99 (percentile difference)',
        value: diffP99,
        unit: 'ms',
        fmt: fmtMs,
        checks: [atMost(diffP99, 50, '≤ 50 ms')],
      }),
      row({
        metric: "overhead per launch, paired (e2e − that VM's own boot), p50",
        value: p50(paired),
        unit: 'ms',
        fmt: fmtMs,
      }),
      row({
        metric: 'overhead per launch, paired, p99',
        value: p99(paired),
        unit: 'ms',
        fmt: fmtMs,
        checks: [atMost(p99(paired), 50, '≤ 50 ms')],
      }),
      row({
        metric: '  click → machine process spawned, p50',
        value: p50(samples.map((s) => s.clickToSpawn)),
        unit: 'ms',
        fmt: fmtMs,
      }),
      ...step('click → launch.requested stored', (x) => x.requested),
      ...step('→ capacity.reserved stored', (x) => x.reserved),
      ...step('→ emulator has created the machine', (x) => x.created),
      ...step('→ machine process spawned', (x) => x.spawned),
      row({
        metric: '  spawned → "listening" callback arrives (VM own), p50',
        value: p50(samples.map((s) => s.vmOwn)),
        unit: 'ms',
        fmt: fmtMs,
      }),
      row({
        metric: '  callback arrives → ready frame read, p50',
        value: p50(samples.map((s) => s.callbackToReady)),
        unit: 'ms',
        fmt: fmtMs,
      }),
      row({
        metric: '  callback arrives → ready frame read, p99',
        value: p99(samples.map((s) => s.callbackToReady)),
        unit: 'ms',
        fmt: fmtMs,
      }),
      ...step('callback → vm.listening stored', (x) => x.listeningStored),
      ...step('→ ready frame read by the client', (x) => x.frameRead),
      row({
        metric: '  POST /launches → 202, p50',
        value: p50(samples.map((s) => s.post)),
        unit: 'ms',
        fmt: fmtMs,
      }),
      row({
        metric: `  event loop blocked in file-store appends (${p50(samples.map((s) => s.appends))} appends, write + fdatasync), p50`,
        value: p50(samples.map((s) => s.appendMs)),
        unit: 'ms',
        fmt: fmtMs,
      }),
      row({
        metric: '  same, p99',
        value: p99(samples.map((s) => s.appendMs)),
        unit: 'ms',
        fmt: fmtMs,
      }),
    ];
    return {
      rows,
      notes: [
        `${n} sequential launches (clicks ≥ ${MIN_CLICK_GAP_MS} ms apart: Fly's create limit is 1/s and the client paces to it); after each, its machine is finished by a viewer and destroyed, then one bare Useless Machine boot (the vm section's method, spawn → callback, without the /health polling the launch's VM does not get either) is measured: that is the floor column.`,
        "Paired overhead takes each launch's own VM boot (spawn, from the emulator's `started` event, to the callback's arrival at the private listener) out of that launch's e2e time; the percentile difference is the project's definition. p99 of 20 is the maximum.",
        'flylocal (emulator + edge proxy) runs as its own process (`node dist/flylocal.mjs`, as npm start runs it; every VM its child); the landing app runs in the bench process (createWhere, real FlyMachinesHttp, file store with fsync as npm start, silent logger) so its steps can be timed; the client (fetch + SSE) shares that process.',
        ...(forced > 0
          ? [`${forced} machine(s) did not finish within 15 s and were destroyed by force`]
          : []),
      ],
      data: {
        samples,
        vmBootMs: vmBoot,
        e2e: summarize(e2e),
        vmBoot: summarize(vmBoot),
        paired: summarize(paired),
        forced,
      },
    };
  },
};
