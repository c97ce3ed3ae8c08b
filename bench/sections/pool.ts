/**
 * Section `pool`: click→ready on the local platform with the emulator as slow as Fly (its default
 * latency profile: image pull, VM boot, start of a stopped machine) and Fly's rate limits on, with
 * an empty pool against a warm pool of the same region (issue 13, item 4): single clicks, and ten
 * visitors clicking in the same second. The floor, measured in the same run, is what a pooled
 * launch cannot avoid: the emulator's start of a stopped machine plus the VM's own boot.
 */
import type { LaunchView } from '../../src/where/wire.js';
import { defer } from '../lib/cleanup.js';
import type { SectionContext, SectionDef, SectionOutput } from '../lib/context.js';
import { startDevStack, type DevStack } from '../lib/devstack.js';
import { atMost, row } from '../lib/report.js';
import { readSse } from '../lib/sseClient.js';
import { fmtMs, maxOf, p50, p99, summarize } from '../lib/stats.js';
import { bootUseless, requireBuild, startCallbackSink } from '../lib/vmBoot.js';

const REGION = 'ams';
const VM_APP = 'useless-machine';

/** The common settings of both stacks: Fly-like emulator, Fly's limits, nothing in the way of clicks. */
const BASE_ENV = {
  WM_FLY_PROFILE: 'fly',
  FLYLOCAL_RATE_LIMITS: '1',
  WM_AUTOSPAWN: 'off',
  WM_COOLDOWN_MS: '0',
  WM_LAUNCHES_PER_MINUTE: '1000',
  WM_MAX_MACHINES: '40',
  // A ready VM nobody visits switches itself off soon: machines do not pile up between clicks.
  WM_VM_IDLE_MS: '1000',
};

/** One click: POST /launches through the proxy, then the launch's SSE until `ready`. */
async function click(stack: DevStack): Promise<number> {
  const t0 = performance.now();
  const res = await fetch(`${stack.url}/launches`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', origin: stack.url },
    body: JSON.stringify({ region: REGION }),
  });
  if (res.status !== 202)
    throw new Error(`POST /launches answered ${res.status}: ${await res.text()}`);
  const { launchId } = (await res.json()) as { launchId: string };
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), 60_000);
  try {
    const sse = await fetch(`${stack.url}/launches/${launchId}/events`, {
      headers: { accept: 'text/event-stream' },
      signal: abort.signal,
    });
    if (sse.status !== 200 || !sse.body) throw new Error(`launch SSE answered ${sse.status}`);
    for await (const f of readSse(sse.body)) {
      if (f.event !== 'launch') continue;
      const v = JSON.parse(f.data) as LaunchView;
      if (v.status === 'ready') return performance.now() - t0;
      if (v.status === 'failed' || v.status === 'done')
        throw new Error(`launch ended ${v.status}: ${v.message ?? v.reason ?? ''}`);
    }
    throw new Error('the launch stream ended before ready');
  } finally {
    clearTimeout(timer);
    abort.abort();
  }
}

/** Pooled machines of the region that are ready to be claimed (created or stopped, not running). */
async function pooled(stack: DevStack): Promise<number> {
  const res = await stack.api(`/v1/apps/${VM_APP}/machines?metadata.pool=${REGION}`);
  // The emulator applies Fly's limits to this bench's own lists too: a 429 is "not yet".
  if (!res.ok) return -1;
  const ms = (await res.json()) as { state: string }[];
  return ms.filter((m) => m.state === 'stopped' || m.state === 'created').length;
}

