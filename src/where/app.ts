/**
 * The landing app's two Fastify instances, assembled from route plugins (src/where/routes/) and
 * never listening here: the public one (page, launches, SSE, dashboard, health, assets) and the
 * private one (the VMs' callbacks, the operators' debug endpoint, metrics), which never shares a
 * route with the public one.
 */
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { fastifySSE } from '@fastify/sse';
import type { Logger } from '../shared/log.js';
import { zodRoutes } from '../shared/zodRoutes.js';
import type { Clock } from '../ports/clock.js';
import type { ActorRuntime } from '../runtime/actorRuntime.js';
import type { WhereConfig } from './config.js';
import { installErrorHandling } from './http.js';
import { SseRegistry } from './sse.js';
import type { Fleet } from './services/fleet.js';
import type { Launches } from './services/launches.js';
import type { LaunchTimesFeed } from './services/launchTimesFeed.js';
import type { Callbacks } from './services/callbacks.js';
import type { AutospawnDriver } from './services/autospawn.js';
import type { PoolDriver } from './services/pool.js';
import type { PoolClaimDesk } from './services/poolClaimDesk.js';
import { poolClaimRoutes } from './routes/poolClaims.js';
import type { Cluster } from './services/cluster.js';
import type { Reconciler } from './services/reconciler.js';
import type { Retention } from './services/retention.js';
import type { WhereMetrics } from './metrics.js';
import { assetRoutes } from './routes/assets.js';
import { callbackRoutes } from './routes/callbacks.js';
import { dashboardRoutes } from './routes/dashboard.js';
import { debugRoutes } from './routes/debug.js';
import { fleetRoutes } from './routes/fleet.js';
import { healthRoutes } from './routes/health.js';
import { launchRoutes } from './routes/launches.js';
import { limitRequests } from './routes/limits.js';
import { metricsRoutes } from './routes/metrics.js';

export interface WhereServices {
  cfg: WhereConfig;
  log: Logger;
  clock: Clock;
  runtime: ActorRuntime;
  cluster: Cluster;
  fleet: Fleet;
  launches: Launches;
  /** Typical launch times per region, and each launch's timeline. */
  launchTimes: LaunchTimesFeed;
  callbacks: Callbacks;
  autospawn: AutospawnDriver;
  /** The warm pools per region (ADR 0022); absent in apps built without them. */
  pool?: PoolDriver;
  /** Answers pooled VMs asking for their claim (`POST /api/pool_claim`). */
  poolClaims?: PoolClaimDesk;
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

/** What both listeners share: a logger per listener, no request lines, the error answers, SSE. */
async function baseApp(s: WhereServices, listener: string, bodyLimit: number) {
  const logger: FastifyBaseLogger = s.log.child({ listener });
  const app = Fastify({
    loggerInstance: logger,
    bodyLimit,
    trustProxy: false,
    // A client gets this long to send its request (headers and body); streams are unaffected.
    requestTimeout: 15_000,
    logController: new LogController({ disableRequestLogging: true }),
  });
  installErrorHandling(app);
  await app.register(fastifySSE, { heartbeatInterval: 0 });
  return { app: zodRoutes(app), sse: new SseRegistry(app) };
}

export async function buildPublicApp(s: WhereServices): Promise<FastifyInstance> {
  const { app, sse } = await baseApp(s, 'public', 16 * 1024);
  // The launch button and the dashboard's switch work without JavaScript, as plain forms.
  app.addContentTypeParser(
    'application/x-www-form-urlencoded',
    { parseAs: 'string', bodyLimit: 4096 },
    (_req, body, done) => {
      done(null, Object.fromEntries(new URLSearchParams(body as string)));
    },
  );
  limitRequests(app, s.cfg, s.clock);
  await app.register(assetRoutes, { files: s.assets });
  await app.register(fleetRoutes, { services: s, sse });
  await app.register(launchRoutes, { services: s, sse });
  await app.register(healthRoutes, { services: s, readiness: true });
  await app.register(dashboardRoutes, { services: s });
  return app;
}

export async function buildPrivateApp(s: WhereServices): Promise<FastifyInstance> {
  const { app, sse } = await baseApp(s, 'private', 8 * 1024);
  // The callback signature covers the exact bytes sent: keep the body as a string.
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) =>
    done(null, body),
  );
  await app.register(callbackRoutes, { services: s });
  await app.register(poolClaimRoutes, { services: s });
  await app.register(healthRoutes, { services: s, readiness: false });
  if (s.metrics) await app.register(metricsRoutes, { metrics: s.metrics });
  await app.register(debugRoutes, { services: s, sse });
  return app;
}
