/**
 * The Machines API's machine routes with Fly's paths, query parameters and answers, each wrapped
 * by ApiCalls: create, list, get, destroy, stop and wait here, every other per-machine endpoint in
 * machineActionsRoutes.ts; any other `/v1` path (apps, volumes, exec…) is a 501.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import {
  createMachineRequest,
  durationMs,
  stopRequest,
  WAIT_STATES,
} from '../adapters/fly/schemas.js';
import type { ApiCalls, ApiWork } from './apiCalls.js';
import type { FlyLocalEmulator } from './emulator.js';
import { EmulatorError, shuttingDown } from './emulatorError.js';
import type { EmulatedAction } from './faults.js';
import { actionWorks, ACTION_ROUTES } from './machineActionsRoutes.js';
import { body, leaseNonce, one, params, queryKeys, truthy } from './routeParams.js';

function listFilter(req: FastifyRequest): Parameters<FlyLocalEmulator['list']>[1] {
  const metadata: Record<string, string> = {};
  for (const key of queryKeys(req)) {
    const value = one(req, key);
    if (key.startsWith('metadata.') && value !== undefined)
      metadata[key.slice('metadata.'.length)] = value;
  }
  const state = one(req, 'state');
  const region = one(req, 'region');
  return {
    metadata,
    includeDeleted: truthy(one(req, 'include_deleted')),
    ...(region ? { region } : {}),
    ...(state ? { states: state.split(',').map((s) => s.trim()) } : {}),
  };
}

/** `?timeout=` of a wait, in seconds: whole, clamped to 1…60, 60 when absent. */
function waitTimeoutS(req: FastifyRequest): number {
  const raw = one(req, 'timeout');
  if (raw === undefined) return 60;
  if (!/^\d+$/.test(raw))
    throw new EmulatorError(400, 'invalid_argument: timeout must be a whole number of seconds');
  return Math.min(60, Math.max(1, Number(raw)));
}

function waitWork(emulator: FlyLocalEmulator): ApiWork {
  return async (req) => {
    const { app, id } = params(req);
    const state = one(req, 'state') ?? 'started';
    if (!(WAIT_STATES as readonly string[]).includes(state)) {
      throw new EmulatorError(
        400,
        `invalid_argument: state must be one of ${WAIT_STATES.join(', ')}`,
      );
    }
    const timeoutS = waitTimeoutS(req);
    const target = state as (typeof WAIT_STATES)[number];
    const r = await emulator.wait(app, id, target, timeoutS * 1000, one(req, 'instance_id'));
    if (r === 'ok') return { body: { ok: true } };
    if (r === 'closing') throw shuttingDown();
    const now = emulator.machine(id)?.state ?? 'unknown';
    return {
      status: 408,
      body: {
        error: `deadline_exceeded: machine failed to reach desired state, ${target}, currently ${now}`,
      },
    };
  };
}

function works(emulator: FlyLocalEmulator): Record<EmulatedAction, ApiWork> {
  return {
    create: async (req) => {
      const { app } = params(req);
      return { body: await emulator.create(app, body(req, createMachineRequest)) };
    },
    list: async (req) => ({ body: emulator.list(params(req).app, listFilter(req)) }),
    get: async (req) => {
      const { app, id } = params(req);
      return { body: emulator.get(app, id) };
    },
    destroy: async (req) => {
      const { app, id } = params(req);
      await emulator.destroy(
        app,
        id,
        truthy(one(req, 'force')) || truthy(one(req, 'kill')),
        leaseNonce(req),
      );
      return { body: { ok: true } };
    },
    stop: async (req) => {
      const { app, id } = params(req);
      const stop = body(req, stopRequest);
      emulator.stop(
        app,
        id,
        {
          ...(stop.signal ? { signal: stop.signal } : {}),
          ...(stop.timeout !== undefined ? { timeoutMs: durationMs(stop.timeout) } : {}),
        },
        leaseNonce(req),
      );
      return { body: { ok: true } };
    },
    wait: waitWork(emulator),
    ...actionWorks(emulator),
  };
}

export interface MachineRoute {
  readonly method: 'GET' | 'POST' | 'DELETE';
  readonly url: string;
  readonly action: EmulatedAction;
  /** Its own work when several routes share an action (lease get/take/release, cordon/uncordon). */
  readonly work?: (emulator: FlyLocalEmulator) => ApiWork;
}

const ROUTES: readonly MachineRoute[] = [
  { method: 'POST', url: '/v1/apps/:app_name/machines', action: 'create' },
  { method: 'GET', url: '/v1/apps/:app_name/machines', action: 'list' },
  { method: 'GET', url: '/v1/apps/:app_name/machines/:machine_id', action: 'get' },
  { method: 'DELETE', url: '/v1/apps/:app_name/machines/:machine_id', action: 'destroy' },
  { method: 'POST', url: '/v1/apps/:app_name/machines/:machine_id/stop', action: 'stop' },
  { method: 'GET', url: '/v1/apps/:app_name/machines/:machine_id/wait', action: 'wait' },
  ...ACTION_ROUTES,
];

export function registerMachinesApi(
  app: FastifyInstance,
  emulator: FlyLocalEmulator,
  calls: ApiCalls,
): void {
  const work = works(emulator);
  for (const { method, url, action, work: own } of ROUTES) {
    app.route({
      method,
      url,
      config: { action },
      handler: calls.handler(action, own ? own(emulator) : work[action]),
    });
  }
  // Everything else the real API has, we do not pretend to have.
  app.all('/v1/*', async (req, reply) =>
    reply.code(501).send({
      error: `not_implemented: flylocal does not emulate ${req.method} ${req.url.split('?')[0]}`,
    }),
  );
}
