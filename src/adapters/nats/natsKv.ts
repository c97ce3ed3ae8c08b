/**
 * Adapters: the capacity ledger, leases and presence on JetStream KV buckets. Every change is a
 * compare-and-set on the key's revision, retried (bounded) on conflict, so concurrent writers on
 * any number of connections or instances never both win: the cap holds cluster-wide.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import { JetStreamApiError, jetstream, StorageType } from '@nats-io/jetstream';
import { Kvm, type KV, type KvEntry } from '@nats-io/kv';
import { z } from 'zod';
import type { CapacityHold, CapacityLedger, ReserveResult } from '../../ports/capacity.js';
import type { Leases, Presence } from '../../ports/coordination.js';
import { errorMessage, StoreUnavailableError } from '../../shared/errors.js';
import type { Logger } from '../../shared/log.js';
import { isWrongLastSequence, retryTransient, sleep } from './retry.js';

export const DEFAULT_BUCKETS = {
  capacity: 'WM_CAPACITY',
  leases: 'WM_LEASES',
  presence: 'WM_PRESENCE',
} as const;

export interface NatsKvOptions {
  logger: Logger;
  /** Bucket name (override for isolation); defaults in DEFAULT_BUCKETS. */
  bucket?: string;
  /** Replicas of the bucket's stream (3 in a cluster). Default 1. */
  replicas?: number;
  /** How long one operation keeps retrying through a disconnect before StoreUnavailableError. Default 15 s. */
  unavailableAfterMs?: number;
  /** Timeout of one KV request (a read or a write and its ack). Default 5 s. */
  requestTimeoutMs?: number;
  /** Compare-and-set attempts before giving up under contention. Default 100. */
  maxCasAttempts?: number;
}

/** Too many writers raced on one key for too long: the operation did not happen. */
export class CasContentionError extends StoreUnavailableError {
  constructor(what: string, attempts: number) {
    super(`${what}: gave up after ${attempts} compare-and-set conflicts`);
    this.name = 'CasContentionError';
  }
}

/** Open (create if absent) a bucket with history 1 and file storage; reads go to the stream leader. */
export async function openBucket(
  nc: NatsConnection,
  name: string,
  opts: { replicas?: number; ttlMs?: number; timeoutMs?: number; requestTimeoutMs?: number } = {},
): Promise<KV> {
  const deadline = Date.now() + (opts.timeoutMs ?? 30_000);
  return retryTransient(`open KV bucket ${name}`, deadline, async () => {
    try {
      return await create(nc, name, opts);
    } catch (err) {
      // Two instances creating the same bucket at once: the loser opens the winner's. The server
      // says so as "stream name already in use" (10058) or, when the race is tighter, "subjects
      // overlap with an existing stream" (10065) — both mean the bucket exists now.
      if (
        err instanceof JetStreamApiError &&
        (err.code === 10058 ||
          err.code === 10065 ||
          /already in use|subjects overlap/i.test(err.message))
      ) {
        return create(nc, name, opts);
      }
      throw err;
    }
  });
}

/** The adapter's bucket: its own name or the default, with the adapter's replicas and timeouts. */
function openAdapterBucket(
  nc: NatsConnection,
  opts: NatsKvOptions,
  defaultName: string,
  ttlMs?: number,
): Promise<KV> {
  return openBucket(nc, opts.bucket ?? defaultName, {
    replicas: opts.replicas,
    timeoutMs: opts.unavailableAfterMs,
    requestTimeoutMs: opts.requestTimeoutMs,
    ...(ttlMs === undefined ? {} : { ttlMs }),
  });
}

function create(
  nc: NatsConnection,
  name: string,
  opts: { replicas?: number; ttlMs?: number; requestTimeoutMs?: number },
): Promise<KV> {
  return new Kvm(jetstream(nc, { timeout: opts.requestTimeoutMs ?? 5_000 })).create(name, {
    history: 1,
    replicas: opts.replicas ?? 1,
    storage: StorageType.File,
    // Direct gets may be answered by a lagging replica; coordination reads go to the leader.
    allow_direct: false,
    ...(opts.ttlMs ? { ttl: opts.ttlMs } : {}),
  });
}

/**
 * KV keys allow `[-/_=.A-Za-z0-9]`; names outside `[A-Za-z0-9_-]` are stored as `=` + base64url, which
 * no plain name can start with, so keys never collide and never carry wildcards or dots.
 */
export function keyFor(name: string): string {
  if (name.length === 0) throw new RangeError('empty KV key name');
  return /^[A-Za-z0-9_-]+$/.test(name)
    ? name
    : `=${Buffer.from(name, 'utf8').toString('base64url')}`;
}

export function nameForKey(key: string): string {
  return key.startsWith('=') ? Buffer.from(key.slice(1), 'base64url').toString('utf8') : key;
}

