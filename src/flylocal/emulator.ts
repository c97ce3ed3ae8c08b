/**
 * The emulator's model of Fly machines: ids, states and the lifecycle (created → starting → started
 * → stopping → stopped → destroying → destroyed), restart policy, auto_destroy, waits, and one
 * real child process per running machine. HTTP lives in app.ts; this file knows nothing of it.
 */
import { randomBytes } from 'node:crypto';
import { isAbsolute, resolve as resolvePath } from 'node:path';
import { fastUlid as ulid } from '../adapters/system/ulidIds.js';
import type { FlyMachineState } from '../ports/flyMachines.js';
import {
  durationMs,
  type CreateMachineRequest,
  type MachineConfigIn,
  type SignalName,
} from '../adapters/fly/schemas.js';
import type { Logger } from '../shared/log.js';
import { findRegion } from '../shared/regions.js';
import {
  AddressPool,
  defaultAddressMode,
  type AddressMode,
  type MachineAddress,
} from './addresses.js';
import { Faults, type FaultConfig } from './faults.js';
import { mulberry32 } from './prng.js';
import {
  ensureCleanupHooks,
  RingBuffer,
  VmProcess,
  type ExitInfo,
  type LogLine,
} from './supervisor.js';

/** A failure with Fly's status code and error text (`{"error": ...}` on the wire). */
export class EmulatorError extends Error {
  constructor(
    readonly status: number,
    readonly error: string,
    /** Fly's ErrorResponse.status, e.g. "insufficient_capacity". */
    readonly flyStatus?: string,
  ) {
    super(error);
    this.name = 'EmulatorError';
  }
}

export interface EmulatorOptions {
  /** Region for a create that names none (Fly: "near you"). */
  readonly defaultRegion?: string;
  /** What a machine runs when its config has no init.cmd; relative paths are against projectRoot. */
  readonly defaultCommand?: readonly string[];
  /** Working directory of every VM and the base for relative commands (default: process.cwd()). */
  readonly projectRoot?: string;
  readonly addressMode?: AddressMode;
  readonly faults?: FaultConfig;
  /** Receives every VM output line, tagged with the machine id; omit to keep lines in the ring buffer only. */
  readonly logger?: Logger;
  /** Host variables every VM gets besides Fly's (default: PATH, HOME, LANG, TMPDIR of this process). */
  readonly baseEnv?: Readonly<Record<string, string>>;
  /** SIGKILL this long after the stop signal when neither request nor config says (Fly's default: 5 s). */
  readonly defaultStopTimeoutS?: number;
  /** On close: time between SIGTERM and SIGKILL for running VMs. */
  readonly closeGraceMs?: number;
  /** Output lines kept per machine. */
  readonly logLines?: number;
  /** Pause before a crashed machine is started again. */
  readonly restartDelayMs?: number;
  /** Kill all VMs on SIGINT/SIGTERM/SIGHUP of this process (default true; main.ts handles signals itself). */
  readonly killChildrenOnSignal?: boolean;
  /** Seed for generated names. */
  readonly seed?: number;
}

export interface MachineInstance {
  readonly id: string;
  readonly region: string;
  /** Where the VM's service listens: `http://<private ip>:<port>`. */
  readonly url: string;
  readonly state: FlyMachineState;
}

/** What the edge proxy needs: the live machines of an app and where to reach them. */
export interface MachineDirectory {
  instances(app: string): Promise<MachineInstance[]>;
}

interface MachineEventJson {
  id: string;
  type: string;
  status: string;
  source: 'user' | 'flyd';
  timestamp: number;
  request?: Record<string, unknown>;
}

