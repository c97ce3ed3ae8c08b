/**
 * A machine's life past its create: the launch of a create (image pull on first use in a region,
 * then VM boot), the start of an existing machine, one VM process per start, the restart policy
 * when it exits, stop/suspend/restart signals with a kill after the stop timeout, the VM teardown,
 * and the way to stopped, suspended, auto_destroy and destroyed. Every wait is on the emulator's clock.
 */
import { durationMs, type SignalName } from '../adapters/fly/schemas.js';
import type { Logger } from '../shared/log.js';
import type { AddressPool } from './addresses.js';
import type { Faults } from './faults.js';
import { EmulatorError } from './emulatorError.js';
import type { ImageCache, LatencyModel } from './latency.js';
import type { EmulatedMachine, StopKind } from './machine.js';
import { VmProcess, type ExitInfo } from './supervisor.js';
import { vmSpawnSpec, type VmDefaults } from './vmCommand.js';

const DEFAULT_MAX_RETRIES = 10;

export interface LifecycleSettings {
  readonly vm: VmDefaults;
  readonly faults: Faults;
  readonly latency: LatencyModel;
  readonly images: ImageCache;
  readonly addresses: AddressPool;
  readonly logger: Logger | undefined;
  /** Pause before a crashed machine is started again. */
  readonly restartDelayMs: number;
  /** SIGKILL this long after the stop signal when neither request nor config says. */
  readonly defaultStopTimeoutMs: number;
  /** True once the emulator closes: nothing starts any more. */
  readonly closing: () => boolean;
}

export class MachineLifecycle {
  constructor(private readonly s: LifecycleSettings) {}

  /** A create's launch: the image (pulled on its first use in the region), then the VM's boot. */
  launch(m: EmulatedMachine): void {
    if (this.s.closing() || m.intent !== 'run' || m.state !== 'created') return;
    this.s.images.ensure(
      m.region,
      m.config.image,
      m.unlessCleared(() => {
        if (this.s.closing() || m.intent !== 'run' || m.state !== 'created') return;
        m.setState('starting');
        m.event('start', 'starting', 'flyd');
        m.later(this.s.latency.createBootMs() + this.s.faults.startLatencyMs(), () =>
          this.spawn(m),
        );
      }),
    );
  }

  /** A create with skip_launch still prepares the image, so a later start is fast. */
  prepare(m: EmulatedMachine): void {
    this.s.images.ensure(m.region, m.config.image, () => undefined);
  }

  /** Start a machine that exists (created, stopped or suspended): the emulated start latency, then its process. */
  start(m: EmulatedMachine, source: 'user' | 'flyd' = 'user'): void {
    if (this.s.closing() || m.intent !== 'run') return;
    if (m.state !== 'created' && m.state !== 'stopped' && m.state !== 'suspended') return;
    m.setState('starting');
    m.event('start', 'starting', source);
    // An image still being pulled (a skip_launch create moments ago, or an update to a new image) is waited for.
    this.s.images.ensure(
      m.region,
      m.config.image,
      m.unlessCleared(() =>
        m.later(this.s.latency.startMs() + this.s.faults.startLatencyMs(), () => this.spawn(m)),
      ),
    );
  }

  /**
   * A user's stop (or suspend, or the stop half of a restart) of a starting or started machine:
   * signal its process, kill it after the timeout.
   */
  stop(
    m: EmulatedMachine,
    opts: { signal?: SignalName; timeoutMs?: number },
    kind: StopKind = 'stop',
  ): void {
    m.intent = 'stop';
    m.stopKind = kind;
    m.clearTimers();
    m.setState(kind === 'suspend' ? 'suspending' : 'stopping');
    m.event(kind, kind === 'suspend' ? 'suspending' : 'stopping', 'user', {
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    const proc = m.proc;
    if (!proc) {
      // Stopped while waiting to spawn: there is no process to signal.
      this.stopped(m);
      return;
    }
    const stopConfig = m.config.stop_config;
    const signal = opts.signal ?? stopConfig?.signal ?? 'SIGINT';
    const timeoutMs =
      opts.timeoutMs ??
      (stopConfig?.timeout !== undefined
        ? durationMs(stopConfig.timeout)
        : this.s.defaultStopTimeoutMs);
    proc.signal(signal);
    m.later(timeoutMs, () => proc.kill());
  }

  /** Send a signal to the machine's process (Fly's `signal`): what it does is up to the process. */
  signal(m: EmulatedMachine, signal: SignalName): void {
    if (!m.proc)
      throw new EmulatorError(
        412,
        `failed_precondition: machine ${m.id} has no running process to signal (state: ${m.state})`,
      );
    m.event('signal', m.state, 'user', { signal });
    m.proc.signal(signal);
  }

  /** The process has ended (or never ran): the VM's teardown, then stopped (or suspended). */
  stopped(m: EmulatedMachine): void {
    m.clearTimers();
    const ms = this.s.latency.stopMs();
    if (ms > 0) m.later(ms, () => this.settle(m));
    else this.settle(m);
  }

  /** Stopped (or suspended); then destroyed when the config says so, or started again for a restart. */
  private settle(m: EmulatedMachine): void {
    const kind = m.stopKind;
    m.stopKind = 'stop';
    if (kind === 'suspend') {
      m.setState('suspended');
      m.event('suspend', 'suspended', 'flyd');
      m.intent = 'run';
      return;
    }
    m.setState('stopped');
    m.event('exit', 'stopped', 'flyd');
    if (kind !== 'restart' && m.config.auto_destroy) {
      m.intent = 'destroy';
      m.setState('destroying');
      this.destroyed(m);
      return;
    }
    m.intent = 'run';
    if (kind === 'restart') this.start(m, 'flyd');
  }

  destroyed(m: EmulatedMachine): void {
    m.releaseAddress(this.s.addresses);
    m.setState('destroyed');
    m.event('destroy', 'destroyed', 'flyd');
  }

  private spawn(m: EmulatedMachine): void {
    if (this.s.closing() || m.intent !== 'run' || m.state !== 'starting' || m.proc) return;
    const proc = new VmProcess(
      vmSpawnSpec(m, this.s.vm),
      (line) => {
        m.logs.push(line);
        this.s.logger?.info({ machine: m.id, stream: line.stream }, line.line);
      },
      () => {
        if (m.proc === proc && m.state === 'starting' && m.intent === 'run') {
          m.setState('started');
          m.event('start', 'started', 'flyd');
        }
      },
    );
    m.proc = proc;
    m.procStartedAt = Date.now();
    m.spawns += 1;
    void proc.exited.then((info) => this.onExit(m, proc, info));
  }

  private onExit(m: EmulatedMachine, proc: VmProcess, info: ExitInfo): void {
    if (m.proc !== proc) return;
    m.proc = undefined;
    m.lastExit = info;
    m.clearTimers();
    m.event('exit', m.state, 'flyd', { exit_code: info.code, signal: info.signal });
    if (this.s.closing() || m.intent === 'destroy') return;
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
      m.setState('starting');
      m.event('restart', 'starting', 'flyd');
      m.later(this.s.restartDelayMs, () => this.spawn(m));
      return;
    }
    m.setState('stopping');
    this.stopped(m);
  }
}
