/**
 * The chaos harness's HTTP client: a fresh connection per request, so a killed peer never poisons
 * a pool, the body parsed as JSON when it is; and a bounded-concurrency map for many such requests.
 */
import { request as httpRequest } from 'node:http';

export const HTTP_TIMEOUT_MS = 45_000;

export interface HttpResult {
  status: number;
  body: unknown;
  text: string;
}

export function http(
  url: string,
  o: { method?: string; headers?: Record<string, string>; body?: string; timeoutMs?: number } = {},
): Promise<HttpResult> {
  const timeoutMs = o.timeoutMs ?? HTTP_TIMEOUT_MS;
  return new Promise((resolvePromise, reject) => {
    const req = httpRequest(
      url,
      { method: o.method ?? 'GET', headers: o.headers ?? {}, agent: false, timeout: timeoutMs },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let body: unknown;
          try {
            body = JSON.parse(text) as unknown;
          } catch {
            body = undefined;
          }
          resolvePromise({ status: res.statusCode ?? 0, body, text });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(o.body);
  });
}

export async function mapLimit<T, R>(
  items: readonly T[],
  n: number,
  fn: (t: T) => Promise<R>,
): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.min(n, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  });
  await Promise.all(workers);
  return out;
}
