/**
 * The emulator's per-machine endpoints beyond the port's calls, over HTTP: start rules, restart,
 * suspend, update (new version, process replaced), signal, cordon, events, versions, leases with
 * their nonce, ps, metadata shapes, and Fly's per-app create and per-machine start rate limits.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../../src/adapters/system/manualClock.js';
import type { FlyLocalHandle } from '../../../src/flylocal/index.js';
import {
  alive,
  FIXTURE_VM,
  TEST_APP,
  startTestFlyLocal,
  uniqueTag,
} from '../../support/flyLocalHarness.js';

let h: FlyLocalHandle;

beforeAll(async () => {
  h = await startTestFlyLocal();
});
afterAll(async () => {
  await h?.close();
});

interface Body {
  id: string;
  state: string;
  instance_id: string;
  config: { env?: Record<string, string>; metadata?: Record<string, string> };
  error?: string;
  ok?: boolean;
}

interface Answer<T> {
  status: number;
  body: T;
  text: string;
}

async function api<T = Body>(
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
  on: Pick<FlyLocalHandle, 'apiUrl' | 'token'> = h,
): Promise<Answer<T>> {
  const res = await fetch(`${on.apiUrl}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${on.token}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...headers,
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : undefined) as T, text };
}

const machines = `/apps/${TEST_APP}/machines`;

function config(env: Record<string, string> = {}, over: Record<string, unknown> = {}) {
  return {
    image: 'registry.fly.io/useless-machine:test',
    init: { cmd: ['node', FIXTURE_VM] },
    env,
    metadata: { launch_id: uniqueTag('L') },
    services: [{ protocol: 'tcp', internal_port: 4040 }],
    restart: { policy: 'no' },
    stop_config: { signal: 'SIGTERM', timeout: '5s' },
    ...over,
  };
}

async function create(top: Record<string, unknown> = {}, on = h): Promise<Body> {
  const r = await api('POST', machines, { region: 'ams', config: config(), ...top }, {}, on);
  expect(r.status, r.text).toBe(200);
  return r.body;
}

const waitFor = (id: string, state: string, extra = '') =>
  api('GET', `${machines}/${id}/wait?state=${state}&timeout=10${extra}`);

/** The VM's environment, once its process listens (`started` means spawned, not listening). */
async function vmEnv(id: string): Promise<Record<string, string>> {
  let env: Record<string, string> = {};
  await expect
    .poll(
      async () => {
        const url = h.emulator.machine(id)?.url;
        env = await fetch(`${url}/env`).then(
          (r) => r.json() as Promise<Record<string, string>>,
          () => ({}),
        );
        return env.FLY_MACHINE_ID;
      },
      { timeout: 10_000 },
    )
    .toBe(id);
  return env;
}

async function started(): Promise<Body> {
  const m = await create();
  expect((await waitFor(m.id, 'started')).status).toBe(200);
  return m;
}

