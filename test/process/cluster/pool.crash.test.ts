/**
 * The warm pool under SIGKILL, with real processes: two landing-app processes on one nats-server
 * and the local Fly platform running the real VM app, a pool of two in one region. Round after
 * round, clicks land on both instances while one of them is SIGKILLed mid-claim or mid-refill and
 * started again. Then: no pooled machine was claimed twice, no launch got two machines, every
 * launch ended ready (or done), and the pool is whole again, with no stopped machine left over.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { startFlyLocal, type FlyLocalHandle } from '../../../src/flylocal/index.js';
import { NatsServer, freePorts } from '../../support/natsServer.js';
import { NATS_SERVER, needs } from '../../support/require.js';

const haveNats = needs('nats-server (apt-get install nats-server)', NATS_SERVER);
const TOKEN = 'debug-token-for-process-tests';
const TARGET = 2;

const procs: ChildProcess[] = [];
let nats: NatsServer | undefined;
let fly: FlyLocalHandle | undefined;
afterEach(async () => {
  for (const p of procs.splice(0))
    if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  await fly?.close();
  await nats?.cleanup();
  fly = undefined;
  nats = undefined;
});

interface Instance {
  name: string;
  port: number;
  privatePort: number;
  proc?: ChildProcess;
}

/** A seeded generator (mulberry32): the kill points are the same on every run. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe.skipIf(!haveNats)('the warm pool under SIGKILL (real processes)', () => {
  it('never claims a machine twice and loses none', { timeout: 180_000 }, async () => {
    nats = await NatsServer.start();
    fly = await startFlyLocal({ port: 0, killChildrenOnSignal: false, profile: 'fast' });
    const [p1, p2, p3, p4] = await freePorts(4);
    const a: Instance = { name: 'ams', port: p1!, privatePort: p2! };
    const b: Instance = { name: 'syd', port: p3!, privatePort: p4! };
    const start = (i: Instance, other: Instance) => {
      const proc = spawn(process.execPath, ['dist/where.mjs'], {
        env: {
          PATH: process.env.PATH,
          WM_LOCAL: '1',
          LOG_LEVEL: 'warn',
          WM_INSTANCE_ID: `where-${i.name}`,
          FLY_REGION: i.name,
          HOST: '127.0.0.1',
          PORT: String(i.port),
          PRIVATE_HOST: '127.0.0.1',
          PRIVATE_PORT: String(i.privatePort),
          NATS_URL: nats!.url,
          FLY_API_BASE_URL: fly!.apiUrl,
          FLY_API_TOKEN: fly!.token,
          WM_CALLBACK_SECRET: 's'.repeat(48),
          WM_CALLBACK_BASE_URL: `http://127.0.0.1:${i.privatePort}`,
          WM_CALLBACK_FALLBACK_URL: `http://127.0.0.1:${other.privatePort}`,
          DEBUG_TOKEN: TOKEN,
          WM_AUTOSPAWN: 'off',
          WM_POOL: `fra:${TARGET}`,
          WM_COOLDOWN_MS: '0',
          WM_LAUNCHES_PER_MINUTE: '10000',
          WM_MAX_MACHINES: '50',
          WM_TTL_BUTTON_MS: '6000',
          WM_VM_IDLE_MS: '1000',
          WM_RECONCILE_INTERVAL_MS: '1000',
          WM_RECONCILE_MIN_GAP_MS: '0',
        },
        stdio: ['ignore', 'ignore', 'inherit'],
      });
      procs.push(proc);
      i.proc = proc;
    };
    const ready = (i: Instance) =>
      expect
        .poll(
          async () =>
            (await fetch(`http://127.0.0.1:${i.port}/readyz`).catch(() => undefined))?.status,
          { timeout: 30_000 },
        )
        .toBe(200);
    const kill = async (i: Instance) => {
      i.proc!.kill('SIGKILL');
      if (i.proc!.exitCode === null && i.proc!.signalCode === null)
        await new Promise((r) => i.proc!.once('exit', r));
    };
    const ledger = () => fly!.emulator.ledger();
    const unclaimedPooled = () =>
      ledger().filter(
        (m) => m.metadata.pool === 'fra' && !m.metadata.launch_id && m.state !== 'destroyed',
      );

    start(a, b);
    start(b, a);
    await ready(a);
    await ready(b);
    await expect.poll(() => unclaimedPooled().length, { timeout: 30_000 }).toBe(TARGET);

    const random = seeded(22);
    const launchIds: string[] = [];
    const click = async (i: Instance) => {
      const res = await fetch(`http://127.0.0.1:${i.port}/launches`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', origin: `http://127.0.0.1:${i.port}` },
        body: JSON.stringify({ region: 'fra' }),
      }).catch(() => undefined);
      // A click on the instance being killed may get no answer: it made no launch we know of.
      if (res?.status === 202)
        launchIds.push(((await res.json()) as { launchId: string }).launchId);
    };
    for (let round = 0; round < 4; round++) {
      const victim = round % 2 ? b : a;
      const other = victim === a ? b : a;
      const clicks = Promise.all([click(a), click(b), click(a), click(b)]);
      // Mid-claim or mid-refill: the claims and the creates that refill the pool are in flight.
      await new Promise((r) => setTimeout(r, Math.floor(random() * 400)));
      await kill(victim);
      await clicks;
      start(victim, other);
      await ready(victim);
      // The pool refills before the next round (leader or not, whoever restarted).
      await expect.poll(() => unclaimedPooled().length, { timeout: 40_000 }).toBe(TARGET);
    }
    expect(launchIds.length).toBeGreaterThan(4);

    // The shared pool stream: each machine claimed at most once.
    const res = await fetch(`http://127.0.0.1:${b.privatePort}/debug/actors/pool.fra`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    const { history } = (await res.json()) as {
      history: { type: string; data: { machineId?: string; launchId?: string } }[];
    };
    const claims = history.filter((e) => e.type === 'pool.machineClaimed');
    const claimed = claims.map((e) => e.data.machineId!);
    expect(claimed.length).toBeGreaterThan(0);
    expect(new Set(claimed).size).toBe(claimed.length);
    // A click whose answer was lost with its instance still made a launch: count those too.
    for (const c of claims)
      if (!launchIds.includes(c.data.launchId!)) launchIds.push(c.data.launchId!);
    for (const c of claims) {
      const m = ledger().find((x) => x.id === c.data.machineId)!;
      // The claimed machine went to its launch, or its start failed and it left unlabelled.
      expect([c.data.launchId, undefined]).toContain(m.metadata.launch_id);
    }

    // Every launch ends ready or done (its VM called home), each with exactly one machine.
    const status = async (id: string) => {
      const r = await fetch(`http://127.0.0.1:${a.privatePort}/debug/actors/launch.${id}`, {
        headers: { authorization: `Bearer ${TOKEN}` },
      }).catch(() => undefined);
      if (r?.status !== 200) return undefined;
      const { tags, state, context } = (
        (await r.json()) as {
          actor: { tags?: string[]; state?: unknown; context?: Record<string, unknown> };
        }
      ).actor;
      // A finished launch not in memory (booted past it) is replayed: its final state, no tags.
      const final = state === 'destroyed' ? 'done' : state === 'failed' ? 'failed' : undefined;
      const s =
        tags?.find((t) => ['ready', 'done', 'failed'].includes(t)) ?? final ?? String(state);
      // A failure names its reason, so a failed run says why.
      return s === 'failed' ? `failed:${String(context?.reason)}:${String(context?.detail)}` : s;
    };
    for (const id of launchIds)
      await expect.poll(() => status(id), { timeout: 40_000 }).toMatch(/^(ready|done)$/);
    for (const id of launchIds)
      expect(
        ledger().filter((m) => m.metadata.launch_id === id),
        id,
      ).toHaveLength(1);

    // None lost, none left over: the pool holds exactly its target of stopped machines, each
    // known to the pool, and no pooled machine runs without a launch.
    await expect.poll(() => unclaimedPooled().length, { timeout: 30_000 }).toBe(TARGET);
    const pool = await fetch(`http://127.0.0.1:${a.privatePort}/debug/actors/pool.fra`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    const ctx = (
      (await pool.json()) as { actor: { context: { machines: Record<string, { state: string }> } } }
    ).actor.context;
    for (const m of unclaimedPooled()) {
      expect(m.state).toBe('created');
      expect(ctx.machines[m.id]?.state).toBe('ready');
    }
  });
});
