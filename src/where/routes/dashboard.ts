/**
 * The operators' dashboard on the public listener (behind the operator token outside local mode):
 * the page, and the autospawner's panel and switch. Its launch tiles post to `/dash/launches`
 * (launches.ts).
 */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { WhereServices } from '../app.js';
import { edgeRegion, isForm, operatorsOnly, sameOrigin, wantsHtml } from '../http.js';
import { renderAutospawner, renderDashboard, type AutospawnerView } from '../views/dashboard.js';
import { errorBodySchema } from '../wire.js';
import { DASH_ASSETS, sendPage } from './assets.js';

const AUTOSPAWNER_PATH = '/dash/autospawner';

/** The panel's state as the autospawn service builds it (typed here, sent as it is). */
const panel = z.custom<AutospawnerView>();
/** `{"on": false}` from a script, `on=off` from the panel's form. */
const switchBody = z.strictObject({
  on: z.union([z.boolean(), z.enum(['true', 'false', 'on', 'off'])]),
});

export const dashboardRoutes: FastifyPluginAsyncZod<{ services: WhereServices }> = async (
  app,
  { services: s },
) => {
  const { cfg } = s;
  app.addHook('onRequest', operatorsOnly(cfg));

  app.get('/dash', async (req, reply) =>
    sendPage(reply, (nonce) =>
      renderDashboard({
        edgeRegion: edgeRegion(req),
        fleet: s.fleet.snapshot(),
        launchTimes: s.launchTimes.view(),
        autospawner: s.autospawn.view(),
        assets: DASH_ASSETS,
        nonce,
        machineUrl: `${cfg.vm.publicUrl}/machine?instance={id}`,
        endpoints: { launches: '/dash/launches', autospawner: AUTOSPAWNER_PATH },
      }),
    ),
  );

  app.get(AUTOSPAWNER_PATH, async (req, reply) => {
    // The dashboard refreshes its autospawner panel from this (HTML); scripts get JSON.
    if (!wantsHtml(req)) return s.autospawn.view();
    return reply
      .header('content-type', 'text/html; charset=utf-8')
      .header('cache-control', 'no-store')
      .send(renderAutospawner(s.autospawn.view(), AUTOSPAWNER_PATH, s.clock.now()).toString());
  });

  app.post(
    AUTOSPAWNER_PATH,
    {
      schema: {
        body: switchBody,
        response: { 200: panel, 303: z.undefined(), '4xx': errorBodySchema },
      },
      preValidation: sameOrigin(cfg.publicUrl),
    },
    async (req, reply) => {
      const { on } = req.body;
      await s.autospawn.switch(on === true || on === 'true' || on === 'on', 'dashboard');
      if (isForm(req)) return reply.header('location', '/dash').code(303).send();
      return s.autospawn.view();
    },
  );
};
