/**
 * The landing app's two Fastify instances, built from services and never listening here:
 * the public one (page, launches, SSE, dashboard, health) and the private one (the VMs' callback
 * API and the operators' debug endpoint), which never shares a route with the public one.
 */
import { randomBytes } from 'node:crypto';
import Fastify, {
  LogController,
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from 'fastify';
import { fastifySSE } from '@fastify/sse';
import { z } from 'zod';
import type { Logger } from '../shared/log.js';
import { AppError } from '../shared/errors.js';
import { isRegionCode } from '../shared/regions.js';
import { SIGNATURE_HEADER } from '../shared/callbackAuth.js';
import type { Clock } from '../ports/clock.js';
import type { ActorRuntime } from '../runtime/actorRuntime.js';
import type { WhereConfig } from './config.js';
import { errorBody, installErrorHandling, requireToken, wantsHtml } from './http.js';
import { SseRegistry } from './sse.js';
import type { Fleet } from './services/fleet.js';
import type { Launches } from './services/launches.js';
import type { Callbacks } from './services/callbacks.js';
import type { AutospawnDriver } from './services/autospawn.js';
import type { Cluster } from './services/cluster.js';
import type { Reconciler } from './services/reconciler.js';
import type { Retention } from './services/retention.js';
import { SlidingWindowLimiter, Cooldown, clientIpOf } from './services/rateLimit.js';
import { renderLandingPage } from './views/landing.js';
import { renderAutospawner, renderDashboard } from './views/dashboard.js';
import { renderLaunchProgressPage } from './views/launchProgress.js';
import { PAGE_CSS } from './views/styles.js';
import { debugRoutes } from './debug.js';
import { CALLBACK_PATH } from './machineSpec.js';
import type { LaunchView } from './wire.js';
import { callbackResult, type WhereMetrics } from './metrics.js';

export interface WhereServices {
  cfg: WhereConfig;
  log: Logger;
  clock: Clock;
  runtime: ActorRuntime;
  cluster: Cluster;
  fleet: Fleet;
  launches: Launches;
  callbacks: Callbacks;
  autospawn: AutospawnDriver;
  reconciler: Reconciler;
  /** Retention of finished actors: archived (410) or unknown (404). */
  retention: Retention;
  /** Browser bundles (built by scripts/build.mjs), by file name. */
  assets: ReadonlyMap<string, Buffer>;
  /** True once the runtime has booted and the store answers. */
  ready: () => boolean;
  /** Prometheus metrics (GET /metrics on the private listener); absent: no such route. */
  metrics?: WhereMetrics;
}

const launchIdParam = z.object({
  id: z.string().regex(/^[0-9A-HJKMNP-TV-Z]{26}$/, 'a launch id is a ULID'),
});
const launchBody = z
  .object({ region: z.string().max(16).optional() })
  .strict()
  .optional();
const switchBody = z
  .object({ on: z.union([z.boolean(), z.enum(['true', 'false', 'on', 'off'])]) })
  .strict();

const ASSET_TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
};

function csp(nonce: string): string {
  return [
    "default-src 'self'",
    `script-src 'self' 'nonce-${nonce}'`,
    `style-src 'self' 'nonce-${nonce}'`,
    "img-src 'self' data:",
    "connect-src 'self'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
    "form-action 'self'",
  ].join('; ');
}

