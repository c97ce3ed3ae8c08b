/**
 * FlyMachinesHttp against a scripted fetch on virtual time: request shapes, response validation,
 * error typing, which calls retry and how long they wait, and that the token never leaks.
 */
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { FlyMachinesHttp, type FlyMachinesHttpOptions } from '../../../src/adapters/fly/client.js';
import { FlyApiError, type CreateMachineInput } from '../../../src/ports/flyMachines.js';
import { machineJson, scriptedFetch, VirtualTime, type Scripted } from './support.js';

const TOKEN = 'fm2_s3cr3t-t0ken-never-to-be-seen';
const BASE = 'https://api.example.test/v1';

function setup(
  script: Scripted[] | Parameters<typeof scriptedFetch>[0],
  opts: Partial<FlyMachinesHttpOptions> = {},
) {
  const vt = new VirtualTime();
  const f = scriptedFetch(script, () => vt.clock.now());
  const fly = new FlyMachinesHttp({
    baseUrl: BASE,
    token: TOKEN,
    app: 'useless-machine',
    fetch: f.fetch,
    clock: vt.clock,
    sleep: vt.sleep,
    random: () => 0.5,
    rateLimits: false,
    ...opts,
  });
  return { vt, fly, sent: f.sent };
}

async function failure(p: Promise<unknown>): Promise<FlyApiError> {
  const err: unknown = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(FlyApiError);
  return err as FlyApiError;
}

const input: CreateMachineInput = {
  region: 'ams',
  image: 'registry.fly.io/where:abc',
  env: { WM_LAUNCH_ID: 'L1', PORT: '4040' },
  metadata: { launch_id: 'L1', source: 'button' },
  cmd: ['node', 'dist/useless.mjs'],
  guest: { cpuKind: 'shared', cpus: 1, memoryMb: 256 },
  internalPort: 4040,
  autoDestroy: true,
  restart: { policy: 'on-failure', maxRetries: 2 },
  stop: { signal: 'SIGTERM', timeoutS: 30 },
};

