/**
 * Flood drivers for G10 (one IP) and G11 (many IPs) over real loopback sockets: clicks on
 * POST /launches, each answer's status, code and latency recorded, live VMs sampled from the Fly
 * fake, event-loop delay from perf_hooks. Bounded by count; the CI tests and
 * bench/reliability/floods.ts share them.
 */
import { Agent, request } from 'node:http';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { FakeFlyMachines } from '../../src/adapters/fly/fakeFlyMachines.js';

export interface ClickResult {
  ip: string;
  status: number;
  code?: string;
  /** The accepted launch's id (202). */
  launchId?: string;
  ms: number;
}

export interface FloodResult {
  results: ClickResult[];
  /** Highest number of live machines Fly held at any sample. */
  maxLive: number;
  samples: number;
  flyCreates: number;
  /** Event-loop delay over the flood (server and client share this process), ms. */
  loopDelay: { p50: number; p99: number; max: number };
  elapsedMs: number;
}

/** One POST /launches, as a same-origin page sends it, from `localAddress` (a 127/8 address). */
export function click(
  base: string,
  opts: { localAddress?: string; agent?: Agent | false } = {},
): Promise<ClickResult> {
  const url = new URL('/launches', base);
  const started = performance.now();
  return new Promise((resolve) => {
    const req = request(
      {
        host: url.hostname,
        port: url.port,
        path: url.pathname,
        method: 'POST',
        agent: opts.agent ?? false,
        ...(opts.localAddress ? { localAddress: opts.localAddress } : {}),
        headers: {
          'content-type': 'application/json',
          origin: url.origin,
          'sec-fetch-site': 'same-origin',
        },
        timeout: 30_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          let body: { code?: string; launchId?: string } = {};
          try {
            body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as typeof body;
          } catch {
            body = {};
          }
          const { code, launchId } = body;
          resolve({
            ip: opts.localAddress ?? '127.0.0.1',
            status: res.statusCode ?? 0,
            ...(code ? { code } : {}),
            ...(launchId ? { launchId } : {}),
            ms: performance.now() - started,
          });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () =>
      resolve({ ip: opts.localAddress ?? '127.0.0.1', status: 0, ms: performance.now() - started }),
    );
    req.end('{}');
  });
}

/** The i-th of many distinct loopback client addresses: 127.1.0.1, 127.1.0.2, … (never .0/.255). */
export function loopbackIp(i: number): string {
  const host = (i % 254) + 1;
  const mid = Math.floor(i / 254);
  return `127.${1 + Math.floor(mid / 256)}.${mid % 256}.${host}`;
}

function watch(fly: FakeFlyMachines) {
  const eld = monitorEventLoopDelay({ resolution: 10 });
  eld.enable();
  let maxLive = 0;
  let samples = 0;
  const sample = () => {
    samples++;
    maxLive = Math.max(maxLive, fly.live().length);
  };
  const timer = setInterval(sample, 10);
  const started = performance.now();
  return {
    sample,
    finish(results: ClickResult[]): FloodResult {
      clearInterval(timer);
      sample();
      eld.disable();
      return {
        results,
        maxLive,
        samples,
        flyCreates: fly.count('create'),
        loopDelay: {
          p50: eld.percentile(50) / 1e6,
          p99: eld.percentile(99) / 1e6,
          max: eld.max / 1e6,
        },
        elapsedMs: performance.now() - started,
      };
    },
  };
}

/**
 * G10: `clicks` clicks from one address, started evenly over `overMs` whether or not earlier ones
 * have been answered (open loop, like a script hammering the button), on keep-alive connections.
 */
export async function oneIpFlood(
  base: string,
  fly: FakeFlyMachines,
  o: { clicks: number; overMs: number },
): Promise<FloodResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  const w = watch(fly);
  const pending: Promise<ClickResult>[] = [];
  const t0 = performance.now();
  try {
    for (let i = 0; i < o.clicks; i++) {
      const due = t0 + (i * o.overMs) / o.clicks;
      const wait = due - performance.now();
      if (wait > 1) await new Promise((r) => setTimeout(r, wait));
      pending.push(click(base, { agent }).finally(w.sample));
    }
    return w.finish(await Promise.all(pending));
  } finally {
    agent.destroy();
  }
}

/**
 * G11: `ips` distinct client addresses × `clicksPerIp` clicks, each on its own connection from its
 * own address, at most `concurrency` in flight; rounds go over every address before the next.
 */
export async function manyIpFlood(
  base: string,
  fly: FakeFlyMachines,
  o: { ips: number; clicksPerIp: number; concurrency: number },
): Promise<FloodResult> {
  const w = watch(fly);
  const jobs: string[] = [];
  for (let round = 0; round < o.clicksPerIp; round++)
    for (let i = 0; i < o.ips; i++) jobs.push(loopbackIp(i));
  const results: ClickResult[] = [];
  let next = 0;
  const worker = async () => {
    while (next < jobs.length) {
      const ip = jobs[next++]!;
      results.push(await click(base, { localAddress: ip }));
      w.sample();
    }
  };
  await Promise.all(Array.from({ length: o.concurrency }, worker));
  return w.finish(results);
}

/** Answers grouped as `status code: count`. */
export function byStatus(results: readonly ClickResult[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of results) {
    const k = `${r.status}${r.code ? ` ${r.code}` : ''}`;
    out[k] = (out[k] ?? 0) + 1;
  }
  return out;
}

/** The p-th percentile (0–100) of some numbers, nearest rank. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}
