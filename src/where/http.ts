/**
 * HTTP plumbing of the landing app's two listeners: one error handler (typed errors → stable codes,
 * anything else → a logged 500 that says nothing about our insides), the not-found answer, the
 * operator-token check, and what routes read off a request (HTML or JSON, a form, its origin).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../shared/errors.js';
import { errorBody } from '../shared/errorBody.js';
import { isRegionCode } from '../shared/regions.js';
import type { WhereConfig } from './config.js';

export { errorBody };

/** The answer to any error a route, hook or parser throws (routes may wrap it, never re-word it). */
export function sendError(
  err: FastifyError | AppError | Error,
  req: FastifyRequest,
  reply: FastifyReply,
): FastifyReply {
  if (err instanceof AppError) {
    if (err.statusCode >= 500) req.log.error({ err }, err.message);
    if (err.retryAfterMs) reply.header('retry-after', Math.ceil(err.retryAfterMs / 1000));
    return reply.code(err.statusCode).send(errorBody(err.statusCode, err.code, err.message));
  }
  const fe = err as FastifyError;
  if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
    // Fastify's own client errors (bad JSON, body too large, wrong content type): keep their code.
    return reply
      .code(fe.statusCode)
      .send(errorBody(fe.statusCode, fe.code ?? 'BAD_REQUEST', fe.message));
  }
  req.log.error({ err }, 'unhandled error');
  return reply.code(500).send(errorBody(500, 'INTERNAL', 'something went wrong on our side'));
}

export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler(sendError);
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

/** The `onRequest` hook of the dashboard's routes: open in local mode, else the operator token. */
export function operatorsOnly(cfg: WhereConfig) {
  const check = requireToken(cfg.debugToken, { basicRealm: 'WhereMachines operators' });
  return async (req: FastifyRequest, reply: FastifyReply) => {
    if (!cfg.local) await check(req, reply);
  };
}

/** Does the client want HTML (a browser) rather than JSON? */
export function wantsHtml(req: FastifyRequest): boolean {
  const accept = req.headers.accept ?? '';
  return accept.includes('text/html');
}

/** A form posted without JavaScript: it is answered with a redirect or a page, not JSON. */
export function isForm(req: FastifyRequest): boolean {
  return req.headers['content-type']?.startsWith('application/x-www-form-urlencoded') ?? false;
}

/** The visitor's edge region, from Fly's proxy (or ours locally); only a known code counts. */
export function edgeRegion(req: FastifyRequest): string | undefined {
  const h = req.headers['fly-region'];
  const v = Array.isArray(h) ? h[0] : h;
  return v && isRegionCode(v) ? v : undefined;
}

/**
 * A `preValidation` hook for the routes that change something: refuse requests a third-party page
 * made the visitor's browser send, before their body is even looked at.
 */
export function sameOrigin(publicUrl: string) {
  return async (req: FastifyRequest) => {
    const site = req.headers['sec-fetch-site'];
    if (site && site !== 'same-origin' && site !== 'none') throw crossSite();
    const origin = req.headers.origin;
    if (origin === 'null') throw crossSite();
    if (!origin) return;
    // Host, not X-Forwarded-Host: anyone can send the latter; the browser sets the former.
    const host = req.headers.host;
    // An Origin that is not a URL comes from no page of ours (and must not become a 500).
    const ok =
      origin === publicUrl ||
      (host !== undefined && URL.canParse(origin) && new URL(origin).host === host);
    if (!ok) throw crossSite();
  };
}

const crossSite = () => new AppError('CROSS_SITE', 'launches must come from this site');