describe('FlyMachinesHttp: requests', () => {
  it('given a call scope, when a create is sent, then the traceparent goes with it and the scope logs Fly’s request id', async () => {
    const lines: Record<string, unknown>[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _e, done) {
        lines.push(JSON.parse(chunk.toString('utf8')) as Record<string, unknown>);
        done();
      },
    });
    const log = pino({ level: 'debug' }, sink).child({ launchId: 'L1', traceId: 'T1' });
    const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    const { vt, fly, sent } = setup([
      {
        status: 200,
        body: machineJson({ state: 'created' }),
        headers: { 'fly-request-id': 'req-1' },
      },
      { status: 200, body: {}, headers: { 'fly-request-id': 'req-2' } },
    ]);
    await vt.run(fly.create(input, { scope: { log, traceparent } }));
    // Without a scope: no header, and the line goes to the client's own logger (none here).
    await vt.run(fly.destroy('3d8d9e1fe47189'));
    expect(sent[0]!.headers.traceparent).toBe(traceparent);
    expect(sent[1]!.headers.traceparent).toBeUndefined();
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      msg: 'fly call',
      action: 'create',
      launchId: 'L1',
      traceId: 'T1',
      flyRequestId: 'req-1',
      level: 30,
    });
  });

  it('creates with the Machines API body and a bearer token', async () => {
    const { vt, fly, sent } = setup([{ status: 200, body: machineJson({ state: 'created' }) }]);
    const m = await vt.run(fly.create(input));
    expect(sent).toHaveLength(1);
    const req = sent[0]!;
    expect(req.method).toBe('POST');
    expect(req.url.pathname).toBe('/v1/apps/useless-machine/machines');
    expect(req.headers.authorization).toBe(`Bearer ${TOKEN}`);
    expect(req.headers['content-type']).toBe('application/json');
    expect(req.body).toMatchObject({
      region: 'ams',
      config: {
        image: 'registry.fly.io/where:abc',
        env: { WM_LAUNCH_ID: 'L1', PORT: '4040' },
        metadata: { launch_id: 'L1', source: 'button' },
        guest: { cpu_kind: 'shared', cpus: 1, memory_mb: 256 },
        services: [{ internal_port: 4040, protocol: 'tcp' }],
        auto_destroy: true,
        restart: { policy: 'on-failure', max_retries: 2 },
        stop_config: { signal: 'SIGTERM', timeout: '30s' },
        init: { cmd: ['node', 'dist/useless.mjs'] },
      },
    });
    expect(m).toEqual({
      id: '3d8d9e1c2b4a78',
      name: 'quiet-switch-1234',
      state: 'created',
      region: 'ams',
      instanceId: '01J0000000000000000000000A',
      privateIp: 'fdaa:0:1:a7b:1::2',
      createdAt: '2026-01-01T00:00:00Z',
      updatedAt: '2026-01-01T00:00:01Z',
      metadata: { launch_id: 'L1' },
    });
  });

  it('sends a FlyV1 macaroon token as it is', async () => {
    const { vt, fly, sent } = setup([{ status: 200, body: machineJson() }], {
      token: 'FlyV1 fm2_abc,fm2_def',
    });
    await vt.run(fly.get('3d8d9e1c2b4a78'));
    expect(sent[0]!.headers.authorization).toBe('FlyV1 fm2_abc,fm2_def');
  });

  it('lists with metadata.<k>=<v> filters and include_deleted; reads summary metadata too', async () => {
    const summary = machineJson({
      config: undefined,
      incomplete_config: { metadata: { launch_id: 'L9' } },
    });
    const { vt, fly, sent } = setup([{ status: 200, body: [machineJson(), summary] }]);
    const ms = await vt.run(
      fly.list({ metadata: { launch_id: 'L1', owner: 'where-1' }, includeDeleted: true }),
    );
    const q = sent[0]!.url.searchParams;
    expect(q.get('metadata.launch_id')).toBe('L1');
    expect(q.get('metadata.owner')).toBe('where-1');
    expect(q.get('include_deleted')).toBe('true');
    expect(ms.map((m) => m.metadata.launch_id)).toEqual(['L1', 'L9']);
  });

  it('clamps wait timeouts to 1..60 s and sends state and instance_id', async () => {
    const { vt, fly, sent } = setup([{ status: 200, body: { ok: true } }]);
    await vt.run(fly.wait('m1', 'started', { timeoutS: 0 }));
    await vt.run(fly.wait('m1', 'started', { timeoutS: 600 }));
    await vt.run(fly.wait('m1', 'destroyed', { timeoutS: 7.4, instanceId: 'I1' }));
    await vt.run(fly.wait('m1', 'started'));
    const qs = sent.map((r) => Object.fromEntries(r.url.searchParams));
    expect(sent[0]!.url.pathname).toBe('/v1/apps/useless-machine/machines/m1/wait');
    expect(qs).toEqual([
      { state: 'started', timeout: '1' },
      { state: 'started', timeout: '60' },
      { state: 'destroyed', timeout: '7', instance_id: 'I1' },
      { state: 'started', timeout: '60' },
    ]);
  });

  it('looks up the instance id the API demands when waiting for stopped', async () => {
    const { vt, fly, sent } = setup((req) =>
      req.url.pathname.endsWith('/wait')
        ? { status: 200, body: { ok: true } }
        : { status: 200, body: machineJson({ instance_id: 'CURRENT' }) },
    );
    expect(await vt.run(fly.wait('m1', 'stopped', { timeoutS: 5 }))).toBe(true);
    expect(sent.map((r) => r.url.pathname)).toEqual([
      '/v1/apps/useless-machine/machines/m1',
      '/v1/apps/useless-machine/machines/m1/wait',
    ]);
    expect(sent[1]!.url.searchParams.get('instance_id')).toBe('CURRENT');
  });

  it("answers false on the wait endpoint's 408, without retrying", async () => {
    const { vt, fly, sent } = setup([
      {
        status: 408,
        body: {
          error:
            'deadline_exceeded: machine failed to reach desired state, started, currently starting',
        },
      },
    ]);
    expect(await vt.run(fly.wait('m1', 'started', { timeoutS: 2 }))).toBe(false);
    expect(sent).toHaveLength(1);
  });

  it('stops with signal and a Go duration; destroys with force, and a 404 means already gone', async () => {
    const { vt, fly, sent } = setup((req) =>
      req.method === 'DELETE'
        ? { status: 404, body: { error: 'not_found: machine not found' } }
        : { status: 200, body: { ok: true } },
    );
    await vt.run(fly.stop('m1', { signal: 'SIGINT', timeoutS: 10 }));
    await vt.run(fly.destroy('m1'));
    await vt.run(fly.destroy('m1', { force: false }));
    expect(sent[0]!.method).toBe('POST');
    expect(sent[0]!.url.pathname).toBe('/v1/apps/useless-machine/machines/m1/stop');
    expect(sent[0]!.body).toEqual({ signal: 'SIGINT', timeout: '10s' });
    expect(sent[1]!.method).toBe('DELETE');
    expect(sent[1]!.url.searchParams.get('force')).toBe('true');
    expect(sent[2]!.url.searchParams.has('force')).toBe(false);
    expect(sent).toHaveLength(3);
  });
});

