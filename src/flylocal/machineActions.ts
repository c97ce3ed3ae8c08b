/**
 * The emulator's per-machine endpoints besides get, stop, destroy and wait: start, restart,
 * suspend, update, signal, cordon/uncordon, events, versions, leases, ps and metadata, with Fly's
 * state rules. Calls that change a machine honour its lease.
 */
import { readFileSync } from 'node:fs';
import { durationMs, type SignalName, type UpdateMachineRequest } from '../adapters/fly/schemas.js';
import type { Clock } from '../ports/clock.js';
import { EmulatorError } from './emulatorError.js';
import { acquireLease, activeLease, assertLease, leaseJson, releaseLease } from './leases.js';
import type { MachineLifecycle } from './lifecycle.js';
import type { EmulatedMachine } from './machine.js';
import type { MachineStore } from './machineStore.js';

export interface MachineActionsDeps {
  readonly store: MachineStore;
  readonly lifecycle: MachineLifecycle;
  readonly clock: Clock;
  /** Throws once the emulator closes. */
  readonly assertOpen: () => void;
}

/** The spec's ProcessStat. */
export interface ProcessStat {
  pid: number;
  command: string;
  directory: string;
  cpu: number;
  rss: number;
  rtime: number;
  stime: number;
  listen_sockets: { proto: string; address: string }[];
}

const RUNNING: readonly string[] = ['starting', 'started'];

const refused = (m: EmulatedMachine, what: string): EmulatorError =>
  new EmulatorError(
    412,
    `failed_precondition: unable to ${what} machine ${m.id} from current state: '${m.state}'`,
  );

