/**
 * The emulator's HTTP face: Fastify routes with the Machines API's paths, query parameters, JSON
 * shapes, status codes and `{"error": "..."}` bodies for the calls we make, bearer auth, optional
 * rate-limit enforcement, seeded fault injection, and the `/__flylocal/*` admin endpoints.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import Fastify, {
  LogController,
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from 'fastify';
import { Counter, Gauge, Registry } from 'prom-client';
import { z } from 'zod';
import {
  createMachineRequest,
  stopRequest,
  WAIT_STATES,
  durationMs,
} from '../adapters/fly/schemas.js';
import { ActionBuckets, FLY_DEFAULT_LIMIT, FLY_GET_LIMIT } from '../adapters/fly/tokenBucket.js';
import { silentLogger, type Logger } from '../shared/log.js';
import { EmulatorError, type FlyLocalEmulator } from './emulator.js';
import { faultConfigSchema, type EmulatedAction } from './faults.js';

export interface FlyLocalAppOptions {
  /** The bearer token every API call must carry. */
  readonly token: string;
  /** Fastify's own logger (requests are not logged line by line). */
  readonly logger?: Logger;
  /** How early a request may arrive and still fit the rate limit (network jitter); default 250 ms. */
  readonly rateLimitGraceMs?: number;
}

/** What the emulator saw over HTTP, for tests and `GET /__flylocal/stats`. */
export class HttpStats {
  readonly requests: Partial<Record<EmulatedAction, number>> = {};
  /** "<action> <status>" → count. */
  readonly responses: Record<string, number> = {};
  readonly rateLimited: Partial<Record<EmulatedAction, number>> = {};
  /** Requests answered by dropping the connection (hang, dropAfterCommit). */
  readonly dropped: Partial<Record<EmulatedAction, number>> = {};
  /** Arrival times (epoch ms) per action, the most recent 1000. */
  readonly arrivals: Partial<Record<EmulatedAction, number[]>> = {};

  arrived(action: EmulatedAction, at: number): void {
    this.requests[action] = (this.requests[action] ?? 0) + 1;
    const list = (this.arrivals[action] ??= []);
    list.push(at);
    if (list.length > 1000) list.splice(0, list.length - 1000);
  }

  toJSON(): Record<string, unknown> {
    return {
      requests: this.requests,
      responses: this.responses,
      rateLimited: this.rateLimited,
      dropped: this.dropped,
    };
  }
}

const appName = z
  .string()
  .regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'app names are lowercase letters, digits and dashes');

type Query = Record<string, string | string[] | undefined>;

function one(q: Query, key: string): string | undefined {
  const v = q[key];
  return Array.isArray(v) ? v[0] : v;
}