interface MachineRecord {
  readonly app: string;
  readonly id: string;
  readonly name: string;
  readonly region: string;
  readonly instanceId: string;
  readonly config: MachineConfigIn;
  readonly createdAt: number;
  readonly internalPort: number;
  readonly address: MachineAddress | undefined;
  readonly logs: RingBuffer<LogLine>;
  readonly events: MachineEventJson[];
  readonly timers: Set<NodeJS.Timeout>;
  /** Every state the machine has been in, in order (bounded). */
  readonly history: FlyMachineState[];
  state: FlyMachineState;
  updatedAt: number;
  proc: VmProcess | undefined;
  /** Why the current process should end: it runs until it exits, or it is being stopped/destroyed. */
  intent: 'run' | 'stop' | 'destroy';
  restarts: number;
  spawns: number;
  lastExit: ExitInfo | undefined;
  addressReleased: boolean;
}

/** A machine as the emulator's admin API and tests see it. */
export interface MachineSnapshot {
  readonly app: string;
  readonly id: string;
  readonly name: string;
  readonly state: FlyMachineState;
  readonly region: string;
  readonly instanceId: string;
  readonly privateIp: string | undefined;
  readonly url: string | undefined;
  readonly pid: number | undefined;
  readonly restarts: number;
  readonly spawns: number;
  readonly lastExit: ExitInfo | undefined;
  readonly metadata: Readonly<Record<string, string>>;
  readonly states: readonly string[];
}

export type WaitTarget = 'started' | 'stopped' | 'suspended' | 'destroyed';

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
const DEFAULT_INTERNAL_PORT = 4040;
const DEFAULT_MAX_RETRIES = 10;

function iso(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function hostBaseEnv(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of ['PATH', 'HOME', 'LANG', 'TMPDIR', 'SYSTEMROOT']) {
    const v = process.env[k];
    if (v !== undefined) out[k] = v;
  }
  return out;
}

export class FlyLocalEmulator implements MachineDirectory {
  readonly faults: Faults;
  private readonly machines = new Map<string, MachineRecord>();
  private readonly listeners = new Set<(m: MachineRecord) => void>();
  private readonly closers = new Set<() => void>();
  private readonly addresses: AddressPool;
  private readonly names = mulberry32(7);
  private closing = false;

  private readonly defaultRegion: string;
  private readonly defaultCommand: readonly string[];
  private readonly projectRoot: string;
  private readonly logger: Logger | undefined;
  private readonly baseEnv: Readonly<Record<string, string>>;
  private readonly defaultStopTimeoutMs: number;
  private readonly closeGraceMs: number;
  private readonly logLines: number;
  private readonly restartDelayMs: number;

  constructor(opts: EmulatorOptions = {}) {
    this.defaultRegion = opts.defaultRegion ?? 'yyz';
    this.defaultCommand = opts.defaultCommand ?? [process.execPath, 'dist/useless.mjs'];
    this.projectRoot = opts.projectRoot ?? process.cwd();
    this.logger = opts.logger;
    this.baseEnv = opts.baseEnv ?? hostBaseEnv();
    this.defaultStopTimeoutMs = (opts.defaultStopTimeoutS ?? 5) * 1000;
    this.closeGraceMs = opts.closeGraceMs ?? 2_000;
    this.logLines = opts.logLines ?? 500;
    this.restartDelayMs = opts.restartDelayMs ?? 100;
    this.addresses = new AddressPool(opts.addressMode ?? defaultAddressMode());
    this.faults = new Faults(opts.faults ?? {});
    if (opts.seed !== undefined) this.names = mulberry32(opts.seed);
    ensureCleanupHooks({ signals: opts.killChildrenOnSignal ?? true });
  }

  get isClosing(): boolean {
    return this.closing;
  }

  // ------------------------------------------------------------------------------------------
  // API operations
  // ------------------------------------------------------------------------------------------