export async function buildPublicApp(s: WhereServices): Promise<FastifyInstance> {
  const { cfg } = s;
  const logger: FastifyBaseLogger = s.log.child({ listener: 'public' });
  const app = Fastify({
    loggerInstance: logger,
    bodyLimit: 16 * 1024,
    trustProxy: false,
    // A client gets this long to send its request (headers and body); streams are unaffected.
    requestTimeout: 15_000,
    logController: new LogController({ disableRequestLogging: true }),
  });
  installErrorHandling(app);
  await app.register(fastifySSE, { heartbeatInterval: 0 });
  const sse = new SseRegistry(app);
  app.addContentTypeParser(
    'application/x-www-form-urlencoded',
    { parseAs: 'string', bodyLimit: 4096 },
    (_req, body, done) => {
      done(null, Object.fromEntries(new URLSearchParams(body as string)));
    },
  );

  const ipOf = clientIpOf(cfg.limits.trustedProxies, logger);
  const requests = new SlidingWindowLimiter(cfg.limits.requestsPerMinute, 60_000);
  const launchesPerIp = new SlidingWindowLimiter(cfg.limits.launchesPerMinute, 60_000);
  const cooldown = new Cooldown(cfg.limits.cooldownMs);

  app.addHook('onRequest', async (req, reply) => {
    const r = requests.hit(ipOf(req), s.clock.now());
    if (!r.ok) {
      reply.header('retry-after', Math.ceil(r.retryAfterMs / 1000));
      throw new AppError('RATE_LIMITED', 429, 'too many requests from your address; slow down');
    }
    reply.header('x-content-type-options', 'nosniff');
    reply.header('referrer-policy', 'same-origin');
  });

  /** The visitor's edge region, from Fly's proxy (or ours locally); only a known code counts. */
  const edgeOf = (req: FastifyRequest): string | undefined => {
    const h = req.headers['fly-region'];
    const v = Array.isArray(h) ? h[0] : h;
    return v && isRegionCode(v) ? v : undefined;
  };

  const page = (
    req: FastifyRequest,
    reply: FastifyReply,
    body: (nonce: string) => string,
    status = 200,
  ) => {
    const nonce = randomBytes(12).toString('base64');
    return reply
      .code(status)
      .header('content-type', 'text/html; charset=utf-8')
      .header('content-security-policy', csp(nonce))
      .header('cache-control', 'no-store')
      .send(body(nonce));
  };
  const assets = { appJs: '/assets/app.js', css: '/assets/app.css' };

  // -- assets -------------------------------------------------------------------------------
  app.get('/assets/app.css', async (_req, reply) =>
    reply
      .header('content-type', ASSET_TYPES['.css'])
      .header('cache-control', 'public, max-age=300')
      .send(PAGE_CSS),
  );
  app.get<{ Params: { file: string } }>('/assets/:file', async (req, reply) => {
    const body = s.assets.get(req.params.file);
    const ext = req.params.file.slice(req.params.file.lastIndexOf('.'));
    if (!body || !ASSET_TYPES[ext]) throw new AppError('NOT_FOUND', 404, 'no such asset');
    return reply
      .header('content-type', ASSET_TYPES[ext])
      .header('cache-control', 'public, max-age=300')
      .send(body);
  });

  // -- the page -----------------------------------------------------------------------------
  app.get('/', async (req, reply) => {
    s.reconciler.request();
    return page(req, reply, (nonce) =>
      renderLandingPage({ edgeRegion: edgeOf(req), fleet: s.fleet.snapshot(), assets, nonce }),
    );
  });

  // -- launches -----------------------------------------------------------------------------
  /** Refuse requests a third-party page made the visitor's browser send. */
  const sameOrigin = (req: FastifyRequest) => {
    const site = req.headers['sec-fetch-site'];
    if (site && site !== 'same-origin' && site !== 'none') {
      throw new AppError('CROSS_SITE', 403, 'launches must come from this site');
    }
    const origin = req.headers.origin;
    if (origin && origin !== 'null') {
      // Host, not X-Forwarded-Host: anyone can send the latter; the browser sets the former.
      const host = req.headers.host;
      // An Origin that is not a URL comes from no page of ours (and must not become a 500).
      const ok =
        origin === cfg.publicUrl ||
        (host !== undefined && URL.canParse(origin) && new URL(origin).host === host);
      if (!ok) throw new AppError('CROSS_SITE', 403, 'launches must come from this site');
    } else if (origin === 'null')
      throw new AppError('CROSS_SITE', 403, 'launches must come from this site');
  };

  const startLaunch = async (req: FastifyRequest, source: 'button' | 'dash') => {
    const parsed = launchBody.safeParse(req.body ?? undefined);
    if (!parsed.success) throw new AppError('BAD_REQUEST', 400, z.prettifyError(parsed.error));
    const asked = parsed.data?.region;
    if (asked !== undefined && !isRegionCode(asked))
      throw new AppError('BAD_REGION', 400, `"${asked}" is not a Fly.io region we know`);
    const region = asked ?? edgeOf(req) ?? cfg.region;
    const now = s.clock.now();
    if (source !== 'button') return s.launches.start({ region, source });
    const ip = ipOf(req);
    // The cooldown is reserved now (no await before it, so a second request from this address
    // sees it) and given back unless the launch is accepted: a visitor turned away by the cap
    // may try again as soon as a slot frees.
    const held = cooldown.reserve(ip, now);
    if ('retryAfterMs' in held) {
      throw Object.assign(
        new AppError(
          'COOLDOWN',
          429,
          `you just launched one; try again in ${Math.ceil(held.retryAfterMs / 1000)} s`,
        ),
        { retryAfterMs: held.retryAfterMs },
      );
    }
    const r = launchesPerIp.hit(ip, now);
    if (!r.ok) {
      held.release();
      throw Object.assign(
        new AppError('RATE_LIMITED', 429, 'too many launches from your address; wait a minute'),
        { retryAfterMs: r.retryAfterMs },
      );
    }
    try {
      return await s.launches.start({ region, source });
    } catch (err) {
      held.release();
      throw err;
    }
  };

  /**
   * Count a launch refused before it existed (metrics). CAPACITY is left out: that launch exists
   * and is counted from its facts as failed:capacity.
   */
  const countRefusal = (req: FastifyRequest, source: 'button' | 'dash', err: unknown) => {
    if (!s.metrics || !(err instanceof AppError) || err.code === 'CAPACITY') return;
    const asked = (req.body as { region?: unknown } | undefined)?.region;
    const region = isRegionCode(asked) ? String(asked) : (edgeOf(req) ?? cfg.region);
    s.metrics.launchRefused(region, source, err.code);
  };

  const accepted = (v: LaunchView) => ({
    launchId: v.launchId,
    region: v.region,
    status: v.status,
    events: `/launches/${v.launchId}/events`,
  });

  app.post('/launches', async (req, reply) => {
    const form =
      req.headers['content-type']?.startsWith('application/x-www-form-urlencoded') ?? false;
    try {
      sameOrigin(req);
      const view = await startLaunch(req, 'button');
      if (form) return reply.code(303).header('location', `/launches/${view.launchId}`).send();
      return reply.code(202).send(accepted(view));
    } catch (err) {
      countRefusal(req, 'button', err);
      if (err instanceof AppError) {
        const retry = (err as AppError & { retryAfterMs?: number }).retryAfterMs;
        if (retry) reply.header('retry-after', Math.ceil(retry / 1000));
        if (form) {
          return page(
            req,
            reply,
            (nonce) => renderLaunchProgressPage({ error: { message: err.message }, nonce, assets }),
            err.statusCode,
          );
        }
      }
      throw err;
    }
  });

  /** A launch owned by another live instance is served there (Fly replays the request). */
  const replayToOwner = (req: FastifyRequest, reply: FastifyReply, owner: string) => {
    if (owner === cfg.instance || req.headers['fly-replay-src'] || !s.cluster.isAlive(owner))
      return false;
    void reply
      .code(409)
      .header('fly-replay', `instance=${owner}`)
      .send(errorBody(409, 'WRONG_INSTANCE', `this launch is served by instance ${owner}`));
    return true;
  };

  app.get('/launches/:id', async (req, reply) => {
    const { id } = parseParams(req.params);
    const cur = await s.launches.current(id).catch((err: unknown) => {
      // Past retention (410 LAUNCH_GONE): a browser gets the progress page saying so.
      if (!(err instanceof AppError && err.statusCode === 410 && wantsHtml(req))) throw err;
      void page(
        req,
        reply,
        (nonce) => renderLaunchProgressPage({ error: { message: err.message }, nonce, assets }),
        410,
      );
      return null;
    });
    if (cur === null) return reply;
    if (!cur) throw new AppError('LAUNCH_NOT_FOUND', 404, 'no such launch');
    if (replayToOwner(req, reply, cur.owner)) return reply;
    if (wantsHtml(req))
      return page(req, reply, (nonce) =>
        renderLaunchProgressPage({ launch: cur.view, nonce, assets }),
      );
    return reply.header('cache-control', 'no-store').send(cur.view);
  });

  app.get('/launches/:id/events', { sse: 'only' }, async (req, reply) => {
    const { id } = parseParams(req.params);
    const cur = await s.launches.current(id);
    if (!cur) throw new AppError('LAUNCH_NOT_FOUND', 404, 'no such launch');
    if (replayToOwner(req, reply, cur.owner)) return reply;
    const fromHeader = reply.sse.lastEventId;
    const fromQuery = (req.query as { from?: string }).from;
    const after = Number(fromHeader ?? fromQuery ?? 0);
    const afterVersion = Number.isInteger(after) && after >= 0 ? after : 0;
    if (
      (cur.view.status === 'failed' || cur.view.status === 'done') &&
      afterVersion >= cur.view.version
    ) {
      // Nothing more will ever come: 204 tells EventSource to stop reconnecting.
      return reply.code(204).send();
    }
    const client = sse.open(reply, () => s.launches.unwatch(id, client));
    await s.launches.watch(id, client, afterVersion);
    return reply;
  });

  // -- the fleet stream -----------------------------------------------------------------------
  app.get('/events', { sse: 'only' }, async (_req, reply) => {
    if (s.fleet.visitors >= cfg.limits.maxStreams) {
      reply.header('retry-after', 10);
      throw new AppError(
        'TOO_MANY_STREAMS',
        503,
        'this instance is at its limit of open streams; try again shortly',
      );
    }
    const client = sse.open(reply, () => s.fleet.detach(client));
    s.fleet.attach(client);
    s.reconciler.request();
    return reply;
  });

  // -- health -------------------------------------------------------------------------------
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_req, reply) => {
    if (s.ready())
      return {
        status: 'ready',
        instance: cfg.instance,
        region: cfg.region,
        leader: s.cluster.isLeader(),
      };
    return reply.code(503).send(errorBody(503, 'NOT_READY', 'still starting'));
  });

  // -- the dashboard ------------------------------------------------------------------------
  await app.register(async (dash) => {
    if (!cfg.local)
      dash.addHook(
        'onRequest',
        requireToken(cfg.debugToken, { basicRealm: 'WhereMachines operators' }),
      );
    const dashAssets = { appJs: '/assets/dash.js', css: '/assets/app.css' };
    dash.get('/dash', async (req, reply) =>
      page(req, reply, (nonce) =>
        renderDashboard({
          edgeRegion: edgeOf(req),
          fleet: s.fleet.snapshot(),
          autospawner: s.autospawn.view(),
          assets: dashAssets,
          nonce,
          machineUrl: `${cfg.vm.publicUrl}/machine?instance={id}`,
          endpoints: { launches: '/dash/launches', autospawner: '/dash/autospawner' },
        }),
      ),
    );
    dash.get('/dash/autospawner', async (req, reply) => {
      // The dashboard refreshes its autospawner panel from this (HTML); scripts get JSON.
      if (wantsHtml(req)) {
        return reply
          .header('content-type', 'text/html; charset=utf-8')
          .header('cache-control', 'no-store')
          .send(
            renderAutospawner(s.autospawn.view(), '/dash/autospawner', s.clock.now()).toString(),
          );
      }
      return s.autospawn.view();
    });
    dash.post('/dash/launches', async (req, reply) => {
      const view = await (async () => {
        sameOrigin(req);
        return startLaunch(req, 'dash');
      })().catch((err: unknown) => {
        countRefusal(req, 'dash', err);
        throw err;
      });
      // Without JavaScript the tile is a form: back to the dashboard, which shows the new machine.
      const form =
        req.headers['content-type']?.startsWith('application/x-www-form-urlencoded') ?? false;
      if (form) return reply.code(303).header('location', '/dash').send();
      return reply.code(202).send(accepted(view));
    });
    dash.post('/dash/autospawner', async (req, reply) => {
      sameOrigin(req);
      const parsed = switchBody.safeParse(req.body);
      if (!parsed.success) throw new AppError('BAD_REQUEST', 400, z.prettifyError(parsed.error));
      const on = parsed.data.on === true || parsed.data.on === 'true' || parsed.data.on === 'on';
      await s.autospawn.switch(on, 'dashboard');
      const form =
        req.headers['content-type']?.startsWith('application/x-www-form-urlencoded') ?? false;
      if (form) return reply.code(303).header('location', '/dash').send();
      return s.autospawn.view();
    });
  });

  return app;
}

