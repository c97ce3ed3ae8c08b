/**
 * The life of one machine, in process: readiness, exactly one "listening", and switching off on
 * TTL, on a signal, when every viewer is done or gone quiet, and when nobody came at all.
 */
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../../src/adapters/system/manualClock.js';
import { SystemTimers, systemClock } from '../../../src/adapters/system/systemClock.js';
import { machineStatusBody, verifySignature } from '../../../src/shared/callbackAuth.js';
import { silentLogger } from '../../../src/shared/log.js';
import type { Clock, Timers } from '../../../src/ports/clock.js';
import { buildApp, type UselessMachine, type UselessTuning } from '../../../src/useless/app.js';
import type { Fetch } from '../../../src/useless/callbacks.js';
import {
  CallbackReceiver,
  KEY,
  LAUNCH_ID,
  SELF,
  aConfig,
  deadUrl,
  exitRecorder,
} from '../../support/useless.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Setup {
  machine: UselessMachine;
  receiver: CallbackReceiver;
  codes: number[];
  selfUrl: string;
}

async function setup(opts: {
  clock?: Clock;
  timers?: Timers;
  ttlMs?: number;
  idleMs?: number;
  statuses?: number[];
  fallback?: boolean;
  primaryDown?: boolean;
  fetch?: Fetch;
  tuning?: Partial<UselessTuning>;
  script?: string;
}): Promise<Setup> {
  const receiver = new CallbackReceiver(opts.statuses);
  cleanups.push(() => receiver.close());
  const url = await receiver.listen();
  const primary = opts.primaryDown ? await deadUrl() : url;
  const clock = opts.clock ?? systemClock;
  const timers = opts.timers ?? new SystemTimers(clock);
  cleanups.push(() => timers.clearAll());
  const { exit, codes } = exitRecorder();
  const machine = buildApp({
    config: aConfig({
      WM_CALLBACK_URL: primary,
      ...(opts.fallback || opts.primaryDown ? { WM_CALLBACK_FALLBACK_URL: url } : {}),
      WM_TTL_MS: String(opts.ttlMs ?? 60_000),
      ...(opts.idleMs !== undefined ? { WM_IDLE_MS: String(opts.idleMs) } : {}),
    }),
    log: silentLogger(),
    clock,
    timers,
    fetch: opts.fetch ?? globalThis.fetch,
    exit,
    script: opts.script,
    tuning: {
      readinessIntervalMs: 10,
      callback: { attemptTimeoutMs: 2000, baseBackoffMs: 5, maxBackoffMs: 20 },
      ...opts.tuning,
    },
  });
  cleanups.push(() => machine.app.close());
  await machine.app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = machine.app.server.address() as AddressInfo;
  return { machine, receiver, codes, selfUrl: `http://127.0.0.1:${port}` };
}

function statuses(r: CallbackReceiver): unknown[] {
  return r.bodies().map((b) => [b.status, b.reason]);
}

describe('start', () => {
  it('checks its own /health, then sends exactly one signed "listening"', async () => {
    const { machine, receiver, selfUrl, codes } = await setup({});
    await Promise.all([machine.start(selfUrl), machine.start(selfUrl)]);
    expect(machine.phase()).toBe('running');
    expect(machine.listening()).toMatchObject({ ok: true, attempts: 1 });
    expect(receiver.received).toHaveLength(1);
    const got = receiver.received[0]!;
    const parsed = machineStatusBody.parse(JSON.parse(got.raw));
    expect(parsed).toMatchObject({
      machineId: SELF,
      launchId: LAUNCH_ID,
      region: 'ams',
      status: 'listening',
    });
    expect(parsed.reason).toBeUndefined();
    expect(
      verifySignature(KEY, got.raw, got.headers['x-wm-signature'] as string, Date.now()),
    ).toMatchObject({ ok: true });
    expect(codes).toEqual([]);
  });

  it('reaches the fallback when the launching instance is down', async () => {
    const { machine, receiver, selfUrl } = await setup({ primaryDown: true });
    await machine.start(selfUrl);
    expect(machine.listening()).toMatchObject({
      ok: true,
      url: expect.stringContaining('127.0.0.1') as unknown,
      attempts: 2,
    });
    expect(receiver.received).toHaveLength(1);
  });

  it('exits non-zero, without calling home, when readiness cannot be confirmed', async () => {
    let healthChecks = 0;
    const failing: Fetch = async (input, init) => {
      if (typeof input === 'string' && input.endsWith('/health')) {
        healthChecks++;
        throw new Error('connection refused');
      }
      return globalThis.fetch(input, init);
    };
    const { machine, receiver, selfUrl, codes } = await setup({
      fetch: failing,
      tuning: { readinessAttempts: 4 },
    });
    await machine.start(selfUrl);
    expect(codes).toEqual([1]);
    expect(healthChecks).toBe(4);
    expect(receiver.received).toHaveLength(0);
    expect(machine.phase()).toBe('stopped');
  });
});

