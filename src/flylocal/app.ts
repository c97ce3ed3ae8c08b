/**
 * The emulator's HTTP face: Fastify with the Machines API's routes (machinesRoutes.ts), Fly's
 * `{"error": "..."}` bodies and status codes, bearer auth, rate limits and seeded faults
 * (apiCalls.ts), and the `/__flylocal/*` admin endpoints (adminRoutes.ts).
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { silentLogger, type Logger } from '../shared/log.js';
import { registerAdmin } from './adminRoutes.js';
import { ApiCalls } from './apiCalls.js';
import type { FlyLocalEmulator } from './emulator.js';
import { EmulatorError } from './emulatorError.js';
import type { EmulatedAction } from './faults.js';
import { registerMachinesApi } from './machinesRoutes.js';
import { HttpStats } from './stats.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The Machines API action a route emulates: rate limits and faults are counted per action. */
    action?: EmulatedAction;
  }
}

export interface FlyLocalAppOptions {
  /** The bearer token every API call must carry. */
  readonly token: string;
  /** Fastify's own logger (requests are not logged line by line). */
  readonly logger?: Logger;
  /** How early a request may arrive and still fit the rate limit (network jitter); default 250 ms. */
  readonly rateLimitGraceMs?: number;
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

/** Bodies: JSON only; an empty JSON body is "no body" (stop's body is optional). */
function parseJsonBodies(app: FastifyInstance): void {
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
}

/** Every API and admin call carries the token (as `Bearer <token>`, or a bare `FlyV1 …` one). */
function requireToken(app: FastifyInstance, token: string): void {
  const expected = [
    digest(`Bearer ${token}`),
    ...(token.startsWith('FlyV1 ') ? [digest(token)] : []),
  ];
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
}

/** Fly's error bodies: an EmulatorError as it says, a 4xx as invalid_argument, the rest internal. */
function flyErrors(app: FastifyInstance): void {
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
  const calls = new ApiCalls(
    emulator.faults,
    stats,
    opts.rateLimitGraceMs ?? 250,
    emulator.time.clock,
  );
  app.addHook('onClose', async () => calls.close());

  parseJsonBodies(app);
  requireToken(app, opts.token);
  app.addHook('onResponse', async (req, reply) => {
    const action = (req.routeOptions.config as { action?: EmulatedAction }).action;
    if (action) {
      const key = `${action} ${reply.statusCode}`;
      stats.responses[key] = (stats.responses[key] ?? 0) + 1;
    }
  });
  flyErrors(app);
  registerMachinesApi(app, emulator, calls);
  registerAdmin(app, emulator, stats);
  return { app, stats };
}
