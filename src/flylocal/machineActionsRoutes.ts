/**
 * Routes of the per-machine endpoints besides get, stop, destroy and wait (start, restart, suspend,
 * update, signal, cordon/uncordon, events, versions, lease, ps, metadata): the spec's paths, bodies
 * checked with zod, answers in the spec's shapes. The work itself is in machineActions.ts.
 */
import {
  createLeaseRequest,
  metadataKey,
  metadataValueRequest,
  parseGoDurationMs,
  signalName,
  signalRequest,
  updateMachineRequest,
} from '../adapters/fly/schemas.js';
import type { ApiWork } from './apiCalls.js';
import type { FlyLocalEmulator } from './emulator.js';
import { EmulatorError, invalidArgument } from './emulatorError.js';
import type { EmulatedAction } from './faults.js';
import type { MachineRoute } from './machinesRoutes.js';
import { body, leaseNonce, one, params } from './routeParams.js';
import type { FastifyRequest } from 'fastify';

type ActionWithWork = Exclude<
  EmulatedAction,
  'create' | 'get' | 'list' | 'wait' | 'stop' | 'destroy'
>;

const ok = { body: { ok: true } };

/** `?timeout=` of a restart: a Go duration or a number of seconds. */
function restartTimeoutMs(req: FastifyRequest): number | undefined {
  const raw = one(req, 'timeout');
  if (raw === undefined || raw === '') return undefined;
  if (/^\d+$/.test(raw)) return Number(raw) * 1000;
  const ms = parseGoDurationMs(raw);
  if (ms === undefined)
    throw new EmulatorError(
      400,
      'invalid_argument: timeout must be a Go duration ("10s") or a number of seconds',
    );
  return ms;
}

function metadataKeyOf(req: FastifyRequest): string {
  const parsed = metadataKey.safeParse((req.params as { key?: string }).key);
  if (!parsed.success) throw invalidArgument(parsed.error);
  return parsed.data;
}

export function actionWorks(emulator: FlyLocalEmulator): Record<ActionWithWork, ApiWork> {
  const a = emulator.actions;
  return {
    start: async (req) => {
      const { app, id } = params(req);
      return { body: a.start(app, id, leaseNonce(req)) };
    },
    restart: async (req) => {
      const { app, id } = params(req);
      const rawSignal = one(req, 'signal');
      const signal = rawSignal === undefined ? undefined : signalName.safeParse(rawSignal);
      if (signal && !signal.success) throw invalidArgument(signal.error);
      const timeoutMs = restartTimeoutMs(req);
      a.restart(
        app,
        id,
        {
          ...(signal?.data ? { signal: signal.data } : {}),
          ...(timeoutMs !== undefined ? { timeoutMs } : {}),
        },
        leaseNonce(req),
      );
      return ok;
    },
    suspend: async (req) => {
      const { app, id } = params(req);
      a.suspend(app, id, leaseNonce(req));
      return ok;
    },
    update: async (req) => {
      const { app, id } = params(req);
      return { body: a.update(app, id, body(req, updateMachineRequest), leaseNonce(req)) };
    },
    signal: async (req) => {
      const { app, id } = params(req);
      a.signal(app, id, body(req, signalRequest).signal, leaseNonce(req));
      return ok;
    },
    cordon: async (req) => {
      const { app, id } = params(req);
      a.cordon(app, id, true, leaseNonce(req));
      return ok;
    },
    events: async (req) => {
      const { app, id } = params(req);
      return { body: a.events(app, id) };
    },
    versions: async (req) => {
      const { app, id } = params(req);
      return { body: a.versions(app, id) };
    },
    lease: async (req) => {
      const { app, id } = params(req);
      return { body: a.getLease(app, id) };
    },
    ps: async (req) => {
      const { app, id } = params(req);
      return { body: a.ps(app, id) };
    },
    getMetadata: async (req) => {
      const { app, id } = params(req);
      return { body: a.metadata(app, id) };
    },
    setMetadata: async (req) => {
      const { app, id } = params(req);
      const key = metadataKeyOf(req);
      a.setMetadata(app, id, key, body(req, metadataValueRequest).value, leaseNonce(req));
      return { status: 204, body: '' };
    },
    deleteMetadata: async (req) => {
      const { app, id } = params(req);
      a.deleteMetadata(app, id, metadataKeyOf(req), leaseNonce(req));
      return { status: 204, body: '' };
    },
  };
}

const takeLease =
  (emulator: FlyLocalEmulator): ApiWork =>
  async (req) => {
    const { app, id } = params(req);
    return {
      body: emulator.actions.acquireLease(app, id, body(req, createLeaseRequest), leaseNonce(req)),
    };
  };

const releaseLease =
  (emulator: FlyLocalEmulator): ApiWork =>
  async (req) => {
    const { app, id } = params(req);
    emulator.actions.releaseLease(app, id, leaseNonce(req));
    return ok;
  };

const uncordon =
  (emulator: FlyLocalEmulator): ApiWork =>
  async (req) => {
    const { app, id } = params(req);
    emulator.actions.cordon(app, id, false, leaseNonce(req));
    return ok;
  };

const M = '/v1/apps/:app_name/machines/:machine_id';

export const ACTION_ROUTES: readonly MachineRoute[] = [
  { method: 'POST', url: M, action: 'update' },
  { method: 'POST', url: `${M}/start`, action: 'start' },
  { method: 'POST', url: `${M}/restart`, action: 'restart' },
  { method: 'POST', url: `${M}/suspend`, action: 'suspend' },
  { method: 'POST', url: `${M}/signal`, action: 'signal' },
  { method: 'POST', url: `${M}/cordon`, action: 'cordon' },
  { method: 'POST', url: `${M}/uncordon`, action: 'cordon', work: uncordon },
  { method: 'GET', url: `${M}/events`, action: 'events' },
  { method: 'GET', url: `${M}/versions`, action: 'versions' },
  { method: 'GET', url: `${M}/lease`, action: 'lease' },
  { method: 'POST', url: `${M}/lease`, action: 'lease', work: takeLease },
  { method: 'DELETE', url: `${M}/lease`, action: 'lease', work: releaseLease },
  { method: 'GET', url: `${M}/ps`, action: 'ps' },
  { method: 'GET', url: `${M}/metadata`, action: 'getMetadata' },
  { method: 'POST', url: `${M}/metadata/:key`, action: 'setMetadata' },
  { method: 'DELETE', url: `${M}/metadata/:key`, action: 'deleteMetadata' },
];
