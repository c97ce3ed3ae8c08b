/**
 * Launch routes of the public listener: the visitor's button (JSON or a plain form), the dashboard's
 * launch tiles, a launch's status (JSON or its page) and its SSE stream. A launch owned by another
 * live instance is served there (Fly replays the request).
 */
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { ULID_PATTERN, type LaunchSource } from '../../../machines/vocabulary.js';
import { AppError } from '../../shared/errors.js';
import { isRegionCode } from '../../shared/regions.js';
import { TRACEPARENT, SpanKind, inSpan, parseTraceparent } from '../../shared/trace.js';
import { schemaErrors } from '../../shared/zodRoutes.js';
import type { WhereServices } from '../app.js';
import {
  edgeRegion,
  errorBody,
  isForm,
  operatorsOnly,
  sameOrigin,
  sendError,
  wantsHtml,
} from '../http.js';
import type { SseRegistry } from '../sse.js';
import { Cooldown, SlidingWindowLimiter } from '../services/rateLimit.js';
import { renderLaunchProgressPage } from '../views/launchProgress.js';
import {
  errorBodySchema,
  launchAccepted,
  launchRequestBody,
  launchView,
  type LaunchView,
} from '../wire.js';
import { PAGE_ASSETS, sendPage } from './assets.js';
import { clientAddress } from './limits.js';

const launchParams = z.object({ id: z.string().regex(ULID_PATTERN) });
/** Where a browser resumes a launch's stream (Last-Event-ID, when sent, wins). */
const eventsQuery = z.looseObject({ from: z.union([z.string(), z.array(z.string())]).optional() });

const launchSchema = {
  params: launchParams,
  /** `from=machine`: the visitor came back from the machine's page (no forwarding back to it). */
  querystring: z.looseObject({ from: z.string().optional() }),
  response: { 200: launchView, '4xx': errorBodySchema },
};
const BAD_LAUNCH_ID = schemaErrors({
  params: ['BAD_LAUNCH_ID', 'a launch id is a 26-character ULID'],
});
/** The button and the dashboard tiles: same body, same answers. */
const startSchema = {
  body: launchRequestBody,
  response: { 202: launchAccepted, 303: z.undefined(), '4xx': errorBodySchema },
};

type Source = Extract<LaunchSource, 'button' | 'dash'>;

export const launchRoutes: FastifyPluginAsyncZod<{
  services: WhereServices;
  sse: SseRegistry;
}> = async (app, { services: s, sse }) => {
  const { cfg } = s;
  const starts = launchStarts(s);

  app.post('/launches', { schema: startSchema, ...starts.guard('button') }, async (req, reply) => {
    const view = await starts.start(req, req.body?.region, 'button');
    // Without JavaScript the button is a form: on to the launch's own page.
    if (isForm(req)) return reply.header('location', `/launches/${view.launchId}`).code(303).send();
    // The reply schema keeps what a visitor sees of the launch.
    return reply.code(202).send(accepted(view));
  });

  app.post(
    '/dash/launches',
    { schema: startSchema, onRequest: operatorsOnly(cfg), ...starts.guard('dash') },
    async (req, reply) => {
      const view = await starts.start(req, req.body?.region, 'dash');
      // Without JavaScript the tile is a form: back to the dashboard, which shows the new machine.
      if (isForm(req)) return reply.header('location', '/dash').code(303).send();
      return reply.code(202).send(accepted(view));
    },
  );

  /** True when another live instance owns the launch: the answer tells Fly to replay there. */
  const replayToOwner = (req: FastifyRequest, reply: FastifyReply, owner: string) => {
    if (owner === cfg.instance || req.headers['fly-replay-src'] || !s.cluster.isAlive(owner))
      return false;
    void reply
      .code(409)
      .header('fly-replay', `instance=${owner}`)
      .send(errorBody(409, 'WRONG_INSTANCE', `this launch is served by instance ${owner}`));
    return true;
  };

  app.get(
    '/launches/:id',
    { schema: launchSchema, schemaErrorFormatter: BAD_LAUNCH_ID },
    async (req, reply) => {
      const { id } = req.params;
      const cur = await s.launches.current(id).catch((err: unknown) => {
        // Past retention (410 LAUNCH_GONE): a browser gets the progress page saying so.
        if (!(err instanceof AppError && err.statusCode === 410 && wantsHtml(req))) throw err;
        void refusalPage(reply, err.message, 410);
        return null;
      });
      if (cur === null) return reply;
      if (!cur) throw new AppError('LAUNCH_NOT_FOUND', 'no such launch');
      if (replayToOwner(req, reply, cur.owner)) return reply;
      if (wantsHtml(req))
        return sendPage(reply, (nonce) =>
          renderLaunchProgressPage({
            launch: cur.view,
            nonce,
            assets: PAGE_ASSETS,
            typical: s.launchTimes.stats.typical(cur.view.region),
            stay: req.query.from === 'machine',
          }),
        );
      return reply.header('cache-control', 'no-store').send(cur.view);
    },
  );

  app.get(
    '/launches/:id/events',
    {
      sse: 'only',
      schema: { params: launchParams, querystring: eventsQuery },
      schemaErrorFormatter: BAD_LAUNCH_ID,
    },
    async (req, reply) => {
      const { id } = req.params;
      const cur = await s.launches.current(id);
      if (!cur) throw new AppError('LAUNCH_NOT_FOUND', 'no such launch');
      if (replayToOwner(req, reply, cur.owner)) return reply;
      const after = Number(reply.sse.lastEventId ?? req.query.from ?? 0);
      const afterVersion = Number.isInteger(after) && after >= 0 ? after : 0;
      const { status, version } = cur.view;
      if ((status === 'failed' || status === 'done') && afterVersion >= version) {
        // Nothing more will ever come: 204 tells EventSource to stop reconnecting.
        return reply.code(204).send();
      }
      const client = sse.open(reply, () => s.launches.unwatch(id, client));
      await s.launches.watch(id, client, afterVersion);
      return reply;
    },
  );
};