  async create(app: string, req: CreateMachineRequest): Promise<Record<string, unknown>> {
    this.assertOpen();
    const region = req.region && req.region !== '' ? req.region : this.defaultRegion;
    if (!findRegion(region))
      throw new EmulatorError(400, `invalid_argument: unknown region "${region}"`);
    if (!this.faults.hasCapacity(region)) {
      throw new EmulatorError(
        412,
        `insufficient_capacity: no capacity for a new machine in ${region}`,
        'insufficient_capacity',
      );
    }
    this.assertNameFree(app, req.name);
    let id: string;
    do id = randomBytes(7).toString('hex');
    while (this.machines.has(id));

    const internalPort =
      req.config.services?.find((s) => s.internal_port !== undefined)?.internal_port ??
      DEFAULT_INTERNAL_PORT;
    const address = await this.addresses.acquire(internalPort);
    if (!address) {
      throw new EmulatorError(
        412,
        `insufficient_capacity: no free private address in ${region}`,
        'insufficient_capacity',
      );
    }
    this.assertOpen(() => this.addresses.release(address));
    // Check the name again after the wait above: two creates with one name that arrived together
    // must not both pass (Fly's check is atomic with the insert).
    try {
      this.assertNameFree(app, req.name);
    } catch (err) {
      this.addresses.release(address);
      throw err;
    }

    const now = Date.now();
    const m: MachineRecord = {
      app,
      id,
      name:
        req.name ??
        `${this.names.pick(NAME_WORDS_A)}-${this.names.pick(NAME_WORDS_B)}-${this.names.int(1000, 9999)}`,
      region,
      instanceId: ulid(),
      config: req.config,
      createdAt: now,
      internalPort,
      address,
      logs: new RingBuffer<LogLine>(this.logLines),
      events: [],
      timers: new Set(),
      history: ['created'],
      state: 'created',
      updatedAt: now,
      proc: undefined,
      intent: 'run',
      restarts: 0,
      spawns: 0,
      lastExit: undefined,
      addressReleased: false,
    };
    this.machines.set(id, m);
    this.event(m, 'launch', 'created', 'user');
    const body = this.toJson(m);
    if (!req.skip_launch) this.later(m, 0, () => this.start(m));
    return body;
  }

  private assertNameFree(app: string, name: string | undefined): void {
    if (name === undefined) return;
    const taken = [...this.machines.values()].some(
      (m) => m.app === app && m.name === name && m.state !== 'destroyed',
    );
    if (taken)
      throw new EmulatorError(409, `already_exists: a machine named "${name}" already exists`);
  }

  get(app: string, id: string): Record<string, unknown> {
    return this.toJson(this.find(app, id));
  }

  list(
    app: string,
    filter: {
      metadata: Record<string, string>;
      includeDeleted: boolean;
      region?: string;
      states?: string[];
    },
  ): Record<string, unknown>[] {
    return [...this.machines.values()]
      .filter((m) => m.app === app)
      .filter((m) => filter.includeDeleted || m.state !== 'destroyed')
      .filter((m) => !filter.region || m.region === filter.region)
      .filter((m) => !filter.states || filter.states.includes(m.state))
      .filter((m) =>
        Object.entries(filter.metadata).every(([k, v]) => m.config.metadata?.[k] === v),
      )
      .sort((a, b) => a.createdAt - b.createdAt)
      .map((m) => this.toJson(m));
  }

  stop(app: string, id: string, opts: { signal?: SignalName; timeoutMs?: number } = {}): void {
    this.assertOpen();
    const m = this.find(app, id);
    switch (m.state) {
      case 'starting':
      case 'started': {
        m.intent = 'stop';
        this.clearTimers(m);
        this.setState(m, 'stopping');
        this.event(
          m,
          'stop',
          'stopping',
          'user',
          opts.signal ? { signal: opts.signal } : undefined,
        );
        if (m.proc) {
          const signal = opts.signal ?? m.config.stop_config?.signal ?? 'SIGINT';
          const timeoutMs =
            opts.timeoutMs ??
            (m.config.stop_config?.timeout !== undefined
              ? durationMs(m.config.stop_config.timeout)
              : this.defaultStopTimeoutMs);
          const proc = m.proc;
          proc.signal(signal);
          this.later(m, timeoutMs, () => proc.kill());
        } else {
          // Stopped while waiting to spawn: there is no process to signal.
          this.stopped(m);
        }
        return;
      }
      case 'destroying':
      case 'destroyed':
        throw new EmulatorError(412, `failed_precondition: machine ${m.id} is ${m.state}`);
      default:
        // created, stopping, stopped: nothing to do, as stopping twice is not an error.
        return;
    }
  }

