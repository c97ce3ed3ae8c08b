/**
 * What happens around every emulated Machines API call: Fly's rate limits (when enforced: per
 * action and machine, or per action and app for create and list), then the seeded faults before
 * the work (latency, 429, 5xx, a hang) and after it (a dropped connection, a malformed body), each
 * counted in the HTTP stats.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ActionBuckets, FLY_DEFAULT_LIMIT, FLY_GET_LIMIT } from '../adapters/fly/tokenBucket.js';
import type { Clock } from '../ports/clock.js';
import type { EmulatedAction, Faults } from './faults.js';
import type { HttpStats } from './stats.js';

export type ApiWork = (req: FastifyRequest) => Promise<{ status?: number; body: unknown }>;
export type ApiHandler = (req: FastifyRequest, reply: FastifyReply) => Promise<unknown>;

/** A 200 whose body does not parse as what the client expects; alternates truncated JSON and a wrong shape. */
let malformedCount = 0;
function malformedBody(): string {
  return malformedCount++ % 2 === 0
    ? '{"id": "0123456789abcd", "state": "sta'
    : '{"id": 42, "ok": "maybe", "state": null}';
}

const rateLimited = (reply: FastifyReply, action: EmulatedAction, retryAfterS: number): unknown =>
  reply
    .code(429)
    .header('retry-after', String(retryAfterS))
    .send({ error: `rate_limited: too many ${action} requests, slow down` });

/** Sleeps that closing the server cuts short, so no injected latency or hang holds it open. */
class Sleeps {
  private readonly pending = new Set<NodeJS.Timeout>();
  private readonly sleepers = new Set<() => void>();

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(t);
        this.pending.delete(t);
        this.sleepers.delete(done);
        resolve();
      };
      const t = setTimeout(done, ms);
      this.pending.add(t);
      this.sleepers.add(done);
    });
  }

  wakeAll(): void {
    for (const wake of [...this.sleepers]) wake();
    for (const t of this.pending) clearTimeout(t);
    this.pending.clear();
  }
}

/**
 * The bucket a request draws from: Fly limits each action per machine, and the app-wide ones
 * (create, list) per app. Keys are `<action> <app>[/<machine>]`.
 */
function bucketKey(action: EmulatedAction, req: FastifyRequest): string {
  const p = req.params as { app_name?: string; machine_id?: string };
  return `${action} ${p.app_name ?? ''}${p.machine_id ? `/${p.machine_id}` : ''}`;
}

export class ApiCalls {
  private readonly buckets: ActionBuckets<string>;
  private readonly sleeps = new Sleeps();

  constructor(
    private readonly faults: Faults,
    private readonly stats: HttpStats,
    /** How early a request may arrive and still fit the rate limit (network jitter). */
    private readonly graceMs: number,
    clock: Clock = { now: () => Date.now() },
  ) {
    this.buckets = new ActionBuckets<string>(
      (key) => (key.startsWith('get ') ? FLY_GET_LIMIT : FLY_DEFAULT_LIMIT),
      () => clock.now(),
    );
  }

  /** Wake every call that sleeps in a latency or a hang (the server is closing). */
  close(): void {
    this.sleeps.wakeAll();
  }

  /** Answer by dropping the connection (after holding it `holdMs`), counted as dropped. */
  private async drop(
    action: EmulatedAction,
    req: FastifyRequest,
    reply: FastifyReply,
    holdMs?: number,
  ): Promise<undefined> {
    this.stats.dropped[action] = (this.stats.dropped[action] ?? 0) + 1;
    reply.hijack();
    if (holdMs !== undefined) await this.sleeps.sleep(holdMs);
    req.raw.socket.destroy();
    return undefined;
  }

  /** Wrap an API handler with the rate limit and the faults before and after the real work. */
  handler(action: EmulatedAction, work: ApiWork): ApiHandler {
    return async (req, reply) => {
      this.stats.arrived(action, Date.now());
      if (this.faults.enforceRateLimits) {
        const r = this.buckets.bucket(bucketKey(action, req)).tryTake(this.graceMs);
        if (!r.ok) {
          this.stats.rateLimited[action] = (this.stats.rateLimited[action] ?? 0) + 1;
          return rateLimited(reply, action, Math.max(1, Math.ceil(r.retryAfterMs / 1000)));
        }
      }
      const d = this.faults.decide(action);
      if (d.latencyMs > 0) await this.sleeps.sleep(d.latencyMs);
      switch (d.fault) {
        case '429':
          return rateLimited(reply, action, d.retryAfterS);
        case '500':
        case '502':
        case '503':
        case '504':
          return reply.code(Number(d.fault)).send({ error: `internal: injected ${d.fault} fault` });
        case 'hang':
          return this.drop(action, req, reply, d.hangMs);
        default:
          break;
      }
      const result = await work(req);
      if (d.fault === 'dropAfterCommit') return this.drop(action, req, reply);
      if (d.fault === 'malformed') {
        return reply.code(200).type('application/json; charset=utf-8').send(malformedBody());
      }
      return reply.code(result.status ?? 200).send(result.body);
    };
  }
}
