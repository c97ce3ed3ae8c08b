/**
 * The chaos harness's processes: real programs started with a clean env, their stdout/stderr
 * appended to files in the run dir, SIGKILLed and started again on demand, and always released
 * (a process-wide exit hook SIGKILLs whatever is still running if the harness itself dies).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync, readdirSync } from 'node:fs';
import { createConnection, createServer, type Server } from 'node:net';
import { join } from 'node:path';

const HOST = '127.0.0.1';

/** Every child any ManagedProcess has running: killed synchronously if the harness exits. */
const live = new Set<ChildProcess>();
let hookInstalled = false;
function installExitHook(): void {
  if (hookInstalled) return;
  hookInstalled = true;
  process.once('exit', () => {
    for (const c of live) {
      try {
        c.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
  });
}

export interface ExitRecord {
  readonly name: string;
  readonly incarnation: number;
  readonly pid: number | undefined;
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** The harness caused it (a chaos kill or the final stop). */
  readonly expected: boolean;
  readonly at: number;
}

export interface ProcessSpec {
  readonly name: string;
  readonly command: string;
  readonly args: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly cwd: string;
  /** Directory for `<name>.out.log` / `<name>.err.log` (appended across restarts). */
  readonly logDir: string;
}

export class ManagedProcess {
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private expectExit = false;
  incarnation = 0;
  readonly exits: ExitRecord[] = [];
  readonly pids: number[] = [];

  constructor(readonly spec: ProcessSpec) {
    installExitHook();
  }

  get outLog(): string {
    return join(this.spec.logDir, `${this.spec.name}.out.log`);
  }
  get errLog(): string {
    return join(this.spec.logDir, `${this.spec.name}.err.log`);
  }
  get running(): boolean {
    return this.child !== undefined;
  }
  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Spawn (again). Output goes straight to files: no pipe to drain, nothing lost at a SIGKILL. */
  start(): void {
    if (this.child) throw new Error(`${this.spec.name} is already running`);
    const out = openSync(this.outLog, 'a');
    const err = openSync(this.errLog, 'a');
    let child: ChildProcess;
    try {
      child = spawn(this.spec.command, [...this.spec.args], {
        cwd: this.spec.cwd,
        env: { ...this.spec.env },
        stdio: ['ignore', out, err],
      });
    } finally {
      closeSync(out);
      closeSync(err);
    }
    this.incarnation++;
    this.expectExit = false;
    const incarnation = this.incarnation;
    this.child = child;
    if (child.pid !== undefined) this.pids.push(child.pid);
    live.add(child);
    this.exited = new Promise<void>((resolve) => {
      const done = (code: number | null, signal: NodeJS.Signals | null): void => {
        live.delete(child);
        this.exits.push({
          name: this.spec.name,
          incarnation,
          pid: child.pid,
          code,
          signal,
          expected: this.expectExit,
          at: Date.now(),
        });
        if (this.child === child) this.child = undefined;
        resolve();
      };
      child.once('exit', done);
      child.once('error', () => {
        // spawn failure: no 'exit' follows when the process never started
        if (child.pid === undefined) done(null, null);
      });
    });
  }

  /** A crash: SIGKILL, then wait until the process is gone. */
  async kill9(): Promise<void> {
    const child = this.child;
    if (!child) return;
    this.expectExit = true;
    child.kill('SIGKILL');
    await this.exited;
  }

  /** Graceful stop: SIGTERM, SIGKILL after `graceMs`. */
  async stop(graceMs = 15_000): Promise<void> {
    const child = this.child;
    if (!child) return;
    this.expectExit = true;
    child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(t);
  }
}

/** `n` distinct ports the OS says are free now (held together, then released). */
export async function freePorts(n: number): Promise<number[]> {
  const servers: Server[] = [];
  try {
    const ports: number[] = [];
    for (let i = 0; i < n; i++) {
      const srv = createServer();
      servers.push(srv);
      await new Promise<void>((resolve, reject) => {
        srv.once('error', reject);
        srv.listen(0, HOST, () => resolve());
      });
      const addr = srv.address();
      if (addr === null || typeof addr === 'string') throw new Error('no port from the OS');
      ports.push(addr.port);
    }
    return ports;
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
  }
}

/** Does a nats-server answer its INFO line on this port? */
export function natsAnswers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = createConnection({ host: HOST, port });
    const done = (ok: boolean): void => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(1000, () => done(false));
    sock.once('error', () => done(false));
    sock.once('data', (d) => done(d.toString('utf8').startsWith('INFO ')));
  });
}

export const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });

/** Poll `check` every `everyMs` until it is true, `timeoutMs` passes, or the signal aborts. */
export async function waitUntil(
  check: () => Promise<boolean>,
  timeoutMs: number,
  everyMs = 100,
  signal?: AbortSignal,
): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until && !signal?.aborted) {
    try {
      if (await check()) return true;
    } catch {
      // not yet
    }
    await sleep(everyMs, signal);
  }
  return false;
}

/**
 * Processes whose environment contains `marker` (e.g. `WM_HOME_URL=<this run's URL>`): the VMs of
 * this run, found the way the OS sees them rather than the way the emulator remembers them.
 * Linux only (/proc); elsewhere it finds nothing and says so.
 */
export function processesWithEnv(marker: string): { pid: number; machineId?: string }[] | null {
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return null;
  }
  const out: { pid: number; machineId?: string }[] = [];
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    let env: string;
    try {
      env = readFileSync(`/proc/${e}/environ`, 'utf8');
    } catch {
      continue; // gone, or not ours to read
    }
    const vars = env.split('\0');
    if (!vars.includes(marker)) continue;
    // A zombie (dead, not yet reaped) is not a live VM.
    if (isZombie(Number(e)) !== false) continue;
    const mid = vars.find((v) => v.startsWith('FLY_MACHINE_ID='))?.slice('FLY_MACHINE_ID='.length);
    out.push({ pid: Number(e), ...(mid ? { machineId: mid } : {}) });
  }
  return out;
}

/** Is this process a zombie (dead, not yet reaped)? Undefined when /proc cannot tell. */
function isZombie(pid: number): boolean | undefined {
  try {
    // /proc/<pid>/stat: "pid (comm) S ..."; S = Z for a zombie.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const at = stat.lastIndexOf(')') + 2;
    return stat.slice(at, at + 1) === 'Z';
  } catch {
    return undefined;
  }
}

/** Is this pid a live (non-zombie) process? */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  return isZombie(pid) !== true;
}
