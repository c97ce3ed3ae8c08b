/** Network helpers for benches: free ports, a one-shot HTTP GET, polling until something answers. */
import { request, type Agent } from 'node:http';
import { createServer } from 'node:net';

export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => (port > 0 ? resolve(port) : reject(new Error('no free port'))));
    });
  });
}

/** GET a URL on a fresh connection; resolves with the status (0 when nothing answered). */
export function httpStatus(
  url: string,
  timeoutMs = 500,
  agent: Agent | false = false,
): Promise<number> {
  return new Promise((resolve) => {
    const req = request(url, { agent, timeout: timeoutMs }, (res) => {
      res.resume();
      res.once('end', () => resolve(res.statusCode ?? 0));
      res.once('error', () => resolve(0));
    });
    req.once('timeout', () => req.destroy(new Error('timeout')));
    req.once('error', () => resolve(0));
    req.end();
  });
}

/** Poll `url` every `everyMs` until it answers 200; resolves with performance.now() at that answer. */
export async function pollUntilOk(
  url: string,
  deadlineMs: number,
  everyMs = 2,
  alive: () => boolean = () => true,
): Promise<number> {
  const until = performance.now() + deadlineMs;
  for (;;) {
    if ((await httpStatus(url, 250)) === 200) return performance.now();
    if (!alive()) throw new Error(`${url}: the process exited before it answered`);
    if (performance.now() > until)
      throw new Error(`${url} did not answer 200 within ${deadlineMs} ms`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
