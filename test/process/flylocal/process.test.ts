/**
 * Emulated machines as real processes: the environment a VM gets, its private address and port
 * (own 127.0.1.x, or a port of its own), the stop signal and the SIGKILL after the timeout, log
 * capture, and no child left behind when the emulator closes or its host process dies.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { build } from 'esbuild';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { FlyLocalHandle } from '../../../src/flylocal/index.js';
import {
  alive,
  clientFor,
  FIXTURE_VM,
  fixtureInput,
  processListing,
  startTestFlyLocal,
  TEST_APP,
  uniqueTag,
} from '../../support/flyLocalHarness.js';

const handles: FlyLocalHandle[] = [];
const hosts: ChildProcess[] = [];

afterEach(async () => {
  for (const child of hosts.splice(0))
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await Promise.all(handles.splice(0).map((h) => h.close()));
});

async function start(opts: Parameters<typeof startTestFlyLocal>[0] = {}): Promise<FlyLocalHandle> {
  const h = await startTestFlyLocal(opts);
  handles.push(h);
  return h;
}

/** GET a VM's URL until it answers (a started process may not be listening yet). */
async function vmJson(url: string): Promise<Record<string, string>> {
  let body: Record<string, string> | undefined;
  await expect
    .poll(
      async () => {
        body = await fetch(url)
          .then((r) => (r.ok ? (r.json() as Promise<Record<string, string>>) : undefined))
          .catch(() => undefined);
        return body !== undefined;
      },
      { timeout: 10_000, interval: 50 },
    )
    .toBe(true);
  return body!;
}

function markerLines(marker: string): string[] {
  return processListing().filter((l) => l.includes(marker));
}