async function waitPool(stack: DevStack, n: number, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  while ((await pooled(stack)) < n) {
    if (Date.now() > until) throw new Error(`the pool did not reach ${n} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/** The emulator's start of a stopped machine: create one with skip_launch, then start and wait. */
async function startLatency(stack: DevStack): Promise<number> {
  const create = await stack.api(`/v1/apps/${VM_APP}/machines`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      region: REGION,
      skip_launch: true,
      config: {
        image: 'bench:start-latency',
        init: { cmd: [process.execPath, '-e', 'setInterval(() => {}, 1000)'] },
      },
    }),
  });
  if (!create.ok) throw new Error(`create answered ${create.status}: ${await create.text()}`);
  const { id } = (await create.json()) as { id: string };
  try {
    // The pull and its rate limit are the create's, not the start's: let them pass first.
    await new Promise((r) => setTimeout(r, 1100));
    const t0 = performance.now();
    const start = await stack.api(`/v1/apps/${VM_APP}/machines/${id}/start`, { method: 'POST' });
    if (!start.ok) throw new Error(`start answered ${start.status}: ${await start.text()}`);
    const wait = await stack.api(`/v1/apps/${VM_APP}/machines/${id}/wait?state=started&timeout=30`);
    if (!wait.ok) throw new Error(`wait answered ${wait.status}`);
    return performance.now() - t0;
  } finally {
    await stack.api(`/v1/apps/${VM_APP}/machines/${id}?force=true`, { method: 'DELETE' });
  }
}

/** `n` clicks in the same instant; each one's click→ready. */
const burst = (stack: DevStack, n: number) =>
  Promise.all(Array.from({ length: n }, () => click(stack)));

export const poolSection: SectionDef = {
  name: 'pool',
  title: 'warm pool: click→ready on the Fly-like emulator, empty pool vs warm pool',
  async run(ctx: SectionContext): Promise<SectionOutput> {
    requireBuild();
    const q = ctx.quick;
    const SINGLES = q ? 3 : 10;
    const BURST = 10;
    const FLOOR_N = q ? 3 : 8;
    const notes: string[] = [];
    const data: Record<string, unknown> = {};

    // ---- no pool ---------------------------------------------------------------------------
    ctx.progress('pool: the platform without a pool');
    const bare = await startDevStack(BASE_ENV);
    const noPool: number[] = [];
    const noPoolBurst: number[] = [];
    const starts: number[] = [];
    try {
      ctx.progress(`pool: ${FLOOR_N} starts of a stopped machine (floor, part 1)`);
      for (let i = 0; i < FLOOR_N; i++) starts.push(await startLatency(bare));
      ctx.progress(`pool: ${SINGLES} single clicks, empty pool`);
      for (let i = 0; i < SINGLES; i++) {
        noPool.push(await click(bare));
        // Fly's create limit is per app: one click at a time, a little over a second apart.
        await new Promise((r) => setTimeout(r, 1100));
      }
      ctx.progress(`pool: ${BURST} clicks in the same second, empty pool`);
      noPoolBurst.push(...(await burst(bare, BURST)));
    } finally {
      await bare.stop();
    }

    ctx.progress(`pool: ${FLOOR_N} VM boots (floor, part 2)`);
    const sink = await startCallbackSink();
    const closeSink = defer('pool callback sink', () => sink.close());
    const boots: number[] = [];
    let burstBoot = Number.NaN;
    try {
      for (let i = 0; i < FLOOR_N; i++) boots.push((await bootUseless(sink)).callbackMs);
      // Ten VMs booting at once on this box: what ten simultaneous clicks share, pool or not.
      const together = await Promise.all(
        Array.from({ length: BURST }, () => bootUseless(sink, { pollHealth: false })),
      );
      burstBoot = maxOf(together.map((b) => b.callbackMs));
    } finally {
      await closeSink();
    }

    // ---- warm pool -------------------------------------------------------------------------
    ctx.progress(`pool: the platform with a pool of ${BURST} in ${REGION}`);
    const warm = await startDevStack({
      ...BASE_ENV,
      WM_POOL: `${REGION}:${BURST}`,
      WM_POOL_MAX: '20',
    });
    const withPool: number[] = [];
    const poolBurst: number[] = [];
    try {
      await waitPool(warm, BURST, 180_000);
      ctx.progress(`pool: ${SINGLES} single clicks, warm pool`);
      for (let i = 0; i < SINGLES; i++) {
        await waitPool(warm, 1, 60_000);
        withPool.push(await click(warm));
      }
      ctx.progress(
        `pool: waiting for the pool to refill to ${BURST}, then ${BURST} clicks at once`,
      );
      await waitPool(warm, BURST, 180_000);
      poolBurst.push(...(await burst(warm, BURST)));
    } finally {
      await warm.stop();
    }

    const floor = p50(starts) + p50(boots);
    const single = p50(withPool);
    const rows = [
      row({
        metric: 'click→ready, warm pool, p50 (floor: start of a stopped machine + VM boot, p50s)',
        value: single,
        unit: 'ms',
        fmt: fmtMs,
        floor,
        checks: [atMost(single / floor, 1.3, '≤ 1.3× floor')],
      }),
      row({ metric: 'click→ready, warm pool, p99', value: p99(withPool), unit: 'ms', fmt: fmtMs }),
      row({
        metric: 'click→ready, empty pool, p50 (the warm pool p50 against it)',
        value: p50(noPool),
        unit: 'ms',
        fmt: fmtMs,
        ratio: single / p50(noPool),
        checks: [atMost(single / p50(noPool), 0.3, 'warm ≤ 0.3× empty')],
      }),
      row({ metric: 'click→ready, empty pool, p99', value: p99(noPool), unit: 'ms', fmt: fmtMs }),
      row({
        metric: `${BURST} clicks at once, warm pool of ${BURST}: slowest click→ready (floor: warm single p50)`,
        value: maxOf(poolBurst),
        unit: 'ms',
        fmt: fmtMs,
        floor: single,
        checks: [atMost(maxOf(poolBurst) / single, 2, '≤ 2× single p50')],
      }),
      row({
        metric: `  the same, against ${BURST} VM boots at once + a start (p50): the box's own floor`,
        value: maxOf(poolBurst),
        unit: 'ms',
        fmt: fmtMs,
        floor: burstBoot + p50(starts),
      }),
      row({
        metric: `${BURST} clicks at once, empty pool: slowest click→ready`,
        value: maxOf(noPoolBurst),
        unit: 'ms',
        fmt: fmtMs,
      }),
      row({
        metric: '  floor part: start of a stopped machine (emulator), p50',
        value: p50(starts),
        unit: 'ms',
        fmt: fmtMs,
      }),
      row({
        metric: '  floor part: VM boot, spawn → "listening" callback, p50',
        value: p50(boots),
        unit: 'ms',
        fmt: fmtMs,
      }),
      row({
        metric: `  ${BURST} VM boots at once: the slowest, spawn → "listening" callback`,
        value: burstBoot,
        unit: 'ms',
        fmt: fmtMs,
      }),
    ];
    Object.assign(data, {
      noPool: summarize(noPool),
      noPoolBurst: summarize(noPoolBurst),
      withPool: summarize(withPool),
      poolBurst: summarize(poolBurst),
      starts: summarize(starts),
      boots: summarize(boots),
      burstBootMs: burstBoot,
    });
    notes.push(
      `Both stacks are \`npm start\`'s (dist/devstack.mjs) with the emulator's default Fly-like latency profile (docs/emulator.md) and Fly's rate limits on (creates 1/s per app, burst 3; starts per machine). Clicks are POST /launches through the edge proxy, timed until the launch's SSE says ready. Single clicks run one at a time, 1.1 s apart without a pool (the create limit), and with the pool after it holds at least one machine; the burst is ${BURST} POSTs in the same instant, with the pool full (${BURST}) where there is one. The floor is what a pooled launch cannot avoid: the emulator's start of a stopped machine (create with skip_launch, then POST start → wait started) plus a Useless Machine's own boot (spawn → its "listening" callback, the vm section's method).`,
    );
    return { rows, notes, data };
  },
};
