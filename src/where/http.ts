/**
 * HTTP plumbing shared by both listeners: one error handler (typed errors → stable codes, anything
 * else → a logged 500 that says nothing about our insides), the not-found answer, and the
 * operator-token check.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../shared/errors.js';
import { errorBody } from '../shared/errorBody.js';

export { errorBody };

export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError | AppError | Error, req, reply) => {
    if (err instanceof AppError) {
      if (err.statusCode >= 500) req.log.error({ err }, err.message);
      return reply.code(err.statusCode).send(errorBody(err.statusCode, err.code, err.message));
    }
    const fe = err as FastifyError;
    if (fe.validation) return reply.code(400).send(errorBody(400, 'BAD_REQUEST', fe.message));
    if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
      // Fastify's own client errors (bad JSON, body too large, wrong content type): keep their code.
      return reply
        .code(fe.statusCode)
        .send(errorBody(fe.statusCode, fe.code ?? 'BAD_REQUEST', fe.message));
    }
    req.log.error({ err }, 'unhandled error');
    return reply.code(500).send(errorBody(500, 'INTERNAL', 'something went wrong on our side'));
  });
  app.setNotFoundHandler((req, reply) => {
    void reply
      .code(404)
      .send(errorBody(404, 'NOT_FOUND', `no route for ${req.method} ${req.url.split('?')[0]}`));
  });
}

/** Accepts `Authorization: Bearer <token>` or HTTP Basic with the token as the password. */
export function hasToken(req: FastifyRequest, token: string): boolean {
  const h = req.headers.authorization;
  if (!h) return false;
  let given: string | undefined;
  if (h.startsWith('Bearer ')) given = h.slice(7).trim();
  else if (h.startsWith('Basic ')) {
    const decoded = Buffer.from(h.slice(6).trim(), 'base64').toString('utf8');
    given = decoded.slice(decoded.indexOf(':') + 1);
  }
  if (!given) return false;
  // Compare digests: equal lengths always, so the comparison leaks nothing about the token.
  const digest = (s: string) => createHash('sha256').update(s).digest();
  return timingSafeEqual(digest(given), digest(token));
}

export function requireToken(token: string, opts: { basicRealm?: string } = {}) {
  return async (req: FastifyRequest, reply: FastifyReply) => {
    if (hasToken(req, token)) return;
    if (opts.basicRealm) reply.header('www-authenticate', `Basic realm="${opts.basicRealm}"`);
    else reply.header('www-authenticate', 'Bearer');
    throw new AppError('UNAUTHORIZED', 'a valid operator token is required');
  };
}

/** Does the client want HTML (a browser) rather than JSON? */
export function wantsHtml(req: FastifyRequest): boolean {
  const accept = req.headers.accept ?? '';
  return accept.includes('text/html');
}