  async destroy(app: string, id: string, force: boolean): Promise<void> {
    this.assertOpen();
    const m = this.find(app, id);
    if (m.state === 'destroyed') throw new EmulatorError(404, 'not_found: machine not found');
    if (m.state === 'destroying') {
      await this.waitFor(m, 'destroyed', 10_000);
      return;
    }
    const active =
      m.proc !== undefined ||
      m.state === 'starting' ||
      m.state === 'started' ||
      m.state === 'stopping';
    if (active && !force) {
      throw new EmulatorError(
        412,
        `failed_precondition: unable to destroy machine, not currently stopped (state: ${m.state}); use force=true`,
      );
    }
    m.intent = 'destroy';
    this.clearTimers(m);
    this.setState(m, 'destroying');
    this.event(m, 'destroy', 'destroying', 'user');
    const proc = m.proc;
    if (proc) {
      proc.kill();
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([proc.exited, new Promise((r) => (timer = setTimeout(r, 5_000)))]);
      clearTimeout(timer);
    }
    this.destroyed(m);
  }

  /** Resolves 'ok' when the machine reaches `target` (a destroyed machine counts as stopped). */
  async wait(
    app: string,
    id: string,
    target: WaitTarget,
    timeoutMs: number,
    instanceId?: string,
  ): Promise<'ok' | 'timeout' | 'closing'> {
    this.assertOpen();
    const m = this.find(app, id);
    if (target === 'stopped' && !instanceId) {
      throw new EmulatorError(400, 'instance_id required when waiting for stopped machine');
    }
    if (instanceId !== undefined && instanceId !== m.instanceId) {
      throw new EmulatorError(
        400,
        `invalid_argument: instance_id ${instanceId} is not the current version of machine ${m.id}`,
      );
    }
    return this.waitFor(m, target, timeoutMs);
  }

  // ------------------------------------------------------------------------------------------
  // Directory and introspection
  // ------------------------------------------------------------------------------------------

  /** Live (not destroyed) machines of an app with an address. A plain async function: pass it around. */
  readonly instances = async (app: string): Promise<MachineInstance[]> =>
    [...this.machines.values()]
      .filter((m) => m.app === app && m.state !== 'destroyed' && m.address)
      .map((m) => ({
        id: m.id,
        region: m.region,
        url: `http://${m.address!.ip}:${m.address!.port}`,
        state: m.state,
      }));

  /** Every machine ever created, destroyed ones included (tests count orphans with it). */
  ledger(): MachineSnapshot[] {
    return [...this.machines.values()].map((m) => this.snapshot(m));
  }

  machine(id: string): MachineSnapshot | undefined {
    const m = this.machines.get(id);
    return m ? this.snapshot(m) : undefined;
  }

  logs(id: string): LogLine[] {
    return this.machines.get(id)?.logs.toArray() ?? [];
  }

  /** Pids of the VM processes this emulator is running. */
  pids(): number[] {
    return [...this.machines.values()]
      .map((m) => m.proc?.pid)
      .filter((p): p is number => p !== undefined);
  }