describe('flylocal VM processes', () => {
  it("gives a VM the create env plus Fly's, on its own private address and the service port, and nothing of the host's", async () => {
    process.env.WM_HOST_ONLY_SECRET = 'host-secret-value';
    const h = await start();
    delete process.env.WM_HOST_ONLY_SECRET;
    const fly = clientFor(h);
    const m = await fly.create(
      fixtureInput({ env: { WM_LAUNCH_ID: 'L-env', PORT: '9999' }, internalPort: 5050 }),
    );
    expect(await fly.wait(m.id, 'started', { timeoutS: 10 })).toBe(true);
    const [inst] = await h.directory.instances(TEST_APP);
    expect(inst).toEqual({
      id: m.id,
      region: 'ams',
      url: `http://${m.privateIp}:5050`,
      state: 'started',
    });
    const env = await vmJson(`${inst!.url}/env`);
    expect(env).toMatchObject({
      FLY_MACHINE_ID: m.id,
      FLY_REGION: 'ams',
      FLY_APP_NAME: TEST_APP,
      FLY_PRIVATE_IP: m.privateIp,
      FLY_MACHINE_VERSION: m.instanceId,
      PORT: '5050',
      WM_LAUNCH_ID: 'L-env',
    });
    expect(m.privateIp).toMatch(/^127\.0\.1\.\d+$/);
    expect(env.WM_HOST_ONLY_SECRET).toBeUndefined();
    expect(env.FLY_API_TOKEN).toBeUndefined();
  });

  it('falls back to 127.0.0.1 with a port of its own per machine where there is no 127/8', async () => {
    const h = await start({ addressMode: 'port' });
    const fly = clientFor(h);
    const a = await fly.create(fixtureInput());
    const b = await fly.create(fixtureInput());
    const insts = await h.directory.instances(TEST_APP);
    expect(insts.map((i) => i.id).sort()).toEqual([a.id, b.id].sort());
    expect(new Set(insts.map((i) => i.url)).size).toBe(2);
    for (const inst of insts) {
      const port = new URL(inst.url).port;
      expect(new URL(inst.url).hostname).toBe('127.0.0.1');
      const env = await vmJson(`${inst.url}/env`);
      expect(env.PORT).toBe(port);
      expect(env.FLY_PRIVATE_IP).toBe('127.0.0.1');
    }
    expect(a.privateIp).toBe('127.0.0.1');
  });

  it('runs the configured default command when a create has no init.cmd', async () => {
    const h = await start();
    const fly = clientFor(h);
    const { cmd: _cmd, ...noCmd } = fixtureInput();
    const m = await fly.create(noCmd);
    const [inst] = await h.directory.instances(TEST_APP);
    expect(await vmJson(`${inst!.url}/health`)).toMatchObject({ ok: true, machine: m.id });
  });

  it("stops with the config's signal, or the request's, and kills after the stop timeout", async () => {
    const lines: string[] = [];
    const logger = pino(
      { level: 'info' },
      new Writable({
        write(chunk: Buffer, _e, cb) {
          lines.push(chunk.toString());
          cb();
        },
      }),
    );
    const h = await start({ logger });
    const fly = clientFor(h);

    const polite = await fly.create(fixtureInput({ stop: { signal: 'SIGINT', timeoutS: 10 } }));
    expect(await fly.wait(polite.id, 'started', { timeoutS: 10 })).toBe(true);
    await expect
      .poll(() => h.emulator.logs(polite.id).some((l) => l.line.startsWith('listening')), {
        timeout: 10_000,
      })
      .toBe(true);
    await fly.stop(polite.id);
    expect(await fly.wait(polite.id, 'stopped', { timeoutS: 10 })).toBe(true);
    expect(h.emulator.logs(polite.id).map((l) => l.line)).toContain('got SIGINT');
    expect(h.emulator.machine(polite.id)?.lastExit).toEqual({ code: 0, signal: null });

    const stubborn = await fly.create(fixtureInput({ env: { FIXTURE_IGNORE_SIGNALS: '1' } }));
    await expect
      .poll(() => h.emulator.logs(stubborn.id).some((l) => l.line.startsWith('listening')), {
        timeout: 10_000,
      })
      .toBe(true);
    await fly.stop(stubborn.id, { signal: 'SIGTERM', timeoutS: 1 });
    expect(await fly.wait(stubborn.id, 'stopped', { timeoutS: 10 })).toBe(true);
    expect(h.emulator.logs(stubborn.id).map((l) => l.line)).toContain('got SIGTERM');
    expect(h.emulator.machine(stubborn.id)?.lastExit).toEqual({ code: null, signal: 'SIGKILL' });

    // VM output also reaches the emulator's logger, tagged with the machine id.
    const tagged = lines
      .map((l) => JSON.parse(l) as { machine?: string; msg: string })
      .filter((l) => l.machine === stubborn.id);
    expect(tagged.map((l) => l.msg)).toContain('got SIGTERM');
    // And the admin API serves the ring buffer.
    const res = await fetch(`${h.adminUrl}/machines/${stubborn.id}/logs`, {
      headers: { authorization: `Bearer ${h.token}` },
    });
    const served = (await res.json()) as { line: string; stream: string }[];
    expect(served.map((l) => l.line)).toContain('got SIGTERM');
  });

  it('leaves no child process when it closes, even one that ignores SIGTERM', async () => {
    const marker = uniqueTag('close');
    const h = await startTestFlyLocal({
      defaultCommand: ['node', FIXTURE_VM, `--marker=${marker}`],
    });
    const fly = clientFor(h);
    const { cmd: _cmd, ...input } = fixtureInput();
    const ms = [
      await fly.create(input),
      await fly.create(input),
      await fly.create({ ...input, env: { FIXTURE_IGNORE_SIGNALS: '1' } }),
    ];
    for (const m of ms) expect(await fly.wait(m.id, 'started', { timeoutS: 10 })).toBe(true);
    const pids = h.emulator.pids();
    expect(pids).toHaveLength(3);
    expect(markerLines(marker)).toHaveLength(3);
    await h.close();
    expect(pids.filter(alive)).toEqual([]);
    expect(markerLines(marker)).toEqual([]);
  });
});

