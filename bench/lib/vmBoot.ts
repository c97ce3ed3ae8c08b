/**
 * Boot-to-listening of the Useless Machine as its own process: spawn `node dist/useless.mjs` with the
 * environment the platform and the landing app give it, poll its /health, and record its signed
 * "listening" callback on a tiny local HTTP server. Beside it, the floor: a bare `node -e` spawn.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { defer, trackChild } from './cleanup.js';
import { freePort, pollUntilOk } from './net.js';

export const USELESS = join(process.cwd(), 'dist', 'useless.mjs');

export function requireBuild(): void {
  if (!existsSync(USELESS))
    throw new Error(`${USELESS} is missing: run the build (npm run bench does)`);
}

/** Records each POSTed status callback's arrival time, by machine id and status. */
export interface CallbackSink {
  url: string;
  /** Resolves with performance.now() at the arrival of that machine's callback with that status. */
  arrival(machineId: string, status: 'listening' | 'stopping'): Promise<number>;
  close(): Promise<void>;
}

export async function startCallbackSink(): Promise<CallbackSink> {
  const arrived = new Map<string, number>();
  const waiting = new Map<string, (t: number) => void>();
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const t = performance.now();
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      try {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
          machineId?: string;
          status?: string;
        };
        const key = `${body.machineId}/${body.status}`;
        arrived.set(key, t);
        waiting.get(key)?.(t);
        waiting.delete(key);
      } catch {
        // not ours
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true,"accepted":true}');
    });
  });
  server.keepAliveTimeout = 1000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  const close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  const release = defer('callback sink', close);
  return {
    url: `http://127.0.0.1:${port}/api/machine_status`,
    arrival(machineId, status) {
      const key = `${machineId}/${status}`;
      const t = arrived.get(key);
      if (t !== undefined) return Promise.resolve(t);
      return new Promise((resolve) => waiting.set(key, resolve));
    },
    close: release,
  };
}

/** Stop a child: SIGTERM, then SIGKILL after `graceMs`; resolves when it has exited. */
export function stopChild(child: ChildProcess, graceMs = 3000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

function spawnTracked(
  args: string[],
  env: Record<string, string>,
  keep = 50,
): { child: ChildProcess; exited: () => boolean; output: string[] } {
  const child = trackChild(
    spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'], cwd: process.cwd() }),
  );
  const output: string[] = [];
  for (const s of [child.stdout, child.stderr]) {
    s?.setEncoding('utf8');
    s?.on('data', (d: string) => {
      output.push(d);
      if (output.length > keep) output.shift();
    });
  }
  let gone = false;
  child.once('exit', () => (gone = true));
  return { child, exited: () => gone, output };
}

const baseEnv = (): Record<string, string> => {
  const out: Record<string, string> = {};
  for (const k of ['PATH', 'HOME', 'LANG', 'TMPDIR'])
    if (process.env[k] !== undefined) out[k] = process.env[k];
  return out;
};

let vmSeq = 0;

/** /health is polled this often; a finer poll perturbs the boot it measures on a 2-core box. */
export const POLL_MS = 5;

export interface VmBoot {
  /** spawn() → /health answers 200 (polled every POLL_MS); NaN when not polled. */
  healthMs: number;
  /** spawn() → its signed "listening" callback arrives. */
  callbackMs: number;
  /** From the VM's own log (pino `time`, whole ms): spawn() → "Server listening" (process, modules, listen). */
  listenMs: number;
  /** "Server listening" → "ready to serve" (its readiness self-check over HTTP). */
  selfCheckMs: number;
  /** "ready to serve" → the callback arrives (sign, POST). */
  callMs: number;
}

/** Epoch ms of the first JSON log line whose msg starts with `prefix`. */
function logTime(output: readonly string[], prefix: string): number {
  for (const line of output.join('').split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const l = JSON.parse(line) as { time?: number; msg?: string };
      if (l.msg?.startsWith(prefix) && typeof l.time === 'number') return l.time;
    } catch {
      // a partial line
    }
  }
  return Number.NaN;
}

const epochNow = () => performance.timeOrigin + performance.now();

/**
 * One Useless Machine: spawn, time /health (unless `pollHealth` is false) and the callback, then
 * stop it (SIGTERM: it calls home "stopping" and exits).
 */
export async function bootUseless(
  sink: CallbackSink,
  opts: { pollHealth?: boolean } = {},
): Promise<VmBoot> {
  const port = await freePort();
  const n = ++vmSeq;
  const machineId = `benchvm${n.toString(16).padStart(8, '0')}`;
  const env = {
    ...baseEnv(),
    FLY_APP_NAME: 'useless-machine',
    FLY_MACHINE_ID: machineId,
    FLY_REGION: 'ams',
    FLY_PRIVATE_IP: '127.0.0.1',
    PORT: String(port),
    WM_LAUNCH_ID: `01K${n.toString().padStart(23, '0')}`,
    WM_CALLBACK_KEY: 'k'.repeat(64),
    WM_CALLBACK_URL: sink.url,
    WM_TTL_MS: '60000',
    WM_HOME_URL: 'http://localhost:8080/',
    WM_SOURCE: 'button',
  };
  const t0 = performance.now();
  const t0Epoch = epochNow();
  const p = spawnTracked([USELESS], env, 5000);
  try {
    const callback = sink.arrival(machineId, 'listening');
    const health =
      opts.pollHealth === false
        ? Number.NaN
        : await pollUntilOk(`http://127.0.0.1:${port}/health`, 15_000, POLL_MS, () => !p.exited());
    const cb = await Promise.race([
      callback,
      new Promise<never>((_, reject) =>
        setTimeout(() => reject(new Error('no listening callback within 15 s')), 15_000).unref(),
      ),
    ]);
    const listened = logTime(p.output, 'Server listening');
    const ready = logTime(p.output, 'ready to serve');
    const cbEpoch = t0Epoch + (cb - t0);
    return {
      healthMs: health - t0,
      callbackMs: cb - t0,
      listenMs: listened - t0Epoch,
      selfCheckMs: ready - listened,
      callMs: cbEpoch - ready,
    };
  } catch (err) {
    throw new Error(
      `useless VM ${machineId}: ${err instanceof Error ? err.message : String(err)}\n${p.output.join('').slice(-2000)}`,
    );
  } finally {
    await stopChild(p.child);
  }
}

const HTTP_FLOOR =
  "require('node:http').createServer((q,s)=>s.end('ok')).listen(+process.env.PORT,'127.0.0.1')";

/** Floor: `node -e` with a one-line HTTP server; spawn() → it answers 200. */
export async function bootFloorHttp(): Promise<number> {
  const port = await freePort();
  const t0 = performance.now();
  const p = spawnTracked(['-e', HTTP_FLOOR], { ...baseEnv(), PORT: String(port) });
  try {
    return (
      (await pollUntilOk(`http://127.0.0.1:${port}/`, 15_000, POLL_MS, () => !p.exited())) - t0
    );
  } finally {
    await stopChild(p.child);
  }
}

/** Floor: `node -e 0`; spawn() → exit. */
export async function bootFloorExit(): Promise<number> {
  const t0 = performance.now();
  const p = spawnTracked(['-e', '0'], baseEnv());
  await new Promise<void>((resolve) =>
    p.exited() ? resolve() : p.child.once('exit', () => resolve()),
  );
  return performance.now() - t0;
}