describe('flylocal start, restart and suspend', () => {
  it('starts a stopped machine as a new process; refuses to start a running one (412)', async () => {
    const m = await started();
    const firstPid = h.emulator.machine(m.id)!.pid!;
    expect((await api('POST', `${machines}/${m.id}/stop`)).status).toBe(200);
    expect((await waitFor(m.id, 'stopped', `&instance_id=${m.instance_id}`)).status).toBe(200);
    // A stopped machine's process is really gone.
    expect(h.emulator.machine(m.id)!.pid).toBeUndefined();
    expect(alive(firstPid)).toBe(false);
    const start = await api<Record<string, unknown>>('POST', `${machines}/${m.id}/start`);
    expect([start.status, start.body]).toEqual([
      200,
      { previous_state: 'stopped', migrated: false, new_host: '' },
    ]);
    expect((await waitFor(m.id, 'started')).status).toBe(200);
    const now = h.emulator.machine(m.id)!;
    expect(now.spawns).toBe(2);
    expect(now.pid).not.toBe(firstPid);
    const again = await api('POST', `${machines}/${m.id}/start`);
    expect(again.status).toBe(412);
    expect(again.body.error).toMatch(/^failed_precondition: unable to start machine .* 'started'/);
    expect((await api('POST', `${machines}/00000000000000/start`)).status).toBe(404);
  });

  it('restarts a running machine: stop, then a new process, with the signal asked for', async () => {
    const m = await started();
    await vmEnv(m.id); // its signal handlers are in place once it listens
    const r = await api('POST', `${machines}/${m.id}/restart?signal=SIGTERM&timeout=5s`);
    expect([r.status, r.body]).toEqual([200, { ok: true }]);
    await expect.poll(() => h.emulator.machine(m.id)?.spawns, { timeout: 10_000 }).toBe(2);
    expect((await waitFor(m.id, 'started')).status).toBe(200);
    expect(h.emulator.machine(m.id)!.states.slice(-5)).toEqual([
      'started',
      'stopping',
      'stopped',
      'starting',
      'started',
    ]);
    await expect
      .poll(() => h.emulator.logs(m.id).some((l) => l.line === 'got SIGTERM'), { timeout: 5_000 })
      .toBe(true);
    expect((await api('POST', `${machines}/${m.id}/restart?signal=SIGNOPE`)).status).toBe(400);
  });

  it('suspends a running machine (its process stopped) and resumes it with start', async () => {
    const m = await started();
    expect((await api('POST', `${machines}/${m.id}/suspend`)).status).toBe(200);
    expect((await waitFor(m.id, 'suspended')).status).toBe(200);
    expect(h.emulator.machine(m.id)!.pid).toBeUndefined();
    const start = await api<{ previous_state: string }>('POST', `${machines}/${m.id}/start`);
    expect(start.body.previous_state).toBe('suspended');
    expect((await waitFor(m.id, 'started')).status).toBe(200);
    const created = await create({ skip_launch: true });
    expect((await api('POST', `${machines}/${created.id}/suspend`)).status).toBe(412);
  });
});

describe('flylocal update, versions and events', () => {
  it('updates a running machine: a new version, its process replaced with the new config', async () => {
    const m = await started();
    const firstPid = h.emulator.machine(m.id)!.pid!;
    const u = await api('POST', `${machines}/${m.id}`, {
      config: config({ GENERATION: '2' }, { metadata: { generation: '2' } }),
      current_version: m.instance_id,
    });
    expect(u.status, u.text).toBe(200);
    expect(u.body.instance_id).not.toBe(m.instance_id);
    expect(u.body.config.env?.GENERATION).toBe('2');
    await expect.poll(() => h.emulator.machine(m.id)?.spawns, { timeout: 10_000 }).toBe(2);
    expect((await waitFor(m.id, 'started')).status).toBe(200);
    expect(h.emulator.machine(m.id)!.pid).not.toBe(firstPid);
    // The new process runs the new version with the new env.
    const env = await vmEnv(m.id);
    expect(env).toMatchObject({ GENERATION: '2', FLY_MACHINE_VERSION: u.body.instance_id });

    const versions = await api<{ version: string; user_config: { env: Record<string, string> } }[]>(
      'GET',
      `${machines}/${m.id}/versions`,
    );
    expect(versions.body.map((v) => v.version)).toEqual([u.body.instance_id, m.instance_id]);
    expect(versions.body[0]!.user_config.env.GENERATION).toBe('2');

    const stale = await api('POST', `${machines}/${m.id}`, {
      config: config(),
      current_version: m.instance_id,
    });
    expect(stale.status).toBe(412);
    const moved = await api('POST', `${machines}/${m.id}`, { region: 'syd', config: config() });
    expect(moved.status).toBe(400);
    expect((await api('POST', `${machines}/${m.id}`, { config: {} })).status).toBe(400);

    const events = await api<{ type: string; status: string; source: string; timestamp: number }[]>(
      'GET',
      `${machines}/${m.id}/events`,
    );
    expect(events.status).toBe(200);
    expect(events.body[0]!.type).toBe('start');
    expect(events.body.map((e) => e.type)).toEqual(
      expect.arrayContaining(['launch', 'start', 'update', 'exit']),
    );
    for (const e of events.body) expect(typeof e.timestamp).toBe('number');
  });

  it('keeps a stopped machine stopped on update; the new config runs at its next start', async () => {
    const m = await create({ skip_launch: true });
    const u = await api('POST', `${machines}/${m.id}`, { config: config({ GENERATION: '3' }) });
    expect([u.status, u.body.state]).toEqual([200, 'created']);
    expect((await api('POST', `${machines}/${m.id}/start`)).status).toBe(200);
    expect((await waitFor(m.id, 'started')).status).toBe(200);
    const env = await vmEnv(m.id);
    expect(env.GENERATION).toBe('3');
  });
});

