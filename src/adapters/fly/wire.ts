/**
 * The Fly client's translations between the port and the wire: the create (and update) body from our input, a
 * machine from Fly's JSON, the wait timeout Fly accepts, the auth header, and Fly's error text from
 * whatever error body arrives.
 */
import type { CreateMachineInput, FlyMachine } from '../../ports/flyMachines.js';
import {
  errorBodySchema,
  secondsToGoDuration,
  type CreateMachineRequest,
  type MachineJson,
  type StopRequest,
} from './schemas.js';

/** Fly's proxy cuts requests at 60 s, so a wait never asks for more (fly-go clamps the same way). */
export const WAIT_MAX_S = 60;

/** The body we POST to create a machine: our port's input in Fly's wire shape. */
export function createRequestBody(input: CreateMachineInput): CreateMachineRequest {
  const config: CreateMachineRequest['config'] = {
    image: input.image,
    env: { ...input.env },
    metadata: { ...input.metadata },
    // One public HTTP service in front of the VM's port, as the VM is visited through Fly's proxy;
    // autostop off: the VM decides when it is done.
    services: [
      {
        protocol: 'tcp',
        internal_port: input.internalPort,
        autostop: 'off',
        autostart: false,
        min_machines_running: 0,
        ports: [
          { port: 80, handlers: ['http'], force_https: false },
          { port: 443, handlers: ['http', 'tls'] },
        ],
      },
    ],
    auto_destroy: input.autoDestroy,
    restart: {
      policy: input.restart.policy,
      ...(input.restart.maxRetries === undefined ? {} : { max_retries: input.restart.maxRetries }),
    },
    stop_config: {
      signal: toSignal(input.stop.signal),
      timeout: secondsToGoDuration(input.stop.timeoutS),
    },
  };
  if (input.guest) {
    config.guest = {
      cpu_kind: input.guest.cpuKind,
      cpus: input.guest.cpus,
      memory_mb: input.guest.memoryMb,
    };
  }
  if (input.cmd && input.cmd.length > 0) config.init = { cmd: [...input.cmd] };
  return {
    ...(input.region ? { region: input.region } : {}),
    ...(input.name ? { name: input.name } : {}),
    ...(input.skipLaunch ? { skip_launch: true } : {}),
    config,
  };
}

function toSignal(s: string): NonNullable<StopRequest['signal']> {
  // The port takes a plain string; the wire wants a known name. Unknown names go through unchanged
  // in type only, so Fly (or the emulator) answers 400 and the caller sees it.
  return s as NonNullable<StopRequest['signal']>;
}

export function toFlyMachine(m: MachineJson): FlyMachine {
  return {
    id: m.id,
    name: m.name,
    state: m.state,
    region: m.region,
    instanceId: m.instance_id,
    privateIp: m.private_ip ? m.private_ip : undefined,
    createdAt: m.created_at,
    updatedAt: m.updated_at,
    metadata: { ...(m.config?.metadata ?? m.incomplete_config?.metadata ?? {}) },
  };
}

export function clampWaitSeconds(timeoutS: number | undefined): number {
  if (timeoutS === undefined || !Number.isFinite(timeoutS)) return WAIT_MAX_S;
  return Math.min(WAIT_MAX_S, Math.max(1, Math.round(timeoutS)));
}

/** Flyctl's rule: macaroon tokens ("FlyV1 …") go as they are; anything else is a bearer token. */
export function authorizationHeader(token: string): string {
  return token.startsWith('FlyV1 ') ? token : `Bearer ${token}`;
}

/** A body's text on one line, tags dropped, cut to `max` characters: for error messages. */
export function snippet(text: string, max = 160): string {
  const flat = text
    .replace(/<[^>]*>/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
  return flat.length > max ? `${flat.slice(0, max)}…` : flat;
}

/** Fly's error text from an error response, whatever shape the body has. */
export function describeErrorBody(text: string, contentType: string): string {
  if (text.trim() === '') return '(empty body)';
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return `non-JSON error body (${contentType || 'no content type'}): ${snippet(text)}`;
  }
  const body = errorBodySchema.safeParse(json);
  if (body.success && (body.data.error || body.data.message)) {
    const { error, message } = body.data;
    return error && message && message !== error
      ? `${error}: ${message}`
      : (error ?? message ?? '');
  }
  return `unrecognised error body: ${snippet(text)}`;
}
