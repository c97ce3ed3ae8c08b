/**
 * The landing app over real HTTP (in-memory store, Fly fake): a launch from click to a destroyed
 * machine as its SSE stream tells it, and every way a launch request is refused.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { FakeFlyMachines } from '../../../src/adapters/fly/fakeFlyMachines.js';
import { openSse, type SseReader } from '../../support/sse.js';
import { launch, whereRig, type WhereRig } from '../../support/whereRig.js';

let rig: WhereRig | undefined;
const readers: SseReader[] = [];
afterEach(async () => {
  for (const r of readers.splice(0)) r.close();
  await rig?.stop();
  rig = undefined;
});

const statuses = (r: SseReader) =>
  r.frames.filter((f) => f.event === 'launch').map((f) => (f.data as { status: string }).status);

describe('a launch, end to end through the landing app', () => {
  it('goes requested → created → started → ready → done, with the VM URL at ready', async () => {
    rig = await whereRig();
    const res = await launch(rig, { region: 'fra' });
    expect(res.status).toBe(202);
    const body = (await res.json()) as {
      launchId: string;
      region: string;
      events: string;
      status: string;
    };
    expect(body.region).toBe('fra');
    expect(body.events).toBe(`/launches/${body.launchId}/events`);

    const sse = await openSse(rig.base + body.events);
    readers.push(sse);
    expect(sse.status).toBe(200);
    expect(sse.headers.get('content-type')).toContain('text/event-stream');
    await expect.poll(() => statuses(sse)).toEqual(['requested', 'created', 'started']);

    const machine = rig.fly.live()[0]!;
    expect(machine.region).toBe('fra');
    expect(machine.metadata).toMatchObject({
      launch_id: body.launchId,
      source: 'button',
      owner: 'test-1',
    });
    const env = rig.fly.inputOf(machine.id)!.env;
    expect(env.WM_LAUNCH_ID).toBe(body.launchId);
    expect(env.WM_CALLBACK_URL).toBe(`${rig.cfg.callback.baseUrl}/api/machine_status`);
    expect(env.WM_CALLBACK_KEY).toMatch(/^[0-9a-f]{64}$/);
    expect(env.WM_CALLBACK_KEY).not.toBe(rig.cfg.callback.secret);

    const cb = await rig.callback({
      machineId: machine.id,
      launchId: body.launchId,
      region: 'fra',
      status: 'listening',
      at: new Date().toISOString(),
    });
    expect(cb.status).toBe(200);
    await expect.poll(() => statuses(sse)).toEqual(['requested', 'created', 'started', 'ready']);
    const ready = sse.frames.at(-1)!.data as {
      url: string;
      machineId: string;
      at: string;
      requestedAt: string;
    };
    expect(ready.url).toBe(`http://useless-machine.localhost:8080/machine?instance=${machine.id}`);
    expect(Date.parse(ready.at)).toBeGreaterThanOrEqual(Date.parse(ready.requestedAt));
    // SSE ids are stream versions, increasing.
    const ids = sse.frames.map((f) => Number(f.id));
    expect([...ids].sort((a, b) => a - b)).toEqual(ids);

    // The VM finishes: it says so, exits 0, and the platform destroys it.
    await rig.callback({
      machineId: machine.id,
      launchId: body.launchId,
      region: 'fra',
      status: 'stopping',
      reason: 'finished',
      at: new Date().toISOString(),
    });
    rig.fly.exit(machine.id, 0);
    await expect.poll(() => statuses(sse).at(-1), { timeout: 10_000 }).toBe('done');
    await sse.ended;
    expect(rig.fly.live()).toEqual([]);
    expect(await rig.ledger.holds(Date.now())).toEqual([]);
  });

  it('resumes a stream after Last-Event-ID without repeating what the browser saw', async () => {
    rig = await whereRig();
    const { launchId } = (await (await launch(rig)).json()) as { launchId: string };
    const first = await openSse(`${rig.base}/launches/${launchId}/events`);
    readers.push(first);
    await expect.poll(() => statuses(first).length).toBe(3);
    const lastId = first.frames.at(-2)!.id!;
    first.close();
    const again = await openSse(`${rig.base}/launches/${launchId}/events`, {
      'last-event-id': lastId,
    });
    readers.push(again);
    await expect.poll(() => statuses(again)).toEqual(['started']);
  });

  it('answers 204 to a reconnect after the final status, so EventSource stops', async () => {
    const fly = new FakeFlyMachines().failNext('create', {
      status: 422,
      message: 'invalid config',
    });
    rig = await whereRig({}, { fly });
    const { launchId } = (await (await launch(rig)).json()) as { launchId: string };
    const sse = await openSse(`${rig.base}/launches/${launchId}/events`);
    readers.push(sse);
    await expect.poll(() => statuses(sse).at(-1)).toBe('failed');
    await sse.ended;
    const finalId = sse.frames.at(-1)!.id!;
    const again = await fetch(`${rig.base}/launches/${launchId}/events`, {
      headers: { accept: 'text/event-stream', 'last-event-id': finalId },
    });
    expect(again.status).toBe(204);
    // Without Last-Event-ID the whole story is told again, ending at the failure.
    const fresh = await openSse(`${rig.base}/launches/${launchId}/events`);
    readers.push(fresh);
    await fresh.ended;
    expect(statuses(fresh)).toEqual(['requested', 'failed']);
  });

  it('refuses a launch past the cap with 503 CAPACITY, and never creates more machines than the cap', async () => {
    rig = await whereRig({
      WM_MAX_MACHINES: '3',
      WM_COOLDOWN_MS: '0',
      WM_LAUNCHES_PER_MINUTE: '1000',
    });
    const results = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        launch(rig!, {}, { 'fly-client-ip': `198.51.100.${i + 1}` }),
      ),
    );
    const codes = results.map((r) => r.status).sort();
    expect(codes.filter((c) => c === 202)).toHaveLength(3);
    expect(codes.filter((c) => c === 503)).toHaveLength(9);
    await expect.poll(() => rig!.fly.ledger().length).toBe(3);
    const bodies = await Promise.all(
      results
        .filter((r) => r.status === 503)
        .map((r) => r.json() as Promise<{ code: string; message: string }>),
    );
    expect(bodies.every((b) => b.code === 'CAPACITY' && b.message.length > 0)).toBe(true);
  });

  it('refuses cross-site launches with 403', async () => {
    rig = await whereRig();
    const variants: Record<string, string>[] = [
      { origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' },
      { 'sec-fetch-site': 'cross-site' },
      { origin: 'https://evil.example' },
      { origin: 'null' },
    ];
    for (const headers of variants) {
      const res = await fetch(`${rig.base}/launches`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: '{}',
      });
      expect(res.status).toBe(403);
      expect(((await res.json()) as { code: string }).code).toBe('CROSS_SITE');
    }
    expect(rig.fly.ledger()).toEqual([]);
  });

  it('rate-limits launches per client IP, and a spoofed Fly-Client-IP from an untrusted peer changes nothing', async () => {
    rig = await whereRig({
      WM_LAUNCHES_PER_MINUTE: '2',
      WM_COOLDOWN_MS: '0',
      WM_TRUSTED_PROXIES: '192.0.2.1',
    });
    const statusesSeen: number[] = [];
    for (let i = 0; i < 4; i++) {
      // Each request claims a different client IP, but the peer (127.0.0.1) is not a trusted proxy.
      const res = await launch(rig, {}, { 'fly-client-ip': `203.0.113.${i}` });
      statusesSeen.push(res.status);
      if (res.status === 429) {
        expect(res.headers.get('retry-after')).toMatch(/^\d+$/);
        expect(((await res.json()) as { code: string }).code).toBe('RATE_LIMITED');
      }
    }
    expect(statusesSeen).toEqual([202, 202, 429, 429]);
  });

  it('puts a visitor on cooldown after a launch', async () => {
    rig = await whereRig({ WM_COOLDOWN_MS: '20000' });
    expect((await launch(rig, {}, { 'fly-client-ip': '198.51.100.1' })).status).toBe(202);
    const again = await launch(rig, {}, { 'fly-client-ip': '198.51.100.1' });
    expect(again.status).toBe(429);
    expect(((await again.json()) as { code: string }).code).toBe('COOLDOWN');
    expect((await launch(rig, {}, { 'fly-client-ip': '198.51.100.2' })).status).toBe(202);
  });

  it('launches in the visitor edge region by default, and rejects unknown regions', async () => {
    rig = await whereRig();
    const res = await launch(rig, {}, { 'fly-region': 'syd' });
    expect(((await res.json()) as { region: string }).region).toBe('syd');
    for (const region of ['xyz', 'AMS', '../etc', 'a'.repeat(20)]) {
      const bad = await launch(rig, { region }, { 'fly-client-ip': `198.51.100.${region.length}` });
      expect(bad.status).toBe(400);
    }
    const junk = await launch(
      rig,
      { region: 'ams', extra: 1 },
      { 'fly-client-ip': '198.51.100.99' },
    );
    expect(junk.status).toBe(400);
  });

  it('fails a launch whose machine never gets ready, and destroys that machine', async () => {
    rig = await whereRig({ WM_READY_TIMEOUT_MS: '1500' });
    const { launchId } = (await (await launch(rig)).json()) as { launchId: string };
    const sse = await openSse(`${rig.base}/launches/${launchId}/events`);
    readers.push(sse);
    await expect.poll(() => statuses(sse).at(-1), { timeout: 10_000 }).toBe('failed');
    const failed = sse.frames.at(-1)!.data as { reason: string; message: string };
    expect(failed.reason).toBe('readyTimeout');
    expect(failed.message.length).toBeGreaterThan(0);
    await expect.poll(() => rig!.fly.live().length, { timeout: 10_000 }).toBe(0);
    expect(rig.fly.ledger()).toHaveLength(1);
  });

  it('reports a Fly refusal as failed with its reason', async () => {
    const fly = new FakeFlyMachines().failNext('create', {
      status: 422,
      message: 'invalid region',
    });
    rig = await whereRig({}, { fly });
    const { launchId } = (await (await launch(rig)).json()) as { launchId: string };
    const sse = await openSse(`${rig.base}/launches/${launchId}/events`);
    readers.push(sse);
    await expect.poll(() => statuses(sse).at(-1)).toBe('failed');
    expect((sse.frames.at(-1)!.data as { reason: string }).reason).toBe('flyError');
  });

  it('answers 404 for an unknown launch and 400 for a malformed id', async () => {
    rig = await whereRig();
    expect((await fetch(`${rig.base}/launches/01JZ0000000000000000000000/events`)).status).toBe(
      404,
    );
    const bad = await fetch(`${rig.base}/launches/not-a-ulid/events`);
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { code: string }).code).toBe('BAD_LAUNCH_ID');
  });
});
