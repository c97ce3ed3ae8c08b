/**
 * The Machines API on the wire, as zod schemas taken from reference/fly-machines-openapi.json: responses
 * the client validates (loose: unknown fields pass) and the request bodies the emulator validates.
 */
import { z } from 'zod';

// ---------------------------------------------------------------------------------------------
// Durations. The spec models fly.Duration as {"time.Duration": <ns>}, but Fly's Go types marshal
// it as a Go duration string ("30s") and accept a bare number of nanoseconds too. Accept all three.
// ---------------------------------------------------------------------------------------------

const unitMs: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/** "1m30s" → 90000; undefined when the text is not a Go duration. */
export function parseGoDurationMs(text: string): number | undefined {
  const s = text.trim();
  if (s === '0') return 0;
  const part = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/y;
  let total = 0;
  let pos = 0;
  while (pos < s.length) {
    part.lastIndex = pos;
    const m = part.exec(s);
    if (!m) return undefined;
    total += Number(m[1]) * unitMs[m[2]!]!;
    pos = part.lastIndex;
  }
  return pos === 0 ? undefined : total;
}

export const flyDuration = z.union([
  z
    .string()
    .refine((s) => parseGoDurationMs(s) !== undefined, 'expected a Go duration such as "30s"'),
  z.number().int().nonnegative(),
  z.looseObject({ 'time.Duration': z.number().int().nonnegative() }),
]);
export type FlyDuration = z.infer<typeof flyDuration>;

export function durationMs(d: FlyDuration): number {
  if (typeof d === 'string') return parseGoDurationMs(d) ?? 0;
  if (typeof d === 'number') return d / 1e6;
  return d['time.Duration'] / 1e6;
}

/** How we send a duration: whole seconds, the Go string form. */
export function secondsToGoDuration(s: number): string {
  return `${Math.max(0, Math.round(s))}s`;
}

// ---------------------------------------------------------------------------------------------
// Responses (what the client relies on; everything else passes through untouched).
// ---------------------------------------------------------------------------------------------

const stringMap = z.record(z.string(), z.string());

/** The parts of fly.MachineConfig we read back. */
export const machineConfigOut = z.looseObject({
  image: z.string().optional(),
  env: stringMap.nullish(),
  metadata: stringMap.nullish(),
  auto_destroy: z.boolean().optional(),
});

export const machineSchema = z.looseObject({
  id: z.string().min(1),
  name: z.string().default(''),
  state: z.string().min(1),
  region: z.string(),
  instance_id: z.string().min(1),
  private_ip: z.string().optional(),
  config: machineConfigOut.optional(),
  /** `summary=true` lists carry this instead of `config`. */
  incomplete_config: machineConfigOut.optional(),
  created_at: z.string(),
  updated_at: z.string(),
});
export type MachineJson = z.infer<typeof machineSchema>;

export const machineListSchema = z.array(machineSchema);

/** Wait, stop and destroy answer `{"ok":true}` (or, in older versions, nothing at all). */
export const okSchema = z.looseObject({ ok: z.literal(true).optional() });

export const errorBodySchema = z.looseObject({
  error: z.string().optional(),
  message: z.string().optional(),
  status: z.string().optional(),
});
export type ErrorBody = z.infer<typeof errorBodySchema>;

// ---------------------------------------------------------------------------------------------
// Requests (the client builds these; the emulator validates them).
// ---------------------------------------------------------------------------------------------

/** Signals the SignalRequest schema allows; stop accepts the same names. */
export const SIGNALS = [
  'SIGABRT',
  'SIGALRM',
  'SIGFPE',
  'SIGHUP',
  'SIGILL',
  'SIGINT',
  'SIGKILL',
  'SIGPIPE',
  'SIGQUIT',
  'SIGSEGV',
  'SIGTERM',
  'SIGTRAP',
  'SIGUSR1',
] as const;
export const signalName = z.enum(SIGNALS);
export type SignalName = z.infer<typeof signalName>;

