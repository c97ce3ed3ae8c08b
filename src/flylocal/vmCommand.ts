/**
 * What a machine's VM process runs: its argv (init.exec, else entrypoint + cmd, else the default
 * command) and its environment (the host's basics, the config's env, and the variables Fly sets).
 */
import { isAbsolute, resolve as resolvePath } from 'node:path';
import type { EmulatedMachine } from './machine.js';
import type { SpawnSpec } from './supervisor.js';

/** Host variables every VM gets by default: only what a program needs to start. */
export function hostBaseEnv(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of ['PATH', 'HOME', 'LANG', 'TMPDIR', 'SYSTEMROOT']) {
    const v = process.env[k];
    if (v !== undefined) out[k] = v;
  }
  return out;
}

export interface VmDefaults {
  readonly defaultCommand: readonly string[];
  /** Working directory of every VM and the base for relative commands. */
  readonly projectRoot: string;
  readonly baseEnv: Readonly<Record<string, string>>;
}

function commandOf(m: EmulatedMachine, d: VmDefaults): { command: string; args: string[] } {
  const init = m.config.init;
  let argv: readonly string[] =
    init?.exec && init.exec.length > 0
      ? init.exec
      : [...(init?.entrypoint ?? []), ...(init?.cmd ?? [])];
  if (argv.length === 0) argv = d.defaultCommand;
  const [first, ...args] = argv;
  let command = first!;
  if (command === 'node') command = process.execPath;
  else if (!isAbsolute(command) && command.includes('/'))
    command = resolvePath(d.projectRoot, command);
  return { command, args };
}

function envOf(m: EmulatedMachine, d: VmDefaults): Record<string, string> {
  return {
    ...d.baseEnv,
    ...(m.config.env ?? {}),
    FLY_APP_NAME: m.app,
    FLY_MACHINE_ID: m.id,
    FLY_ALLOC_ID: m.id,
    FLY_REGION: m.region,
    FLY_PRIVATE_IP: m.address?.ip ?? '127.0.0.1',
    FLY_IMAGE_REF: m.config.image,
    FLY_MACHINE_VERSION: m.instanceId,
    FLY_PROCESS_GROUP: 'app',
    FLY_VM_MEMORY_MB: String(m.config.guest?.memory_mb ?? 256),
    PORT: String(m.address?.port ?? m.internalPort),
  };
}

export function vmSpawnSpec(m: EmulatedMachine, d: VmDefaults): SpawnSpec {
  const { command, args } = commandOf(m, d);
  return { command, args, env: envOf(m, d), cwd: d.projectRoot };
}
