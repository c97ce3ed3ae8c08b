/**
 * HTTP plumbing of the VM app: its error answers (typed errors → stable codes, anything else → a
 * logged 500), the not-found answer (a page for browsers), machine affinity on every path, and how
 * its HTML pages go out.
 */
import type { FastifyReply } from 'fastify';
import { z } from 'zod';
import { errorBody } from '../shared/errorBody.js';
import { AppError, errorMessage } from '../shared/errors.js';
import type { ZodApp } from '../shared/zodRoutes.js';
import type { Logger } from '../shared/log.js';
import type { UselessConfig } from './config.js';
import { PAGE_CSP, noMachinePage } from './page.js';
import { affinityCookie, affinitySetCookie, decideRoute } from './routing.js';

/** `?instance=` names the machine a request is for (anything else in the query is ignored). */
export const instanceQuery = z.looseObject({ instance: z.string().optional() });

function pathOf(url: string): string {
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
}

export function installErrorHandling(app: ZodApp<Logger>, homeUrl: string): void {
  app.setErrorHandler((err: unknown, req, reply) => {
    if (err instanceof AppError) {
      return reply.code(err.statusCode).send(errorBody(err.statusCode, err.code, err.message));
    }
    const status =
      typeof err === 'object' &&
      err !== null &&
      'statusCode' in err &&
      typeof err.statusCode === 'number'
        ? err.statusCode
        : 500;
    if (status >= 500) {
      req.log.error({ err }, 'request failed');
      return reply.code(500).send(errorBody(500, 'INTERNAL', 'something went wrong'));
    }
    const code =
      typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string'
        ? err.code
        : 'BAD_REQUEST';
    return reply.code(status).send(errorBody(status, code, errorMessage(err)));
  });

  app.setNotFoundHandler((req, reply) => {
    if ((req.headers.accept ?? '').includes('text/html')) {
      return htmlReply(reply.code(404), noMachinePage({ homeUrl }));
    }
    return reply
      .code(404)
      .send(errorBody(404, 'NOT_FOUND', `no route for ${req.method} ${pathOf(req.url)}`));
  });
}

/**
 * Affinity on every path (page, script, viewer API, unknown paths alike): a request meant for
 * another machine is replayed there. /health is exempt: it is for the machine itself, and only
 * ever answered to loopback peers.
 */
export function pinToMachine(app: ZodApp<Logger>, config: UselessConfig): void {
  app.addHook('onRequest', async (req, reply) => {
    if (pathOf(req.url) === '/health') return;
    const query = instanceQuery.safeParse(req.query);
    const decision = query.success
      ? decideRoute(config.machineId, query.data.instance, affinityCookie(req.headers.cookie))
      : ({ kind: 'badInstance' } as const);
    if (decision.kind === 'badInstance')
      throw new AppError(
        'BAD_INSTANCE',
        'instance must name one machine (8–32 lowercase letters or digits)',
      );
    if (decision.kind === 'replay') {
      req.log.debug(
        { to: decision.instance, via: decision.via },
        'replaying to the machine this request belongs to',
      );
      // The proxy acts on the header, not the status; 421 tells anyone reaching us directly what happened.
      return reply
        .code(421)
        .header('fly-replay', `instance=${decision.instance}`)
        .header('cache-control', 'no-store')
        .send();
    }
    if (decision.setCookie) {
      reply.header(
        'set-cookie',
        affinitySetCookie(config.machineId, req.headers['x-forwarded-proto'] === 'https'),
      );
    }
  });
}

/** An HTML page of the machine: never cached, nothing loaded from anywhere else. */
export function htmlReply(reply: FastifyReply, html: string): FastifyReply {
  return reply
    .header('content-type', 'text/html; charset=utf-8')
    .header('cache-control', 'no-store')
    .header('content-security-policy', PAGE_CSP)
    .header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'no-referrer')
    .send(html);
}