const eventsUrl = (launchId: string) => `/launches/${launchId}/events`;

/** A 202's body: the launch, its stream, and its trace id (for a bug report or a trace view). */
const accepted = (view: LaunchView) => ({ ...view, events: eventsUrl(view.launchId) });

/** The progress page of a launch that will not happen (refused, or past retention). */
const refusalPage = (reply: FastifyReply, message: string, status: number) =>
  sendPage(
    reply,
    (nonce) => renderLaunchProgressPage({ error: { message }, nonce, assets: PAGE_ASSETS }),
    status,
  );

/**
 * Starting a launch: where it goes, the per-address limits and cooldown on the visitor's button,
 * and the accounting of refusals. `guard(source)` gives the route options that check the origin
 * before the body and answer every refusal (a form gets the progress page saying why).
 */
function launchStarts(s: WhereServices) {
  const { cfg } = s;
  const launchesPerIp = new SlidingWindowLimiter(cfg.limits.launchesPerMinute, 60_000);
  const cooldown = new Cooldown(cfg.limits.cooldownMs);
  const checkOrigin = sameOrigin(cfg.publicUrl);
  /**
   * Requests that got past the listener's own hooks (request limit, operator token): only their
   * refusals are refused launches, counted and shown on the progress page.
   */
  const asked = new WeakSet<FastifyRequest>();

  /** The visitor's button: the cooldown, then the per-address launch limit. */
  const startFromButton = async (req: FastifyRequest, region: string, traceparent: string) => {
    const ip = clientAddress(cfg, req);
    const now = s.clock.now();
    // The cooldown is reserved now (no await before it, so a second request from this address
    // sees it) and given back unless the launch is accepted: a visitor turned away by the cap
    // may try again as soon as a slot frees.
    const held = cooldown.reserve(ip, now);
    if ('retryAfterMs' in held) {
      throw new AppError(
        'COOLDOWN',
        `you just launched one; try again in ${Math.ceil(held.retryAfterMs / 1000)} s`,
        { retryAfterMs: held.retryAfterMs },
      );
    }
    const r = launchesPerIp.hit(ip, now);
    if (!r.ok) {
      held.release();
      throw new AppError('RATE_LIMITED', 'too many launches from your address; wait a minute', {
        retryAfterMs: r.retryAfterMs,
      });
    }
    try {
      return await s.launches.start({ region, source: 'button', traceparent });
    } catch (err) {
      held.release();
      throw err;
    }
  };

  /**
   * Count a launch refused before it existed (metrics). CAPACITY is left out: that launch exists
   * and is counted from its facts as failed:capacity.
   */
  const countRefusal = (req: FastifyRequest, source: Source, err: unknown) => {
    if (!s.metrics || !(err instanceof AppError) || err.code === 'CAPACITY') return;
    const wanted = (req.body as { region?: unknown } | null | undefined)?.region;
    const region = isRegionCode(wanted) ? String(wanted) : (edgeRegion(req) ?? cfg.region);
    s.metrics.launchRefused(region, source, err.code);
  };

  return {
    async start(req: FastifyRequest, wanted: string | undefined, source: Source) {
      if (wanted !== undefined && !isRegionCode(wanted))
        throw new AppError('BAD_REGION', `"${wanted}" is not a Fly.io region we know`);
      const region = wanted ?? edgeRegion(req) ?? cfg.region;
      // The launch's trace starts here (continuing the caller's when it sent a valid one); its
      // first fact keeps the position, so every later hop, on any instance, continues it.
      const incoming = parseTraceparent(req.headers[TRACEPARENT] as string | undefined);
      const attributes = { 'wm.region': region, 'wm.source': source };
      const view = await inSpan(
        `POST ${req.routeOptions.url ?? '/launches'}`,
        incoming,
        attributes,
        (traceparent) =>
          source === 'button'
            ? startFromButton(req, region, traceparent)
            : s.launches.start({ region, source, traceparent }),
        SpanKind.SERVER,
      );
      req.log.info(
        { launchId: view.launchId, traceId: view.traceId, region, source },
        'launch accepted',
      );
      return view;
    },

    guard(source: Source) {
      return {
        preValidation: async (req: FastifyRequest) => {
          asked.add(req);
          await checkOrigin(req);
        },
        errorHandler: (err: FastifyError | AppError, req: FastifyRequest, reply: FastifyReply) => {
          if (!asked.has(req)) return sendError(err, req, reply);
          countRefusal(req, source, err);
          if (source !== 'button' || !(err instanceof AppError) || !isForm(req))
            return sendError(err, req, reply);
          if (err.retryAfterMs) reply.header('retry-after', Math.ceil(err.retryAfterMs / 1000));
          return refusalPage(reply, err.message, err.statusCode);
        },
      };
    },
  };
}
