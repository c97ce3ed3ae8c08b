/**
 * Carrying one request to an instance and its answer back: the body is kept while it fits the
 * replay limit (past it, streamed and no longer replayable), the response head is flushed at once
 * and its body piped (an event stream stays open), an answer the instance gives before the body
 * is all sent still reaches the client, and either side going away ends the other.
 */
import type { Socket } from 'node:net';
import {
  request as httpRequest,
  type Agent,
  type ClientRequest,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  type ServerResponse,
} from 'node:http';
import { errorMessage } from '../shared/errors.js';
import { relayedHeaders } from './edgeHeaders.js';
import type { EdgeInstance } from './edgeRouting.js';

export type Body =
  | { kind: 'none' }
  | { kind: 'buffered'; data: Buffer }
  | { kind: 'stream'; prefix: Buffer[] }
  | { kind: 'aborted' };

/**
 * Read the request body while it fits in `limit` (so it can be replayed). Past the limit, stop
 * reading and hand over what was read: the rest is streamed to the first instance and cannot be replayed.
 */
export function readBody(req: IncomingMessage, limit: number): Promise<Body> {
  const hasBody =
    req.headers['transfer-encoding'] !== undefined ||
    Number(req.headers['content-length'] ?? 0) > 0;
  if (!hasBody) return Promise.resolve({ kind: 'none' });
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const cleanup = (): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onAbort);
      req.off('close', onClose);
    };
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk);
      size += chunk.length;
      if (size > limit) {
        req.pause();
        cleanup();
        resolve({ kind: 'stream', prefix: chunks });
      }
    };
    const onEnd = (): void => {
      cleanup();
      resolve({ kind: 'buffered', data: Buffer.concat(chunks) });
    };
    const onAbort = (): void => {
      cleanup();
      resolve({ kind: 'aborted' });
    };
    const onClose = (): void => {
      if (!req.complete) onAbort();
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onAbort);
    req.on('close', onClose);
  });
}

/** The proxy's connections to instances: one keep-alive agent, and every request still out. */
export interface UpstreamPool {
  readonly agent: Agent;
  readonly inFlight: Set<ClientRequest>;
}

export type Attempt =
  { ok: true; upstream: IncomingMessage; request: ClientRequest } | { ok: false; error: string };

function bodyHeaders(req: IncomingMessage, body: Body): OutgoingHttpHeaders {
  if (body.kind === 'buffered') return { 'content-length': body.data.length };
  if (body.kind !== 'stream') return {};
  return req.headers['content-length']
    ? { 'content-length': req.headers['content-length'] }
    : { 'transfer-encoding': 'chunked' };
}

/** A write that failed because the instance closed its side: it may have answered already. */
const PEER_CLOSED = new Set(['EPIPE', 'ECONNRESET']);
/** Sockets whose writes are guarded: the write error swallowed (if any), and the request on it. */
interface Guard {
  failed?: Error;
  request?: ClientRequest;
}
const guarded = new WeakMap<Socket, Guard>();

/**
 * An instance may answer before it has read the whole body (a 413 for a body over its limit, a 401
 * before an upload) and close the connection; the next write then fails with EPIPE or ECONNRESET.
 * Node's socket destroys itself on a failed write, usually before it has read the answer that is
 * already waiting in the kernel, and its HTTP client reports the write error instead of the answer.
 * Fly's proxy relays the answer, so here a write that fails that way is swallowed (the rest of the
 * body is dropped) and the socket keeps reading: the answer arrives as usual, or the connection's
 * end does (then the request fails with the write error, see `unreachable`). Wrapping `_write`
 * and `_writev`, the hooks every Writable calls, is the one place that sees the error before the
 * socket acts on it.
 */
