/**
 * The emulator's model of Fly machines: the Machines API's operations (create, get, list, stop,
 * destroy, wait here; the other per-machine ones in machineActions.ts) over the machine store, with
 * the lifecycle in lifecycle.ts, latency from a profile on the emulator's clock (latency.ts), and
 * one real child process per running machine. HTTP lives in app.ts; this file knows nothing of it.
 */
import type { CreateMachineRequest, SignalName } from '../adapters/fly/schemas.js';
import { systemClock, SystemTimers } from '../adapters/system/systemClock.js';
import type { Clock, Timers } from '../ports/clock.js';
import type { Logger } from '../shared/log.js';
import { findRegion } from '../shared/regions.js';
import { AddressPool, defaultAddressMode, type AddressMode } from './addresses.js';
import { EmulatorError, notFound, shuttingDown } from './emulatorError.js';
import { Faults, type FaultConfig } from './faults.js';
import {
  ImageCache,
  LatencyModel,
  resolveProfile,
  type EmulatorTime,
  type LatencyProfile,
  type LatencyProfileName,
} from './latency.js';
import { assertLease } from './leases.js';
import { MachineLifecycle } from './lifecycle.js';
import { MachineActions } from './machineActions.js';
import {
  EmulatedMachine,
  machineName,
  type MachineInstance,
  type MachineSnapshot,
} from './machine.js';
import { MachineStore, type ListFilter } from './machineStore.js';
import { mulberry32, type Prng } from './prng.js';
import { StateWaits, type WaitResult, type WaitTarget } from './stateWaits.js';
import { ensureCleanupHooks, type LogLine, type VmProcess } from './supervisor.js';
import { hostBaseEnv } from './vmCommand.js';

export { EmulatorError } from './emulatorError.js';
export type { MachineInstance, MachineSnapshot } from './machine.js';
export type { WaitTarget } from './stateWaits.js';

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
  /**
   * How slow the platform is: `fly` (the default: image pulls, VM boots, starts and stops as long
   * as on Fly), `fast` (about nothing; tests), or a profile of one's own.
   */
  readonly profile?: LatencyProfileName | LatencyProfile;
  /** The emulator's clock and timers (default: the wall clock); a ManualClock drives latency in tests. */
  readonly clock?: Clock & Timers;
}

/** What the edge proxy needs: the live machines of an app and where to reach them. */
export interface MachineDirectory {
  instances(app: string): Promise<MachineInstance[]>;
}

const DEFAULT_INTERNAL_PORT = 4040;

const noCapacity = (what: string): EmulatorError =>
  new EmulatorError(412, `insufficient_capacity: ${what}`, 'insufficient_capacity');

/** Settles after `ms` at the latest, so a stuck process cannot hold up a destroy or a close. */
async function atMost(ms: number, work: Promise<unknown>): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([work, new Promise((r) => (timer = setTimeout(r, ms)))]);
  clearTimeout(timer);
}

export class FlyLocalEmulator implements MachineDirectory {
  readonly faults: Faults;
  private readonly store = new MachineStore();
  private readonly waits = new StateWaits();
  private readonly addresses: AddressPool;
  private readonly lifecycle: MachineLifecycle;
  private readonly names: Prng;
  private closing = false;
  /** The emulator made its own timers (no clock was given), so close() clears them all. */
  private readonly ownTimers: boolean;
  readonly time: EmulatorTime;
  readonly latency: LatencyModel;
  /** Every per-machine endpoint besides get, stop, destroy and wait. */
  readonly actions: MachineActions;

  private readonly defaultRegion: string;
  private readonly closeGraceMs: number;
  private readonly logLines: number;

  constructor(opts: EmulatorOptions = {}) {
    this.defaultRegion = opts.defaultRegion ?? 'yyz';
    this.closeGraceMs = opts.closeGraceMs ?? 2_000;
    this.logLines = opts.logLines ?? 500;
    this.names = mulberry32(opts.seed ?? 7);
    this.addresses = new AddressPool(opts.addressMode ?? defaultAddressMode());
    this.faults = new Faults(opts.faults ?? {});
    this.ownTimers = opts.clock === undefined;
    this.time = opts.clock
      ? { clock: opts.clock, timers: opts.clock }
      : { clock: systemClock, timers: new SystemTimers(systemClock) };
    this.latency = new LatencyModel(resolveProfile(opts.profile), opts.seed);
    this.lifecycle = new MachineLifecycle({
      vm: {
        defaultCommand: opts.defaultCommand ?? [process.execPath, 'dist/useless.mjs'],
        projectRoot: opts.projectRoot ?? process.cwd(),
        baseEnv: opts.baseEnv ?? hostBaseEnv(),
      },
      faults: this.faults,
      latency: this.latency,
      images: new ImageCache(this.time, this.latency.imagePullMs),
      addresses: this.addresses,
      logger: opts.logger,
      restartDelayMs: opts.restartDelayMs ?? 100,
      defaultStopTimeoutMs: (opts.defaultStopTimeoutS ?? 5) * 1000,
      closing: () => this.closing,
    });
    this.actions = new MachineActions({
      store: this.store,
      lifecycle: this.lifecycle,
      clock: this.time.clock,
      assertOpen: () => this.assertOpen(),
    });
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
    if (!this.faults.hasCapacity(region))
      throw noCapacity(`no capacity for a new machine in ${region}`);
    this.store.assertNameFree(app, req.name);
    const id = this.store.newId();

    const internalPort =
      req.config.services?.find((s) => s.internal_port !== undefined)?.internal_port ??
      DEFAULT_INTERNAL_PORT;
    const address = await this.addresses.acquire(internalPort);
    if (!address) throw noCapacity(`no free private address in ${region}`);
    this.assertOpen(() => this.addresses.release(address));
    // Check the name again after the wait above: two creates with one name that arrived together
    // must not both pass (Fly's check is atomic with the insert).
    try {
      this.store.assertNameFree(app, req.name);
    } catch (err) {
      this.addresses.release(address);
      throw err;
    }

    const name = req.name ?? machineName(this.names);
    const m = new EmulatedMachine(
      {
        app,
        id,
        name,
        region,
        config: req.config,
        internalPort,
        address,
        logLines: this.logLines,
        time: this.time,
      },
      (changed) => this.waits.changed(changed),
    );
    this.store.add(m);
    m.event('launch', 'created', 'user');
    const body = m.toJson();
    if (req.skip_launch) this.lifecycle.prepare(m);
    else m.later(0, () => this.lifecycle.launch(m));
    return body;
  }

