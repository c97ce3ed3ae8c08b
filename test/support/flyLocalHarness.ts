/**
 * Test helpers for the Machines API emulator: start one on a free port with the fixture VM, build a
 * client for it, and make create inputs. Every start is paired with `close()` by the caller.
 */
import { execFileSync } from 'node:child_process';
import { FlyMachinesHttp, type FlyMachinesHttpOptions } from '../../src/adapters/fly/client.js';
import {
  startFlyLocal,
  type FlyLocalHandle,
  type StartFlyLocalOptions,
} from '../../src/flylocal/index.js';
import type { CreateMachineInput } from '../../src/ports/flyMachines.js';

export const FIXTURE_VM = 'test/support/fixtures/vm.mjs';
export const TEST_APP = 'test-vms';

export async function startTestFlyLocal(opts: StartFlyLocalOptions = {}): Promise<FlyLocalHandle> {
  return startFlyLocal({
    port: 0,
    // Tests choose the fast profile: no emulated image pulls, boots or teardowns.
    profile: 'fast',
    defaultCommand: ['node', FIXTURE_VM],
    closeGraceMs: 1_000,
    restartDelayMs: 20,
    ...opts,
  });
}

export function clientFor(
  h: Pick<FlyLocalHandle, 'apiUrl' | 'token'>,
  opts: Partial<FlyMachinesHttpOptions> = {},
): FlyMachinesHttp {
  return new FlyMachinesHttp({
    baseUrl: h.apiUrl,
    token: h.token,
    app: TEST_APP,
    rateLimits: false,
    timeoutMs: 10_000,
    ...opts,
  });
}

let n = 0;
/** A unique value per call, for metadata a test filters on. */
export function uniqueTag(prefix = 't'): string {
  return `${prefix}${process.pid.toString(36)}${Date.now().toString(36)}${(n++).toString(36)}`;
}

/** A create input for the fixture VM: runs until stopped, unless `env` tells it otherwise. */
export function fixtureInput(overrides: Partial<CreateMachineInput> = {}): CreateMachineInput {
  return {
    region: 'ams',
    image: 'registry.fly.io/useless-machine:test',
    env: {},
    metadata: { launch_id: uniqueTag('L') },
    cmd: ['node', FIXTURE_VM],
    internalPort: 4040,
    autoDestroy: false,
    restart: { policy: 'no' },
    stop: { signal: 'SIGTERM', timeoutS: 5 },
    ...overrides,
  };
}

/** Is a process with this pid still there? */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Command lines of every process on the machine (the process listing). */
export function processListing(): string[] {
  return execFileSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' }).split('\n');
}
