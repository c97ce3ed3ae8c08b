/** Forked TypeScript helpers (run through tsx) driven over IPC, tracked for cleanup. */
import { fork, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { trackChild } from './cleanup.js';
import { stopChild } from './vmBoot.js';

export interface IpcChild<In, Out extends { type: string }> {
  readonly proc: ChildProcess;
  send(msg: In): void;
  /** The next message matching `pred` (messages nobody waited for are kept in arrival order). */
  next<T extends Out>(pred: (m: Out) => m is T, timeoutMs?: number): Promise<T>;
  /** Ask it to go, then make sure it has: SIGTERM, then SIGKILL. */
  stop(farewell?: In): Promise<void>;
}

export function forkTs<In, Out extends { type: string }>(
  script: string,
  args: string[],
  label: string,
  /** More node flags for the child, e.g. `--max-old-space-size=256`. */
  nodeFlags: readonly string[] = [],
): IpcChild<In, Out> {
  const proc = trackChild(
    fork(join(process.cwd(), script), args, {
      // BENCH_CPU_PROF=<dir> profiles the children too (for finding what dominates a figure).
      execArgv: [
        '--expose-gc',
        ...nodeFlags,
        '--import',
        'tsx',
        ...(process.env.BENCH_CPU_PROF
          ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`]
          : []),
      ],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    }),
  );
  const inbox: Out[] = [];
  const waiters = new Set<{ pred: (m: Out) => boolean; resolve: (m: Out) => void }>();
  let exited: string | undefined;
  const failAll = new Set<(err: Error) => void>();
  proc.on('message', (m: Out) => {
    for (const w of waiters) {
      if (w.pred(m)) {
        waiters.delete(w);
        w.resolve(m);
        return;
      }
    }
    inbox.push(m);
  });
  proc.once('exit', (code, signal) => {
    exited = `${label} exited (${signal ?? code})`;
    for (const f of failAll) f(new Error(exited));
  });
  return {
    proc,
    send(msg) {
      if (proc.connected) proc.send(msg as object);
    },
    next<T extends Out>(pred: (m: Out) => m is T, timeoutMs = 60_000): Promise<T> {
      const i = inbox.findIndex(pred);
      if (i >= 0) return Promise.resolve(inbox.splice(i, 1)[0] as T);
      if (exited) return Promise.reject(new Error(exited));
      return new Promise<T>((resolve, reject) => {
        const w = {
          pred,
          resolve: (m: Out) => {
            cleanup();
            resolve(m as T);
          },
        };
        const fail = (err: Error) => {
          cleanup();
          reject(err);
        };
        const timer = setTimeout(
          () => fail(new Error(`${label}: no answer within ${timeoutMs} ms`)),
          timeoutMs,
        );
        const cleanup = () => {
          clearTimeout(timer);
          waiters.delete(w);
          failAll.delete(fail);
        };
        waiters.add(w);
        failAll.add(fail);
      });
    },
    async stop(farewell) {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      if (farewell !== undefined && proc.connected) {
        proc.send(farewell as object);
        const gone = await new Promise<boolean>((resolve) => {
          const timer = setTimeout(() => resolve(false), 5000);
          proc.once('exit', () => {
            clearTimeout(timer);
            resolve(true);
          });
        });
        if (gone) return;
      }
      await stopChild(proc, 2000);
    },
  };
}
