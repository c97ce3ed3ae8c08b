/**
 * The emulator's VMs as real child processes: spawn with a given env, signal, kill, capture
 * stdout/stderr line by line. Every live child is registered process-wide, so the host's exit
 * (normal, uncaught exception, SIGINT/SIGTERM/SIGHUP) kills them all: no orphans.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

export interface SpawnSpec {
  readonly command: string;
  readonly args: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly cwd: string;
}

export interface LogLine {
  readonly at: number;
  readonly stream: 'stdout' | 'stderr';
  readonly line: string;
}

export interface ExitInfo {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** The command could not be started at all (ENOENT, EACCES…). */
  readonly spawnError?: string;
}

/** Keeps the last `capacity` items. */
export class RingBuffer<T> {
  private readonly items: T[] = [];
  constructor(private readonly capacity: number) {}
  push(item: T): void {
    this.items.push(item);
    if (this.items.length > this.capacity) this.items.splice(0, this.items.length - this.capacity);
  }
  toArray(): T[] {
    return [...this.items];
  }
}

// ---------------------------------------------------------------------------------------------
// Process-wide registry and exit hooks.
// ---------------------------------------------------------------------------------------------

const live = new Set<ChildProcess>();
let exitHookInstalled = false;
let signalHooksInstalled = false;
const HOOKED_SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/** Kill every registered child now, synchronously (safe inside an 'exit' handler). */
export function killAllChildrenNow(): void {
  for (const child of live) {
    try {
      child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
}

/** Pids of the children this process is running for any emulator. */
export function liveChildPids(): number[] {
  return [...live].map((c) => c.pid).filter((p): p is number => p !== undefined);
}

function onSignal(signal: NodeJS.Signals): void {
  killAllChildrenNow();
  // When nobody else listens for this signal, behave as Node would have without us: die by it.
  if (process.listenerCount(signal) === 1) {
    for (const s of HOOKED_SIGNALS) process.removeListener(s, onSignal);
    signalHooksInstalled = false;
    process.kill(process.pid, signal);
  }
}

/**
 * Install the hooks once per process. `signals: false` leaves SIGINT/SIGTERM to a host that shuts
 * down gracefully itself (flylocal's main.ts); the 'exit' hook is always there as the last resort.
 */
export function ensureCleanupHooks(opts: { signals: boolean }): void {
  if (!exitHookInstalled) {
    process.on('exit', killAllChildrenNow);
    exitHookInstalled = true;
  }
  if (opts.signals && !signalHooksInstalled) {
    for (const s of HOOKED_SIGNALS) process.on(s, onSignal);
    signalHooksInstalled = true;
  }
}

// ---------------------------------------------------------------------------------------------
// One VM process.
// ---------------------------------------------------------------------------------------------

export class VmProcess {
  readonly exited: Promise<ExitInfo>;
  private readonly child: ChildProcess;
  private spawned = false;
  private done = false;

  constructor(
    readonly spec: SpawnSpec,
    onLine: (line: LogLine) => void,
    onSpawn: () => void,
  ) {
    let settle!: (e: ExitInfo) => void;
    this.exited = new Promise<ExitInfo>((resolve) => (settle = resolve));

    this.child = spawn(spec.command, [...spec.args], {
      cwd: spec.cwd,
      env: { ...spec.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    live.add(this.child);

    const finish = (info: ExitInfo): void => {
      if (this.done) return;
      this.done = true;
      live.delete(this.child);
      settle(info);
    };
    this.child.once('spawn', () => {
      this.spawned = true;
      onSpawn();
    });
    this.child.once('error', (err) => {
      // An 'error' before 'spawn' means there is no process and no 'exit' will follow.
      if (!this.spawned) {
        onLine({
          at: Date.now(),
          stream: 'stderr',
          line: `[flylocal] could not start ${spec.command}: ${err.message}`,
        });
        finish({ code: null, signal: null, spawnError: err.message });
      }
    });
    this.child.once('exit', (code, signal) => finish({ code, signal }));

    for (const stream of ['stdout', 'stderr'] as const) {
      const input = this.child[stream];
      if (!input) continue;
      const rl = createInterface({ input, crlfDelay: Infinity });
      rl.on('line', (line) => onLine({ at: Date.now(), stream, line }));
    }
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get running(): boolean {
    return !this.done;
  }

  signal(sig: NodeJS.Signals): void {
    if (this.done) return;
    try {
      this.child.kill(sig);
    } catch {
      // raced with exit
    }
  }

  kill(): void {
    this.signal('SIGKILL');
  }
}
