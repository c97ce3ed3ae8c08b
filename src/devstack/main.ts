/**
 * `npm start`: the whole system on one laptop. Starts the local Fly platform (Machines API
 * emulator + edge proxy) and the landing app, then prints the URL. With `--regions ams,ord,syd`
 * (`npm run start:regions`) it runs one landing instance per region sharing a NATS server (started
 * here when NATS_URL is unset), and the proxy routes each visitor to a region. Ctrl-C stops
 * everything, VMs included. Ports: PORT (proxy, 8080), FLYLOCAL_PORT (4280), WM_BASE_PORT (3000) and
 * WM_BASE_PRIVATE_PORT (4001) for the landing instances. A landing instance that crashes is
 * restarted with backoff, as Fly's restart policy would (`docs/operations.md`); any other part
 * exiting stops the stack.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createLogger } from '../shared/log.js';
import { REGION_CODES } from '../shared/regions.js';

const { values } = parseArgs({
  options: {
    regions: { type: 'string' },
    port: { type: 'string', default: process.env.PORT ?? '8080' },
    'data-dir': { type: 'string', default: process.env.WM_DATA_DIR ?? '.data' },
  },
});

const log = createLogger({ name: 'devstack', level: process.env.LOG_LEVEL ?? 'info' });
const regions = (values.regions ?? '')
  .split(',')
  .map((r) => r.trim())
  .filter(Boolean);
const multi = regions.length > 0;
for (const r of regions) {
  if (!REGION_CODES.includes(r)) {
    process.stderr.write(`devstack: --regions: "${r}" is not a known Fly.io region\n`);
    process.exit(2);
  }
}
const instances = multi ? regions : [process.env.FLY_REGION ?? 'ams'];
const proxyPort = Number(values.port);
const dataDir = values['data-dir'];
const children: { name: string; proc: ChildProcess }[] = [];
const cleanups: (() => void)[] = [];
let stopping = false;

/**
 * Fly restarts a machine whose process fails (`restart.policy = "on-failure"`) up to
 * `max_retries` times; locally a crashed landing instance gets the same treatment, with a backoff
 * so a process that dies at boot does not spin. A run this long counts as stable and forgives
 * earlier crashes; more than `maxRetries` crashes with no stable run between them stop the stack.
 */
const RESTART = {
  firstDelayMs: 500,
  maxDelayMs: 10_000,
  stableAfterMs: 30_000,
  maxRetries: retriesFrom(process.env.WM_DEVSTACK_MAX_RESTARTS),
};
const restartTimers = new Set<NodeJS.Timeout>();
function retriesFrom(v: string | undefined): number {
  const n = Number(v);
  return v && Number.isInteger(n) && n >= 0 ? n : 10;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

function run(
  name: string,
  cmd: string,
  args: string[],
  env: Record<string, string>,
  opts: { restart?: boolean } = {},
): ChildProcess {
  const child = { name, proc: spawnChild(cmd, args, env) };
  children.push(child);
  // Crashes since the last stable run; the delay doubles with each.
  let crashes = 0;
  const watch = (proc: ChildProcess, startedAt: number) => {
    proc.on('exit', (code, signal) => {
      if (stopping) return;
      // A clean exit (0, no signal) is a decision, not a crash: like `on-failure`, respect it.
      const crashed = code !== 0 || signal !== null;
      if (!opts.restart || !crashed) {
        log.error({ name, code, signal }, 'a part of the stack exited; stopping everything');
        void stop(1);
        return;
      }
      if (Date.now() - startedAt >= RESTART.stableAfterMs) crashes = 0;
      crashes++;
      if (crashes > RESTART.maxRetries) {
        log.error(
          { name, code, signal, crashes },
          'a landing instance keeps crashing; giving up and stopping everything',
        );
        void stop(1);
        return;
      }
      const delayMs = Math.min(RESTART.firstDelayMs * 2 ** (crashes - 1), RESTART.maxDelayMs);
      log.warn({ name, code, signal, delayMs, attempt: crashes }, 'restarting a crashed process');
      const t = setTimeout(() => {
        restartTimers.delete(t);
        if (stopping) return;
        child.proc = spawnChild(cmd, args, env);
        log.warn({ name, pid: child.proc.pid, attempt: crashes }, 'restarted');
        watch(child.proc, Date.now());
      }, delayMs);
      restartTimers.add(t);
    });
  };
  watch(child.proc, Date.now());
  return child.proc;
}

function spawnChild(cmd: string, args: string[], env: Record<string, string>): ChildProcess {
  return spawn(cmd, args, {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
}

async function waitFor(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs = 30_000,
): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (stopping) throw new Error('stopping');
    try {
      if (await check()) return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 150));
  }
  throw new Error(`${what} did not come up within ${timeoutMs / 1000} s`);
}

async function stop(code = 0): Promise<void> {
  if (stopping) return;
  stopping = true;
  for (const t of restartTimers) clearTimeout(t);
  restartTimers.clear();
  // Landing instances first (they stop cleanly), then the platform (which stops every VM), then NATS.
  const order = [...children].sort((a, b) => rank(a.name) - rank(b.name));
  for (const { name, proc } of order) {
    if (proc.exitCode !== null || proc.signalCode !== null) continue;
    await new Promise<void>((resolve) => {
      const kill = setTimeout(() => proc.kill('SIGKILL'), 15_000);
      proc.once('exit', () => {
        clearTimeout(kill);
        resolve();
      });
      proc.kill('SIGTERM');
    });
    log.debug({ name }, 'stopped');
  }
  for (const c of cleanups) c();
  process.exit(code);
}
const rank = (name: string) => (name.startsWith('where') ? 0 : name === 'flylocal' ? 1 : 2);