/** A JSON value of a KV entry checked against a schema; a deleted key or a bad value is undefined. */
function parseEntry<T>(entry: KvEntry | null, schema: z.ZodType<T>, log: Logger): T | undefined {
  if (!entry || entry.operation !== 'PUT') return undefined;
  let raw: unknown;
  try {
    raw = entry.json<unknown>();
  } catch {
    raw = undefined;
  }
  const parsed = schema.safeParse(raw);
  if (parsed.success) return parsed.data;
  log.error(
    { bucket: entry.bucket, key: entry.key, revision: entry.revision },
    'KV value does not parse; treating it as absent',
  );
  return undefined;
}

/** Shared plumbing: retries of transient failures and the CAS loop. */
abstract class KvAdapter {
  protected readonly log: Logger;
  protected readonly unavailableAfterMs: number;
  protected readonly maxCasAttempts: number;

  protected constructor(
    protected readonly kv: KV,
    protected readonly nc: NatsConnection,
    opts: NatsKvOptions,
    component: string,
  ) {
    this.log = opts.logger.child({ component });
    this.unavailableAfterMs = opts.unavailableAfterMs ?? 15_000;
    this.maxCasAttempts = opts.maxCasAttempts ?? 100;
  }

  protected io<T>(what: string, op: () => Promise<T>): Promise<T> {
    return retryTransient(what, Date.now() + this.unavailableAfterMs, op, {
      isClosed: () => this.nc.isClosed(),
      onRetry: (err) => this.log.warn({ err: errorMessage(err) }, `retrying: ${what}`),
    });
  }

  protected get(key: string): Promise<KvEntry | null> {
    return this.io(`read ${key}`, () => this.kv.get(key));
  }

  /**
   * Write `value` at `key` only if the key is still at `entry`'s revision (absent when `entry` is
   * null). Returns false on a conflict (someone wrote first).
   */
  protected async writeIfUnchanged(
    key: string,
    entry: KvEntry | null,
    value: unknown,
  ): Promise<boolean> {
    const body = JSON.stringify(value);
    try {
      await this.io(`write ${key}`, () =>
        entry ? this.kv.update(key, body, entry.revision) : this.kv.create(key, body),
      );
      return true;
    } catch (err) {
      if (isWrongLastSequence(err)) return false;
      throw err;
    }
  }

  protected async deleteIfUnchanged(key: string, entry: KvEntry): Promise<boolean> {
    try {
      await this.io(`delete ${key}`, () => this.kv.delete(key, { previousSeq: entry.revision }));
      return true;
    } catch (err) {
      if (isWrongLastSequence(err)) return false;
      throw err;
    }
  }

  /** Back off a little (jittered, growing) after losing a race, or give up after maxCasAttempts. */
  protected async lostRace(what: string, attempt: number): Promise<void> {
    if (attempt + 1 >= this.maxCasAttempts) throw new CasContentionError(what, attempt + 1);
    await sleep(Math.random() * Math.min(100, 2 * 2 ** attempt));
  }
}

const holdersValue = z.object({ holders: z.record(z.string(), z.number()) });

/**
 * CapacityLedger on one KV key holding `{ holders: { [holder]: until } }`. One key makes the limit
 * check and the write a single compare-and-set: two reservations can never both see a free slot.
 */
export class NatsCapacityLedger extends KvAdapter implements CapacityLedger {
  private readonly key: string;

  private constructor(kv: KV, nc: NatsConnection, opts: NatsKvOptions & { key?: string }) {
    super(kv, nc, opts, 'capacity-ledger');
    this.key = keyFor(opts.key ?? 'live-vms');
  }

  /** `key` names the ledger inside the bucket (one cap per key); default `live-vms`. */
  static async open(
    nc: NatsConnection,
    opts: NatsKvOptions & { key?: string },
  ): Promise<NatsCapacityLedger> {
    const kv = await openAdapterBucket(nc, opts, DEFAULT_BUCKETS.capacity);
    return new NatsCapacityLedger(kv, nc, opts);
  }

  reserve(holder: string, limit: number, now: number, until: number): Promise<ReserveResult> {
    return this.change<ReserveResult>(`reserve a slot for ${holder}`, now, (holders, live) => {
      const cur = holders.get(holder);
      if (cur !== undefined) {
        holders.set(holder, Math.max(cur, until));
        return { write: cur < until, result: { ok: true, live } };
      }
      if (live >= limit) return { write: false, result: { ok: false, live } };
      holders.set(holder, until);
      return { write: true, result: { ok: true, live: live + 1 } };
    });
  }

  async hold(holder: string, now: number, until: number): Promise<void> {
    await this.change(`hold a slot for ${holder}`, now, (holders) => {
      const cur = holders.get(holder) ?? 0;
      holders.set(holder, Math.max(cur, until));
      return { write: cur < until, result: undefined };
    });
  }

  async release(holder: string): Promise<void> {
    await this.change(`release ${holder}`, undefined, (holders) => ({
      write: holders.delete(holder),
      result: undefined,
    }));
  }

  async holds(now: number): Promise<CapacityHold[]> {
    const { holders } = this.parse(await this.get(this.key), now);
    return [...holders].map(([holder, until]) => ({ holder, until }));
  }

