/**
 * Who drives what across instances. Every instance reports itself (and its visitor count) on a
 * heartbeat; one holds the leader lease (autospawner, reconciler, orphaned launches). A launch is
 * driven by the instance that accepted it while that instance lives, then by the leader. With the
 * in-memory ports there is one instance, and it drives everything.
 */
import { launchChart, launchStream } from '../../../machines/index.js';
import type { ActorRecord, ActorRuntime } from '../../runtime/actorRuntime.js';
import type { Clock } from '../../ports/clock.js';
import type { Leases, Presence } from '../../ports/coordination.js';
import { errorMessage } from '../../shared/errors.js';
import type { Logger } from '../../shared/log.js';

export const LEADER_LEASE = 'leader';

export interface ClusterOptions {
  instance: string;
  leases: Leases;
  presence: Presence;
  clock: Clock;
  log: Logger;
  /** Heartbeat period; reports and the lease live for three of them. */
  beatMs?: number;
}

export class Cluster {
  readonly instance: string;
  private leader = false;
  private alive = new Set<string>();
  private visitorsHere = 0;
  /** This instance's count as the last heartbeat reported it (it is inside `visitorsTotal`). */
  private visitorsReported = 0;
  private visitorsTotal = 0;
  private timer: NodeJS.Timeout | undefined;
  private runtime: ActorRuntime | undefined;
  private readonly beatMs: number;
  private readonly listeners = new Set<() => void>();
  private beating: Promise<void> | undefined;

  constructor(private readonly o: ClusterOptions) {
    this.instance = o.instance;
    this.beatMs = o.beatMs ?? 2000;
    this.alive.add(o.instance);
  }

  /** Attach the runtime whose actors this cluster view assigns (before `runtime.boot()`). */
  attach(runtime: ActorRuntime): void {
    this.runtime = runtime;
  }

  /** First heartbeat (so leadership is known before boot), then one every beat. */
  async start(): Promise<void> {
    await this.beat();
    this.timer = setInterval(() => void this.beat(), this.beatMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.beating;
    try {
      await this.o.presence.withdraw(this.instance);
      if (this.leader) await this.o.leases.release(LEADER_LEASE, this.instance);
    } catch (err) {
      this.o.log.warn({ err: errorMessage(err) }, 'could not withdraw from the cluster cleanly');
    }
    this.leader = false;
  }

  isLeader(): boolean {
    return this.leader;
  }

  isAlive(instance: string): boolean {
    return this.alive.has(instance);
  }

  members(): string[] {
    return [...this.alive].sort();
  }

  /** Open fleet streams on this instance (the visitors it reports). */
  setLocalVisitors(n: number): void {
    this.visitorsHere = n;
  }

  /** Visitors across the cluster, as of the last heartbeat (this instance's own count is live). */
  totalVisitors(): number {
    return Math.max(0, this.visitorsTotal - this.visitorsReported + this.visitorsHere);
  }

  /** Called after each heartbeat that changed leadership, membership or the visitors elsewhere. */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Does this instance drive (arm timers for, re-drive intents of) this actor? */
  drives(rec: ActorRecord): boolean {
    switch (rec.kind) {
      case 'launch':
        return this.ownerDrives(rec.chart.owner(rec.snapshot));
      case 'vm': {
        const launchId = rec.chart.launchOf(rec.snapshot);
        const record = launchId ? this.runtime?.actor(launchStream(launchId)) : undefined;
        const launch = record && launchChart.view(record.snapshot);
        // A machine whose launch is live belongs with it; any other machine is the leader's.
        if (launch?.open && launch.owner) return this.ownerDrives(launch.owner);
        return this.leader;
      }
      case 'autospawner':
      case 'pool':
        return this.leader;
    }
  }

  private ownerDrives(owner: string | undefined): boolean {
    if (owner === this.instance) return true;
    if (owner && this.alive.has(owner)) return false;
    return this.leader;
  }

  /** One heartbeat: report presence, take or renew the lease, learn who is alive. */
  beat(): Promise<void> {
    this.beating ??= this.doBeat().finally(() => {
      this.beating = undefined;
    });
    return this.beating;
  }

  private async doBeat(): Promise<void> {
    const now = this.o.clock.now();
    const ttl = this.beatMs * 3;
    try {
      const here = this.visitorsHere;
      const visitorsBefore = this.totalVisitors();
      await this.o.presence.report(this.instance, here, ttl, now);
      const wasLeader = this.leader;
      this.leader = await this.o.leases.acquire(LEADER_LEASE, this.instance, ttl, now);
      const alive = new Set(await this.o.presence.instances(now));
      alive.add(this.instance);
      this.visitorsTotal = await this.o.presence.total(now);
      this.visitorsReported = here;
      const changed = wasLeader !== this.leader || !sameSet(alive, this.alive);
      this.alive = alive;
      if (wasLeader !== this.leader)
        this.o.log.info(
          { leader: this.leader },
          this.leader ? 'became the leader' : 'no longer the leader',
        );
      if (changed) this.runtime?.rebalance();
      // Visitors came or went on another instance: the autospawner must hear it now, not at its
      // next periodic re-statement (minutes away).
      if (changed || this.totalVisitors() !== visitorsBefore) for (const l of this.listeners) l();
    } catch (err) {
      // Cannot reach the coordination store: stop acting as leader rather than risk two.
      this.o.log.warn({ err: errorMessage(err) }, 'cluster heartbeat failed');
      if (this.leader) {
        this.leader = false;
        this.runtime?.rebalance();
        for (const l of this.listeners) l();
      }
    }
  }
}

function sameSet(a: Set<string>, b: Set<string>): boolean {
  if (a.size !== b.size) return false;
  for (const x of a) if (!b.has(x)) return false;
  return true;
}
