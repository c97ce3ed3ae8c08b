/**
 * A machine's life past its create: start after the emulated start latency, one VM process per
 * start, the restart policy when it exits, stop signals with a kill after the stop timeout, and
 * the way to stopped, auto_destroy and destroyed.
 */
import { durationMs, type SignalName } from '../adapters/fly/schemas.js';
import type { Logger } from '../shared/log.js';
import type { AddressPool } from './addresses.js';
import type { Faults } from './faults.js';
import type { EmulatedMachine } from './machine.js';
import { VmProcess, type ExitInfo } from './supervisor.js';
import { vmSpawnSpec, type VmDefaults } from './vmCommand.js';

const DEFAULT_MAX_RETRIES = 10;

export interface LifecycleSettings {
  readonly vm: VmDefaults;
  readonly faults: Faults;
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

  start(m: EmulatedMachine): void {
    if (this.s.closing() || m.intent !== 'run') return;
    if (m.state !== 'created' && m.state !== 'stopped' && m.state !== 'starting') return;
    if (m.state !== 'starting') m.setState('starting');
    m.event('start', 'starting', 'flyd');
    m.later(this.s.faults.startLatencyMs(), () => this.spawn(m));
  }

  /** A user's stop of a starting or started machine: signal its process, kill it after the timeout. */
  stop(m: EmulatedMachine, opts: { signal?: SignalName; timeoutMs?: number }): void {
    m.intent = 'stop';
    m.clearTimers();
    m.setState('stopping');
    m.event('stop', 'stopping', 'user', opts.signal ? { signal: opts.signal } : undefined);
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

  /** The process has ended (or never ran): stopped, then destroyed when the config says so. */
  stopped(m: EmulatedMachine): void {
    m.clearTimers();
    m.setState('stopped');
    m.event('exit', 'stopped', 'flyd');
    if (m.config.auto_destroy) {
      m.intent = 'destroy';
      m.setState('destroying');
      this.destroyed(m);
    } else {
      m.intent = 'run';
    }
  }

  destroyed(m: EmulatedMachine): void {
    m.releaseAddress(this.s.addresses);
    m.setState('destroyed');
    m.event('destroy', 'destroyed', 'flyd');
  }

  private spawn(m: EmulatedMachine): void {
    if (this.s.closing() || m.intent !== 'run' || m.state !== 'starting') return;
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
