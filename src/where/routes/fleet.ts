/**
 * The map: the landing page with every live machine, and its live feed (`GET /events`, SSE): one
 * `fleet` message with everything and one `launchTimes`, then each change. Both ask the
 * reconciler for a fresh look.
 */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { AppError } from '../../shared/errors.js';
import type { WhereServices } from '../app.js';
import { edgeRegion } from '../http.js';
import type { SseRegistry } from '../sse.js';
import { renderLandingPage } from '../views/landing.js';
import { PAGE_ASSETS, sendPage } from './assets.js';

/** Seconds a visitor turned away for want of streams waits before trying again. */
const STREAMS_RETRY_MS = 10_000;

export const fleetRoutes: FastifyPluginAsyncZod<{
  services: WhereServices;
  sse: SseRegistry;
}> = async (app, { services: s, sse }) => {
  app.get('/', async (req, reply) => {
    s.reconciler.request();
    return sendPage(reply, (nonce) =>
      renderLandingPage({
        edgeRegion: edgeRegion(req),
        fleet: s.fleet.snapshot(),
        launchTimes: s.launchTimes.view(),
        // Where the button's launch goes without a choice (as in POST /launches).
        launchRegion: edgeRegion(req) ?? s.cfg.region,
        assets: PAGE_ASSETS,
        nonce,
      }),
    );
  });

  app.get('/events', { sse: 'only' }, async (_req, reply) => {
    if (s.fleet.visitors >= s.cfg.limits.maxStreams) {
      throw new AppError(
        'TOO_MANY_STREAMS',
        'this instance is at its limit of open streams; try again shortly',
        { retryAfterMs: STREAMS_RETRY_MS },
      );
    }
    const client = sse.open(reply, () => s.fleet.detach(client));
    s.fleet.attach(client);
    client.write(s.launchTimes.frame());
    s.reconciler.request();
    return reply;
  });
};