function truthy(v: string | undefined): boolean {
  return v === 'true' || v === '1';
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

function issues(err: z.ZodError): string {
  return err.issues
    .slice(0, 5)
    .map((i) => `${i.path.map(String).join('.') || '(body)'}: ${i.message}`)
    .join('; ');
}

/** A 200 whose body does not parse as what the client expects; alternates truncated JSON and a wrong shape. */
let malformedCount = 0;
function malformedBody(): string {
  return malformedCount++ % 2 === 0
    ? '{"id": "0123456789abcd", "state": "sta'
    : '{"id": 42, "ok": "maybe", "state": null}';
}

/** The emulator's metrics, read from its stats when scraped: one registry per app. */
function emulatorMetrics(emulator: FlyLocalEmulator, stats: HttpStats): Registry {
  const registers = [new Registry()];
  const split = (key: string, sep: string): [string, string] => {
    const i = key.indexOf(sep);
    return [key.slice(0, i), key.slice(i + sep.length)];
  };
  new Counter({
    name: 'flylocal_api_requests_total',
    help: 'Machines API calls the emulator answered, by action and status.',
    labelNames: ['action', 'status'],
    registers,
    collect() {
      this.reset();
      for (const [key, n] of Object.entries(stats.responses)) {
        const [action, status] = split(key, ' ');
        this.inc({ action, status }, n);
      }
    },
  });
  new Counter({
    name: 'flylocal_rate_limited_total',
    help: 'Calls refused with 429 by the emulated rate limits, by action.',
    labelNames: ['action'],
    registers,
    collect() {
      this.reset();
      for (const [action, n] of Object.entries(stats.rateLimited)) this.inc({ action }, n ?? 0);
    },
  });
  new Counter({
    name: 'flylocal_faults_injected_total',
    help: 'Faults injected into API calls, by action and fault.',
    labelNames: ['action', 'fault'],
    registers,
    collect() {
      this.reset();
      for (const [key, n] of emulator.faults.injected) {
        const [action, fault] = split(key, ':');
        this.inc({ action, fault }, n);
      }
    },
  });
  new Gauge({
    name: 'flylocal_machines',
    help: 'Machines the emulator knows, by state (destroyed ones included).',
    labelNames: ['state'],
    registers,
    collect() {
      this.reset();
      const n = new Map<string, number>();
      for (const m of emulator.ledger()) n.set(m.state, (n.get(m.state) ?? 0) + 1);
      for (const [state, v] of n) this.set({ state }, v);
    },
  });
  return registers[0]!;
}

export function buildFlyLocalApp(
  emulator: FlyLocalEmulator,
  opts: FlyLocalAppOptions,
): { app: FastifyInstance; stats: HttpStats } {
  const loggerInstance: FastifyBaseLogger = opts.logger ?? silentLogger();
  const app = Fastify({
    loggerInstance,
    logController: new LogController({ disableRequestLogging: true }),
    forceCloseConnections: true,
    // Fly's request ids look like "01J…-yyz"; ours are random hex with the same suffix idea.
    genReqId: () => `${randomBytes(10).toString('hex')}-flylocal`,
  });
  const stats = new HttpStats();
  const graceMs = opts.rateLimitGraceMs ?? 250;
  const buckets = new ActionBuckets<EmulatedAction>(
    (a) => (a === 'get' ? FLY_GET_LIMIT : FLY_DEFAULT_LIMIT),
    () => Date.now(),
  );
  const expected = [
    digest(`Bearer ${opts.token}`),
    ...(opts.token.startsWith('FlyV1 ') ? [digest(opts.token)] : []),
  ];
  const pending = new Set<NodeJS.Timeout>();
  const sleepers = new Set<() => void>();

  const delay = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(t);
        pending.delete(t);
        sleepers.delete(done);
        resolve();
      };
      const t = setTimeout(done, ms);
      pending.add(t);
      sleepers.add(done);
    });

  app.addHook('onClose', async () => {
    for (const wake of [...sleepers]) wake();
    for (const t of pending) clearTimeout(t);
    pending.clear();
  });

  // Bodies: JSON only; an empty JSON body is "no body" (stop's body is optional).
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => {
    const text = typeof body === 'string' ? body : body.toString('utf8');
    if (text.trim() === '') return done(null, undefined);
    try {
      done(null, JSON.parse(text) as unknown);
    } catch {
      done(new EmulatorError(400, 'invalid_argument: request body is not valid JSON'), undefined);
    }
  });

  app.addHook('onRequest', async (req, reply) => {
    void reply.header('fly-request-id', req.id);
    const path = req.url.split('?')[0] ?? '';
    if (path === '/__flylocal/health') return;
    if (!path.startsWith('/v1/') && !path.startsWith('/__flylocal/')) return;
    const given = req.headers.authorization;
    const ok = given !== undefined && expected.some((e) => timingSafeEqual(e, digest(given)));
    if (!ok) {
      return reply.code(401).send({ error: 'Authenticate: token validation error' });
    }
  });

  app.addHook('onResponse', async (req, reply) => {
    const action = (req.routeOptions.config as { action?: EmulatedAction }).action;
    if (action) {
      const key = `${action} ${reply.statusCode}`;
      stats.responses[key] = (stats.responses[key] ?? 0) + 1;
    }
  });

  app.setErrorHandler(async (err: unknown, _req, reply) => {
    if (err instanceof EmulatorError) {
      return reply
        .code(err.status)
        .send({ error: err.error, ...(err.flyStatus ? { status: err.flyStatus } : {}) });
    }
    const statusCode = (err as { statusCode?: unknown }).statusCode;
    const message = err instanceof Error ? err.message : String(err);
    if (typeof statusCode === 'number' && statusCode >= 400 && statusCode < 500) {
      return reply.code(statusCode).send({ error: `invalid_argument: ${message}` });
    }
    app.log.error({ err }, 'flylocal handler failed');
    return reply.code(500).send({ error: `internal: ${message}` });
  });

  app.setNotFoundHandler(async (req, reply) =>
    reply
      .code(404)
      .send({ error: `not_found: no route for ${req.method} ${req.url.split('?')[0]}` }),
  );

  /**
   * Wrap an API handler with what happens before the real work (rate limit, latency, refusing
   * faults) and after it (drop, malformed body).
   */
  const api =
    (
      action: EmulatedAction,
      work: (req: FastifyRequest) => Promise<{ status?: number; body: unknown }>,
    ) =>
    async (req: FastifyRequest, reply: FastifyReply): Promise<unknown> => {
      stats.arrived(action, Date.now());
      if (emulator.faults.enforceRateLimits) {
        const r = buckets.bucket(action).tryTake(graceMs);
        if (!r.ok) {
          stats.rateLimited[action] = (stats.rateLimited[action] ?? 0) + 1;
          return reply
            .code(429)
            .header('retry-after', String(Math.max(1, Math.ceil(r.retryAfterMs / 1000))))
            .send({ error: `rate_limited: too many ${action} requests, slow down` });
        }
      }
      const d = emulator.faults.decide(action);
      if (d.latencyMs > 0) await delay(d.latencyMs);
      switch (d.fault) {
        case '429':
          return reply
            .code(429)
            .header('retry-after', String(d.retryAfterS))
            .send({ error: `rate_limited: too many ${action} requests, slow down` });
        case '500':
        case '502':
        case '503':
        case '504':
          return reply.code(Number(d.fault)).send({ error: `internal: injected ${d.fault} fault` });
        case 'hang': {
          stats.dropped[action] = (stats.dropped[action] ?? 0) + 1;
          reply.hijack();
          await delay(d.hangMs);
          req.raw.socket.destroy();
          return undefined;
        }
        default:
          break;
      }
      const result = await work(req);
      if (d.fault === 'dropAfterCommit') {
        stats.dropped[action] = (stats.dropped[action] ?? 0) + 1;
        reply.hijack();
        req.raw.socket.destroy();
        return undefined;
      }
      if (d.fault === 'malformed') {
        return reply.code(200).type('application/json; charset=utf-8').send(malformedBody());
      }
      return reply.code(result.status ?? 200).send(result.body);
    };

  const params = (req: FastifyRequest): { app: string; id: string } => {
    const p = req.params as { app_name?: string; machine_id?: string };
    const parsed = appName.safeParse(p.app_name);
    if (!parsed.success) throw new EmulatorError(400, `invalid_argument: ${issues(parsed.error)}`);
    return { app: parsed.data, id: p.machine_id ?? '' };
  };

  app.post(
    '/v1/apps/:app_name/machines',
    { config: { action: 'create' } },
    api('create', async (req) => {
      const { app: a } = params(req);
      const body = createMachineRequest.safeParse(req.body ?? {});
      if (!body.success) throw new EmulatorError(400, `invalid_argument: ${issues(body.error)}`);
      return { body: await emulator.create(a, body.data) };
    }),
  );

  app.get(
    '/v1/apps/:app_name/machines',
    { config: { action: 'list' } },
    api('list', async (req) => {
      const { app: a } = params(req);
      const q = req.query as Query;
      const metadata: Record<string, string> = {};
      for (const key of Object.keys(q)) {
        const value = one(q, key);
        if (key.startsWith('metadata.') && value !== undefined)
          metadata[key.slice('metadata.'.length)] = value;
      }
      const state = one(q, 'state');
      return {
        body: emulator.list(a, {
          metadata,
          includeDeleted: truthy(one(q, 'include_deleted')),
          ...(one(q, 'region') ? { region: one(q, 'region') } : {}),
          ...(state ? { states: state.split(',').map((s) => s.trim()) } : {}),
        }),
      };
    }),
  );

  app.get(
    '/v1/apps/:app_name/machines/:machine_id',
    { config: { action: 'get' } },
    api('get', async (req) => {
      const { app: a, id } = params(req);
      return { body: emulator.get(a, id) };
    }),
  );

  app.delete(
    '/v1/apps/:app_name/machines/:machine_id',
    { config: { action: 'destroy' } },
    api('destroy', async (req) => {
      const { app: a, id } = params(req);
      const q = req.query as Query;
      await emulator.destroy(a, id, truthy(one(q, 'force')) || truthy(one(q, 'kill')));
      return { body: { ok: true } };
    }),
  );

  app.post(
    '/v1/apps/:app_name/machines/:machine_id/stop',
    { config: { action: 'stop' } },
    api('stop', async (req) => {
      const { app: a, id } = params(req);
      const body = stopRequest.safeParse(req.body ?? {});
      if (!body.success) throw new EmulatorError(400, `invalid_argument: ${issues(body.error)}`);
      emulator.stop(a, id, {
        ...(body.data.signal ? { signal: body.data.signal } : {}),
        ...(body.data.timeout !== undefined ? { timeoutMs: durationMs(body.data.timeout) } : {}),
      });
      return { body: { ok: true } };
    }),
  );

  app.get(
    '/v1/apps/:app_name/machines/:machine_id/wait',
    { config: { action: 'wait' } },
    api('wait', async (req) => {
      const { app: a, id } = params(req);
      const q = req.query as Query;
      const state = one(q, 'state') ?? 'started';
      if (!(WAIT_STATES as readonly string[]).includes(state)) {
        throw new EmulatorError(
          400,
          `invalid_argument: state must be one of ${WAIT_STATES.join(', ')}`,
        );
      }
      const rawTimeout = one(q, 'timeout');
      let timeoutS = 60;
      if (rawTimeout !== undefined) {
        if (!/^\d+$/.test(rawTimeout))
          throw new EmulatorError(
            400,
            'invalid_argument: timeout must be a whole number of seconds',
          );
        timeoutS = Math.min(60, Math.max(1, Number(rawTimeout)));
      }
      const target = state as (typeof WAIT_STATES)[number];
      const r = await emulator.wait(a, id, target, timeoutS * 1000, one(q, 'instance_id'));
      if (r === 'ok') return { body: { ok: true } };
      if (r === 'closing') throw new EmulatorError(503, 'unavailable: flylocal is shutting down');
      const now = emulator.machine(id)?.state ?? 'unknown';
      return {
        status: 408,
        body: {
          error: `deadline_exceeded: machine failed to reach desired state, ${target}, currently ${now}`,
        },
      };
    }),
  );

  // Everything else the real API has, we do not pretend to have.
  app.all('/v1/*', async (req, reply) =>
    reply.code(501).send({
      error: `not_implemented: flylocal does not emulate ${req.method} ${req.url.split('?')[0]}`,
    }),
  );

  // ---- admin ----------------------------------------------------------------------------------

  app.get('/__flylocal/health', async () => ({
    ok: true,
    machines: emulator.ledger().filter((m) => m.state !== 'destroyed').length,
  }));
  app.get('/__flylocal/faults', async () => emulator.faults.current);
  app.post('/__flylocal/faults', async (req, reply) => {
    const cfg = faultConfigSchema.safeParse(req.body ?? {});
    if (!cfg.success)
      return reply.code(400).send({ error: `invalid_argument: ${issues(cfg.error)}` });
    emulator.faults.set(cfg.data);
    return emulator.faults.current;
  });
  app.delete('/__flylocal/faults', async () => {
    emulator.faults.set({});
    return emulator.faults.current;
  });
  app.get('/__flylocal/machines', async () => emulator.ledger());
  app.get('/__flylocal/machines/:machine_id/logs', async (req, reply) => {
    const id = (req.params as { machine_id: string }).machine_id;
    if (!emulator.machine(id))
      return reply.code(404).send({ error: 'not_found: machine not found' });
    return emulator.logs(id);
  });
  app.get('/__flylocal/stats', async () => ({
    ...stats.toJSON(),
    faults: Object.fromEntries(emulator.faults.injected),
  }));
  // Prometheus text (no auth, like the other local-only admin reads): what the stats say.
  const registry = emulatorMetrics(emulator, stats);
  app.get('/metrics', async (_req, reply) =>
    reply.header('content-type', registry.contentType).send(await registry.metrics()),
  );

  return { app, stats };
}