/** `--regions` without NATS_URL: a nats-server of the stack's own, on a free port and a temp store. */
async function startOwnNats(): Promise<string> {
  const port = await freePort();
  const store = mkdtempSync(join(tmpdir(), 'wm-nats-'));
  cleanups.push(() => rmSync(store, { recursive: true, force: true }));
  run(
    'nats-server',
    'nats-server',
    ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', store],
    {},
  ).on('error', () => {
    process.stderr.write(
      'devstack: --regions needs NATS: install nats-server (apt-get install nats-server) or set NATS_URL\n',
    );
    void stop(2);
  });
  await waitFor(
    'nats-server',
    () =>
      new Promise<boolean>((resolve) => {
        const s = new Socket();
        s.once('connect', () => (s.destroy(), resolve(true)));
        s.once('error', () => resolve(false));
        s.connect(port, '127.0.0.1');
      }),
  );
  return `nats://127.0.0.1:${port}`;
}

async function main(): Promise<void> {
  process.on('SIGINT', () => void stop(0));
  process.on('SIGTERM', () => void stop(0));
  mkdirSync(dataDir, { recursive: true });

  // An empty NATS_URL counts as unset.
  const natsUrl = process.env.NATS_URL || (multi ? await startOwnNats() : undefined);

  // A test that injects faults at run time names the token; otherwise a fresh one each run.
  const flyToken = process.env.FLYLOCAL_TOKEN ?? `flylocal-${randomBytes(12).toString('hex')}`;
  const flyPort = Number(process.env.FLYLOCAL_PORT ?? 4280);
  const secret = process.env.WM_CALLBACK_SECRET ?? randomBytes(32).toString('hex');
  const debugToken = process.env.DEBUG_TOKEN ?? randomBytes(18).toString('base64url');
  const publicUrl = `http://localhost:${proxyPort}`;
  const basePort = Number(process.env.WM_BASE_PORT ?? 3000);
  const basePrivatePort = Number(process.env.WM_BASE_PRIVATE_PORT ?? 4001);
  const plan = instances.map((region, i) => ({
    region,
    id: `where-${region}`,
    port: basePort + i,
    privatePort: basePrivatePort + i,
  }));

  run('flylocal', process.execPath, ['dist/flylocal.mjs'], {
    FLYLOCAL_PORT: String(flyPort),
    FLYLOCAL_TOKEN: flyToken,
    FLYLOCAL_REGION: instances[0]!,
    // Fly-like latency by default; WM_FLY_PROFILE=fast (or FLYLOCAL_PROFILE) for an instant platform.
    FLYLOCAL_PROFILE: process.env.WM_FLY_PROFILE ?? process.env.FLYLOCAL_PROFILE ?? 'fly',
    FLYLOCAL_PROXY_PORT: String(proxyPort),
    FLYLOCAL_STATIC_INSTANCES: JSON.stringify({
      where: plan.map((p) => ({ id: p.id, region: p.region, url: `http://127.0.0.1:${p.port}` })),
    }),
  });
  await waitFor('the Machines API emulator', async () => {
    const r = await fetch(`http://127.0.0.1:${flyPort}/v1/apps/useless-machine/machines`, {
      headers: { authorization: `Bearer ${flyToken}` },
    });
    return r.ok;
  });

  for (const [i, p] of plan.entries()) {
    const other = plan[(i + 1) % plan.length]!;
    run(
      p.id,
      process.execPath,
      ['dist/where.mjs'],
      {
        WM_LOCAL: '1',
        WM_INSTANCE_ID: p.id,
        FLY_REGION: p.region,
        HOST: '127.0.0.1',
        PORT: String(p.port),
        PRIVATE_HOST: '127.0.0.1',
        PRIVATE_PORT: String(p.privatePort),
        FLY_API_BASE_URL: `http://127.0.0.1:${flyPort}/v1`,
        FLY_API_TOKEN: flyToken,
        WM_VM_PUBLIC_URL: `http://useless-machine.localhost:${proxyPort}`,
        WM_PUBLIC_URL: publicUrl,
        WM_CALLBACK_SECRET: secret,
        WM_CALLBACK_BASE_URL: `http://127.0.0.1:${p.privatePort}`,
        WM_CALLBACK_FALLBACK_URL: `http://127.0.0.1:${other.privatePort}`,
        DEBUG_TOKEN: debugToken,
        WM_DATA_DIR: multi ? join(dataDir, p.region) : dataDir,
        ...(natsUrl ? { NATS_URL: natsUrl } : {}),
      },
      { restart: true },
    );
  }
  for (const p of plan) {
    await waitFor(p.id, async () => (await fetch(`http://127.0.0.1:${p.port}/readyz`)).ok);
  }
  await waitFor(
    'the edge proxy',
    async () => (await fetch(`http://127.0.0.1:${proxyPort}/healthz`)).ok,
  );

  const lines = [
    '',
    `  WhereMachines is running: ${publicUrl}`,
    multi
      ? `  regions: ${regions.join(', ')} (pick one with ${publicUrl}/?edge=<region>)`
      : `  region: ${instances[0]}`,
    `  dashboard: ${publicUrl}/dash`,
    `  debug: http://127.0.0.1:${plan[0]!.privatePort}/debug/actors  (Authorization: Bearer ${debugToken})`,
    '  Ctrl-C stops everything.',
    '',
  ];
  process.stdout.write(lines.join('\n') + '\n');
}

main().catch((err: unknown) => {
  log.error({ err: err instanceof Error ? err.message : String(err) }, 'could not start the stack');
  void stop(1);
});