describe('flylocal host death', () => {
  // Bundle the host once (tsx would compile it on every start, seconds each on a small machine).
  // It lives under node_modules/.cache so its bare imports resolve to the project's packages.
  let dir: string;
  let hostScript: string;
  beforeAll(async () => {
    // A fresh clone has no node_modules/.cache until something makes it.
    mkdirSync(join('node_modules', '.cache'), { recursive: true });
    dir = mkdtempSync(join('node_modules', '.cache', 'flylocal-host-'));
    hostScript = join(dir, 'host.mjs');
    await build({
      entryPoints: ['test/support/fixtures/flylocalHost.ts'],
      outfile: hostScript,
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      packages: 'external',
      logLevel: 'warning',
    });
  });
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function host(
    mode: string,
    marker: string,
  ): Promise<{
    child: ChildProcess;
    pids: number[];
    exit: Promise<{ code: number | null; signal: string | null }>;
  }> {
    const child = spawn(process.execPath, [hostScript, mode, marker], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    hosts.push(child);
    const exit = new Promise<{ code: number | null; signal: string | null }>((resolve) =>
      child.once('exit', (code, signal) => resolve({ code, signal })),
    );
    const first = await new Promise<string>((resolve, reject) => {
      createInterface({ input: child.stdout }).once('line', resolve);
      void exit.then((e) => reject(new Error(`host exited early: ${JSON.stringify(e)}`)));
    });
    return { child, pids: (JSON.parse(first) as { pids: number[] }).pids, exit };
  }

  for (const mode of ['throw', 'SIGTERM', 'SIGINT'] as const) {
    it(`kills every VM when the host ${mode === 'throw' ? 'dies of an uncaught exception' : `gets ${mode}`}`, async () => {
      const marker = uniqueTag(`host${mode}`);
      const h = await host(mode === 'throw' ? mode : 'wait', marker);
      expect(h.pids).toHaveLength(2);
      expect(h.pids.every(alive)).toBe(true);
      if (mode === 'SIGTERM' || mode === 'SIGINT') h.child.kill(mode);
      const how = await h.exit;
      if (mode === 'SIGTERM' || mode === 'SIGINT') {
        // Without other handlers, the host still dies by the signal, as it would without flylocal.
        expect(how.signal).toBe(mode);
      } else {
        expect(how.code).toBe(1);
      }
      await expect.poll(() => h.pids.filter(alive), { timeout: 5_000 }).toEqual([]);
      expect(markerLines(marker)).toEqual([]);
    });
  }
});

describe('flylocal main (npm run flylocal)', () => {
  it('serves the API and the edge proxy over its machine directory, and stops every VM on SIGTERM', async () => {
    const marker = uniqueTag('main');
    const child = spawn(process.execPath, ['dist/flylocal.mjs'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        FLYLOCAL_PORT: '0',
        FLYLOCAL_PROXY_PORT: '0',
        FLYLOCAL_TOKEN: 'main-test-token',
        FLYLOCAL_REGION: 'ams',
        FLYLOCAL_PROFILE: 'fast',
        FLYLOCAL_VM_COMMAND: JSON.stringify(['node', FIXTURE_VM, `--marker=${marker}`]),
        LOG_LEVEL: 'info',
      },
    });
    hosts.push(child);
    const exit = new Promise<number | null>((resolve) =>
      child.once('exit', (code) => resolve(code)),
    );
    const urls: { apiUrl?: string; proxyUrl?: string } = {};
    const lines: string[] = [];
    createInterface({ input: child.stdout }).on('line', (line) => {
      lines.push(line);
      const rec = JSON.parse(line) as { msg?: string; apiUrl?: string; url?: string };
      if (rec.apiUrl) urls.apiUrl = rec.apiUrl;
      if (rec.msg === 'flylocal edge proxy listening') urls.proxyUrl = rec.url;
    });
    await expect
      .poll(() => urls.apiUrl !== undefined && urls.proxyUrl !== undefined, { timeout: 15_000 })
      .toBe(true);

    const fly = clientFor({ apiUrl: urls.apiUrl!, token: 'main-test-token' });
    const { cmd: _cmd, ...input } = fixtureInput();
    const m = await fly.create(input);
    expect(await fly.wait(m.id, 'started', { timeoutS: 10 })).toBe(true);
    // Through the edge proxy, by app prefix, to the VM the directory names.
    const health = await vmJson(`${urls.proxyUrl!}/_app/${TEST_APP}/health`);
    expect(health).toMatchObject({ ok: true, machine: m.id });
    expect(markerLines(marker)).toHaveLength(1);

    child.kill('SIGTERM');
    expect(await exit).toBe(0);
    expect(markerLines(marker)).toEqual([]);
    expect(lines.join('\n')).not.toContain('main-test-token');
  });
});