describe('switching off', () => {
  it('on TTL: "stopping" with reason ttl, then exit 0', async () => {
    const clock = new ManualClock(Date.now());
    const { machine, receiver, selfUrl, codes } = await setup({
      clock,
      timers: clock,
      ttlMs: 5000,
    });
    await machine.start(selfUrl);
    clock.advance(4999);
    expect(machine.phase()).toBe('running');
    clock.advance(1);
    await expect.poll(() => codes).toEqual([0]);
    expect(statuses(receiver)).toEqual([
      ['listening', undefined],
      ['stopping', 'ttl'],
    ]);
    const stopping = receiver.received[1]!;
    expect(
      verifySignature(KEY, stopping.raw, stopping.headers['x-wm-signature'] as string, clock.now())
        .ok,
    ).toBe(true);
    expect(machine.phase()).toBe('stopped');
    expect(machine.app.server.listening).toBe(false);
  });

  it('on a signal: "stopping" with reason signal, once, then exit 0', async () => {
    const { machine, receiver, selfUrl, codes } = await setup({});
    await machine.start(selfUrl);
    await Promise.all([machine.stop('signal'), machine.stop('signal'), machine.stop('ttl')]);
    expect(codes).toEqual([0]);
    expect(statuses(receiver)).toEqual([
      ['listening', undefined],
      ['stopping', 'signal'],
    ]);
  });

  it('a signal during readiness/listening retries aborts them and still reports stopping', async () => {
    const { machine, receiver, selfUrl, codes } = await setup({
      statuses: [503, 503, 503, 503, 503, 503, 200],
      tuning: { listeningBudgetMs: 600_000 },
    });
    const started = machine.start(selfUrl);
    await expect.poll(() => receiver.received.length).toBeGreaterThanOrEqual(2);
    receiver.respondWith([200]);
    await machine.stop('signal');
    await started;
    expect(codes).toEqual([0]);
    expect(machine.listening()).toMatchObject({ ok: false, reason: 'aborted' });
    expect(receiver.bodies().at(-1)).toMatchObject({ status: 'stopping', reason: 'signal' });
  });

  it('exits 0 within its budget even when nobody hears "stopping"', async () => {
    const { machine, receiver, selfUrl, codes } = await setup({ tuning: { stopBudgetMs: 200 } });
    await machine.start(selfUrl);
    receiver.respondWith([503]);
    await machine.stop('signal');
    expect(codes).toEqual([0]);
    expect(receiver.bodies().filter((b) => b.status === 'stopping').length).toBeGreaterThanOrEqual(
      1,
    );
  });

  it('a page served while switching off says the machine is gone', async () => {
    const { machine, receiver, selfUrl } = await setup({ statuses: [200] });
    await machine.start(selfUrl);
    receiver.respondWith([503]);
    const stopping = machine.stop('signal');
    const res = await machine.app.inject({ url: `/machine?instance=${SELF}` });
    expect(res.statusCode).toBe(410);
    expect(res.body).toContain('This machine is gone');
    receiver.respondWith([200]);
    await stopping;
  });
});

