/**
 * The emulator's machine rules over its HTTP API: lifecycle and states, skip_launch, the wait
 * endpoint (200/408/400), auto_destroy, restart policy, ids and timestamps, conflicts and errors.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FlyLocalHandle } from '../../../src/flylocal/index.js';
import {
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

/** The fields these tests read from machine, ok and error bodies. */
interface Body {
  id: string;
  name: string;
  state: string;
  region: string;
  instance_id: string;
  private_ip: string;
  created_at: string;
  updated_at: string;
  config: { metadata: Record<string, string> };
  error?: string;
  ok?: boolean;
}

interface Answer<T> {
  status: number;
  body: T;
  headers: Headers;
}

async function api<T = Body>(method: string, path: string, body?: unknown): Promise<Answer<T>> {
  const res = await fetch(`${h.apiUrl}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${h.token}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return {
    status: res.status,
    body: (text ? JSON.parse(text) : undefined) as T,
    headers: res.headers,
  };
}

const machines = `/apps/${TEST_APP}/machines`;

function config(
  over: Record<string, unknown> = {},
  env: Record<string, string> = {},
): Record<string, unknown> {
  return {
    image: 'registry.fly.io/useless-machine:test',
    init: { cmd: ['node', FIXTURE_VM] },
    env,
    metadata: { launch_id: uniqueTag('L') },
    services: [{ protocol: 'tcp', internal_port: 4040 }],
    restart: { policy: 'no' },
    ...over,
  };
}

async function create(
  over: Record<string, unknown> = {},
  env: Record<string, string> = {},
  top: Record<string, unknown> = {},
): Promise<Body> {
  const r = await api('POST', machines, { region: 'ams', config: config(over, env), ...top });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body;
}

const states = (id: string): readonly string[] => h.emulator.machine(id)?.states ?? [];

describe('flylocal machine lifecycle', () => {
  it('goes created → starting → started → stopping → stopped → destroying → destroyed', async () => {
    const m = await create({
      auto_destroy: true,
      stop_config: { signal: 'SIGTERM', timeout: '5s' },
    });
    expect(m.state).toBe('created');
    expect((await api('GET', `${machines}/${m.id}/wait?state=started&timeout=10`)).body).toEqual({
      ok: true,
    });
    expect((await api('POST', `${machines}/${m.id}/stop`, {})).status).toBe(200);
    const w = await api('GET', `${machines}/${m.id}/wait?state=destroyed&timeout=10`);
    expect(w.status).toBe(200);
    expect(states(m.id)).toEqual([
      'created',
      'starting',
      'started',
      'stopping',
      'stopped',
      'destroying',
      'destroyed',
    ]);
  });

  it('keeps a skip_launch machine in created, with no process', async () => {
    const m = await create({}, {}, { skip_launch: true });
    const w = await api('GET', `${machines}/${m.id}/wait?state=started&timeout=1`);
    expect(w.status).toBe(408);
    expect((await api('GET', `${machines}/${m.id}`)).body.state).toBe('created');
    expect(h.emulator.machine(m.id)?.spawns).toBe(0);
  });

  it('answers a wait: 200 {"ok":true} when reached, 408 with deadline_exceeded on timeout, 400 without instance_id for stopped', async () => {
    const m = await create();
    const ok = await api('GET', `${machines}/${m.id}/wait?state=started&timeout=10`);
    expect([ok.status, ok.body]).toEqual([200, { ok: true }]);
    // timeout=0 is clamped to 1 s, so this answers rather than hanging.
    const late = await api('GET', `${machines}/${m.id}/wait?state=destroyed&timeout=0`);
    expect(late.status).toBe(408);
    expect(late.body.error).toBe(
      'deadline_exceeded: machine failed to reach desired state, destroyed, currently started',
    );
    const noVersion = await api('GET', `${machines}/${m.id}/wait?state=stopped`);
    expect([noVersion.status, noVersion.body]).toEqual([
      400,
      { error: 'instance_id required when waiting for stopped machine' },
    ]);
    const wrongVersion = await api(
      'GET',
      `${machines}/${m.id}/wait?state=stopped&instance_id=01J00000000000000000000000`,
    );
    expect(wrongVersion.status).toBe(400);
    const badState = await api('GET', `${machines}/${m.id}/wait?state=sleeping`);
    expect(badState.status).toBe(400);
    expect(typeof badState.body.error).toBe('string');
    const badTimeout = await api('GET', `${machines}/${m.id}/wait?timeout=soon`);
    expect(badTimeout.status).toBe(400);
    expect(
      (
        await api(
          'GET',
          `${machines}/${m.id}/wait?state=stopped&instance_id=${m.instance_id}&timeout=1`,
        )
      ).status,
    ).toBe(408);
  });

  it('destroys an auto_destroy machine whose process exits by itself', async () => {
    const m = await create(
      { auto_destroy: true },
      { FIXTURE_EXIT_AFTER_MS: '100', FIXTURE_EXIT_CODE: '0' },
    );
    expect((await api('GET', `${machines}/${m.id}/wait?state=destroyed&timeout=10`)).status).toBe(
      200,
    );
    expect(h.emulator.machine(m.id)?.lastExit).toEqual({ code: 0, signal: null });
    expect(states(m.id).slice(-4)).toEqual(['stopping', 'stopped', 'destroying', 'destroyed']);
  });

  it('leaves a machine without auto_destroy stopped when its process exits', async () => {
    const m = await create({ auto_destroy: false }, { FIXTURE_EXIT_AFTER_MS: '50' });
    expect(
      (
        await api(
          'GET',
          `${machines}/${m.id}/wait?state=stopped&instance_id=${m.instance_id}&timeout=10`,
        )
      ).status,
    ).toBe(200);
    expect((await api('GET', `${machines}/${m.id}`)).body.state).toBe('stopped');
  });

  it('restarts a crashing machine up to max_retries under on-failure, then lets it stop', async () => {
    const m = await create(
      { restart: { policy: 'on-failure', max_retries: 2 } },
      { FIXTURE_CRASH: '1' },
    );
    expect(
      (
        await api(
          'GET',
          `${machines}/${m.id}/wait?state=stopped&instance_id=${m.instance_id}&timeout=15`,
        )
      ).status,
    ).toBe(200);
    expect(h.emulator.machine(m.id)).toMatchObject({
      spawns: 3,
      restarts: 2,
      lastExit: { code: 1 },
    });
  });

  it('does not restart a crash under policy no, nor a clean exit under on-failure', async () => {
    const no = await create({ restart: { policy: 'no' } }, { FIXTURE_CRASH: '2' });
    const clean = await create(
      { restart: { policy: 'on-failure', max_retries: 5 } },
      { FIXTURE_EXIT_AFTER_MS: '50', FIXTURE_EXIT_CODE: '0' },
    );
    for (const m of [no, clean]) {
      expect(
        (
          await api(
            'GET',
            `${machines}/${m.id}/wait?state=stopped&instance_id=${m.instance_id}&timeout=10`,
          )
        ).status,
      ).toBe(200);
      expect(h.emulator.machine(m.id)?.spawns).toBe(1);
    }
    expect(h.emulator.machine(no.id)?.lastExit?.code).toBe(2);
  });

  it('restarts even clean exits under policy always', async () => {
    const m = await create(
      { restart: { policy: 'always' } },
      { FIXTURE_EXIT_AFTER_MS: '30', FIXTURE_EXIT_CODE: '0' },
    );
    await expect
      .poll(() => h.emulator.machine(m.id)?.spawns ?? 0, { timeout: 10_000 })
      .toBeGreaterThanOrEqual(3);
    expect((await api('DELETE', `${machines}/${m.id}?force=true`)).status).toBe(200);
    expect((await api('GET', `${machines}/${m.id}`)).body.state).toBe('destroyed');
  });

  it('mints 14-hex machine ids, 26-char ULID instance ids, names, timestamps and a private ip', async () => {
    const m = await create();
    expect(m.id).toMatch(/^[0-9a-f]{14}$/);
    expect(m.instance_id).toMatch(/^[0-9A-HJKMNP-TV-Z]{26}$/);
    expect(m.name).toMatch(/^[a-z]+-[a-z]+-\d{4}$/);
    expect(m.region).toBe('ams');
    expect(new Date(m.created_at).toISOString().slice(0, 19)).toBe(m.created_at.slice(0, 19));
    expect(Date.parse(m.updated_at)).toBeGreaterThanOrEqual(Date.parse(m.created_at));
    expect(m.private_ip).toMatch(/^127\.0\.1\.\d{1,3}$/);
    expect(m.config.metadata.launch_id).toMatch(/^L/);
  });

  it('filters lists by metadata, hides destroyed machines unless include_deleted, and keeps apps apart', async () => {
    const tag = uniqueTag('run');
    const a = await create({ metadata: { run: tag, pick: 'a' } }, {}, { skip_launch: true });
    const b = await create({ metadata: { run: tag, pick: 'b' } }, {}, { skip_launch: true });
    expect(
      (await api<Body[]>('GET', `${machines}?metadata.run=${tag}&metadata.pick=a`)).body.map(
        (m) => m.id,
      ),
    ).toEqual([a.id]);
    expect((await api('DELETE', `${machines}/${b.id}`)).status).toBe(200);
    expect(
      (await api<Body[]>('GET', `${machines}?metadata.run=${tag}`)).body.map((m) => m.id),
    ).toEqual([a.id]);
    const all = (await api<Body[]>('GET', `${machines}?metadata.run=${tag}&include_deleted=true`))
      .body;
    expect(all.map((m) => [m.id, m.state])).toEqual([
      [a.id, 'created'],
      [b.id, 'destroyed'],
    ]);
    expect(
      (await api<Body[]>('GET', `/apps/another-app/machines?metadata.run=${tag}`)).body,
    ).toEqual([]);
    expect((await api('GET', `/apps/another-app/machines/${a.id}`)).status).toBe(404);
  });
});

describe('flylocal errors like Fly', () => {
  it('refuses to destroy a running machine without force (412), and 404s a destroyed or unknown one', async () => {
    const m = await create();
    expect((await api('GET', `${machines}/${m.id}/wait?state=started&timeout=10`)).status).toBe(
      200,
    );
    const refused = await api('DELETE', `${machines}/${m.id}`);
    expect(refused.status).toBe(412);
    expect(refused.body.error).toMatch(/^failed_precondition: /);
    expect((await api('DELETE', `${machines}/${m.id}?force=true`)).status).toBe(200);
    expect((await api('DELETE', `${machines}/${m.id}?force=true`)).status).toBe(404);
    const unknown = await api('GET', `${machines}/00000000000000`);
    expect([unknown.status, unknown.body]).toEqual([
      404,
      { error: 'not_found: machine not found' },
    ]);
  });

  it('validates create bodies: image required, known region, unique name, real JSON', async () => {
    const noImage = await api('POST', machines, { config: {} });
    expect(noImage.status).toBe(400);
    expect(noImage.body.error).toMatch(/config\.image/);
    expect((await api('POST', machines, { region: 'xyz', config: config() })).status).toBe(400);
    expect(
      (await api('POST', machines, { config: config({ restart: { policy: 'sometimes' } }) }))
        .status,
    ).toBe(400);
    const name = uniqueTag('n');
    expect(
      (await api('POST', machines, { name, skip_launch: true, config: config() })).status,
    ).toBe(200);
    const taken = await api('POST', machines, { name, skip_launch: true, config: config() });
    expect(taken.status).toBe(409);
    const res = await fetch(`${h.apiUrl}${machines}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${h.token}`, 'content-type': 'application/json' },
      body: '{"config": ',
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ error: 'invalid_argument: request body is not valid JSON' });
  });

  it('lets only one of several simultaneous creates with one name through', async () => {
    const name = uniqueTag('race');
    const answers = await Promise.all(
      Array.from({ length: 6 }, () =>
        api('POST', machines, { name, skip_launch: true, config: config() }),
      ),
    );
    expect(answers.map((a) => a.status).sort()).toEqual([200, 409, 409, 409, 409, 409]);
    const listed = await api<{ name: string }[]>('GET', machines);
    expect(listed.body.filter((m) => m.name === name)).toHaveLength(1);
  });

  it('uses the default region when a create names none', async () => {
    const r = await api('POST', machines, { skip_launch: true, config: config() });
    expect(r.body.region).toBe('yyz');
  });

  it('answers 501, not a fake success, for endpoints it does not emulate', async () => {
    const m = await create({}, {}, { skip_launch: true });
    const r = await api('POST', `${machines}/${m.id}/exec`, { command: ['true'] });
    expect(r.status).toBe(501);
    expect(r.body.error).toMatch(/^not_implemented: /);
    expect((await api('GET', '/apps/test-vms')).status).toBe(501);
  });

  it('sends a fly-request-id with every answer, errors included', async () => {
    const r = await api('GET', `${machines}/00000000000000`);
    expect(r.headers.get('fly-request-id')).toMatch(/^[0-9a-f]{20}-flylocal$/);
  });
});
