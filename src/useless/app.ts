/**
 * The Useless Machine app: routes (page, script, viewers, health), machine affinity on every path,
 * and the life of the VM: readiness self-check, one "listening" call home, then switching itself
 * off when its viewers are done, nobody came, its TTL runs out, or it gets a signal. Never listens
 * by itself.
 */
import { errorBody } from '../shared/errorBody.js';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { MachineStatusBody } from '../shared/callbackAuth.js';
import { AppError, errorMessage } from '../shared/errors.js';
import type { Logger } from '../shared/log.js';
import { cityName } from '../shared/regions.js';
import type { Clock, Timers } from '../ports/clock.js';
import {
  DEFAULT_CALLBACK_TUNING,
  deliverStatus,
  type CallbackDeps,
  type CallbackTuning,
  type DeliveryResult,
  type Fetch,
  type Sleep,
} from './callbacks.js';
import { isLoopback, type UselessConfig } from './config.js';
import { PAGE_CSP, SCRIPT_PATH, gonePage, machinePage, noMachinePage } from './page.js';
import { affinityCookie, affinitySetCookie, decideRoute } from './routing.js';
import { VIEWER_ID, Viewers } from './viewers.js';

/** Why the machine switches off; `idle`: ready, but no viewer came within `WM_IDLE_MS`. */
export type StopReason = 'finished' | 'idle' | 'ttl' | 'signal';
/** booting: built; checking: readiness self-check; running: ready; stopping/stopped: switching off. */
export type Phase = 'booting' | 'checking' | 'running' | 'stopping' | 'stopped';

