/**
 * One emulated machine: its config and versions, its state and history, its events and timers
 * (on the emulator's clock), its VM process, lease and cordon, and the two ways it is shown (the
 * Machines API's JSON, the admin snapshot).
 */
import { fastUlid as ulid } from '../adapters/system/ulidIds.js';
import { machineIdentity, type FlyMachine, type FlyMachineState } from '../ports/flyMachines.js';
import type { MachineConfigIn } from '../adapters/fly/schemas.js';
import type { AddressPool, MachineAddress } from './addresses.js';
import type { EmulatorTime } from './latency.js';
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
  readonly cordoned: boolean;
}

export interface MachineInstance {
  readonly id: string;
  readonly region: string;
  /** Where the VM's service listens: `http://<private ip>:<port>`. */
  readonly url: string;
  readonly state: FlyMachineState;
}

export interface MachineEventJson {
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
  readonly time: EmulatorTime;
}

/** A lease on a machine (the Machines API's Lease, `expires_at` in epoch seconds). */
export interface MachineLease {
  readonly nonce: string;
  readonly owner: string;
  readonly description: string;
  readonly version: string;
  expiresAtMs: number;
}

/** What ends the current process: a stop, a suspend, or a restart (stop, then start again). */
export type StopKind = 'stop' | 'suspend' | 'restart';

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
const VERSIONS = 20;
let timerSeq = 0;

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
  /** The current version; a new one with every update (`FLY_MACHINE_VERSION`). */
  instanceId: string;
  config: MachineConfigIn;
  readonly createdAt: number;
  readonly internalPort: number;
  readonly address: MachineAddress | undefined;
  readonly logs: RingBuffer<LogLine>;
  private readonly time: EmulatorTime;
  private readonly events: MachineEventJson[] = [];
  /** Earlier versions, newest first (the current one included). */
  private readonly versionList: { version: string; config: MachineConfigIn }[] = [];
  private readonly timers = new Set<string>();
  /** Bumped by clearTimers(): callbacks armed before (image pulls) check it and stand down. */
  private epoch = 0;
  /** Every state the machine has been in, in order (bounded). */
  private readonly history: FlyMachineState[] = ['created'];
  state: FlyMachineState = 'created';
  private updatedAt: number;
  proc: VmProcess | undefined;
  /** When the current process was spawned (epoch ms), for `ps`. */
  procStartedAt: number | undefined;
  /** Why the current process should end: it runs until it exits, or it is being stopped/destroyed. */
  intent: 'run' | 'stop' | 'destroy' = 'run';
  /** What the stop under way leads to. */
  stopKind: StopKind = 'stop';
  /** The proxy does not route to a cordoned machine. */
  cordoned = false;
  lease: MachineLease | undefined;
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
    this.time = init.time;
    this.createdAt = this.time.clock.now();
    this.updatedAt = this.createdAt;
    this.instanceId = ulid(this.createdAt);
    this.versionList.push({ version: this.instanceId, config: this.config });
  }

  /** A new version with this config (an update). */
  newVersion(config: MachineConfigIn): void {
    this.config = config;
    this.instanceId = ulid(this.time.clock.now());
    this.versionList.unshift({ version: this.instanceId, config });
    if (this.versionList.length > VERSIONS) this.versionList.length = VERSIONS;
    this.touch();
  }

  /** Replace the config's metadata (same version: metadata has endpoints of its own). */
  setMetadata(metadata: Record<string, string>): void {
    this.config = { ...this.config, metadata };
    const current = this.versionList[0];
    if (current) current.config = this.config;
    this.touch();
  }

  versions(): { version: string; user_config: MachineConfigIn }[] {
    return this.versionList.map((v) => ({ version: v.version, user_config: v.config }));
  }

  /** Events, newest first. */
  eventList(): MachineEventJson[] {
    return [...this.events].reverse();
  }

  private touch(): void {
    this.updatedAt = this.time.clock.now();
  }

  get url(): string | undefined {
    return this.address ? `http://${this.address.ip}:${this.address.port}` : undefined;
  }

  setState(state: FlyMachineState): void {
    this.state = state;
    this.touch();
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
      timestamp: this.time.clock.now(),
      ...(request ? { request } : {}),
    });
    if (this.events.length > EVENTS) this.events.splice(0, this.events.length - EVENTS);
  }

  /** Run `fn` after `ms` on the emulator's clock unless clearTimers() comes first. */
  later(ms: number, fn: () => void): void {
    const key = `flylocal-${this.id}-${++timerSeq}`;
    this.timers.add(key);
    this.time.timers.set(key, this.time.clock.now() + ms, () => {
      this.timers.delete(key);
      fn();
    });
  }

  /** `fn`, unless clearTimers() was called in between (for callbacks that are not timers). */
  unlessCleared(fn: () => void): () => void {
    const epoch = this.epoch;
    return () => {
      if (epoch === this.epoch) fn();
    };
  }

  clearTimers(): void {
    for (const key of this.timers) this.time.timers.clear(key);
    this.timers.clear();
    this.epoch += 1;
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
      events: this.eventList(),
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
      cordoned: this.cordoned,
    };
  }
}