describe('FlyMachinesHttp: errors', () => {
  it("turns an error response into FlyApiError with Fly's text and request id", async () => {
    const { vt, fly, sent } = setup([
      {
        status: 404,
        body: { error: 'not_found: machine not found' },
        headers: { 'fly-request-id': 'req-123-ams' },
      },
    ]);
    const err = await failure(vt.run(fly.get('nope')));
    expect(err).toMatchObject({
      op: 'get',
      status: 404,
      flyMessage: 'not_found: machine not found',
      requestId: 'req-123-ams',
      retryable: false,
      code: 'FLY_API',
    });
    expect(sent).toHaveLength(1);
  });

  it('treats a 200 that is not JSON, or not a machine, as a non-retryable FlyApiError', async () => {
    const notJson = setup([{ status: 200, text: '{"id": "abc", "sta' }]);
    const e1 = await failure(notJson.vt.run(notJson.fly.get('m1')));
    expect(e1).toMatchObject({ status: 200, retryable: false });
    expect(e1.flyMessage).toMatch(/^malformed response: not JSON/);
    expect(notJson.sent).toHaveLength(1);

    const wrongShape = setup([{ status: 200, body: { id: 42, state: null } }]);
    const e2 = await failure(wrongShape.vt.run(wrongShape.fly.get('m1')));
    expect(e2).toMatchObject({ status: 200, retryable: false });
    expect(e2.flyMessage).toMatch(/^malformed response: .*id/);

    const listNotArray = setup([{ status: 200, body: { machines: [] } }]);
    expect((await failure(listNotArray.vt.run(listNotArray.fly.list()))).status).toBe(200);
  });

  it('describes an HTML error page instead of crashing on it', async () => {
    const { vt, fly } = setup(
      [
        {
          status: 502,
          text: '<html><body><h1>502 Bad Gateway</h1></body></html>',
          headers: { 'content-type': 'text/html' },
        },
      ],
      { maxAttempts: 1 },
    );
    const err = await failure(vt.run(fly.list()));
    expect(err.status).toBe(502);
    expect(err.retryable).toBe(true);
    expect(err.flyMessage).toBe('non-JSON error body (text/html): 502 Bad Gateway');
  });

  it('reports a 400 on create as not retryable, a 429 or 5xx as retryable', async () => {
    for (const [status, retryable] of [
      [400, false],
      [422, false],
      [429, true],
      [503, true],
    ] as const) {
      const { vt, fly, sent } = setup([{ status, body: { error: `e${status}` } }]);
      const err = await failure(vt.run(fly.create(input)));
      expect({ status: err.status, retryable: err.retryable }).toEqual({ status, retryable });
      expect(sent).toHaveLength(1);
    }
  });
});