describe('flylocal signal, ps and cordon', () => {
  it('signals the process, lists it in ps, and cordons it out of the directory', async () => {
    const m = await started();
    const pid = h.emulator.machine(m.id)!.pid!;
    const ps = await api<Record<string, unknown>[]>('GET', `${machines}/${m.id}/ps`);
    expect(ps.status).toBe(200);
    expect(ps.body).toHaveLength(1);
    expect(ps.body[0]).toMatchObject({ pid, cpu: 0, stime: 0 });
    expect(String(ps.body[0]!.command)).toContain(FIXTURE_VM);
    expect(ps.body[0]!.listen_sockets).toEqual([
      { proto: 'tcp', address: expect.stringMatching(/:\d+$/) },
    ]);

    expect((await api('POST', `${machines}/${m.id}/cordon`)).status).toBe(200);
    expect((await h.directory.instances(TEST_APP)).map((i) => i.id)).not.toContain(m.id);
    expect(h.emulator.machine(m.id)!.cordoned).toBe(true);
    expect((await api('POST', `${machines}/${m.id}/uncordon`)).status).toBe(200);
    expect((await h.directory.instances(TEST_APP)).map((i) => i.id)).toContain(m.id);

    expect((await api('POST', `${machines}/${m.id}/signal`, {})).status).toBe(400);
    expect((await api('POST', `${machines}/${m.id}/signal`, { signal: 'SIGWHAT' })).status).toBe(
      400,
    );
    const sig = await api('POST', `${machines}/${m.id}/signal`, { signal: 'SIGTERM' });
    expect([sig.status, sig.body]).toEqual([200, { ok: true }]);
    // The fixture exits on SIGTERM; under restart policy `no` the machine stops.
    expect((await waitFor(m.id, 'stopped', `&instance_id=${m.instance_id}`)).status).toBe(200);
    expect((await api<unknown[]>('GET', `${machines}/${m.id}/ps`)).body).toEqual([]);
    const late = await api('POST', `${machines}/${m.id}/signal`, { signal: 'SIGTERM' });
    expect(late.status).toBe(412);
  });
});

describe('flylocal metadata endpoints', () => {
  it('answers 204 to set and delete, reads the map, and validates keys and bodies', async () => {
    const m = await create({ skip_launch: true });
    const set = await api('POST', `${machines}/${m.id}/metadata/claimed_by`, { value: 'L1' });
    expect([set.status, set.text]).toEqual([204, '']);
    const read = await api<Record<string, string>>('GET', `${machines}/${m.id}/metadata`);
    expect(read.body).toMatchObject({ claimed_by: 'L1', launch_id: expect.any(String) });
    expect((await api('GET', `${machines}/${m.id}`)).body.instance_id).toBe(m.instance_id);
    const del = await api('DELETE', `${machines}/${m.id}/metadata/claimed_by`);
    expect(del.status).toBe(204);
    expect(
      (await api<Record<string, string>>('GET', `${machines}/${m.id}/metadata`)).body,
    ).not.toHaveProperty('claimed_by');
    expect((await api('POST', `${machines}/${m.id}/metadata/k`, {})).status).toBe(400);
    expect((await api('POST', `${machines}/${m.id}/metadata/k`, { value: 3 })).status).toBe(400);
    expect(
      (await api('POST', `${machines}/${m.id}/metadata/bad%20key`, { value: 'v' })).status,
    ).toBe(400);
  });
});

