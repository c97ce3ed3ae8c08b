/**
 * The Machines API routes the project calls (create, list, get, destroy, stop, wait) with Fly's
 * paths, query parameters and answers, each wrapped by ApiCalls; any other `/v1` path is a 501.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import {
  createMachineRequest,
  durationMs,
  stopRequest,
  WAIT_STATES,
} from '../adapters/fly/schemas.js';
import type { ApiCalls, ApiWork } from './apiCalls.js';
import type { FlyLocalEmulator } from './emulator.js';
import { EmulatorError, invalidArgument, shuttingDown } from './emulatorError.js';
import type { EmulatedAction } from './faults.js';

const appName = z
  .string()
  .regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'app names are lowercase letters, digits and dashes');

type Query = Record<string, string | string[] | undefined>;

function one(req: FastifyRequest, key: string): string | undefined {
  const v = (req.query as Query)[key];
  return Array.isArray(v) ? v[0] : v;
}

const truthy = (v: string | undefined): boolean => v === 'true' || v === '1';

function params(req: FastifyRequest): { app: string; id: string } {
  const p = req.params as { app_name?: string; machine_id?: string };
  const parsed = appName.safeParse(p.app_name);
  if (!parsed.success) throw invalidArgument(parsed.error);
  return { app: parsed.data, id: p.machine_id ?? '' };
}

function listFilter(req: FastifyRequest): Parameters<FlyLocalEmulator['list']>[1] {
  const metadata: Record<string, string> = {};
  for (const key of Object.keys(req.query as Query)) {
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
      const body = createMachineRequest.safeParse(req.body ?? {});
      if (!body.success) throw invalidArgument(body.error);
      return { body: await emulator.create(app, body.data) };
    },
    list: async (req) => ({ body: emulator.list(params(req).app, listFilter(req)) }),
    get: async (req) => {
      const { app, id } = params(req);
      return { body: emulator.get(app, id) };
    },
    destroy: async (req) => {
      const { app, id } = params(req);
      await emulator.destroy(app, id, truthy(one(req, 'force')) || truthy(one(req, 'kill')));
      return { body: { ok: true } };
    },
    stop: async (req) => {
      const { app, id } = params(req);
      const body = stopRequest.safeParse(req.body ?? {});
      if (!body.success) throw invalidArgument(body.error);
      emulator.stop(app, id, {
        ...(body.data.signal ? { signal: body.data.signal } : {}),
        ...(body.data.timeout !== undefined ? { timeoutMs: durationMs(body.data.timeout) } : {}),
      });
      return { body: { ok: true } };
    },
    wait: waitWork(emulator),
  };
}

const ROUTES: readonly {
  method: 'GET' | 'POST' | 'DELETE';
  url: string;
  action: EmulatedAction;
}[] = [
  { method: 'POST', url: '/v1/apps/:app_name/machines', action: 'create' },
  { method: 'GET', url: '/v1/apps/:app_name/machines', action: 'list' },
  { method: 'GET', url: '/v1/apps/:app_name/machines/:machine_id', action: 'get' },
  { method: 'DELETE', url: '/v1/apps/:app_name/machines/:machine_id', action: 'destroy' },
  { method: 'POST', url: '/v1/apps/:app_name/machines/:machine_id/stop', action: 'stop' },
  { method: 'GET', url: '/v1/apps/:app_name/machines/:machine_id/wait', action: 'wait' },
];

export function registerMachinesApi(
  app: FastifyInstance,
  emulator: FlyLocalEmulator,
  calls: ApiCalls,
): void {
  const work = works(emulator);
  for (const { method, url, action } of ROUTES) {
    app.route({ method, url, config: { action }, handler: calls.handler(action, work[action]) });
  }
  // Everything else the real API has, we do not pretend to have.
  app.all('/v1/*', async (req, reply) =>
    reply.code(501).send({
      error: `not_implemented: flylocal does not emulate ${req.method} ${req.url.split('?')[0]}`,
    }),
  );
}
