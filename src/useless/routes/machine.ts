/**
 * The machine's page (`GET /machine?instance=<id>`: every GET is a new viewer) and its browser
 * script. Without a name the page says there is no machine here; once switching off, that it is gone.
 */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { cityName } from '../../shared/regions.js';
import type { UselessConfig } from '../config.js';
import { htmlReply, instanceQuery } from '../http.js';
import type { MachineLife } from '../lifecycle.js';
import { SCRIPT_PATH, gonePage, launchPageUrl, machinePage, noMachinePage } from '../page.js';
import type { Viewers } from '../viewers.js';

export const machineRoutes: FastifyPluginAsyncZod<{
  config: UselessConfig;
  life: MachineLife;
  viewers: Viewers;
  /** How often a playing page says it is still there. */
  beatEveryMs: number;
  /** The browser bundle's text; without it the page is served without JS. */
  script: string | undefined;
}> = async (app, { config, life, viewers, beatEveryMs, script }) => {
  const city = cityName(config.region);
  const { machineId, homeUrl } = config;
  const launchUrl = launchPageUrl(homeUrl, config.launchId);

  app.get('/machine', { schema: { querystring: instanceQuery } }, async (req, reply) => {
    if (req.query.instance === undefined) {
      // Without a name we do not hand this machine to whoever asks: it belongs to its launcher.
      return htmlReply(reply.code(404), noMachinePage({ homeUrl }));
    }
    if (life.switchingOff)
      return htmlReply(reply.code(410), gonePage({ machineId, city, homeUrl, launchUrl }));
    // HEAD (link previews, probes) shows the page but does not count as someone watching.
    const viewerId = req.method === 'GET' ? viewers.register() : undefined;
    if (viewerId) life.reconsider();
    const base = `/machine/viewers/${viewerId ?? ''}`;
    const instance = `?instance=${encodeURIComponent(machineId)}`;
    const html = machinePage({
      machineId,
      city,
      homeUrl,
      launchUrl,
      withScript: script !== undefined,
      ...(viewerId
        ? {
            viewer: {
              doneUrl: `${base}/done${instance}`,
              beatUrl: `${base}/beat${instance}`,
              beatEveryMs,
            },
          }
        : {}),
    });
    return htmlReply(reply, html);
  });

  app.get(SCRIPT_PATH, async (_req, reply) => {
    if (script === undefined) {
      reply.callNotFound();
      return reply;
    }
    return reply
      .header('content-type', 'text/javascript; charset=utf-8')
      .header('cache-control', 'no-cache')
      .header('x-content-type-options', 'nosniff')
      .send(script);
  });
};