describe('flylocal leases', () => {
  it('takes, refreshes and releases a lease; while it lasts, changes need its nonce', async () => {
    const clock = new ManualClock(Date.now());
    const local = await startTestFlyLocal({ clock });
    try {
      const m = await create({ skip_launch: true }, local);
      const path = `${machines}/${m.id}`;
      const call = <T = Body>(method: string, p: string, body?: unknown, nonce?: string) =>
        api<T>(method, p, body, nonce ? { 'fly-machine-lease-nonce': nonce } : {}, local);
      expect((await call('GET', `${path}/lease`)).status).toBe(404);
      const lease = await call<{
        nonce: string;
        expires_at: number;
        owner: string;
        version: string;
        status: string;
        data: { nonce: string };
      }>('POST', `${path}/lease`, { ttl: 10, description: 'claim' });
      expect(lease.status).toBe(200);
      expect(lease.body).toMatchObject({
        owner: expect.any(String),
        version: m.instance_id,
        expires_at: Math.floor((clock.now() + 10_000) / 1000),
        status: 'success',
      });
      const nonce = lease.body.nonce;
      expect(lease.body.data.nonce).toBe(nonce);
      // Readers see the lease, not its nonce.
      const seen = await call<Record<string, unknown>>('GET', `${path}/lease`);
      expect(seen.status).toBe(200);
      expect(seen.body).not.toHaveProperty('nonce');

      const held = await call('POST', `${path}/start`);
      expect(held.status).toBe(409);
      expect(held.body.error).toMatch(/lease currently held by/);
      expect((await call('POST', `${path}/metadata/k`, { value: 'v' }, 'wrong')).status).toBe(409);
      expect((await call('POST', `${path}/lease`, {})).status).toBe(409);
      expect((await call('POST', `${path}/metadata/k`, { value: 'v' }, nonce)).status).toBe(204);

      clock.advance(8_000);
      const refreshed = await call<{ expires_at: number }>(
        'POST',
        `${path}/lease`,
        { ttl: 10 },
        nonce,
      );
      expect(refreshed.body.expires_at).toBe(Math.floor((clock.now() + 10_000) / 1000));
      expect((await call('DELETE', `${path}/lease`)).status).toBe(400);
      expect((await call('DELETE', `${path}/lease`, undefined, 'wrong')).status).toBe(409);
      expect((await call('DELETE', `${path}/lease`, undefined, nonce)).status).toBe(200);
      expect((await call('GET', `${path}/lease`)).status).toBe(404);

      // A lease nobody releases ends at its expiry.
      await call('POST', `${path}/lease`, { ttl: 5 });
      expect((await call('POST', `${path}/cordon`)).status).toBe(409);
      clock.advance(5_000);
      expect((await call('POST', `${path}/cordon`)).status).toBe(200);
      expect((await call('GET', `${path}/lease`)).status).toBe(404);
    } finally {
      await local.close();
    }
  });
});

describe("flylocal rate limits: creates per app, starts per machine (Fly's published limits)", () => {
  it('answers 429 past a burst of 3 creates in one app and 3 starts of one machine, others unaffected', async () => {
    // A manual clock: the buckets never refill during the test, so the counts are exact.
    const clock = new ManualClock(Date.now());
    const local = await startTestFlyLocal({
      clock,
      faults: { enforceRateLimits: true },
      rateLimitGraceMs: 0,
    });
    try {
      const post = (path: string, body?: unknown) => api('POST', path, body, {}, local);
      const createIn = (app: string) =>
        post(`/apps/${app}/machines`, { region: 'ams', skip_launch: true, config: config() });
      const a = await Promise.all([1, 2, 3, 4].map(() => createIn('app-a')));
      expect(a.map((r) => r.status)).toEqual([200, 200, 200, 429]);
      expect(a[3]!.body.error).toMatch(/^rate_limited: too many create requests/);
      expect((await createIn('app-b')).status).toBe(200);
      const [one, two] = [a[0]!.body.id, a[1]!.body.id];
      const startOf = (id: string) => post(`/apps/app-a/machines/${id}/start`);
      // The first start is taken; the next two are refused by state (412); the fourth by the limit.
      const starts = [];
      for (let i = 0; i < 4; i++) starts.push((await startOf(one)).status);
      expect(starts).toEqual([200, 412, 412, 429]);
      expect((await startOf(two)).status).toBe(200);
      expect(local.stats.rateLimited).toEqual({ create: 1, start: 1 });
      clock.advance(1_000);
      expect((await createIn('app-a')).status).toBe(200);
    } finally {
      await local.close();
    }
  });
});
