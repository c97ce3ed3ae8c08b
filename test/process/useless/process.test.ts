/**
 * The built program as a real child process, with a local HTTP server standing in for the landing
 * app's private API: it calls home once, serves its page, and on SIGTERM (or its TTL, or when no
 * viewer comes) reports "stopping" and exits 0.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { existsSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { verifySignature } from '../../../src/shared/callbackAuth.js';
import { CallbackReceiver, KEY, LAUNCH_ID, SELF } from '../../support/useless.js';

const BUNDLE = 'dist/useless.mjs';
// Linux routes all of 127/8 to loopback: give this VM an address of its own, as the emulator does.
const HOST = process.platform === 'linux' ? `127.0.1.${100 + (process.pid % 150)}` : '127.0.0.1';

async function freePort(host: string): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, host, resolve));
  const address = s.address();
  await new Promise<void>((resolve) => s.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

interface Vm {
  child: ChildProcess;
  base: string;
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const children: ChildProcess[] = [];
const receivers: CallbackReceiver[] = [];
afterEach(async () => {
  for (const child of children.splice(0)) {
    if (child.exitCode === null && child.signalCode === null) {
      const gone = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await gone;
    }
  }
  await Promise.all(receivers.splice(0).map((r) => r.close()));
});

async function startVm(callbackUrl: string, env: Record<string, string> = {}): Promise<Vm> {
  const port = await freePort(HOST);
  const child = spawn(process.execPath, [BUNDLE], {
    env: {
      PATH: process.env.PATH ?? '',
      FLY_MACHINE_ID: SELF,
      FLY_REGION: 'fra',
      FLY_APP_NAME: 'useless-machine',
      FLY_PRIVATE_IP: HOST,
      PORT: String(port),
      WM_LAUNCH_ID: LAUNCH_ID,
      WM_CALLBACK_KEY: KEY,
      WM_CALLBACK_URL: callbackUrl,
      WM_TTL_MS: '600000',
      WM_HOME_URL: 'http://localhost:8080/',
      WM_SOURCE: 'button',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let out = '';
  child.stdout?.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return { child, base: `http://${HOST}:${port}`, output: () => out, exited };
}

describe('useless as a process', () => {
  it('built bundle exists (globalSetup runs the build)', () => {
    expect(existsSync(BUNDLE)).toBe(true);
  });

  it('calls home once, serves its page and script on its own address, and on SIGTERM reports stopping and exits 0', async () => {
    const receiver = new CallbackReceiver();
    receivers.push(receiver);
    const vm = await startVm(await receiver.listen());

    await expect.poll(() => receiver.received.length, { timeout: 15_000 }).toBe(1);
    const listening = receiver.received[0]!;
    expect(JSON.parse(listening.raw)).toMatchObject({
      machineId: SELF,
      launchId: LAUNCH_ID,
      region: 'fra',
      status: 'listening',
    });
    expect(
      verifySignature(
        KEY,
        listening.raw,
        listening.headers['x-wm-signature'] as string,
        Date.now(),
      ),
    ).toMatchObject({ ok: true });

    const page = await fetch(`${vm.base}/machine?instance=${SELF}`);
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain('in Frankfurt');
    expect(html).toContain('/machine/assets/machine.js');
    const script = await fetch(`${vm.base}/machine/assets/machine.js?instance=${SELF}`);
    expect(script.status).toBe(200);
    expect((await script.text()).length).toBeGreaterThan(1000);

    vm.child.kill('SIGTERM');
    expect(await vm.exited).toEqual({ code: 0, signal: null });
    expect(receiver.bodies().map((b) => [b.status, b.reason])).toEqual([
      ['listening', undefined],
      ['stopping', 'signal'],
    ]);
  });

  it('switches itself off when its TTL runs out', async () => {
    const receiver = new CallbackReceiver();
    receivers.push(receiver);
    const vm = await startVm(await receiver.listen(), { WM_TTL_MS: '2000' });
    expect(await vm.exited).toEqual({ code: 0, signal: null });
    const reports = receiver.bodies().map((b) => [b.status, b.reason]);
    // "listening" is normally there too, unless the host was too slow to be ready within the TTL.
    expect(reports.at(-1)).toEqual(['stopping', 'ttl']);
    expect(reports.filter(([s]) => s === 'stopping')).toHaveLength(1);
    expect(reports.filter(([s]) => s === 'listening').length).toBeLessThanOrEqual(1);
  });

  it('switches itself off when it is ready but nobody visits within the idle time', async () => {
    const receiver = new CallbackReceiver();
    receivers.push(receiver);
    const vm = await startVm(await receiver.listen(), { WM_IDLE_MS: '1000' });
    expect(await vm.exited).toEqual({ code: 0, signal: null });
    // The same path as after an animation: listening, then one "stopping" reported as finished.
    expect(receiver.bodies().map((b) => [b.status, b.reason])).toEqual([
      ['listening', undefined],
      ['stopping', 'idle'],
    ]);
    expect(vm.output()).toContain('no viewer came');
    expect(vm.output()).toMatch(/"reason":"idle".*"msg":"switched off"/);
  });

  it('a visit before the idle time keeps it on: it stops at its TTL instead', async () => {
    const receiver = new CallbackReceiver();
    receivers.push(receiver);
    // Idle 2 s, TTL 5 s, a viewer's grace (20 s) longer than both: an early stop would be "idle".
    const vm = await startVm(await receiver.listen(), { WM_IDLE_MS: '2000', WM_TTL_MS: '5000' });
    // Visit as soon as the page answers (before or just after ready, either way before idle).
    await expect
      .poll(
        async () => {
          try {
            return (await fetch(`${vm.base}/machine?instance=${SELF}`)).status;
          } catch {
            return 0;
          }
        },
        { timeout: 10_000, interval: 20 },
      )
      .toBe(200);
    expect(await vm.exited).toEqual({ code: 0, signal: null });
    expect(receiver.bodies().at(-1)).toMatchObject({ status: 'stopping', reason: 'ttl' });
    expect(vm.output()).not.toContain('no viewer came');
  });

  it('refuses to start with a bad environment, naming the variable', async () => {
    const receiver = new CallbackReceiver();
    receivers.push(receiver);
    const vm = await startVm(await receiver.listen(), { WM_CALLBACK_KEY: 'short' });
    expect(await vm.exited).toEqual({ code: 2, signal: null });
    expect(vm.output()).toContain('WM_CALLBACK_KEY');
    expect(vm.output()).not.toContain('short');
    expect(receiver.received).toHaveLength(0);
  });
});
