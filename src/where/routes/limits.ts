/**
 * What every request to the public listener goes through first: a per-address request limit
 * (429 with retry-after) and the headers every answer carries.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Clock } from '../../ports/clock.js';
import { AppError } from '../../shared/errors.js';
import type { WhereConfig } from '../config.js';
import { SlidingWindowLimiter, clientIpOf } from '../services/rateLimit.js';

// One reader per app configuration: it parses the trust list once and remembers which untrusted
// peers it already warned about.
const readers = new WeakMap<WhereConfig, ReturnType<typeof clientIpOf>>();

/** The client address limits count by (Fly-Client-IP only from Fly's proxy, ADR 0020). */
export function clientAddress(cfg: WhereConfig, req: FastifyRequest): string {
  let read = readers.get(cfg);
  if (!read) {
    read = clientIpOf(cfg.limits.trustedProxies, req.log);
    readers.set(cfg, read);
  }
  return read(req);
}

/** An `onRequest` hook on the whole listener, ahead of every route (and of not-found). */
export function limitRequests(app: FastifyInstance, cfg: WhereConfig, clock: Clock): void {
  const requests = new SlidingWindowLimiter(cfg.limits.requestsPerMinute, 60_000);
  app.addHook('onRequest', async (req, reply) => {
    const r = requests.hit(clientAddress(cfg, req), clock.now());
    if (!r.ok) {
      throw new AppError('RATE_LIMITED', 'too many requests from your address; slow down', {
        retryAfterMs: r.retryAfterMs,
      });
    }
    reply.header('x-content-type-options', 'nosniff');
    reply.header('referrer-policy', 'same-origin');
  });
}
