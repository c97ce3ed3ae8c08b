/**
 * The proof that the runtime is durable: a runtime process (file store, the Machines API emulator
 * with VMs that never get ready) is killed with SIGKILL while a launch waits for ready, then
 * started again on the same data. The launch resumes, its ready deadline fires at the time it was
 * armed for, the machine it made is destroyed, and exactly one machine was ever created.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { afterEach, describe, expect, it } from 'vitest';
import { monotonicFactory } from 'ulid';
import { startFlyLocal, type FlyLocalHandle } from '../../../src/flylocal/index.js';

interface Line {
  kind: string;
  stream?: string;
  type?: string;
  version?: number;
  at?: string;
  data?: Record<string, unknown>;
  state?: unknown;
}

const procs: ChildProcess[] = [];
let flylocal: FlyLocalHandle | undefined;
let dir: string | undefined;
afterEach(async () => {
  for (const p of procs.splice(0)) if (p.exitCode === null) p.kill('SIGKILL');
  await flylocal?.close();
  flylocal = undefined;
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function host(dataDir: string, api: FlyLocalHandle, readyTimeoutMs: number) {
  const proc = spawn(
    process.execPath,
    ['--import', 'tsx', resolve('test/support/runtimeHost.ts')],
    {
      env: {
        ...process.env,
        DATA_DIR: dataDir,
        FLY_API_BASE_URL: api.apiUrl,
        FLY_API_TOKEN: api.token,
        READY_TIMEOUT_MS: String(readyTimeoutMs),
        VM_SCRIPT: resolve('test/support/fixtures/vm.mjs'),
      },
      stdio: ['pipe', 'pipe', 'inherit'],
    },
  );
  procs.push(proc);
  const lines: Line[] = [];
  createInterface({ input: proc.stdout }).on('line', (l) => {
    try {
      lines.push(JSON.parse(l) as Line);
    } catch {
      // not ours
    }
  });
  return { proc, lines, send: (cmd: string) => proc.stdin.write(cmd + '\n') };
}

describe('runtime crash and restart (file store, real processes)', () => {
  it('resumes a launch killed mid-wait: deadline at its original time, one machine, destroyed', async () => {
    dir = mkdtempSync(join(tmpdir(), 'wm-crash-'));
    flylocal = await startFlyLocal({ port: 0, killChildrenOnSignal: false, profile: 'fast' });
    const launchId = monotonicFactory()();
    const stream = `launch.${launchId}`;
    const readyTimeoutMs = 4000;

    const first = host(dir, flylocal, readyTimeoutMs);
    await expect
      .poll(() => first.lines.some((l) => l.kind === 'booted'), { timeout: 20_000 })
      .toBe(true);
    first.send(`launch ${launchId} fra`);
    // Wait until the machine exists and the launch waits for it to be ready.
    await expect
      .poll(
        () => first.lines.some((l) => l.stream === stream && l.type === 'fly.machineObserved'),
        { timeout: 20_000 },
      )
      .toBe(true);
    const requested = first.lines.find(
      (l) => l.stream === stream && l.type === 'launch.requested',
    )!;
    const deadline = Date.parse(requested.at!) + readyTimeoutMs;
    expect(first.lines.some((l) => l.type === 'clock.readyElapsed')).toBe(false);

    first.proc.kill('SIGKILL');
    await new Promise((r) => first.proc.once('exit', r));

    const second = host(dir, flylocal, readyTimeoutMs);
    await expect
      .poll(() => second.lines.find((l) => l.kind === 'booted'), { timeout: 20_000 })
      .toBeTruthy();
    const booted = second.lines.find((l) => l.kind === 'booted') as unknown as {
      live: number;
      events: number;
    };
    expect(booted.live).toBeGreaterThanOrEqual(1);
    expect(booted.events).toBeGreaterThanOrEqual(4);

    await expect
      .poll(
        () => second.lines.find((l) => l.stream === stream && l.type === 'clock.readyElapsed'),
        { timeout: 20_000 },
      )
      .toBeTruthy();
    const fired = second.lines.find((l) => l.stream === stream && l.type === 'clock.readyElapsed')!;
    // The deadline it fired for is the one armed before the crash, and it did not fire early.
    expect(fired.data!.due).toBe(deadline);
    expect(Date.parse(fired.at!)).toBeGreaterThanOrEqual(deadline);

    // The launch gives up and destroys its machine; the launch ends failed.
    await expect
      .poll(() => second.lines.find((l) => l.stream === stream && l.state === 'failed'), {
        timeout: 20_000,
      })
      .toBeTruthy();
    const made = flylocal.emulator.ledger().filter((m) => m.metadata.launch_id === launchId);
    expect(made).toHaveLength(1);
    await expect
      .poll(() => flylocal!.emulator.ledger().filter((m) => m.state !== 'destroyed').length, {
        timeout: 20_000,
      })
      .toBe(0);
  });
});