export interface UselessTuning {
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
  /** A viewer not heard from for this long counts as gone. */
  viewerGraceMs: number;
  /** How often a playing page says it is still there. */
  viewerBeatMs: number;
  maxViewers: number;
  callback: CallbackTuning;
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

const queryShape = z.looseObject({ instance: z.string().optional() });
const viewerParams = z.strictObject({
  id: z.string().regex(VIEWER_ID, 'viewer ids are 16 url-safe characters'),
});

function pathOf(url: string): string {
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
}

/** A Sleep built on the Timers port, so tests can drive time; aborting resolves it early. */
export function timersSleep(clock: Clock, timers: Timers): Sleep {
  let n = 0;
  return (ms, signal) =>
    new Promise<void>((resolve) => {
      if (signal?.aborted) return resolve();
      const key = `sleep:${n++}`;
      const finish = (): void => {
        timers.clear(key);
        signal?.removeEventListener('abort', finish);
        resolve();
      };
      signal?.addEventListener('abort', finish, { once: true });
      timers.set(key, clock.now() + ms, finish);
    });
}

export function buildApp(deps: UselessDeps): UselessMachine {
  const { config, clock, timers } = deps;
  const tuning: UselessTuning = { ...DEFAULT_TUNING, ...deps.tuning };
  const log = deps.log.child({ machineId: config.machineId, launchId: config.launchId });
  const sleep = timersSleep(clock, timers);
  const city = cityName(config.region);
  const viewers = new Viewers(clock, tuning.viewerGraceMs, tuning.maxViewers);
  const life = new AbortController();
  let phase: Phase = 'booting';
  let started: Promise<void> | undefined;
  let stopping: Promise<void> | undefined;
  let listeningResult: DeliveryResult | undefined;

  const callbackDeps: CallbackDeps = {
    fetch: deps.fetch,
    clock,
    sleep,
    log,
    key: config.callbackKey,
    urls: config.callbackFallbackUrl
      ? [config.callbackUrl, config.callbackFallbackUrl]
      : [config.callbackUrl],
    tuning: tuning.callback,
  };

  const statusBody = (
    status: 'listening' | 'stopping',
    reason?: StopReason,
  ): MachineStatusBody => ({
    machineId: config.machineId,
    launchId: config.launchId,
    region: config.region,
    status,
    at: new Date(clock.now()).toISOString(),
    ...(reason ? { reason } : {}),
  });

  const app = Fastify({ loggerInstance: deps.log, bodyLimit: 4096 });

  app.setErrorHandler((err: unknown, req, reply) => {
    if (err instanceof AppError) {
      return reply.code(err.statusCode).send(errorBody(err.statusCode, err.code, err.message));
    }
    const status =
      typeof err === 'object' &&
      err !== null &&
      'statusCode' in err &&
      typeof err.statusCode === 'number'
        ? err.statusCode
        : 500;
    if (status >= 500) {
      req.log.error({ err }, 'request failed');
      return reply.code(500).send(errorBody(500, 'INTERNAL', 'something went wrong'));
    }
    const code =
      typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string'
        ? err.code
        : 'BAD_REQUEST';
    return reply.code(status).send(errorBody(status, code, errorMessage(err)));
  });

  app.setNotFoundHandler((req, reply) => {
    if ((req.headers.accept ?? '').includes('text/html')) {
      return htmlReply(reply.code(404), noMachinePage({ homeUrl: config.homeUrl }));
    }
    return reply
      .code(404)
      .send(errorBody(404, 'NOT_FOUND', `no route for ${req.method} ${pathOf(req.url)}`));
  });

  // Affinity on every path (page, script, viewer API, unknown paths alike). /health is exempt:
  // it is for the machine itself, and only ever answered to loopback peers.
  app.addHook('onRequest', async (req, reply) => {
    if (pathOf(req.url) === '/health') return;
    const query = queryShape.safeParse(req.query);
    const decision = query.success
      ? decideRoute(config.machineId, query.data.instance, affinityCookie(req.headers.cookie))
      : ({ kind: 'badInstance' } as const);
    if (decision.kind === 'badInstance') {
      return reply
        .code(400)
        .send(
          errorBody(
            400,
            'BAD_INSTANCE',
            'instance must name one machine (8–32 lowercase letters or digits)',
          ),
        );
    }
    if (decision.kind === 'replay') {
      req.log.debug(
        { to: decision.instance, via: decision.via },
        'replaying to the machine this request belongs to',
      );
      // The proxy acts on the header, not the status; 421 tells anyone reaching us directly what happened.
      return reply
        .code(421)
        .header('fly-replay', `instance=${decision.instance}`)
        .header('cache-control', 'no-store')
        .send();
    }
    if (decision.setCookie) {
      reply.header(
        'set-cookie',
        affinitySetCookie(config.machineId, req.headers['x-forwarded-proto'] === 'https'),
      );
    }
  });

  app.get('/health', async (req, reply) => {
    if (!isLoopback(req.socket.remoteAddress)) {
      reply.callNotFound();
      return reply;
    }
    return reply.header('cache-control', 'no-store').send({ status: 'ok' });
  });

  app.get('/machine', async (req, reply) => {
    const query = queryShape.parse(req.query);
    if (query.instance === undefined) {
      // Without a name we do not hand this machine to whoever asks: it belongs to its launcher.
      return htmlReply(reply.code(404), noMachinePage({ homeUrl: config.homeUrl }));
    }
    if (phase === 'stopping' || phase === 'stopped') {
      return htmlReply(
        reply.code(410),
        gonePage({ machineId: config.machineId, city, homeUrl: config.homeUrl }),
      );
    }
    // HEAD (link previews, probes) shows the page but does not count as someone watching.
    const viewerId = req.method === 'GET' ? viewers.register() : undefined;
    if (viewerId) reconsider();
    const base = `/machine/viewers/${viewerId ?? ''}`;
    const instance = `?instance=${encodeURIComponent(config.machineId)}`;
    const html = machinePage({
      machineId: config.machineId,
      city,
      homeUrl: config.homeUrl,
      withScript: deps.script !== undefined,
      ...(viewerId
        ? {
            viewer: {
              doneUrl: `${base}/done${instance}`,
              beatUrl: `${base}/beat${instance}`,
              beatEveryMs: tuning.viewerBeatMs,
            },
          }
        : {}),
    });
    return htmlReply(reply, html);
  });

  app.get(SCRIPT_PATH, async (_req, reply) => {
    if (deps.script === undefined) {
      reply.callNotFound();
      return reply;
    }
    return reply
      .header('content-type', 'text/javascript; charset=utf-8')
      .header('cache-control', 'no-cache')
      .header('x-content-type-options', 'nosniff')
      .send(deps.script);
  });

  app.post('/machine/viewers', async (_req, reply) => {
    if (phase === 'stopping' || phase === 'stopped')
      throw new AppError('MACHINE_STOPPING', 'this machine is switching itself off');
    const id = viewers.register();
    if (!id)
      throw new AppError('TOO_MANY_VIEWERS', 'this machine has as many viewers as it can take');
    reconsider();
    return reply
      .code(201)
      .send({ id, beatEveryMs: tuning.viewerBeatMs, graceMs: tuning.viewerGraceMs });
  });

  app.post('/machine/viewers/:id/beat', async (req, reply) => {
    const { id } = parseViewer(req);
    if (!viewers.touch(id)) throw new AppError('VIEWER_UNKNOWN', 'no such viewer on this machine');
    reconsider();
    return reply.code(204).send();
  });

  app.post('/machine/viewers/:id/done', async (req, reply) => {
    const { id } = parseViewer(req);
    if (!viewers.done(id)) throw new AppError('VIEWER_UNKNOWN', 'no such viewer on this machine');
    reconsider();
    return reply.code(204).send();
  });

  function parseViewer(req: FastifyRequest): { id: string } {
    const parsed = viewerParams.safeParse(req.params);
    if (!parsed.success)
      throw new AppError('BAD_VIEWER_ID', parsed.error.issues[0]?.message ?? 'bad viewer id');
    return parsed.data;
  }

  /** Switch off once everyone who came has finished or gone quiet; otherwise wait for the quietest. */
  function reconsider(): void {
    if (phase === 'stopping' || phase === 'stopped') return;
    // Someone came: from now on the viewers (or the TTL) decide, not the idle timer.
    if (viewers.size > 0) timers.clear('idle');
    const state = viewers.state();
    if (state.kind === 'finished') {
      timers.clear('viewers');
      log.info({ viewers: viewers.size }, 'every viewer is done');
      void stop('finished');
    } else if (state.kind === 'watching') {
      timers.set('viewers', state.quietAt, reconsider);
    } else {
      timers.clear('viewers');
    }
  }

  async function checkReadiness(selfUrl: string): Promise<boolean> {
    for (let i = 1; i <= tuning.readinessAttempts; i++) {
      if (life.signal.aborted) return false;
      const timeout = new AbortController();
      const stopTimer = new AbortController();
      void sleep(tuning.readinessTimeoutMs, stopTimer.signal).then(() =>
        timeout.abort(new Error('timed out')),
      );
      const onAbort = (): void => timeout.abort(new Error('aborted'));
      life.signal.addEventListener('abort', onAbort, { once: true });
      try {
        const res = await deps.fetch(`${selfUrl}/health`, { signal: timeout.signal });
        const body: unknown = await res.json().catch(() => undefined);
        if (res.status === 200 && z.object({ status: z.literal('ok') }).safeParse(body).success) {
          log.info({ attempts: i }, 'ready to serve');
          return true;
        }
        log.warn({ status: res.status, attempt: i }, 'readiness check got an unexpected answer');
      } catch (err) {
        log.warn({ attempt: i, err: errorMessage(err) }, 'readiness check failed');
      } finally {
        stopTimer.abort();
        life.signal.removeEventListener('abort', onAbort);
      }
      if (i < tuning.readinessAttempts) await sleep(tuning.readinessIntervalMs, life.signal);
    }
    return false;
  }

  async function run(selfUrl: string): Promise<void> {
    phase = 'checking';
    timers.set('ttl', clock.now() + config.ttlMs, () => {
      log.info({ ttlMs: config.ttlMs }, 'time to live is up');
      void stop('ttl');
    });
    log.info(
      { ttlMs: config.ttlMs, source: config.source, region: config.region },
      'machine up; checking readiness',
    );
    const ready = await checkReadiness(selfUrl);
    if (life.signal.aborted) return; // switching off already
    if (!ready) {
      // Nobody would ever be sent here. Exit non-zero: the platform's restart policy or the
      // landing app's ready deadline takes it from here.
      log.error({ attempts: tuning.readinessAttempts }, 'could not confirm readiness; exiting');
      phase = 'stopped';
      life.abort();
      timers.clear('ttl');
      timers.clear('viewers');
      timers.clear('idle');
      await app.close().catch((err: unknown) => log.error({ err }, 'close failed'));
      deps.exit(1);
      return;
    }
    phase = 'running';
    armIdle();
    listeningResult = await deliverStatus(callbackDeps, statusBody('listening'), {
      budgetMs: tuning.listeningBudgetMs,
      signal: life.signal,
    });
    if (!listeningResult.ok && listeningResult.reason !== 'aborted') {
      // Keep serving: a visitor may still arrive by link, and the TTL ends us regardless.
      log.error({ result: listeningResult }, 'nobody heard that we are listening');
    }
  }

  /**
   * Ready, and nobody here yet: a machine nobody visits (the visitor closed the tab, the redirect
   * never happened) should not hold a slot for its whole TTL. The first viewer clears this.
   */
  function armIdle(): void {
    if (config.idleMs <= 0 || viewers.size > 0) return;
    timers.set('idle', clock.now() + config.idleMs, () => {
      if (viewers.size > 0) return;
      log.info({ idleMs: config.idleMs }, 'no viewer came');
      void stop('idle');
    });
  }

  function start(selfUrl: string): Promise<void> {
    started ??= run(selfUrl);
    return started;
  }

  function stop(reason: StopReason): Promise<void> {
    stopping ??= (async () => {
      phase = 'stopping';
      log.info({ reason }, 'switching off');
      life.abort();
      timers.clear('ttl');
      timers.clear('viewers');
      timers.clear('idle');
      timers.set('force-exit', clock.now() + tuning.stopBudgetMs + tuning.forceExitAfterMs, () => {
        log.error('shutdown took too long; exiting anyway');
        deps.exit(0);
      });
      const result = await deliverStatus(callbackDeps, statusBody('stopping', reason), {
        budgetMs: tuning.stopBudgetMs,
      });
      // Not an error: the platform destroys the machine on exit and the landing app learns it
      // from the API (its watch or the reconciler), as it must whenever a VM dies unheard.
      if (!result.ok) log.warn({ result }, 'could not report that we are stopping');
      await app.close().catch((err: unknown) => log.error({ err }, 'close failed'));
      await started?.catch(() => undefined);
      timers.clear('force-exit');
      phase = 'stopped';
      log.info({ reason }, 'switched off');
      // Exit 0: with restart policy on-failure the platform leaves us stopped, and auto_destroy removes us.
      deps.exit(0);
    })();
    return stopping;
  }

  return {
    app,
    start,
    stop,
    phase: () => phase,
    viewers,
    listening: () => listeningResult,
  };
}

function htmlReply(reply: FastifyReply, html: string): FastifyReply {
  return reply
    .header('content-type', 'text/html; charset=utf-8')
    .header('cache-control', 'no-store')
    .header('content-security-policy', PAGE_CSP)
    .header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'no-referrer')
    .send(html);
}