export const machinePortSchema = z.looseObject({
  port: z.number().int().min(1).max(65535).optional(),
  start_port: z.number().int().optional(),
  end_port: z.number().int().optional(),
  handlers: z.array(z.string()).optional(),
  force_https: z.boolean().optional(),
});

export const machineServiceSchema = z.looseObject({
  protocol: z.string().optional(),
  internal_port: z.number().int().min(1).max(65535).optional(),
  // "Accepts a string (new format) or a boolean (old format)."
  autostop: z.union([z.enum(['off', 'stop', 'suspend']), z.boolean()]).optional(),
  autostart: z.boolean().optional(),
  min_machines_running: z.number().int().min(0).optional(),
  ports: z.array(machinePortSchema).optional(),
  concurrency: z
    .looseObject({
      type: z.string().optional(),
      hard_limit: z.number().int().optional(),
      soft_limit: z.number().int().optional(),
    })
    .optional(),
});

export const machineConfigIn = z.looseObject({
  image: z.string().min(1, 'config.image is required'),
  env: stringMap.optional(),
  metadata: stringMap.optional(),
  guest: z
    .looseObject({
      cpu_kind: z.string().optional(),
      cpus: z.number().int().min(1).optional(),
      memory_mb: z.number().int().min(1).optional(),
    })
    .optional(),
  services: z.array(machineServiceSchema).optional(),
  auto_destroy: z.boolean().optional(),
  restart: z
    .looseObject({
      policy: z.enum(['no', 'always', 'on-failure', 'spot-price']).optional(),
      max_retries: z.number().int().min(0).optional(),
    })
    .optional(),
  stop_config: z
    .looseObject({ signal: signalName.optional(), timeout: flyDuration.optional() })
    .optional(),
  init: z
    .looseObject({
      cmd: z.array(z.string()).optional(),
      entrypoint: z.array(z.string()).optional(),
      exec: z.array(z.string()).optional(),
    })
    .optional(),
});
export type MachineConfigIn = z.infer<typeof machineConfigIn>;

export const createMachineRequest = z.looseObject({
  config: machineConfigIn,
  region: z.string().optional(),
  name: z
    .string()
    .regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'name: lowercase letters, digits, - and _')
    .optional(),
  skip_launch: z.boolean().optional(),
  skip_service_registration: z.boolean().optional(),
  lease_ttl: z.number().int().optional(),
});
export type CreateMachineRequest = z.infer<typeof createMachineRequest>;

export const stopRequest = z.looseObject({
  signal: signalName.optional(),
  timeout: flyDuration.optional(),
});
export type StopRequest = z.infer<typeof stopRequest>;

export const WAIT_STATES = ['started', 'stopped', 'suspended', 'destroyed'] as const;

/** `POST /apps/{app}/machines/{id}`: a new config for the machine (UpdateMachineRequest). */
export const updateMachineRequest = z.looseObject({
  config: machineConfigIn,
  /** Refuse the update unless this is still the machine's version (optimistic concurrency). */
  current_version: z.string().optional(),
  region: z.string().optional(),
  name: z.string().optional(),
  skip_launch: z.boolean().optional(),
  skip_service_registration: z.boolean().optional(),
  lease_ttl: z.number().int().optional(),
});
export type UpdateMachineRequest = z.infer<typeof updateMachineRequest>;

/** `POST …/lease` (CreateLeaseRequest): `ttl` in seconds. */
export const createLeaseRequest = z.looseObject({
  ttl: z.number().int().min(1).max(86_400).optional(),
  description: z.string().max(512).optional(),
});

/** `POST …/signal` (SignalRequest): the signal is required. */
export const signalRequest = z.looseObject({ signal: signalName });

/** `POST …/metadata/{key}`: the value, as fly-go sends it. */
export const metadataValueRequest = z.looseObject({ value: z.string().max(4096) });

/** Metadata keys: letters, digits, `_`, `-` and `.`. */
export const metadataKey = z
  .string()
  .regex(/^[A-Za-z0-9_.-]{1,128}$/, 'metadata keys are letters, digits, "_", "-" and "." (1–128)');

/** `GET …/metadata`: the machine's metadata. */
export const metadataSchema = z.record(z.string(), z.string());