/** Resident memory of a process in bytes, where /proc tells (Linux); 0 elsewhere. */
function rssBytes(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

export class MachineActions {
  constructor(private readonly d: MachineActionsDeps) {}

  /** A machine that may be changed: the emulator is open, it exists, and no one else's lease is on it. */
  private mutable(app: string, id: string, nonce: string | undefined): EmulatedMachine {
    this.d.assertOpen();
    const m = this.d.store.find(app, id);
    assertLease(m, nonce, this.d.clock.now());
    return m;
  }

  /** Start a created (skip_launch), stopped or suspended machine. */
  start(app: string, id: string, nonce?: string): Record<string, unknown> {
    const m = this.mutable(app, id, nonce);
    const previous = m.state;
    if (previous !== 'created' && previous !== 'stopped' && previous !== 'suspended')
      throw refused(m, 'start');
    this.d.lifecycle.start(m);
    return { previous_state: previous, migrated: false, new_host: '' };
  }

  /** Stop the process and start it again; a machine that is not running is simply started. */
  restart(
    app: string,
    id: string,
    opts: { signal?: SignalName; timeoutMs?: number },
    nonce?: string,
  ): void {
    const m = this.mutable(app, id, nonce);
    if (RUNNING.includes(m.state)) this.d.lifecycle.stop(m, opts, 'restart');
    else if (m.state === 'created' || m.state === 'stopped' || m.state === 'suspended')
      this.d.lifecycle.start(m);
    else throw refused(m, 'restart');
  }

  /** Suspend: the process is stopped and the machine rests as `suspended` (no memory snapshot). */
  suspend(app: string, id: string, nonce?: string): void {
    const m = this.mutable(app, id, nonce);
    if (m.state === 'suspended' || m.state === 'suspending') return;
    if (!RUNNING.includes(m.state)) throw refused(m, 'suspend');
    this.d.lifecycle.stop(m, {}, 'suspend');
  }

  /**
   * A new config: a new version (instance id); a running machine's process is replaced (stopped,
   * then started with the new config unless skip_launch); one that is not running keeps its state.
   */
  update(
    app: string,
    id: string,
    req: UpdateMachineRequest,
    nonce?: string,
  ): Record<string, unknown> {
    const m = this.mutable(app, id, nonce);
    if (m.state === 'destroyed' || m.state === 'destroying') throw refused(m, 'update');
    if (req.current_version !== undefined && req.current_version !== m.instanceId)
      throw new EmulatorError(
        412,
        `failed_precondition: current_version ${req.current_version} is not the version of machine ${m.id} (${m.instanceId})`,
      );
    if (req.region && req.region !== m.region)
      throw new EmulatorError(
        400,
        `invalid_argument: an update cannot move machine ${m.id} from ${m.region} to ${req.region}`,
      );
    if (req.name && req.name !== m.name)
      throw new EmulatorError(400, `invalid_argument: an update cannot rename machine ${m.id}`);
    // The old process stops the way its own config says.
    const old = m.config.stop_config;
    const stopOpts = {
      ...(old?.signal ? { signal: old.signal } : {}),
      ...(old?.timeout !== undefined ? { timeoutMs: durationMs(old.timeout) } : {}),
    };
    m.newVersion(req.config);
    m.event('update', m.state, 'user');
    if (RUNNING.includes(m.state))
      this.d.lifecycle.stop(m, stopOpts, req.skip_launch ? 'stop' : 'restart');
    return m.toJson();
  }

  signal(app: string, id: string, signal: SignalName, nonce?: string): void {
    this.d.lifecycle.signal(this.mutable(app, id, nonce), signal);
  }

  /** Cordoned machines get no traffic from the proxy (they leave the directory). */
  cordon(app: string, id: string, on: boolean, nonce?: string): void {
    const m = this.mutable(app, id, nonce);
    if (m.state === 'destroyed') throw refused(m, on ? 'cordon' : 'uncordon');
    m.cordoned = on;
    m.event(on ? 'cordon' : 'uncordon', m.state, 'user');
  }

  events(app: string, id: string): unknown[] {
    return this.d.store.find(app, id).eventList();
  }

  versions(app: string, id: string): unknown[] {
    return this.d.store.find(app, id).versions();
  }

  getLease(app: string, id: string): Record<string, unknown> {
    const m = this.d.store.find(app, id);
    const lease = activeLease(m, this.d.clock.now());
    if (!lease) throw new EmulatorError(404, `not_found: machine ${m.id} has no active lease`);
    // The nonce is the holder's secret: only the answer to the one who took the lease carries it.
    return leaseJson(lease, false);
  }

  acquireLease(
    app: string,
    id: string,
    req: { ttl?: number; description?: string },
    nonce?: string,
  ): Record<string, unknown> {
    this.d.assertOpen();
    const m = this.d.store.find(app, id);
    if (m.state === 'destroyed') throw refused(m, 'lease');
    return leaseJson(acquireLease(m, req, nonce, this.d.clock.now()), true);
  }

  releaseLease(app: string, id: string, nonce?: string): void {
    this.d.assertOpen();
    releaseLease(this.d.store.find(app, id), nonce, this.d.clock.now());
  }

  /** The machine's processes: its one VM process while it runs, none otherwise. */
  ps(app: string, id: string): ProcessStat[] {
    const m = this.d.store.find(app, id);
    const proc = m.proc;
    if (!proc?.running || proc.pid === undefined) return [];
    return [
      {
        pid: proc.pid,
        command: [proc.spec.command, ...proc.spec.args].join(' '),
        directory: proc.spec.cwd,
        cpu: 0,
        rss: rssBytes(proc.pid),
        rtime: m.procStartedAt === undefined ? 0 : Date.now() - m.procStartedAt,
        stime: 0,
        listen_sockets: m.address
          ? [{ proto: 'tcp', address: `${m.address.ip}:${m.address.port}` }]
          : [],
      },
    ];
  }

  metadata(app: string, id: string): Record<string, string> {
    return { ...(this.d.store.find(app, id).config.metadata ?? {}) };
  }

  setMetadata(app: string, id: string, key: string, value: string, nonce?: string): void {
    const m = this.mutable(app, id, nonce);
    if (m.state === 'destroyed') throw refused(m, 'update metadata of');
    m.setMetadata({ ...(m.config.metadata ?? {}), [key]: value });
  }

  deleteMetadata(app: string, id: string, key: string, nonce?: string): void {
    const m = this.mutable(app, id, nonce);
    if (m.state === 'destroyed') throw refused(m, 'update metadata of');
    const { [key]: _gone, ...rest } = m.config.metadata ?? {};
    m.setMetadata(rest);
  }
}