  /** Stop accepting work, settle waits, stop every VM (SIGTERM, then SIGKILL after the grace time). */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    for (const settle of [...this.closers]) settle();
    for (const m of this.machines.values()) this.clearTimers(m);
    const procs = [...this.machines.values()]
      .map((m) => m.proc)
      .filter((p): p is VmProcess => p !== undefined);
    for (const p of procs) p.signal('SIGTERM');
    const all = Promise.all(procs.map((p) => p.exited));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([all, new Promise((r) => (timer = setTimeout(r, this.closeGraceMs)))]);
    clearTimeout(timer);
    for (const p of procs) p.kill();
    await all;
    for (const m of this.machines.values()) this.releaseAddress(m);
  }

  // ------------------------------------------------------------------------------------------
  // Lifecycle
  // ------------------------------------------------------------------------------------------

  private start(m: MachineRecord): void {
    if (this.closing || m.intent !== 'run') return;
    if (m.state !== 'created' && m.state !== 'stopped' && m.state !== 'starting') return;
    if (m.state !== 'starting') this.setState(m, 'starting');
    this.event(m, 'start', 'starting', 'flyd');
    this.later(m, this.faults.startLatencyMs(), () => this.spawn(m));
  }

  private spawn(m: MachineRecord): void {
    if (this.closing || m.intent !== 'run' || m.state !== 'starting') return;
    const { command, args } = this.commandFor(m.config);
    const proc = new VmProcess(
      { command, args, env: this.envFor(m), cwd: this.projectRoot },
      (line) => {
        m.logs.push(line);
        this.logger?.info({ machine: m.id, stream: line.stream }, line.line);
      },
      () => {
        if (m.proc === proc && m.state === 'starting' && m.intent === 'run') {
          this.setState(m, 'started');
          this.event(m, 'start', 'started', 'flyd');
        }
      },
    );
    m.proc = proc;
    m.spawns += 1;
    void proc.exited.then((info) => this.onExit(m, proc, info));
  }

  private onExit(m: MachineRecord, proc: VmProcess, info: ExitInfo): void {
    if (m.proc !== proc) return;
    m.proc = undefined;
    m.lastExit = info;
    this.clearTimers(m);
    this.event(m, 'exit', m.state, 'flyd', { exit_code: info.code, signal: info.signal });
    if (this.closing || m.intent === 'destroy') return;
    if (m.intent === 'stop') {
      this.stopped(m);
      return;
    }
    const failed = info.spawnError !== undefined || info.code !== 0;
    const policy = m.config.restart?.policy ?? 'on-failure';
    const maxRetries = m.config.restart?.max_retries ?? DEFAULT_MAX_RETRIES;
    const restart =
      policy === 'always' || (policy === 'on-failure' && failed && m.restarts < maxRetries);
    if (restart) {
      m.restarts += 1;
      this.setState(m, 'starting');
      this.event(m, 'restart', 'starting', 'flyd');
      this.later(m, this.restartDelayMs, () => this.spawn(m));
      return;
    }
    this.setState(m, 'stopping');
    this.stopped(m);
  }

  private stopped(m: MachineRecord): void {
    this.clearTimers(m);
    this.setState(m, 'stopped');
    this.event(m, 'exit', 'stopped', 'flyd');
    if (m.config.auto_destroy) {
      m.intent = 'destroy';
      this.setState(m, 'destroying');
      this.destroyed(m);
    } else {
      m.intent = 'run';
    }
  }

  private destroyed(m: MachineRecord): void {
    this.releaseAddress(m);
    this.setState(m, 'destroyed');
    this.event(m, 'destroy', 'destroyed', 'flyd');
  }

  private waitFor(
    m: MachineRecord,
    target: WaitTarget,
    timeoutMs: number,
  ): Promise<'ok' | 'timeout' | 'closing'> {
    const reached = (s: FlyMachineState): boolean =>
      s === target || (target === 'stopped' && s === 'destroyed');
    if (reached(m.state)) return Promise.resolve('ok');
    return new Promise((resolve) => {
      const done = (r: 'ok' | 'timeout' | 'closing'): void => {
        clearTimeout(timer);
        this.listeners.delete(listener);
        this.closers.delete(onClose);
        resolve(r);
      };
      const listener = (changed: MachineRecord): void => {
        if (changed === m && reached(m.state)) done('ok');
      };
      const onClose = (): void => done('closing');
      const timer = setTimeout(() => done('timeout'), timeoutMs);
      this.listeners.add(listener);
      this.closers.add(onClose);
    });
  }

  // ------------------------------------------------------------------------------------------
  // Helpers
  // ------------------------------------------------------------------------------------------

  private assertOpen(cleanup?: () => void): void {
    if (this.closing) {
      cleanup?.();
      throw new EmulatorError(503, 'unavailable: flylocal is shutting down');
    }
  }

  private find(app: string, id: string): MachineRecord {
    const m = this.machines.get(id);
    if (!m || m.app !== app) throw new EmulatorError(404, 'not_found: machine not found');
    return m;
  }

  private setState(m: MachineRecord, state: FlyMachineState): void {
    m.state = state;
    m.updatedAt = Date.now();
    m.history.push(state);
    if (m.history.length > 100) m.history.splice(0, m.history.length - 100);
    for (const l of [...this.listeners]) l(m);
  }

  private event(
    m: MachineRecord,
    type: string,
    status: string,
    source: 'user' | 'flyd',
    request?: Record<string, unknown>,
  ): void {
    m.events.push({
      id: ulid(),
      type,
      status,
      source,
      timestamp: Date.now(),
      ...(request ? { request } : {}),
    });
    if (m.events.length > 50) m.events.splice(0, m.events.length - 50);
  }

  private later(m: MachineRecord, ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      m.timers.delete(t);
      fn();
    }, ms);
    m.timers.add(t);
  }

  private clearTimers(m: MachineRecord): void {
    for (const t of m.timers) clearTimeout(t);
    m.timers.clear();
  }

  private releaseAddress(m: MachineRecord): void {
    if (m.address && !m.addressReleased) {
      m.addressReleased = true;
      this.addresses.release(m.address);
    }
  }

  private commandFor(config: MachineConfigIn): { command: string; args: string[] } {
    const init = config.init;
    let argv: readonly string[] =
      init?.exec && init.exec.length > 0
        ? init.exec
        : [...(init?.entrypoint ?? []), ...(init?.cmd ?? [])];
    if (argv.length === 0) argv = this.defaultCommand;
    const [first, ...args] = argv;
    let command = first!;
    if (command === 'node') command = process.execPath;
    else if (!isAbsolute(command) && command.includes('/'))
      command = resolvePath(this.projectRoot, command);
    return { command, args };
  }

  private envFor(m: MachineRecord): Record<string, string> {
    return {
      ...this.baseEnv,
      ...(m.config.env ?? {}),
      FLY_APP_NAME: m.app,
      FLY_MACHINE_ID: m.id,
      FLY_ALLOC_ID: m.id,
      FLY_REGION: m.region,
      FLY_PRIVATE_IP: m.address?.ip ?? '127.0.0.1',
      FLY_IMAGE_REF: m.config.image,
      FLY_MACHINE_VERSION: m.instanceId,
      FLY_PROCESS_GROUP: 'app',
      FLY_VM_MEMORY_MB: String(m.config.guest?.memory_mb ?? 256),
      PORT: String(m.address?.port ?? m.internalPort),
    };
  }

  private toJson(m: MachineRecord): Record<string, unknown> {
    const [repoAndRegistry = '', tag = 'latest'] = m.config.image.split(':');
    const slash = repoAndRegistry.indexOf('/');
    return {
      id: m.id,
      name: m.name,
      state: m.state,
      region: m.region,
      instance_id: m.instanceId,
      private_ip: m.address?.ip ?? '',
      config: m.config,
      image_ref: {
        registry: slash > 0 ? repoAndRegistry.slice(0, slash) : 'docker.io',
        repository: slash > 0 ? repoAndRegistry.slice(slash + 1) : repoAndRegistry,
        tag,
        digest: `sha256:${'0'.repeat(64)}`,
        labels: {},
      },
      created_at: iso(m.createdAt),
      updated_at: iso(m.updatedAt),
      events: [...m.events].reverse(),
      checks: [],
      host_status: 'ok',
    };
  }

  private snapshot(m: MachineRecord): MachineSnapshot {
    return {
      app: m.app,
      id: m.id,
      name: m.name,
      state: m.state,
      region: m.region,
      instanceId: m.instanceId,
      privateIp: m.address?.ip,
      url: m.address ? `http://${m.address.ip}:${m.address.port}` : undefined,
      pid: m.proc?.pid,
      restarts: m.restarts,
      spawns: m.spawns,
      lastExit: m.lastExit,
      metadata: { ...(m.config.metadata ?? {}) },
      states: [...m.history],
    };
  }
}
