/**
 * Prometheus metrics (`GET /metrics`) on the private listener only: Fly scrapes it over 6PN
 * (fly.toml [metrics]); never kept by a cache.
 */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { WhereMetrics } from '../metrics.js';

export const metricsRoutes: FastifyPluginAsyncZod<{ metrics: WhereMetrics }> = async (
  app,
  { metrics },
) => {
  app.get('/metrics', async (_req, reply) =>
    reply
      .header('content-type', metrics.contentType)
      .header('cache-control', 'no-store')
      .send(await metrics.text()),
  );
};