describe('FlyMachinesHttp: retries', () => {
  it('retries idempotent calls on 5xx with exponential backoff and jitter, then succeeds', async () => {
    const { vt, fly, sent } = setup([
      { status: 503, body: { error: 'x' } },
      { status: 500, body: { error: 'y' } },
      { status: 200, body: machineJson() },
    ]);
    const m = await vt.run(fly.get('m1'));
    expect(m.id).toBe('3d8d9e1c2b4a78');
    expect(sent).toHaveLength(3);
    // base 200 ms, doubled per retry, "equal jitter" with random 0.5: 150 ms, then 300 ms.
    expect(vt.sleeps).toEqual([150, 300]);
    expect(sent[1]!.at - sent[0]!.at).toBe(150);
    expect(sent[2]!.at - sent[1]!.at).toBe(300);
  });

  it('gives up after maxAttempts with the last error, still retryable', async () => {
    const { vt, fly, sent } = setup([{ status: 503, body: { error: 'unavailable' } }], {
      maxAttempts: 4,
    });
    const err = await failure(vt.run(fly.stop('m1')));
    expect(sent).toHaveLength(4);
    expect(err).toMatchObject({ status: 503, retryable: true, flyMessage: 'unavailable' });
  });

  it('honours Retry-After in seconds and as an HTTP date', async () => {
    const seconds = setup([
      { status: 429, body: { error: 'slow down' }, headers: { 'retry-after': '3' } },
      { status: 200, body: [] },
    ]);
    await seconds.vt.run(seconds.fly.list());
    expect(seconds.sent[1]!.at - seconds.sent[0]!.at).toBeGreaterThanOrEqual(3000);

    const vtDate = setup((_req, n) =>
      n === 0
        ? {
            status: 503,
            body: { error: 'later' },
            headers: { 'retry-after': new Date(vtDate.vt.clock.now() + 5000).toUTCString() },
          }
        : { status: 200, body: [] },
    );
    await vtDate.vt.run(vtDate.fly.list());
    // HTTP dates have whole seconds, so allow the sub-second we may lose.
    expect(vtDate.sent[1]!.at - vtDate.sent[0]!.at).toBeGreaterThanOrEqual(4000);
  });

  it('does not wait past its deadline for a long Retry-After', async () => {
    const { vt, fly, sent } = setup(
      [{ status: 429, body: { error: 'slow down' }, headers: { 'retry-after': '120' } }],
      { timeoutMs: 10_000 },
    );
    const err = await failure(vt.run(fly.get('m1')));
    expect(err.status).toBe(429);
    expect(sent).toHaveLength(1);
  });

  it('retries a get after a network error', async () => {
    const { vt, fly, sent } = setup([
      { networkError: 'ECONNRESET' },
      { status: 200, body: machineJson() },
    ]);
    expect((await vt.run(fly.get('m1'))).id).toBe('3d8d9e1c2b4a78');
    expect(sent).toHaveLength(2);
  });

  it('never retries a create: a network error or 5xx surfaces as retryable with an unknown outcome', async () => {
    for (const step of [
      { networkError: 'ECONNRESET' },
      { status: 502, body: { error: 'bad gateway' } },
    ] satisfies Scripted[]) {
      const { vt, fly, sent } = setup([step, { status: 200, body: machineJson() }]);
      const err = await failure(vt.run(fly.create(input)));
      expect(sent).toHaveLength(1);
      expect(err.retryable).toBe(true);
      expect(err.flyMessage).toMatch(/outcome unknown/);
    }
  });

  it('gives each attempt of an idempotent call its own timeout, so a hung get is retried (real timers)', async () => {
    const f = scriptedFetch([{ hang: true }, { status: 200, body: machineJson() }]);
    const fly = new FlyMachinesHttp({
      baseUrl: BASE,
      token: TOKEN,
      app: 'a',
      fetch: f.fetch,
      rateLimits: false,
      timeoutMs: 5_000,
      attemptTimeoutMs: 50,
    });
    expect((await fly.get('m1')).id).toBe('3d8d9e1c2b4a78');
    expect(f.sent).toHaveLength(2);
  });

  it('times out a call that gets no answer (real timers), and a timed-out create is not retried', async () => {
    const f = scriptedFetch([{ hang: true }]);
    const fly = new FlyMachinesHttp({
      baseUrl: BASE,
      token: TOKEN,
      app: 'a',
      fetch: f.fetch,
      rateLimits: false,
      timeoutMs: 100,
    });
    const err = await failure(fly.create(input));
    expect(err).toMatchObject({ status: 0, retryable: true });
    expect(err.flyMessage).toMatch(/timed out after 100 ms.*outcome unknown/);
    expect(f.sent).toHaveLength(1);
  });
});

