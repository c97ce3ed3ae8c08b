/**
 * The life of a Useless Machine VM: readiness self-check, one "listening" call home, then switching
 * itself off when its viewers are done, nobody came, its TTL runs out, or it gets a signal.
 */
import { formatTraceparent } from '../shared/trace.js';
import type { MachineStatusBody } from '../shared/callbackAuth.js';
import { errorMessage } from '../shared/errors.js';
import type { Logger } from '../shared/log.js';
import type { Clock, Timers } from '../ports/clock.js';
import {
  deliverStatus,
  type CallbackDeps,
  type CallbackTuning,
  type DeliveryResult,
  type Fetch,
  type Sleep,
} from './callbacks.js';
import type { UselessConfig } from './config.js';
import { healthAnswer } from './routes/health.js';
import type { Viewers } from './viewers.js';

/** Why the machine switches off; `idle`: ready, but no viewer came within `WM_IDLE_MS`. */
export type StopReason = 'finished' | 'idle' | 'ttl' | 'signal';
/** booting: built; checking: readiness self-check; running: ready; stopping/stopped: switching off. */
export type Phase = 'booting' | 'checking' | 'running' | 'stopping' | 'stopped';

export interface LifeTuning {
  /** Readiness self-check: at most this many GETs of our own /health, this far apart, each this short. */
  readinessAttempts: number;
  readinessIntervalMs: number;
  readinessTimeoutMs: number;
  /** How long we keep trying to deliver "listening". */
  listeningBudgetMs: number;
  /** How long we keep trying to deliver "stopping" before exiting anyway (well under kill_timeout). */
  stopBudgetMs: number;
  /** If closing hangs past the stop budget plus this, exit regardless. */
  forceExitAfterMs: number;
  callback: CallbackTuning;
}

export interface LifeDeps {
  config: UselessConfig;
  log: Logger;
  clock: Clock;
  timers: Timers;
  sleep: Sleep;
  fetch: Fetch;
  /** Ends the process: `process.exit` in main, a recorder in tests. */
  exit: (code: number) => void;
  tuning: LifeTuning;
  viewers: Viewers;
  /** Closes the HTTP server (and waits for requests in flight). */
  close: () => Promise<void>;
}

export class MachineLife {
  private current: Phase = 'booting';
  private started: Promise<void> | undefined;
  private stopping: Promise<void> | undefined;
  private listeningResult: DeliveryResult | undefined;
  /** Aborted once the machine switches off: ends the self-check and the "listening" retries. */
  private readonly life = new AbortController();
  private readonly callbacks: CallbackDeps;

  constructor(private readonly deps: LifeDeps) {
    const { config } = deps;
    this.callbacks = {
      fetch: deps.fetch,
      clock: deps.clock,
      sleep: deps.sleep,
      log: deps.log,
      key: config.callbackKey,
      traceparent: config.trace && formatTraceparent(config.trace),
      urls: config.callbackFallbackUrl
        ? [config.callbackUrl, config.callbackFallbackUrl]
        : [config.callbackUrl],
      tuning: deps.tuning.callback,
    };
  }

  get phase(): Phase {
    return this.current;
  }

  /** Stopping or stopped: no new viewers, and the page says the machine is gone. */
  get switchingOff(): boolean {
    return this.current === 'stopping' || this.current === 'stopped';
  }

  /** The outcome of the "listening" callback, once known. */
  get listening(): DeliveryResult | undefined {
    return this.listeningResult;
  }

  /** Readiness self-check against our own listener, then "listening". Arms the TTL. Idempotent. */
  start(selfUrl: string): Promise<void> {
    this.started ??= this.run(selfUrl);
    return this.started;
  }

  /** Switch off: "stopping" callback within the stop budget, close, exit(0). Idempotent. */
  stop(reason: StopReason): Promise<void> {
    this.stopping ??= this.switchOff(reason);
    return this.stopping;
  }

  /** Switch off once everyone who came has finished or gone quiet; otherwise wait for the quietest. */
  readonly reconsider = (): void => {
    const { timers, viewers, log } = this.deps;
    if (this.switchingOff) return;
    // Someone came: from now on the viewers (or the TTL) decide, not the idle timer.
    if (viewers.size > 0) timers.clear('idle');
    const state = viewers.state();
    if (state.kind === 'finished') {
      timers.clear('viewers');
      log.info({ viewers: viewers.size }, 'every viewer is done');
      void this.stop('finished');
    } else if (state.kind === 'watching') {
      timers.set('viewers', state.quietAt, this.reconsider);
    } else {
      timers.clear('viewers');
    }
  };