function guardWrites(socket: Socket, request: ClientRequest): void {
  const known = guarded.get(socket);
  if (known) {
    known.request = request;
    return;
  }
  const state: Guard = { request };
  guarded.set(socket, state);
  type Done = (err?: Error | null) => void;
  const swallow =
    (cb: Done): Done =>
    (err) => {
      const code = err && 'code' in err ? String(err.code) : '';
      if (err && PEER_CLOSED.has(code)) {
        state.failed ??= err;
        // The connection is spent: once this answer is read it must not carry another request.
        if (state.request) state.request.shouldKeepAlive = false;
        cb();
      } else cb(err);
    };
  const write = socket._write.bind(socket);
  const writev = socket._writev?.bind(socket);
  socket._write = (chunk: unknown, encoding: BufferEncoding, cb: Done): void => {
    if (state.failed) cb();
    else write(chunk, encoding, swallow(cb));
  };
  if (writev) {
    socket._writev = (chunks: { chunk: unknown; encoding: BufferEncoding }[], cb: Done): void => {
      if (state.failed) cb();
      else writev(chunks, swallow(cb));
    };
  }
}

/** Why an attempt got no answer: a body write the instance cut short says more than "hang up". */
function unreachable(up: ClientRequest, err: Error): string {
  const failed = up.socket ? guarded.get(up.socket)?.failed : undefined;
  if (!failed) return errorMessage(err);
  return `${errorMessage(failed)} while sending the body, and no answer came (${errorMessage(err)})`;
}

/** Send one attempt to `target`; resolves with the response head, or an error. */
export function sendToInstance(
  pool: UpstreamPool,
  req: IncomingMessage,
  res: ServerResponse,
  to: { target: EdgeInstance; path: string; headers: OutgoingHttpHeaders; body: Body },
): Promise<Attempt> {
  return new Promise((resolve) => {
    let url: URL;
    try {
      url = new URL(to.target.url);
    } catch {
      resolve({ ok: false, error: `instance ${to.target.id} has a bad address: ${to.target.url}` });
      return;
    }
    const up = httpRequest({
      protocol: url.protocol,
      hostname: url.hostname.replace(/^\[|\]$/g, ''),
      port: url.port,
      method: req.method,
      path: to.path,
      headers: { ...to.headers, ...bodyHeaders(req, to.body) },
      agent: pool.agent,
    });
    pool.inFlight.add(up);
    up.once('socket', (socket: Socket) => guardWrites(socket, up));
    // The client gave up before the instance answered: stop waiting on its behalf.
    const onClientGone = (): void => void up.destroy();
    res.once('close', onClientGone);
    up.on('close', () => {
      pool.inFlight.delete(up);
      res.off('close', onClientGone);
    });
    up.once('response', (upstream) => {
      res.off('close', onClientGone);
      resolve({ ok: true, upstream, request: up });
    });
    // `on`, not `once`: a late error after the answer must not go unhandled.
    up.on('error', (err) => resolve({ ok: false, error: unreachable(up, err) }));
    const body = to.body;
    if (body.kind === 'buffered') up.end(body.data);
    else if (body.kind === 'stream') {
      for (const c of body.prefix) up.write(c);
      req.pipe(up);
      req.resume();
      // The instance closed before the body ended (it answered early, or broke): the rest of the
      // body is read and dropped, so the client, still sending, can read the answer rather than
      // fail its own write the same way.
      up.once('close', () => {
        if (req.complete) return;
        req.unpipe(up);
        req.resume();
      });
    } else up.end();
  });
}

/** Stream the instance's answer to the client: head first, then the body as it comes (SSE too). */
export function relayResponse(
  sent: { upstream: IncomingMessage; request: ClientRequest },
  res: ServerResponse,
  setCookie: string | undefined,
): void {
  const { upstream, request: upReq } = sent;
  res.writeHead(
    upstream.statusCode ?? 502,
    upstream.statusMessage,
    relayedHeaders(upstream, setCookie),
  );
  // Send the head now: an event stream's first event may be a long time coming.
  res.flushHeaders();
  upstream.pipe(res);
  // The instance went away mid-response: the client must see a broken response, not a short one.
  upstream.on('close', () => {
    if (!upstream.complete) res.destroy();
  });
  // The visitor left (or the stream ended): release the instance's side too.
  res.on('close', () => {
    if (!upstream.complete) upReq.destroy();
  });
}
