/**
 * The Useless Machine app: its routes (page, script, viewers, health) as plugins, machine affinity
 * on every path, and the life of the VM (lifecycle.ts). Never listens by itself.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import Fastify, { type FastifyInstance } from 'fastify';
import type { Logger } from '../shared/log.js';
import { zodRoutes } from '../shared/zodRoutes.js';
import type { Clock, Timers } from '../ports/clock.js';
import {
  DEFAULT_CALLBACK_TUNING,
  timersSleep,
  type DeliveryResult,
  type Fetch,
} from './callbacks.js';
import type { UselessConfig } from './config.js';
import { installErrorHandling, pinToMachine } from './http.js';
import { MachineLife, type LifeTuning, type Phase, type StopReason } from './lifecycle.js';
import { healthRoutes } from './routes/health.js';
import { machineRoutes } from './routes/machine.js';
import { viewerRoutes } from './routes/viewers.js';
import { Viewers } from './viewers.js';

export type { Phase, StopReason };

export interface UselessTuning extends LifeTuning {
  /** A viewer not heard from for this long counts as gone. */
  viewerGraceMs: number;
  /** How often a playing page says it is still there. */
  viewerBeatMs: number;
  maxViewers: number;
}

export const DEFAULT_TUNING: UselessTuning = {
  readinessAttempts: 20,
  readinessIntervalMs: 250,
  readinessTimeoutMs: 500,
  listeningBudgetMs: 60_000,
  stopBudgetMs: 3_000,
  forceExitAfterMs: 2_000,
  viewerGraceMs: 20_000,
  viewerBeatMs: 5_000,
  maxViewers: 50,
  callback: DEFAULT_CALLBACK_TUNING,
};

export interface UselessDeps {
  config: UselessConfig;
  log: Logger;
  clock: Clock;
  timers: Timers;
  fetch: Fetch;
  /** Ends the process: `process.exit` in main, a recorder in tests. */
  exit: (code: number) => void;
  /** The browser bundle's text, read once at start. Without it the page is served without JS. */
  script?: string | undefined;
  tuning?: Partial<UselessTuning>;
}

/** Fastify typed with our pino logger. */
export type UselessFastify = FastifyInstance<Server, IncomingMessage, ServerResponse, Logger>;

export interface UselessMachine {
  app: UselessFastify;
  /**
   * Call once the server listens, with the base URL of our own listener (loopback): readiness
   * self-check, then the one "listening" callback. Arms the TTL. Idempotent.
   */
  start(selfUrl: string): Promise<void>;
  /** Switch off: "stopping" callback within the stop budget, close, exit(0). Idempotent. */
  stop(reason: StopReason): Promise<void>;
  phase(): Phase;
  readonly viewers: Viewers;
  /** The outcome of the "listening" callback, once known. */
  listening(): DeliveryResult | undefined;
}

export function buildApp(deps: UselessDeps): UselessMachine {
  const { config, clock, timers } = deps;
  const tuning: UselessTuning = { ...DEFAULT_TUNING, ...deps.tuning };
  const viewers = new Viewers(clock, tuning.viewerGraceMs, tuning.maxViewers);
  const fastify = Fastify({ loggerInstance: deps.log, bodyLimit: 4096 });
  const app = zodRoutes(fastify);
  const life = new MachineLife({
    config,
    log: deps.log.child({ machineId: config.machineId, launchId: config.launchId }),
    clock,
    timers,
    sleep: timersSleep(clock, timers),
    fetch: deps.fetch,
    exit: deps.exit,
    tuning,
    viewers,
    close: () => app.close(),
  });

  installErrorHandling(app, config.homeUrl);
  pinToMachine(app, config);
  const beatEveryMs = tuning.viewerBeatMs;
  void app.register(healthRoutes);
  void app.register(machineRoutes, { config, life, viewers, beatEveryMs, script: deps.script });
  void app.register(viewerRoutes, { life, viewers, beatEveryMs });

  return {
    app: fastify,
    start: (selfUrl) => life.start(selfUrl),
    stop: (reason) => life.stop(reason),
    phase: () => life.phase,
    viewers,
    listening: () => life.listening,
  };
}
