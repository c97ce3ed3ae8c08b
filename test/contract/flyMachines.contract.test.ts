/**
 * Runs the FlyMachines contract against the fake, the HTTP client against the emulator (always),
 * and the HTTP client against real Fly only when FLY_API_TOKEN and FLY_TEST_APP are set (opt-in,
 * never in CI: it creates real machines, destroys them afterwards, and costs a few cents).
 */
import { FakeFlyMachines } from '../../src/adapters/fly/fakeFlyMachines.js';
import { FlyMachinesHttp } from '../../src/adapters/fly/client.js';
import type { CreateMachineInput } from '../../src/ports/flyMachines.js';
import { clientFor, fixtureInput, startTestFlyLocal } from '../support/flyLocalHarness.js';
import { flyMachinesContract } from './flyMachines.contract.js';

const exitingEnv = (code: number): Record<string, string> => ({
  FIXTURE_EXIT_AFTER_MS: '50',
  FIXTURE_EXIT_CODE: String(code),
});

flyMachinesContract('in-memory fake', async () => {
  const fake = new FakeFlyMachines().onCreate((input) =>
    input.env.FIXTURE_EXIT_AFTER_MS === undefined
      ? undefined
      : { exitCode: Number(input.env.FIXTURE_EXIT_CODE ?? '0') },
  );
  return {
    fly: fake,
    input: (o) => fixtureInput(o),
    exitingInput: (code, o) => fixtureInput({ ...o, env: { ...o?.env, ...exitingEnv(code) } }),
    waitS: 5,
    cleanup: async () => undefined,
  };
});

flyMachinesContract('HTTP client against flylocal', async () => {
  const local = await startTestFlyLocal();
  return {
    fly: clientFor(local),
    input: (o) => fixtureInput(o),
    exitingInput: (code, o) => fixtureInput({ ...o, env: { ...o?.env, ...exitingEnv(code) } }),
    waitS: 10,
    cleanup: () => local.close(),
  };
});

const token = process.env.FLY_API_TOKEN;
const app = process.env.FLY_TEST_APP;
if (token && app && process.env.CI !== 'true') {
  const base = (o: Partial<CreateMachineInput> | undefined, cmd: string[]): CreateMachineInput => ({
    region: process.env.FLY_TEST_REGION ?? 'ams',
    image: process.env.FLY_TEST_IMAGE ?? 'busybox:1.36',
    env: {},
    metadata: {},
    cmd,
    guest: { cpuKind: 'shared', cpus: 1, memoryMb: 256 },
    internalPort: 8080,
    autoDestroy: false,
    restart: { policy: 'no' },
    stop: { signal: 'SIGTERM', timeoutS: 5 },
    ...o,
  });
  flyMachinesContract(
    `HTTP client against real Fly (app ${app})`,
    async () => ({
      fly: new FlyMachinesHttp({
        baseUrl: process.env.FLY_API_BASE_URL ?? 'https://api.machines.dev/v1',
        token,
        app,
        timeoutMs: 30_000,
      }),
      input: (o) => base(o, ['sleep', '3600']),
      exitingInput: (code, o) => base(o, ['sh', '-c', `sleep 2; exit ${code}`]),
      waitS: 60,
      cleanup: async () => undefined,
    }),
    { testTimeoutMs: 240_000 },
  );
}