  get(app: string, id: string): Record<string, unknown> {
    return this.store.find(app, id).toJson();
  }

  list(app: string, filter: ListFilter): Record<string, unknown>[] {
    return this.store.list(app, filter).map((m) => m.toJson());
  }

  stop(
    app: string,
    id: string,
    opts: { signal?: SignalName; timeoutMs?: number } = {},
    leaseNonce?: string,
  ): void {
    this.assertOpen();
    const m = this.store.find(app, id);
    assertLease(m, leaseNonce, this.time.clock.now());
    switch (m.state) {
      case 'starting':
      case 'started':
        this.lifecycle.stop(m, opts);
        return;
      case 'destroying':
      case 'destroyed':
        throw new EmulatorError(412, `failed_precondition: machine ${m.id} is ${m.state}`);
      default:
        // created, stopping, stopped, suspended: nothing to do, as stopping twice is not an error.
        return;
    }
  }

  async destroy(app: string, id: string, force: boolean, leaseNonce?: string): Promise<void> {
    this.assertOpen();
    const m = this.store.find(app, id);
    if (m.state === 'destroyed') throw notFound();
    assertLease(m, leaseNonce, this.time.clock.now());
    if (m.state === 'destroying') {
      await this.waits.waitFor(m, 'destroyed', 10_000);
      return;
    }
    const active =
      m.proc !== undefined ||
      m.state === 'starting' ||
      m.state === 'started' ||
      m.state === 'stopping' ||
      m.state === 'suspending';
    if (active && !force) {
      throw new EmulatorError(
        412,
        `failed_precondition: unable to destroy machine, not currently stopped (state: ${m.state}); use force=true`,
      );
    }
    m.intent = 'destroy';
    m.clearTimers();
    m.setState('destroying');
    m.event('destroy', 'destroying', 'user');
    const proc = m.proc;
    if (proc) {
      proc.kill();
      await atMost(5_000, proc.exited);
    }
    this.lifecycle.destroyed(m);
  }

  /** Resolves 'ok' when the machine reaches `target` (a destroyed machine counts as stopped). */
  async wait(
    app: string,
    id: string,
    target: WaitTarget,
    timeoutMs: number,
    instanceId?: string,
  ): Promise<WaitResult> {
    this.assertOpen();
    const m = this.store.find(app, id);
    if (target === 'stopped' && !instanceId) {
      throw new EmulatorError(400, 'instance_id required when waiting for stopped machine');
    }
    if (instanceId !== undefined && instanceId !== m.instanceId) {
      throw new EmulatorError(
        400,
        `invalid_argument: instance_id ${instanceId} is not the current version of machine ${m.id}`,
      );
    }
    return this.waits.waitFor(m, target, timeoutMs);
  }

  // ------------------------------------------------------------------------------------------
  // Directory and introspection
  // ------------------------------------------------------------------------------------------

  /** Live (not destroyed) machines of an app with an address. A plain async function: pass it around. */
  readonly instances = async (app: string): Promise<MachineInstance[]> => this.store.instances(app);

  /** Every machine ever created, destroyed ones included (tests count orphans with it). */
  ledger(): MachineSnapshot[] {
    return this.store.all().map((m) => m.snapshot());
  }

  machine(id: string): MachineSnapshot | undefined {
    return this.store.get(id)?.snapshot();
  }

  logs(id: string): LogLine[] {
    return this.store.get(id)?.logs.toArray() ?? [];
  }

  /** Pids of the VM processes this emulator is running. */
  pids(): number[] {
    return this.store
      .all()
      .map((m) => m.proc?.pid)
      .filter((p): p is number => p !== undefined);
  }

  /** Stop accepting work, settle waits, stop every VM (SIGTERM, then SIGKILL after the grace time). */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    this.waits.closeAll();
    const machines = this.store.all();
    for (const m of machines) m.clearTimers();
    if (this.ownTimers) this.time.timers.clearAll();
    const procs = machines.map((m) => m.proc).filter((p): p is VmProcess => p !== undefined);
    for (const p of procs) p.signal('SIGTERM');
    const all = Promise.all(procs.map((p) => p.exited));
    await atMost(this.closeGraceMs, all);
    for (const p of procs) p.kill();
    await all;
    for (const m of machines) m.releaseAddress(this.addresses);
  }

  private assertOpen(cleanup?: () => void): void {
    if (this.closing) {
      cleanup?.();
      throw shuttingDown();
    }
  }
}