describe('FlyMachinesHttp: client-side rate limits', () => {
  it('paces each action to 1/s with a burst of 3, get to 5/s with a burst of 10', async () => {
    const { vt, fly, sent } = setup(
      (req) =>
        req.method === 'POST'
          ? { status: 200, body: machineJson() }
          : { status: 200, body: machineJson() },
      {
        rateLimits: undefined,
        timeoutMs: 60_000,
      },
    );
    const t0 = vt.clock.now();
    await vt.run(
      Promise.all([
        ...Array.from({ length: 6 }, () => fly.create(input)),
        ...Array.from({ length: 14 }, () => fly.get('m1')),
      ]),
    );
    const at = (method: string) => sent.filter((r) => r.method === method).map((r) => r.at - t0);
    expect(at('POST')).toEqual([0, 0, 0, 1000, 2000, 3000]);
    expect(at('GET')).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 200, 400, 600, 800]);
  });

  it('paces start per machine: ten machines start at once, one machine 1/s past a burst of 3', async () => {
    const { vt, fly, sent } = setup([{ status: 200, body: { previous_state: 'stopped' } }], {
      rateLimits: undefined,
      timeoutMs: 60_000,
    });
    const t0 = vt.clock.now();
    const ten = Array.from({ length: 10 }, (_, i) => `m${i}`);
    await vt.run(
      Promise.all([
        ...ten.map((id) => fly.start(id)),
        fly.start('m0'),
        fly.start('m0'),
        fly.start('m0'),
      ]),
    );
    const at = (id: string) =>
      sent.filter((r) => r.url.pathname.endsWith(`/${id}/start`)).map((r) => r.at - t0);
    expect(at('m0')).toEqual([0, 0, 0, 1000]);
    for (const id of ten.slice(1)) expect(at(id)).toEqual([0]);
    expect(sent[0]).toMatchObject({ method: 'POST' });
  });

  it("sends the warm-pool calls in Fly's shapes: skip_launch, start, update, metadata", async () => {
    const { vt, fly, sent } = setup((req) =>
      req.url.pathname.endsWith('/metadata') && req.method === 'GET'
        ? { status: 200, body: { launch_id: 'L1' } }
        : req.url.pathname.includes('/metadata/')
          ? { status: 204 }
          : { status: 200, body: machineJson() },
    );
    await vt.run(fly.create({ ...input, skipLaunch: true }));
    await vt.run(fly.update('m1', input, { currentVersion: 'v1' }));
    expect(await vt.run(fly.getMetadata('m1'))).toEqual({ launch_id: 'L1' });
    await vt.run(fly.setMetadata('m1', 'claimed by', 'L2'));
    await vt.run(fly.deleteMetadata('m1', 'claimed by'));
    expect(sent.map((r) => `${r.method} ${r.url.pathname}`)).toEqual([
      'POST /v1/apps/useless-machine/machines',
      'POST /v1/apps/useless-machine/machines/m1',
      'GET /v1/apps/useless-machine/machines/m1/metadata',
      'POST /v1/apps/useless-machine/machines/m1/metadata/claimed%20by',
      'DELETE /v1/apps/useless-machine/machines/m1/metadata/claimed%20by',
    ]);
    expect(sent[0]!.body).toMatchObject({ skip_launch: true, config: { image: input.image } });
    expect(sent[1]!.body).toMatchObject({ current_version: 'v1', config: { image: input.image } });
    expect(sent[1]!.body).not.toHaveProperty('region');
    expect(sent[3]!.body).toEqual({ value: 'L2' });
  });

  it('spends a token on every retry too, so retries cannot break the limit', async () => {
    const { vt, fly, sent } = setup([{ status: 503, body: { error: 'x' } }], {
      rateLimits: { list: { ratePerS: 1, burst: 1 } },
      maxAttempts: 3,
      timeoutMs: 60_000,
    });
    await failure(vt.run(fly.list()));
    expect(sent).toHaveLength(3);
    expect(sent[1]!.at - sent[0]!.at).toBeGreaterThanOrEqual(1000);
    expect(sent[2]!.at - sent[1]!.at).toBeGreaterThanOrEqual(1000);
  });

  it('does not send when no token is due within the call timeout', async () => {
    const { vt, fly, sent } = setup([{ status: 200, body: machineJson() }], {
      rateLimits: undefined,
      timeoutMs: 1500,
    });
    const results = await vt.run(
      Promise.allSettled(Array.from({ length: 5 }, () => fly.create(input))),
    );
    expect(results.map((r) => r.status)).toEqual([
      'fulfilled',
      'fulfilled',
      'fulfilled',
      'fulfilled',
      'rejected',
    ]);
    const last = (results[4] as PromiseRejectedResult).reason as FlyApiError;
    expect(last).toBeInstanceOf(FlyApiError);
    expect(last).toMatchObject({ status: 0, retryable: true });
    expect(last.flyMessage).toMatch(/^not sent/);
    expect(sent).toHaveLength(4);
  });
});