function parseParams(params: unknown): { id: string } {
  const p = launchIdParam.safeParse(params);
  if (!p.success) throw new AppError('BAD_LAUNCH_ID', 400, 'a launch id is a 26-character ULID');
  return p.data;
}

export async function buildPrivateApp(s: WhereServices): Promise<FastifyInstance> {
  const logger: FastifyBaseLogger = s.log.child({ listener: 'private' });
  const app = Fastify({
    loggerInstance: logger,
    bodyLimit: 8 * 1024,
    requestTimeout: 15_000,
    logController: new LogController({ disableRequestLogging: true }),
  });
  installErrorHandling(app);
  await app.register(fastifySSE, { heartbeatInterval: 0 });
  const sse = new SseRegistry(app);
  // The callback signature covers the exact bytes sent: keep the body as a string.
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) =>
    done(null, body),
  );

  app.post(CALLBACK_PATH, async (req, reply) => {
    const raw = typeof req.body === 'string' ? req.body : '';
    const sig = req.headers[SIGNATURE_HEADER];
    const result = await s.callbacks
      .handle(raw, Array.isArray(sig) ? sig[0] : sig)
      .catch((err: unknown) => {
        s.metrics?.callback(err instanceof AppError ? callbackResult(err.code) : 'error');
        throw err;
      });
    s.metrics?.callback(result.accepted ? 'accepted' : 'duplicate');
    req.log.info(
      result,
      result.accepted ? 'machine status received' : 'machine status already known',
    );
    return reply.send({ ok: true, accepted: result.accepted });
  });

  app.get('/healthz', async () => ({ status: 'ok' }));
  // Prometheus scrapes this over 6PN (fly.toml [metrics]); never on the public listener.
  const metrics = s.metrics;
  if (metrics)
    app.get('/metrics', async (_req, reply) =>
      reply
        .header('content-type', metrics.contentType)
        .header('cache-control', 'no-store')
        .send(await metrics.text()),
    );
  await app.register(debugRoutes, { services: s, sse });
  return app;
}
