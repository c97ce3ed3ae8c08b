/**
 * The whole local platform as `npm start` runs it (dist/devstack.mjs: the Machines API emulator with
 * real VM processes, the edge proxy, the landing app), as a child process of a bench, with the
 * emulator's token and address known so a bench can call its API.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defer, trackChild } from './cleanup.js';
import { freePort } from './net.js';

export interface DevStack {
  /** The edge proxy: what a visitor's browser talks to. */
  url: string;
  /** The Machines API emulator's base (`/v1/apps/…`, `/__flylocal/…`). */
  flyUrl: string;
  flyToken: string;
  /** Call the emulator's API with its token. */
  api(path: string, init?: RequestInit): Promise<Response>;
  output: string[];
  stop(): Promise<void>;
}

export async function startDevStack(env: Record<string, string>): Promise<DevStack> {
  const [port, flyPort, basePort, basePrivatePort] = [
    await freePort(),
    await freePort(),
    await freePort(),
    await freePort(),
  ];
  const dataDir = mkdtempSync(join(tmpdir(), 'wm-bench-stack-'));
  const flyToken = `flylocal-bench-${flyPort}`;
  const output: string[] = [];
  const proc = trackChild(
    spawn(process.execPath, ['dist/devstack.mjs'], {
      env: {
        ...process.env,
        PORT: String(port),
        FLYLOCAL_PORT: String(flyPort),
        FLYLOCAL_TOKEN: flyToken,
        WM_BASE_PORT: String(basePort),
        WM_BASE_PRIVATE_PORT: String(basePrivatePort),
        WM_DATA_DIR: dataDir,
        LOG_LEVEL: 'warn',
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  );
  proc.stdout!.on('data', (d: Buffer) => output.push(d.toString()));
  proc.stderr!.on('data', (d: Buffer) => output.push(d.toString()));
  const stop = defer('devstack', async () => {
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
  });
  const until = Date.now() + 60_000;
  while (!output.join('').includes('WhereMachines is running')) {
    if (proc.exitCode !== null || Date.now() > until) {
      await stop();
      throw new Error(`the local platform did not start:\n${output.join('').slice(-3000)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const flyUrl = `http://127.0.0.1:${flyPort}`;
  return {
    url: `http://localhost:${port}`,
    flyUrl,
    flyToken,
    api: (path, init = {}) =>
      fetch(`${flyUrl}${path}`, {
        ...init,
        headers: { authorization: `Bearer ${flyToken}`, ...(init.headers ?? {}) },
      }),
    output,
    stop,
  };
}
