/**
 * Server-sent events over @fastify/sse, with fan-out on the raw socket: a frame is serialised once
 * and the same bytes go to every client (the plugin's per-client `send` would serialise per
 * client). A client that stops reading is dropped rather than buffered without bound; every open
 * stream is closed when the server shuts down.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import type {} from '@fastify/sse';

/** Bytes a client may leave unread before it is cut off. */
export const MAX_BACKLOG = 1 << 20;

export function frame(event: string, data: unknown, id?: string | number): string {
  return `${id !== undefined ? `id: ${id}\n` : ''}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

export interface SseClient {
  readonly id: number;
  /** The Last-Event-ID the browser sent when it reconnected, if any. */
  readonly lastEventId: string | null;
  write(chunk: string): boolean;
  close(): void;
  readonly closed: boolean;
}

let nextId = 1;

/** How often every open stream gets a comment, so proxies and browsers keep it open. */
export const HEARTBEAT_MS = 15_000;
const HEARTBEAT = ': keep-alive\n\n';

/**
 * Tracks open streams so shutdown can end them (else `app.close()` waits for every client), and
 * sends one heartbeat round for all of them (a timer per connection costs memory at 10k streams).
 * Routes register the plugin with `heartbeatInterval: 0`.
 */
export class SseRegistry {
  private readonly clients = new Set<SseClient>();
  private readonly heartbeat: NodeJS.Timeout;

  constructor(app: FastifyInstance, heartbeatMs = HEARTBEAT_MS) {
    this.heartbeat = setInterval(() => {
      for (const c of this.clients) c.write(HEARTBEAT);
    }, heartbeatMs);
    this.heartbeat.unref();
    app.addHook('preClose', async () => {
      clearInterval(this.heartbeat);
      for (const c of [...this.clients]) c.close();
    });
  }

  get size(): number {
    return this.clients.size;
  }

  /**
   * Start an SSE stream on a route registered with `{ sse: 'only' }`: headers flushed now (so the
   * browser's `onopen` fires), a retry hint, the shared heartbeat, cleanup on either side.
   */
  open(reply: FastifyReply, onClose: () => void, retryMs = 2000): SseClient {
    const sse = reply.sse;
    sse.keepAlive();
    sse.sendHeaders();
    const raw = reply.raw;
    raw.flushHeaders();
    raw.socket?.setNoDelay(true);
    let closed = false;
    const finish = () => {
      if (closed) return;
      closed = true;
      this.clients.delete(client);
      onClose();
    };
    const client: SseClient = {
      id: nextId++,
      lastEventId: sse.lastEventId,
      get closed() {
        return closed;
      },
      write(chunk: string) {
        if (closed) return false;
        if (raw.writableLength > MAX_BACKLOG) {
          // This far behind, the client is not reading: let it reconnect and start afresh.
          client.close();
          return false;
        }
        return raw.write(chunk);
      },
      close() {
        if (closed) return;
        finish();
        sse.close();
      },
    };
    this.clients.add(client);
    sse.onClose(finish);
    raw.write(`retry: ${retryMs}\n\n`);
    return client;
  }
}