describe('viewers', () => {
  async function page(machine: UselessMachine): Promise<{ doneUrl: string; beatUrl: string }> {
    const res = await machine.app.inject({ url: `/machine?instance=${SELF}` });
    expect(res.statusCode).toBe(200);
    const json = /<script type="application\/json" id="wm-data">(.*?)<\/script>/s.exec(
      res.body,
    )?.[1];
    const data = JSON.parse(json!) as { viewer: { doneUrl: string; beatUrl: string } };
    return data.viewer;
  }

  async function running(tuning: Partial<UselessTuning> = {}, idleMs?: number) {
    const clock = new ManualClock(Date.now());
    const s = await setup({
      clock,
      timers: clock,
      script: '/* script */',
      tuning: { viewerGraceMs: 20_000, ...tuning },
      ...(idleMs !== undefined ? { idleMs } : {}),
    });
    await s.machine.start(s.selfUrl);
    return { ...s, clock };
  }

  const post = (machine: UselessMachine, url: string) =>
    machine.app.inject({ method: 'POST', url });

  it('with two tabs open, the machine waits for both to finish', async () => {
    const { machine, receiver, codes } = await running();
    const a = await page(machine);
    const b = await page(machine);
    expect(machine.viewers.size).toBe(2);

    expect((await post(machine, a.doneUrl)).statusCode).toBe(204);
    expect(machine.phase()).toBe('running');
    expect(codes).toEqual([]);

    expect((await post(machine, b.doneUrl)).statusCode).toBe(204);
    await expect.poll(() => codes).toEqual([0]);
    expect(receiver.bodies().at(-1)).toMatchObject({ status: 'stopping', reason: 'finished' });
  });

  it('a viewer that goes quiet stops counting after the grace period; beats keep one alive', async () => {
    const { machine, clock, codes } = await running({ viewerGraceMs: 20_000 });
    const a = await page(machine);
    const b = await page(machine);
    await post(machine, a.doneUrl);
    clock.advance(15_000);
    expect((await post(machine, b.beatUrl)).statusCode).toBe(204);
    clock.advance(15_000); // 30 s after b registered, 15 s after its beat
    expect(machine.phase()).toBe('running');
    clock.advance(5_000); // b has been quiet for the whole grace period
    await expect.poll(() => codes).toEqual([0]);
  });

  it('ready and never visited: switches itself off after the idle time, as after an animation', async () => {
    const { machine, clock, codes, receiver } = await running({}, 5_000);
    clock.advance(4_999);
    expect(machine.phase()).toBe('running');
    expect(codes).toEqual([]);
    clock.advance(1);
    await expect.poll(() => codes).toEqual([0]);
    // The same report as a finished animation (the wire knows no "idle"), then exit 0.
    expect(statuses(receiver)).toEqual([
      ['listening', undefined],
      ['stopping', 'idle'],
    ]);
    expect(machine.phase()).toBe('stopped');
  });

  it('a viewer who arrives before the idle time cancels it; the viewers decide from then on', async () => {
    const { machine, clock, codes, receiver } = await running({ viewerGraceMs: 20_000 }, 5_000);
    clock.advance(4_000);
    const a = await page(machine);
    clock.advance(10_000); // well past the idle time, within the viewer's grace
    expect(machine.phase()).toBe('running');
    expect(codes).toEqual([]);
    expect((await post(machine, a.doneUrl)).statusCode).toBe(204);
    await expect.poll(() => codes).toEqual([0]);
    expect(receiver.bodies().at(-1)).toMatchObject({ status: 'stopping', reason: 'finished' });
  });

  it('a HEAD (a link preview) is not a viewer: it does not keep an idle machine alive', async () => {
    const { machine, clock, codes } = await running({}, 5_000);
    await machine.app.inject({ method: 'HEAD', url: `/machine?instance=${SELF}` });
    clock.advance(5_000);
    await expect.poll(() => codes).toEqual([0]);
  });

  it('with the idle time off (0), nobody watching is not "finished": only the TTL ends it', async () => {
    const { machine, clock, codes, receiver } = await running({}, 0);
    clock.advance(59_999);
    expect(machine.phase()).toBe('running');
    clock.advance(1);
    await expect.poll(() => codes).toEqual([0]);
    expect(receiver.bodies().at(-1)).toMatchObject({ status: 'stopping', reason: 'ttl' });
  });

  it('the TTL ends the machine even while someone is still watching', async () => {
    const { machine, clock, codes, receiver } = await running({ viewerGraceMs: 10 * 60_000 });
    await page(machine);
    clock.advance(60_000);
    await expect.poll(() => codes).toEqual([0]);
    expect(receiver.bodies().at(-1)).toMatchObject({ status: 'stopping', reason: 'ttl' });
  });

  it('POST /machine/viewers registers a viewer; unknown and malformed ids are refused', async () => {
    const { machine } = await running();
    const res = await post(machine, `/machine/viewers?instance=${SELF}`);
    expect(res.statusCode).toBe(201);
    const { id, beatEveryMs, graceMs } = res.json<{
      id: string;
      beatEveryMs: number;
      graceMs: number;
    }>();
    expect(id).toMatch(/^[A-Za-z0-9_-]{16}$/);
    expect(beatEveryMs).toBeLessThan(graceMs);
    const unknown = await post(machine, `/machine/viewers/AAAAAAAAAAAAAAAA/done?instance=${SELF}`);
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json()).toMatchObject({ statusCode: 404, code: 'VIEWER_UNKNOWN' });
    const bad = await post(machine, `/machine/viewers/..%2F..%2Fx/done?instance=${SELF}`);
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ statusCode: 400, code: 'BAD_VIEWER_ID' });
    expect((await post(machine, `/machine/viewers/${id}/done?instance=${SELF}`)).statusCode).toBe(
      204,
    );
  });

  it('HEAD requests do not count as viewers', async () => {
    const { machine } = await running();
    const res = await machine.app.inject({ method: 'HEAD', url: `/machine?instance=${SELF}` });
    expect(res.statusCode).toBe(200);
    expect(machine.viewers.size).toBe(0);
  });

  it('refuses more viewers than it will take', async () => {
    const { machine } = await running({ maxViewers: 2 });
    expect((await post(machine, '/machine/viewers')).statusCode).toBe(201);
    expect((await post(machine, '/machine/viewers')).statusCode).toBe(201);
    const third = await post(machine, '/machine/viewers');
    expect(third.statusCode).toBe(503);
    expect(third.json()).toMatchObject({ code: 'TOO_MANY_VIEWERS' });
  });
});
