/**
 * A scripted stand-in for the landing app, for browser tests: serves the rendered pages and the
 * freshly bundled scripts under a strict CSP, and lets the test drive `/events`, `POST /launches`
 * and each launch's SSE stream by hand.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { build } from 'esbuild';
import type { FleetMessage, LaunchView } from '../../../src/where/wire.js';

export interface LaunchReply {
  readonly status: number;
  readonly body?: unknown;
  /** For form posts without JavaScript: answer with a redirect instead. */
  readonly location?: string;
}

export interface Posted {
  readonly contentType: string | undefined;
  readonly body: string;
}

export interface FakeSite {
  readonly url: string;
  /** Pages by path; each gets the request's nonce. */
  page(path: string, render: (nonce: string) => string): void;
  /** What the next `POST /launches` gets. */
  replyToLaunch(reply: LaunchReply): void;
  readonly posts: Posted[];
  /** Sends one fleet message to every connected `/events` client. */
  fleet(msg: FleetMessage | { event: string; data: string }): void;
  fleetClients(): number;
  /** Sends a launch message on a launch stream (with `id:` = version). */
  launch(launchId: string, view: LaunchView): void;
  /** Ends a launch stream from the server side (the browser reconnects). */
  dropLaunch(launchId: string): void;
  launchConnections(launchId: string): number;
  /** Last-Event-ID headers seen on reconnects of a launch stream. */
  lastEventIds(launchId: string): string[];
  close(): Promise<void>;
}

let bundles: Promise<Record<string, string>> | undefined;

/** Bundles the two browser entries the way scripts/build.mjs does (ESM, minified, es2022). */
export function bundleWeb(): Promise<Record<string, string>> {
  bundles ??= build({
    entryPoints: { app: 'src/where/web/app.ts', dash: 'src/where/web/dash.ts' },
    bundle: true,
    platform: 'browser',
    format: 'esm',
    target: 'es2022',
    minify: true,
    write: false,
    outdir: 'out',
    logLevel: 'warning',
  }).then((r) => Object.fromEntries(r.outputFiles.map((f) => [f.path.split('/').at(-1)!, f.text])));
  return bundles;
}

function sse(res: ServerResponse): void {
  res.writeHead(200, {
    'content-type': 'text/event-stream',
    'cache-control': 'no-cache',
    connection: 'keep-alive',
  });
  res.write('retry: 200\n\n');
  res.flushHeaders();
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    let s = '';
    req.on('data', (c: Buffer) => (s += c.toString('utf8')));
    req.on('end', () => resolve(s));
  });
}

export async function startFakeSite(): Promise<FakeSite> {
  const js = await bundleWeb();
  const pages = new Map<string, (nonce: string) => string>();
  const fleetRes = new Set<ServerResponse>();
  const launchRes = new Map<string, Set<ServerResponse>>();
  const lastIds = new Map<string, string[]>();
  const posts: Posted[] = [];
  let nextReply: LaunchReply = {
    status: 503,
    body: {
      statusCode: 503,
      code: 'NOT_SCRIPTED',
      error: 'Service Unavailable',
      message: 'Not scripted.',
    },
  };
  let nonceSeq = 0;

  const server: Server = createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://x');
      const path = url.pathname;
      if (req.method === 'GET' && pages.has(path)) {
        const nonce = `n${++nonceSeq}x${Math.random().toString(36).slice(2)}`;
        res.writeHead(200, {
          'content-type': 'text/html; charset=utf-8',
          'content-security-policy': `default-src 'none'; script-src 'nonce-${nonce}'; style-src 'nonce-${nonce}'; img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'`,
        });
        res.end(pages.get(path)!(nonce));
        return;
      }
      const asset = /^\/assets\/(app|dash)\.js$/.exec(path);
      if (asset) {
        res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8' });
        res.end(js[`${asset[1]}.js`]);
        return;
      }
      if (path === '/events') {
        sse(res);
        fleetRes.add(res);
        req.on('close', () => fleetRes.delete(res));
        return;
      }
      const stream = /^\/launches\/([^/]+)\/events$/.exec(path);
      if (stream) {
        const id = decodeURIComponent(stream[1]!);
        sse(res);
        const set = launchRes.get(id) ?? new Set();
        launchRes.set(id, set);
        set.add(res);
        const last = req.headers['last-event-id'];
        if (typeof last === 'string') lastIds.set(id, [...(lastIds.get(id) ?? []), last]);
        req.on('close', () => set.delete(res));
        return;
      }
      if (req.method === 'POST' && path === '/launches') {
        posts.push({ contentType: req.headers['content-type'], body: await readBody(req) });
        const reply = nextReply;
        if (reply.location) {
          res.writeHead(reply.status, { location: reply.location });
          res.end();
          return;
        }
        res.writeHead(reply.status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(reply.body));
        return;
      }
      if (path === '/machine') {
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
        res.end(
          '<!doctype html><title>Arrived</title><h1 id="arrived">You reached the machine</h1>',
        );
        return;
      }
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found');
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    page: (path, render) => pages.set(path, render),
    replyToLaunch: (reply) => {
      nextReply = reply;
    },
    posts,
    fleet: (msg) => {
      const data = typeof msg.data === 'string' ? msg.data : JSON.stringify(msg.data);
      for (const res of fleetRes) res.write(`event: ${msg.event}\ndata: ${data}\n\n`);
    },
    fleetClients: () => fleetRes.size,
    launch: (launchId, view) => {
      for (const res of launchRes.get(launchId) ?? [])
        res.write(`event: launch\nid: ${view.version}\ndata: ${JSON.stringify(view)}\n\n`);
    },
    dropLaunch: (launchId) => {
      for (const res of launchRes.get(launchId) ?? []) res.end();
      launchRes.get(launchId)?.clear();
    },
    launchConnections: (launchId) => launchRes.get(launchId)?.size ?? 0,
    lastEventIds: (launchId) => lastIds.get(launchId) ?? [],
    close: async () => {
      for (const res of fleetRes) res.end();
      for (const set of launchRes.values()) for (const res of set) res.end();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