  private async run(selfUrl: string): Promise<void> {
    const { config, clock, timers, log, tuning } = this.deps;
    this.current = 'checking';
    timers.set('ttl', clock.now() + config.ttlMs, () => {
      log.info({ ttlMs: config.ttlMs }, 'time to live is up');
      void this.stop('ttl');
    });
    log.info(
      { ttlMs: config.ttlMs, source: config.source, region: config.region },
      'machine up; checking readiness',
    );
    const ready = await this.checkReadiness(selfUrl);
    if (this.life.signal.aborted) return; // switching off already
    if (!ready) {
      // Nobody would ever be sent here. Exit non-zero: the platform's restart policy or the
      // landing app's ready deadline takes it from here.
      log.error({ attempts: tuning.readinessAttempts }, 'could not confirm readiness; exiting');
      this.current = 'stopped';
      this.endTimers();
      await this.close();
      this.deps.exit(1);
      return;
    }
    this.current = 'running';
    this.armIdle();
    this.listeningResult = await deliverStatus(this.callbacks, this.statusBody('listening'), {
      budgetMs: tuning.listeningBudgetMs,
      signal: this.life.signal,
    });
    if (!this.listeningResult.ok && this.listeningResult.reason !== 'aborted') {
      // Keep serving: a visitor may still arrive by link, and the TTL ends us regardless.
      log.error({ result: this.listeningResult }, 'nobody heard that we are listening');
    }
  }

  private async checkReadiness(selfUrl: string): Promise<boolean> {
    const { tuning, sleep, log } = this.deps;
    const signal = this.life.signal;
    for (let i = 1; i <= tuning.readinessAttempts; i++) {
      if (signal.aborted) return false;
      const timeout = new AbortController();
      const stopTimer = new AbortController();
      void sleep(tuning.readinessTimeoutMs, stopTimer.signal).then(() =>
        timeout.abort(new Error('timed out')),
      );
      const onAbort = (): void => timeout.abort(new Error('aborted'));
      signal.addEventListener('abort', onAbort, { once: true });
      try {
        const res = await this.deps.fetch(`${selfUrl}/health`, { signal: timeout.signal });
        const body: unknown = await res.json().catch(() => undefined);
        if (res.status === 200 && healthAnswer.safeParse(body).success) {
          log.info({ attempts: i }, 'ready to serve');
          return true;
        }
        log.warn({ status: res.status, attempt: i }, 'readiness check got an unexpected answer');
      } catch (err) {
        log.warn({ attempt: i, err: errorMessage(err) }, 'readiness check failed');
      } finally {
        stopTimer.abort();
        signal.removeEventListener('abort', onAbort);
      }
      if (i < tuning.readinessAttempts) await sleep(tuning.readinessIntervalMs, signal);
    }
    return false;
  }

  /**
   * Ready, and nobody here yet: a machine nobody visits (the visitor closed the tab, the redirect
   * never happened) should not hold a slot for its whole TTL. The first viewer clears this.
   */
  private armIdle(): void {
    const { config, clock, timers, viewers, log } = this.deps;
    if (config.idleMs <= 0 || viewers.size > 0) return;
    timers.set('idle', clock.now() + config.idleMs, () => {
      if (viewers.size > 0) return;
      log.info({ idleMs: config.idleMs }, 'no viewer came');
      void this.stop('idle');
    });
  }

  private async switchOff(reason: StopReason): Promise<void> {
    const { clock, timers, log, tuning } = this.deps;
    this.current = 'stopping';
    log.info({ reason }, 'switching off');
    this.endTimers();
    timers.set('force-exit', clock.now() + tuning.stopBudgetMs + tuning.forceExitAfterMs, () => {
      log.error('shutdown took too long; exiting anyway');
      this.deps.exit(0);
    });
    const result = await deliverStatus(this.callbacks, this.statusBody('stopping', reason), {
      budgetMs: tuning.stopBudgetMs,
    });
    // Not an error: the platform destroys the machine on exit and the landing app learns it
    // from the API (its watch or the reconciler), as it must whenever a VM dies unheard.
    if (!result.ok) log.warn({ result }, 'could not report that we are stopping');
    await this.close();
    await this.started?.catch(() => undefined);
    timers.clear('force-exit');
    this.current = 'stopped';
    log.info({ reason }, 'switched off');
    // Exit 0: with restart policy on-failure the platform leaves us stopped, and auto_destroy removes us.
    this.deps.exit(0);
  }

  /** Ends the life signal and every timer of the running machine. */
  private endTimers(): void {
    this.life.abort();
    for (const key of ['ttl', 'viewers', 'idle']) this.deps.timers.clear(key);
  }

  private async close(): Promise<void> {
    await this.deps.close().catch((err: unknown) => this.deps.log.error({ err }, 'close failed'));
  }

  private statusBody(status: 'listening' | 'stopping', reason?: StopReason): MachineStatusBody {
    const { config, clock } = this.deps;
    return {
      machineId: config.machineId,
      launchId: config.launchId,
      region: config.region,
      status,
      at: new Date(clock.now()).toISOString(),
      ...(reason ? { reason } : {}),
    };
  }
}
