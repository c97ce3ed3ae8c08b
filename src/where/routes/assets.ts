/**
 * The public listener's static files (the browser bundles and the page stylesheet), and how every
 * HTML page goes out: a fresh nonce per answer, and a Content-Security-Policy that admits only it.
 */
import { randomBytes } from 'node:crypto';
import type { FastifyReply } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { AppError } from '../../shared/errors.js';
import { PAGE_CSS } from '../views/styles.js';
import type { PageAssets } from '../views/landing.js';
import { errorBodySchema } from '../wire.js';

/** What the visitor's pages load; the dashboard has its own bundle. */
export const PAGE_ASSETS: PageAssets = { appJs: '/assets/app.js', css: '/assets/app.css' };
export const DASH_ASSETS: PageAssets = { appJs: '/assets/dash.js', css: '/assets/app.css' };

const ASSET_TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
};

function csp(nonce: string): string {
  return [
    "default-src 'self'",
    `script-src 'self' 'nonce-${nonce}'`,
    `style-src 'self' 'nonce-${nonce}'`,
    "img-src 'self' data:",
    "connect-src 'self'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
    "form-action 'self'",
  ].join('; ');
}

/** Send an HTML page rendered with this answer's nonce; never kept by a cache. */
export function sendPage(
  reply: FastifyReply,
  render: (nonce: string) => string,
  status = 200,
): FastifyReply {
  const nonce = randomBytes(12).toString('base64');
  return reply
    .code(status)
    .header('content-type', 'text/html; charset=utf-8')
    .header('content-security-policy', csp(nonce))
    .header('cache-control', 'no-store')
    .send(render(nonce));
}

export const assetRoutes: FastifyPluginAsyncZod<{
  /** Browser bundles (built by scripts/build.mjs), by file name. */
  files: ReadonlyMap<string, Buffer>;
}> = async (app, { files }) => {
  const send = (reply: FastifyReply, type: string | undefined, body: string | Buffer) =>
    reply.header('content-type', type).header('cache-control', 'public, max-age=300').send(body);

  app.get('/assets/app.css', async (_req, reply) => send(reply, ASSET_TYPES['.css'], PAGE_CSS));

  app.get(
    '/assets/:file',
    { schema: { params: z.object({ file: z.string() }), response: { '4xx': errorBodySchema } } },
    async (req, reply) => {
      const { file } = req.params;
      const body = files.get(file);
      const type = ASSET_TYPES[file.slice(file.lastIndexOf('.'))];
      if (!body || !type) throw new AppError('NOT_FOUND', 'no such asset');
      return send(reply, type, body);
    },
  );
};
