/**
 * The edge proxy of the local Fly platform: picks an app by Host (or `/_app/<app>/` prefix), an
 * instance by edge region, adds the headers Fly's proxy adds, streams responses (SSE included), and
 * replays requests answered with `fly-replay` the way Fly's proxy does.
 */
import {
  createServer,
  Agent,
  type ClientRequest,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo, Server, Socket } from 'node:net';
import { errorMessage } from '../shared/errors.js';
import { silentLogger, type Logger } from '../shared/log.js';
import { sendEdgeError } from './edgeErrors.js';
import { readBody, relayResponse, sendToInstance, type UpstreamPool } from './edgeForward.js';
import { forwardedHeaders } from './edgeHeaders.js';
import { decideReplay } from './edgeReplay.js';
import {
  isStarted,
  pickNearest,
  routeRequest,
  Turns,
  type EdgeDirectory,
  type RoutingOptions,
} from './edgeRouting.js';

export { EDGE_ERROR_CODES, type EdgeErrorCode } from './edgeErrors.js';
export { VIA } from './edgeHeaders.js';
export { parseFlyReplay, type ReplayDirective } from './edgeReplay.js';
export { EDGE_COOKIE, pickNearest, type EdgeDirectory, type EdgeInstance } from './edgeRouting.js';

export interface EdgeProxyOptions {
  port: number;
  host?: string;
  /** The edge region every request "arrives" in, unless `?edge=`/the `wm-edge` cookie says otherwise. */
  defaultRegion: string;
  directory: EdgeDirectory;
  /** The app for any Host that names no other (default `where`). */
  defaultApp?: string;
  /** Exact host names (no port) → app. Default `{ 'useless-machine.localhost': 'useless-machine' }`. */
  appHosts?: Record<string, string>;
  log?: Logger;
  /** Replays one request may go through before it is refused as a loop (default 5). */
  maxReplays?: number;
  /** Bodies up to this size are kept for replays (default 1 MB, as on Fly). */
  replayBodyLimit?: number;
}

export interface EdgeProxy {
  url: string;
  close(): Promise<void>;
}

const ONE_MB = 1024 * 1024;

/** One request through the edge: route, pick, send, and follow `fly-replay` until an answer is relayed. */
function requestHandler(
  opts: EdgeProxyOptions,
  routing: RoutingOptions,
  pool: UpstreamPool,
  log: Logger,
): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  const maxReplays = opts.maxReplays ?? 5;
  const bodyLimit = opts.replayBodyLimit ?? ONE_MB;
  const turns = new Turns();
  const directory = opts.directory;
  return async (req, res) => {
    const port = req.socket.localPort ?? opts.port;
    const r = routeRequest(req, routing);
    const baseHeaders = forwardedHeaders(req, r.edgeRegion, port);
    const candidates = (await directory.instances(r.app)).filter(isStarted);
    let target = pickNearest(candidates, r.edgeRegion, turns.next(r.app));
    if (!target) {
      sendEdgeError(
        res,
        'NO_INSTANCE',
        `no started instance of app "${r.app}" to take this request`,
      );
      return;
    }
    const body = await readBody(req, bodyLimit);
    if (body.kind === 'aborted') return;
    let app = r.app;
    let extra: OutgoingHttpHeaders = {};
    for (let replays = 0; ; replays++) {
      const headers = { ...baseHeaders, ...extra };
      const sent = await sendToInstance(pool, req, res, { target, path: r.path, headers, body });
      if (!sent.ok) {
        log.warn({ app, instance: target.id, err: sent.error }, 'instance unreachable');
        const message = `instance ${target.id} of app "${app}" did not answer: ${sent.error}`;
        sendEdgeError(res, 'INSTANCE_UNREACHABLE', message);
        return;
      }
      const directive = sent.upstream.headers['fly-replay'];
      if (directive === undefined) {
        relayResponse(sent, res, r.setCookie);
        return;
      }
      // The instance asked for a replay: its own answer never reaches the client.
      sent.upstream.resume();
      const header = Array.isArray(directive) ? directive.join(';') : directive;
      const next = await decideReplay(header, {
        directory,
        turns,
        app,
        responder: target,
        edgeRegion: r.edgeRegion,
        replays,
        maxReplays,
        bodyKept: body.kind !== 'stream',
        bodyLimit,
      });
      if (!next.ok) {
        sendEdgeError(res, next.code, next.message);
        return;
      }
      log.debug(
        { from: target.id, to: next.target.id, app: next.app, directive: header },
        'replaying',
      );
      extra = next.headers;
      app = next.app;
      target = next.target;
    }
  };
}

async function listen(server: Server, port: number, host: string): Promise<string> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const shown = address.address.includes(':') ? `[${address.address}]` : address.address;
  return `http://${shown === '[::]' || shown === '0.0.0.0' ? 'localhost' : shown}:${address.port}`;
}

export async function startEdgeProxy(opts: EdgeProxyOptions): Promise<EdgeProxy> {
  const log = (opts.log ?? silentLogger()).child({ component: 'edge-proxy' });
  const routing: RoutingOptions = {
    defaultApp: opts.defaultApp ?? 'where',
    appHosts: opts.appHosts ?? { 'useless-machine.localhost': 'useless-machine' },
    defaultRegion: opts.defaultRegion,
  };
  const pool: UpstreamPool = {
    agent: new Agent({ keepAlive: true, maxSockets: 256 }),
    inFlight: new Set<ClientRequest>(),
  };
  const handle = requestHandler(opts, routing, pool, log);
  const sockets = new Set<Socket>();
  let closing = false;

  const server = createServer((req, res) => {
    if (closing) {
      sendEdgeError(res, 'PROXY_CLOSING', 'the edge proxy is shutting down', {
        connection: 'close',
      });
      return;
    }
    handle(req, res).catch((err: unknown) => {
      log.error({ err: errorMessage(err) }, 'proxy failure');
      sendEdgeError(res, 'PROXY_ERROR', errorMessage(err));
    });
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.on('clientError', (_err, socket: Socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n');
    else socket.destroy();
  });

  const url = await listen(server, opts.port, opts.host ?? '127.0.0.1');
  log.info(
    { url, defaultApp: routing.defaultApp, defaultRegion: opts.defaultRegion },
    'edge proxy listening',
  );

  let closed: Promise<void> | undefined;
  return {
    url,
    close: () =>
      (closed ??= (async () => {
        closing = true;
        const done = new Promise<void>((resolve) => server.close(() => resolve()));
        for (const up of pool.inFlight) up.destroy();
        for (const s of sockets) s.destroy();
        pool.agent.destroy();
        await done;
      })()),
  };
}
