/**
 * The VMs' calls home on the private listener (`POST` CALLBACK_PATH, "listening"/"stopping"): the
 * signature covers the exact bytes sent, so the body reaches the service as the raw string; the
 * service parses, verifies and answers every refusal with its own code.
 */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { SIGNATURE_HEADER } from '../../shared/callbackAuth.js';
import { AppError } from '../../shared/errors.js';
import { SpanKind, TRACEPARENT, inSpan, parseTraceparent } from '../../shared/trace.js';
import type { WhereServices } from '../app.js';
import { CALLBACK_PATH } from '../machineSpec.js';
import { callbackResult } from '../metrics.js';
import { errorBodySchema } from '../wire.js';

/** The text of a JSON (or plain text) body; none at all reads as empty. */
const rawBody = z.string().nullish();
const received = z.object({ ok: z.literal(true), accepted: z.boolean() });

export const callbackRoutes: FastifyPluginAsyncZod<{ services: WhereServices }> = async (
  app,
  { services: s },
) => {
  app.post(
    CALLBACK_PATH,
    { schema: { body: rawBody, response: { 200: received, '4xx': errorBodySchema } } },
    async (req, reply) => {
      const sig = req.headers[SIGNATURE_HEADER];
      // The VM continues its launch's trace: this hop is a span under the VM's.
      const trace = parseTraceparent(req.headers[TRACEPARENT] as string | undefined);
      const result = await inSpan(
        'vm.callback',
        trace,
        {},
        () => s.callbacks.handle(req.body ?? '', Array.isArray(sig) ? sig[0] : sig),
        SpanKind.SERVER,
      ).catch((err: unknown) => {
        s.metrics?.callback(err instanceof AppError ? callbackResult(err.code) : 'error');
        throw err;
      });
      s.metrics?.callback(result.accepted ? 'accepted' : 'duplicate');
      req.log.info(
        { ...result, ...(trace ? { traceId: trace.traceId } : {}) },
        result.accepted ? 'machine status received' : 'machine status already known',
      );
      return reply.send({ ok: true, accepted: result.accepted });
    },
  );
};
