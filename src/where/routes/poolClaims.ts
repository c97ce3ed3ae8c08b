/**
 * `POST /api/pool_claim` on the private listener: a pooled VM, just started, asks which launch
 * claimed it (ADR 0022). The signature covers the exact bytes sent, so the body reaches the
 * service as the raw string, like the VMs' status callbacks.
 */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { poolClaimAnswer, SIGNATURE_HEADER } from '../../shared/callbackAuth.js';
import { AppError } from '../../shared/errors.js';
import type { WhereServices } from '../app.js';
import { POOL_CLAIM_PATH } from '../machineSpec.js';
import { errorBodySchema } from '../wire.js';

const rawBody = z.string().nullish();

export const poolClaimRoutes: FastifyPluginAsyncZod<{ services: WhereServices }> = async (
  app,
  { services: s },
) => {
  app.post(
    POOL_CLAIM_PATH,
    { schema: { body: rawBody, response: { 200: poolClaimAnswer, '4xx': errorBodySchema } } },
    async (req, reply) => {
      const sig = req.headers[SIGNATURE_HEADER];
      if (!s.poolClaims) throw new AppError('NOT_FOUND', 'no warm pools here');
      const answer = s.poolClaims.handle(req.body ?? '', Array.isArray(sig) ? sig[0] : sig);
      req.log.info({ launchId: answer.launchId }, 'pooled machine fetched its claim');
      return reply.send(answer);
    },
  );
};
