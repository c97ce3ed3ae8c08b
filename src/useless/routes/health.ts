/**
 * `GET /health`, for the machine's own readiness self-check: answered to loopback peers only
 * (anyone else gets the not-found answer), never cached.
 */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { isLoopback } from '../config.js';

/** What a healthy machine answers (its readiness self-check reads the same). */
export const healthAnswer = z.object({ status: z.literal('ok') });

export const healthRoutes: FastifyPluginAsyncZod = async (app) => {
  app.get('/health', { schema: { response: { 200: healthAnswer } } }, async (req, reply) => {
    if (!isLoopback(req.socket.remoteAddress)) {
      reply.callNotFound();
      return reply;
    }
    return reply.header('cache-control', 'no-store').send({ status: 'ok' });
  });
};
