/**
 * Liveness on both listeners (`GET /healthz`: the process answers) and, on the public one,
 * readiness (`GET /readyz`: booted, the store answers), which Fly's checks and the proxy use.
 */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { WhereServices } from '../app.js';
import { errorBody } from '../http.js';
import { errorBodySchema } from '../wire.js';

const alive = z.object({ status: z.literal('ok') });
const ready = z.object({
  status: z.literal('ready'),
  instance: z.string(),
  region: z.string(),
  leader: z.boolean(),
});

export const healthRoutes: FastifyPluginAsyncZod<{
  services: WhereServices;
  /** Serve `/readyz` too (the public listener). */
  readiness: boolean;
}> = async (app, { services: s, readiness }) => {
  app.get('/healthz', { schema: { response: { 200: alive } } }, async () => ({
    status: 'ok' as const,
  }));
  if (!readiness) return;
  app.get(
    '/readyz',
    { schema: { response: { 200: ready, 503: errorBodySchema } } },
    async (_req, reply) => {
      if (!s.ready()) return reply.code(503).send(errorBody(503, 'NOT_READY', 'still starting'));
      return {
        status: 'ready' as const,
        instance: s.cfg.instance,
        region: s.cfg.region,
        leader: s.cluster.isLeader(),
      };
    },
  );
};