describe('FlyMachinesHttp: the token stays secret', () => {
  it('keeps the token out of errors, causes and logs, even when a server echoes it', async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        lines.push(chunk.toString());
        cb();
      },
    });
    const logger = pino({ level: 'trace' }, sink);
    const echo = `Authorization: Bearer ${TOKEN} rejected`;
    const script: Scripted[] = [
      { networkError: `connect failed for ${TOKEN}` },
      { status: 401, body: { error: echo } },
    ];
    const { vt, fly } = setup(script, { logger, maxAttempts: 2 });
    const errors = [await failure(vt.run(fly.get('m1')))];
    const h2 = setup(
      [{ status: 500, text: `<p>${TOKEN}</p>`, headers: { 'content-type': 'text/html' } }],
      { logger, maxAttempts: 2 },
    );
    errors.push(await failure(h2.vt.run(h2.fly.list())));
    const h3 = setup([{ networkError: `reset ${TOKEN}` }], { logger, maxAttempts: 2 });
    errors.push(await failure(h3.vt.run(h3.fly.create(input))));
    const h4 = setup([{ status: 200, body: { id: TOKEN } }], { logger });
    errors.push(await failure(h4.vt.run(h4.fly.list())));

    expect(lines.length).toBeGreaterThan(0);
    for (const e of errors) {
      const everything = [
        e.message,
        e.flyMessage,
        String(e.cause),
        JSON.stringify(e),
        e.stack ?? '',
      ].join('\n');
      expect(everything).not.toContain(TOKEN);
    }
    expect(errors[0]!.flyMessage).toContain('[redacted]');
    expect(lines.join('')).not.toContain(TOKEN);
  });
});