  private parse(entry: KvEntry | null, now: number | undefined): { holders: Map<string, number> } {
    const value = parseEntry(entry, holdersValue, this.log);
    const holders = new Map<string, number>();
    for (const [holder, until] of Object.entries(value?.holders ?? {})) {
      if (now === undefined || until > now) holders.set(holder, until);
    }
    return { holders };
  }

  /** Read, decide, compare-and-set; on a lost race read again. Expired holds are dropped on write. */
  private async change<R>(
    what: string,
    now: number | undefined,
    decide: (holders: Map<string, number>, live: number) => { write: boolean; result: R },
  ): Promise<R> {
    for (let attempt = 0; ; attempt++) {
      const entry = await this.get(this.key);
      const { holders } = this.parse(entry, now);
      const { write, result } = decide(holders, holders.size);
      if (!write) return result;
      if (await this.writeIfUnchanged(this.key, entry, { holders: Object.fromEntries(holders) }))
        return result;
      await this.lostRace(what, attempt);
    }
  }
}

const leaseValue = z.object({ holder: z.string(), until: z.number() });

/** Leases: one key per lease holding `{ holder, until }`; taken by create-if-absent or CAS on revision. */
export class NatsLeases extends KvAdapter implements Leases {
  private constructor(kv: KV, nc: NatsConnection, opts: NatsKvOptions) {
    super(kv, nc, opts, 'leases');
  }

  static async open(nc: NatsConnection, opts: NatsKvOptions): Promise<NatsLeases> {
    const kv = await openAdapterBucket(nc, opts, DEFAULT_BUCKETS.leases);
    return new NatsLeases(kv, nc, opts);
  }

  async acquire(name: string, holder: string, ttlMs: number, now: number): Promise<boolean> {
    const key = keyFor(name);
    for (let attempt = 0; ; attempt++) {
      const entry = await this.get(key);
      const cur = parseEntry(entry, leaseValue, this.log);
      if (cur && cur.until > now && cur.holder !== holder) return false;
      if (await this.writeIfUnchanged(key, entry, { holder, until: now + ttlMs })) return true;
      await this.lostRace(`acquire lease ${name}`, attempt);
    }
  }

  async release(name: string, holder: string): Promise<void> {
    const key = keyFor(name);
    for (let attempt = 0; ; attempt++) {
      const entry = await this.get(key);
      const cur = parseEntry(entry, leaseValue, this.log);
      if (!entry || cur?.holder !== holder) return;
      if (await this.deleteIfUnchanged(key, entry)) return;
      await this.lostRace(`release lease ${name}`, attempt);
    }
  }

  async holder(name: string, now: number): Promise<string | undefined> {
    const cur = parseEntry(await this.get(keyFor(name)), leaseValue, this.log);
    return cur && cur.until > now ? cur.holder : undefined;
  }
}

const presenceValue = z.object({ visitors: z.number().int().nonnegative(), until: z.number() });

/**
 * Presence: one key per instance holding `{ visitors, until }`. Each instance writes only its own key,
 * so a plain put suffices. The bucket's max age (default 1 h) sweeps keys of instances long gone.
 */
export class NatsPresence extends KvAdapter implements Presence {
  private constructor(kv: KV, nc: NatsConnection, opts: NatsKvOptions) {
    super(kv, nc, opts, 'presence');
  }

  static async open(
    nc: NatsConnection,
    opts: NatsKvOptions & { maxAgeMs?: number },
  ): Promise<NatsPresence> {
    const kv = await openAdapterBucket(
      nc,
      opts,
      DEFAULT_BUCKETS.presence,
      opts.maxAgeMs ?? 3_600_000,
    );
    return new NatsPresence(kv, nc, opts);
  }

  async report(instance: string, visitors: number, ttlMs: number, now: number): Promise<void> {
    const key = keyFor(instance);
    const body = JSON.stringify({ visitors, until: now + ttlMs });
    await this.io(`report presence of ${instance}`, () => this.kv.put(key, body));
  }

  async total(now: number): Promise<number> {
    let sum = 0;
    for (const r of await this.live(now)) sum += r.visitors;
    return sum;
  }

  async instances(now: number): Promise<string[]> {
    return (await this.live(now)).map((r) => r.instance);
  }

  async withdraw(instance: string): Promise<void> {
    const key = keyFor(instance);
    await this.io(`withdraw presence of ${instance}`, () => this.kv.delete(key));
  }

  private async live(now: number): Promise<{ instance: string; visitors: number }[]> {
    const keys = await this.io('list presence keys', async () => {
      const out: string[] = [];
      for await (const k of await this.kv.keys()) out.push(k);
      return out;
    });
    const entries = await Promise.all(keys.map((k) => this.get(k)));
    const out: { instance: string; visitors: number }[] = [];
    entries.forEach((entry, i) => {
      const r = parseEntry(entry, presenceValue, this.log);
      if (r && r.until > now) out.push({ instance: nameForKey(keys[i]!), visitors: r.visitors });
    });
    return out;
  }
}
