/**
 * Real processes across regions: two landing-app processes on one nats-server and the local Fly
 * platform running the real VM app. The instance that accepted a launch is killed with SIGKILL
 * before its VM is ready; the VM's callback falls back to the other instance and the launch
 * completes; the killed instance starts again and rebuilds every actor from JetStream.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { startFlyLocal, type FlyLocalHandle } from '../../../src/flylocal/index.js';
import { NatsServer, freePorts } from '../../support/natsServer.js';
import { NATS_SERVER, needs } from '../../support/require.js';

const haveNats = needs('nats-server (apt-get install nats-server)', NATS_SERVER);
const TOKEN = 'debug-token-for-process-tests';

const procs: ChildProcess[] = [];
let nats: NatsServer | undefined;
let fly: FlyLocalHandle | undefined;
afterEach(async () => {
  for (const p of procs.splice(0))
    if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  await fly?.close();
  await nats?.cleanup();
  fly = undefined;
  nats = undefined;
});

interface Instance {
  name: string;
  port: number;
  privatePort: number;
  proc?: ChildProcess;
}

describe.skipIf(!haveNats)('landing-app processes across regions', () => {
  it('completes a launch whose owner was SIGKILLed, and the owner rebuilds it from JetStream on restart', async () => {
    nats = await NatsServer.start();
    fly = await startFlyLocal({ port: 0, killChildrenOnSignal: false, profile: 'fast' });
    const [p1, p2, p3, p4] = await freePorts(4);
    const a: Instance = { name: 'ams', port: p1!, privatePort: p2! };
    const b: Instance = { name: 'syd', port: p3!, privatePort: p4! };
    const secret = 's'.repeat(48);
    const start = (i: Instance, other: Instance) => {
      const proc = spawn(process.execPath, ['dist/where.mjs'], {
        env: {
          PATH: process.env.PATH,
          WM_LOCAL: '1',
          LOG_LEVEL: 'warn',
          WM_INSTANCE_ID: `where-${i.name}`,
          FLY_REGION: i.name,
          HOST: '127.0.0.1',
          PORT: String(i.port),
          PRIVATE_HOST: '127.0.0.1',
          PRIVATE_PORT: String(i.privatePort),
          NATS_URL: nats!.url,
          FLY_API_BASE_URL: fly!.apiUrl,
          FLY_API_TOKEN: fly!.token,
          WM_CALLBACK_SECRET: secret,
          WM_CALLBACK_BASE_URL: `http://127.0.0.1:${i.privatePort}`,
          WM_CALLBACK_FALLBACK_URL: `http://127.0.0.1:${other.privatePort}`,
          DEBUG_TOKEN: TOKEN,
          WM_AUTOSPAWN: 'off',
        },
        stdio: ['ignore', 'ignore', 'inherit'],
      });
      procs.push(proc);
      i.proc = proc;
    };
    const ready = (i: Instance) =>
      expect
        .poll(
          async () =>
            (await fetch(`http://127.0.0.1:${i.port}/readyz`).catch(() => undefined))?.status,
          { timeout: 30_000 },
        )
        .toBe(200);
    start(a, b);
    start(b, a);
    await ready(a);
    await ready(b);

    const res = await fetch(`http://127.0.0.1:${a.port}/launches`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: `http://127.0.0.1:${a.port}` },
      body: JSON.stringify({ region: 'fra' }),
    });
    expect(res.status).toBe(202);
    const { launchId } = (await res.json()) as { launchId: string };
    // Kill the owner as soon as its machine exists, before the VM can call it.
    await expect.poll(() => fly!.emulator.ledger().length, { timeout: 15_000 }).toBe(1);
    a.proc!.kill('SIGKILL');
    await new Promise((r) => a.proc!.once('exit', r));

    // The VM calls the dead owner, falls back to syd, and the launch completes there.
    const view = async () => {
      const r = await fetch(`http://127.0.0.1:${b.port}/launches/${launchId}`, {
        headers: { accept: 'application/json' },
      });
      return r.status === 200
        ? ((await r.json()) as { status: string; machineId?: string })
        : undefined;
    };
    await expect.poll(async () => (await view())?.status, { timeout: 30_000 }).toBe('ready');
    const machineId = (await view())!.machineId!;
    expect(fly.emulator.ledger().map((m) => m.id)).toEqual([machineId]);

    // The owner comes back and rebuilds the launch and its machine from the shared stream.
    start(a, b);
    await ready(a);
    const actor = async (i: Instance, id: string) => {
      const r = await fetch(`http://127.0.0.1:${i.privatePort}/debug/actors/${id}`, {
        headers: { authorization: `Bearer ${TOKEN}` },
      });
      return r.status === 200
        ? ((await r.json()) as { actor: { state: unknown; version: number }; history: unknown[] })
        : undefined;
    };
    const onA = await actor(a, `launch.${launchId}`);
    const onB = await actor(b, `launch.${launchId}`);
    expect(onA?.actor.state).toBe('redirect');
    expect(onA?.actor.version).toBe(onB?.actor.version);
    expect(onA?.history.length).toBe(onA?.actor.version);
    const vmOnA = await actor(a, `vm.${machineId}`);
    expect(vmOnA?.actor.state).toBe('listening');
  });
});
