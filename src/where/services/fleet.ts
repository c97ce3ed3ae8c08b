/**
 * The fleet: every live Useless Machine, projected from the vm actors (so every instance, fed by
 * the same events, shows the same map), and the fan-out of its changes to fleet SSE clients.
 * Each open fleet stream is a visitor; the count feeds presence (and so the autospawner).
 */
import type { ActorChange, ActorRecord, ActorRuntime } from '../../runtime/actorRuntime.js';
import type { Clock } from '../../ports/clock.js';
import type { CapacityView, FleetMachine, FleetSnapshot } from '../wire.js';
import { frame, type SseClient } from '../sse.js';
import { launchChart, vmChart } from '../../../machines/index.js';
import { toFleetMachine } from './views.js';

export class Fleet {
  private readonly clients = new Set<SseClient>();
  private readonly last = new Map<string, string>();
  private lastCapacity = '';
  private readonly visitorListeners = new Set<(n: number) => void>();
  private readonly stopFeed: () => void;

  /** Streams counted by the cap view, kept as changes arrive (not recounted per change). */
  private readonly liveVms = new Set<string>();
  private readonly pendingLaunches = new Set<string>();

  constructor(
    private readonly runtime: ActorRuntime,
    private readonly clock: Clock,
    private readonly limit: () => number,
  ) {
    this.stopFeed = runtime.onChange((c) => this.onChange(c));
    this.resync();
  }

  /** Recount from every actor (after boot, which folds without announcing each change). */
  resync(): void {
    this.liveVms.clear();
    this.pendingLaunches.clear();
    this.last.clear();
    for (const r of this.runtime.actors()) this.track(r);
    for (const m of this.machines()) this.last.set(m.machineId, JSON.stringify(m));
    this.lastCapacity = JSON.stringify(this.capacity());
  }

  machines(): FleetMachine[] {
    const out: FleetMachine[] = [];
    for (const stream of this.liveVms) {
      const r = this.runtime.actor(stream);
      const m = r && toFleetMachine(r.snapshot);
      if (m) out.push(m);
    }
    return out.sort(
      (a, b) => a.createdAt.localeCompare(b.createdAt) || a.machineId.localeCompare(b.machineId),
    );
  }

  /** Machines alive plus launches still waiting for theirs: what the cap is counting. */
  capacity(): CapacityView {
    return { live: this.liveVms.size + this.pendingLaunches.size, limit: this.limit() };
  }

  private track(r: ActorRecord): void {
    if (r.kind === 'vm') {
      const vm = vmChart.view(r.snapshot);
      if (vm.open && vm.state !== 'unknown') this.liveVms.add(r.stream);
      else this.liveVms.delete(r.stream);
    } else if (r.kind === 'launch') {
      const { open, state } = launchChart.view(r.snapshot);
      if (open && (state === 'requested' || state === 'creating'))
        this.pendingLaunches.add(r.stream);
      else this.pendingLaunches.delete(r.stream);
    }
  }

  snapshot(): FleetSnapshot {
    return {
      machines: this.machines(),
      capacity: this.capacity(),
      at: new Date(this.clock.now()).toISOString(),
    };
  }

  /** A new fleet stream: it gets the whole fleet now, then every change. */
  attach(client: SseClient): void {
    this.clients.add(client);
    client.write(frame('fleet', this.snapshot()));
    this.emitVisitors();
  }

  detach(client: SseClient): void {
    if (this.clients.delete(client)) this.emitVisitors();
  }

  get visitors(): number {
    return this.clients.size;
  }

  onVisitors(listener: (n: number) => void): () => void {
    this.visitorListeners.add(listener);
    return () => this.visitorListeners.delete(listener);
  }

  close(): void {
    this.stopFeed();
    for (const c of [...this.clients]) c.close();
    this.clients.clear();
  }

  private emitVisitors(): void {
    for (const l of this.visitorListeners) l(this.clients.size);
  }

  private onChange(c: ActorChange): void {
    this.track(c.record);
    if (c.record.kind === 'vm') {
      const { open, machineId: id } = vmChart.view(c.record.snapshot);
      const m = open ? toFleetMachine(c.record.snapshot) : undefined;
      if (m) {
        const json = JSON.stringify(m);
        if (this.last.get(id) !== json) {
          this.last.set(id, json);
          this.broadcast(frame('machine', m));
        }
      } else if (this.last.delete(id)) {
        this.broadcast(frame('machineGone', { machineId: id, at: c.event.at }));
      }
    }
    if (c.record.kind === 'vm' || c.record.kind === 'launch') {
      const cap = this.capacity();
      const json = JSON.stringify(cap);
      if (json !== this.lastCapacity) {
        this.lastCapacity = json;
        this.broadcast(frame('capacity', cap));
      }
    }
  }

  /** The same bytes to every client; written once per event, never per client serialisation. */
  broadcast(chunk: string): void {
    for (const c of this.clients) c.write(chunk);
  }
}
