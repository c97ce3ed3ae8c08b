/**
 * One emulated machine: what it was created with, its state and history, its events and timers,
 * its VM process, and the two ways it is shown (the Machines API's JSON, the admin snapshot).
 */
import { fastUlid as ulid } from '../adapters/system/ulidIds.js';
import { machineIdentity, type FlyMachine, type FlyMachineState } from '../ports/flyMachines.js';
import type { MachineConfigIn } from '../adapters/fly/schemas.js';
import type { AddressPool, MachineAddress } from './addresses.js';
import type { Prng } from './prng.js';
import { RingBuffer, type ExitInfo, type LogLine, type VmProcess } from './supervisor.js';

/** A machine as the emulator's admin API and tests see it. */
export interface MachineSnapshot extends Pick<
  FlyMachine,
  'id' | 'name' | 'state' | 'region' | 'instanceId' | 'privateIp'
> {
  readonly app: string;
  readonly url: string | undefined;
  readonly pid: number | undefined;
  readonly restarts: number;
  readonly spawns: number;
  readonly lastExit: ExitInfo | undefined;
  readonly metadata: Readonly<Record<string, string>>;
  readonly states: readonly string[];
}

export interface MachineInstance {
  readonly id: string;
  readonly region: string;
  /** Where the VM's service listens: `http://<private ip>:<port>`. */
  readonly url: string;
  readonly state: FlyMachineState;
}

interface MachineEventJson {
  id: string;
  type: string;
  status: string;
  source: 'user' | 'flyd';
  timestamp: number;
  request?: Record<string, unknown>;
}

export interface NewMachine {
  readonly app: string;
  readonly id: string;
  readonly name: string;
  readonly region: string;
  readonly config: MachineConfigIn;
  readonly internalPort: number;
  readonly address: MachineAddress | undefined;
  readonly logLines: number;
}

const NAME_WORDS_A = [
  'quiet',
  'bold',
  'silent',
  'small',
  'late',
  'brave',
  'empty',
  'round',
  'spare',
  'lucky',
];
const NAME_WORDS_B = [
  'switch',
  'lever',
  'box',
  'lamp',
  'gear',
  'dial',
  'spring',
  'bell',
  'knob',
  'fuse',
];
const HISTORY = 100;
const EVENTS = 50;

/** A generated machine name, Fly style: `quiet-lever-4821`. */
export function machineName(prng: Prng): string {
  return `${prng.pick(NAME_WORDS_A)}-${prng.pick(NAME_WORDS_B)}-${prng.int(1000, 9999)}`;
}

function iso(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export class EmulatedMachine {
  readonly app: string;
  readonly id: string;
  readonly name: string;
  readonly region: string;
  readonly instanceId = ulid();
  readonly config: MachineConfigIn;
  readonly createdAt = Date.now();
  readonly internalPort: number;
  readonly address: MachineAddress | undefined;
  readonly logs: RingBuffer<LogLine>;
  private readonly events: MachineEventJson[] = [];
  private readonly timers = new Set<NodeJS.Timeout>();
  /** Every state the machine has been in, in order (bounded). */
  private readonly history: FlyMachineState[] = ['created'];
  state: FlyMachineState = 'created';
  private updatedAt = this.createdAt;
  proc: VmProcess | undefined;
  /** Why the current process should end: it runs until it exits, or it is being stopped/destroyed. */
  intent: 'run' | 'stop' | 'destroy' = 'run';
  restarts = 0;
  spawns = 0;
  lastExit: ExitInfo | undefined;
  private addressReleased = false;

  constructor(
    init: NewMachine,
    private readonly onStateChange: (m: EmulatedMachine) => void,
  ) {
    this.app = init.app;
    this.id = init.id;
    this.name = init.name;
    this.region = init.region;
    this.config = init.config;
    this.internalPort = init.internalPort;
    this.address = init.address;
    this.logs = new RingBuffer<LogLine>(init.logLines);
  }

  get url(): string | undefined {
    return this.address ? `http://${this.address.ip}:${this.address.port}` : undefined;
  }

  setState(state: FlyMachineState): void {
    this.state = state;
    this.updatedAt = Date.now();
    this.history.push(state);
    if (this.history.length > HISTORY) this.history.splice(0, this.history.length - HISTORY);
    this.onStateChange(this);
  }

  event(
    type: string,
    status: string,
    source: 'user' | 'flyd',
    request?: Record<string, unknown>,
  ): void {
    this.events.push({
      id: ulid(),
      type,
      status,
      source,
      timestamp: Date.now(),
      ...(request ? { request } : {}),
    });
    if (this.events.length > EVENTS) this.events.splice(0, this.events.length - EVENTS);
  }

  /** Run `fn` after `ms` unless clearTimers() comes first. */
  later(ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, ms);
    this.timers.add(t);
  }

  clearTimers(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }

  releaseAddress(pool: AddressPool): void {
    if (this.address && !this.addressReleased) {
      this.addressReleased = true;
      pool.release(this.address);
    }
  }

  /** The machine as the Machines API returns it. */
  toJson(): Record<string, unknown> {
    const [repoAndRegistry = '', tag = 'latest'] = this.config.image.split(':');
    const slash = repoAndRegistry.indexOf('/');
    return {
      id: this.id,
      name: this.name,
      state: this.state,
      region: this.region,
      instance_id: this.instanceId,
      private_ip: this.address?.ip ?? '',
      config: this.config,
      image_ref: {
        registry: slash > 0 ? repoAndRegistry.slice(0, slash) : 'docker.io',
        repository: slash > 0 ? repoAndRegistry.slice(slash + 1) : repoAndRegistry,
        tag,
        digest: `sha256:${'0'.repeat(64)}`,
        labels: {},
      },
      created_at: iso(this.createdAt),
      updated_at: iso(this.updatedAt),
      events: [...this.events].reverse(),
      checks: [],
      host_status: 'ok',
    };
  }

  snapshot(): MachineSnapshot {
    return {
      app: this.app,
      ...machineIdentity(this, this.address?.ip),
      url: this.url,
      pid: this.proc?.pid,
      restarts: this.restarts,
      spawns: this.spawns,
      lastExit: this.lastExit,
      metadata: { ...(this.config.metadata ?? {}) },
      states: [...this.history],
    };
  }
}
