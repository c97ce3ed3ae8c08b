/** The SSE plumbing: headers at once, one shared heartbeat for every stream, all closed on shutdown. */
import Fastify from 'fastify';
import { fastifySSE } from '@fastify/sse';
import { describe, expect, it } from 'vitest';
import { SseRegistry, frame } from '../../../src/where/sse.js';

describe('SseRegistry', () => {
  it('flushes headers at once, heartbeats every stream, and ends them all when the server closes', async () => {
    const app = Fastify();
    await app.register(fastifySSE, { heartbeatInterval: 0 });
    const sse = new SseRegistry(app, 50);
    app.get('/s', { sse: 'only' }, async (_req, reply) => {
      const c = sse.open(reply, () => {});
      c.write(frame('hello', { n: 1 }, 7));
      return reply;
    });
    const url = await app.listen({ port: 0, host: '127.0.0.1' });
    const bodies = await Promise.all(
      [0, 1].map(async () => {
        const res = await fetch(`${url}/s`, { headers: { accept: 'text/event-stream' } });
        expect(res.headers.get('content-type')).toContain('text/event-stream');
        const reader = res.body!.getReader();
        let text = '';
        while ((text.match(/: keep-alive/g) ?? []).length < 2)
          text += new TextDecoder().decode((await reader.read()).value);
        return { text, reader };
      }),
    );
    for (const b of bodies) {
      expect(b.text).toContain('retry: 2000');
      expect(b.text).toContain('id: 7\nevent: hello\ndata: {"n":1}\n\n');
    }
    expect(sse.size).toBe(2);
    await app.close();
    expect(sse.size).toBe(0);
    for (const b of bodies) {
      let done = false;
      while (!done) done = (await b.reader.read()).done;
      expect(done).toBe(true);
    }
  });
});
