/**
 * The whole local stack as `npm start` runs it (devstack: emulator, edge proxy, landing app, real
 * VM processes), on free ports and a temporary data directory, for end-to-end tests.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

export interface Stack {
  url: string;
  port: number;
  debugToken: string;
  privateUrl: string;
  /** The Machines API emulator (its `/__flylocal/faults` sets faults at run time). */
  flyUrl: string;
  /** Its bearer token. */
  flyToken: string;
  output: string[];
  stop(): Promise<void>;
}

export async function startStack(
  env: Record<string, string> = {},
  args: string[] = [],
): Promise<Stack> {
  const [port, flyPort, basePort, basePrivatePort] = [
    await freePort(),
    await freePort(),
    await freePort(),
    await freePort(),
  ];
  const dataDir = mkdtempSync(join(tmpdir(), 'wm-stack-'));
  const flyToken = `flylocal-test-${flyPort}`;
  const output: string[] = [];
  const proc: ChildProcess = spawn(process.execPath, ['dist/devstack.mjs', ...args], {
    env: {
      ...process.env,
      PORT: String(port),
      FLYLOCAL_PORT: String(flyPort),
      WM_BASE_PORT: String(basePort),
      WM_BASE_PRIVATE_PORT: String(basePrivatePort),
      WM_DATA_DIR: dataDir,
      LOG_LEVEL: 'warn',
      // The emulator's fast profile: tests do not wait Fly's image pulls and boots.
      WM_FLY_PROFILE: 'fast',
      FLYLOCAL_TOKEN: flyToken,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: false,
  });
  proc.stdout!.on('data', (d: Buffer) => output.push(d.toString()));
  proc.stderr!.on('data', (d: Buffer) => output.push(d.toString()));
  const stop = async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => proc.kill('SIGKILL'), 20_000);
        proc.once('exit', () => {
          clearTimeout(t);
          resolve();
        });
        proc.kill('SIGTERM');
      });
    }
    rmSync(dataDir, { recursive: true, force: true });
  };
  const until = Date.now() + 60_000;
  while (!output.join('').includes('WhereMachines is running')) {
    if (proc.exitCode !== null || Date.now() > until) {
      await stop();
      throw new Error(`the stack did not start:\n${output.join('')}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const text = output.join('');
  const debugToken = /Bearer ([A-Za-z0-9_-]+)/.exec(text)?.[1] ?? '';
  return {
    url: `http://localhost:${port}`,
    port,
    debugToken,
    privateUrl: `http://127.0.0.1:${basePrivatePort}`,
    flyUrl: `http://127.0.0.1:${flyPort}`,
    flyToken,
    output,
    stop,
  };
}

/**
 * Processes (VMs included) that belong to a stack: their environment names its private port. Read
 * from /proc, so other stacks and other tests on the machine are not counted.
 */
export function processesOf(stack: Stack): number[] {
  const marker = `${stack.privateUrl}`;
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const env = readFileSync(`/proc/${entry}/environ`, 'utf8');
      if (env.includes(marker)) pids.push(Number(entry));
    } catch {
      // gone, or not ours to read
    }
  }
  return pids;
}
