/**
 * Helpers for client tests: a scripted `fetch` that records every request, and virtual time (a
 * ManualClock whose sleeps are timers) so retries, Retry-After and token waits run instantly.
 */
import { ManualClock } from '../../../src/adapters/system/manualClock.js';

export interface SentRequest {
  readonly url: URL;
  readonly method: string;
  readonly headers: Record<string, string>;
  readonly body: unknown;
  /** Virtual (or real) time at which it was sent. */
  readonly at: number;
}

export type Scripted =
  | { status: number; body?: unknown; text?: string; headers?: Record<string, string> }
  | { networkError: string }
  | { hang: true };

export function machineJson(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id: '3d8d9e1c2b4a78',
    name: 'quiet-switch-1234',
    state: 'started',
    region: 'ams',
    instance_id: '01J0000000000000000000000A',
    private_ip: 'fdaa:0:1:a7b:1::2',
    config: { image: 'x', metadata: { launch_id: 'L1' } },
    created_at: '2026-01-01T00:00:00Z',
    updated_at: '2026-01-01T00:00:01Z',
    ...over,
  };
}

/**
 * A fetch that answers from a script (the last entry repeats) or from a function, and records
 * what was sent. `now` stamps each request.
 */
export function scriptedFetch(
  script: Scripted[] | ((req: SentRequest, n: number) => Scripted),
  now: () => number = () => Date.now(),
): { fetch: typeof globalThis.fetch; sent: SentRequest[] } {
  const sent: SentRequest[] = [];
  const fetch: typeof globalThis.fetch = async (input, init) => {
    const url = new URL(
      typeof input === 'string' ? input : input instanceof URL ? input.href : input.url,
    );
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries((init?.headers ?? {}) as Record<string, string>))
      headers[k.toLowerCase()] = v;
    const req: SentRequest = {
      url,
      method: init?.method ?? 'GET',
      headers,
      body: typeof init?.body === 'string' ? JSON.parse(init.body) : undefined,
      at: now(),
    };
    sent.push(req);
    const step =
      typeof script === 'function'
        ? script(req, sent.length - 1)
        : script[Math.min(sent.length - 1, script.length - 1)]!;
    if ('networkError' in step) {
      throw new TypeError('fetch failed', { cause: new Error(step.networkError) });
    }
    if ('hang' in step) {
      return new Promise<Response>((_resolve, reject) => {
        init?.signal?.addEventListener('abort', () =>
          reject(new DOMException('This operation was aborted', 'AbortError')),
        );
      });
    }
    const text = step.text ?? (step.body === undefined ? '' : JSON.stringify(step.body));
    return new Response(text === '' && (step.status === 204 || step.status === 304) ? null : text, {
      status: step.status,
      headers: { 'content-type': 'application/json', ...step.headers },
    });
  };
  return { fetch, sent };
}

/** A manual clock whose sleeps are timers on it, and a driver that advances it while work is pending. */
export class VirtualTime {
  readonly clock = new ManualClock(Date.UTC(2026, 0, 1));
  readonly sleeps: number[] = [];
  private n = 0;

  readonly sleep = (ms: number): Promise<void> => {
    this.sleeps.push(ms);
    return new Promise((resolve) =>
      this.clock.set(`sleep-${this.n++}`, this.clock.now() + ms, resolve),
    );
  };

  /** Run until `p` settles: let microtasks and I/O run, then jump to the next timer. */
  async run<T>(p: Promise<T>): Promise<T> {
    let done = false;
    const watched = p.finally(() => {
      done = true;
    });
    watched.catch(() => undefined);
    for (let guard = 0; !done && guard < 10_000; guard++) {
      await new Promise((r) => setImmediate(r));
      if (done) break;
      const next = Math.min(...this.clock.pending().values());
      if (Number.isFinite(next)) this.clock.setTime(next);
    }
    return p;
  }
}
