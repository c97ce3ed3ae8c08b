/**
 * Everything the suite starts is released here: cleanups run newest first when a section ends,
 * on Ctrl-C/SIGTERM (then the process exits), and every child process still alive is SIGKILLed
 * from the 'exit' hook as a last resort. No orphans, whichever way the run ends.
 */
import type { ChildProcess } from 'node:child_process';

type Cleanup = { name: string; fn: () => Promise<void> | void };

const cleanups: Cleanup[] = [];
const children = new Set<ChildProcess>();
let installed = false;
let interrupted = false;

/** Register a cleanup; call the returned function to run it now (it then never runs again). */
export function defer(name: string, fn: () => Promise<void> | void): () => Promise<void> {
  const entry: Cleanup = { name, fn };
  cleanups.push(entry);
  let done: Promise<void> | undefined;
  return () =>
    (done ??= (async () => {
      const i = cleanups.indexOf(entry);
      if (i >= 0) cleanups.splice(i, 1);
      await fn();
    })());
}

/** Track a child so the exit hook can kill it; forgotten once it exits. */
export function trackChild(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

export function liveChildren(): number {
  return children.size;
}

export function wasInterrupted(): boolean {
  return interrupted;
}

/** Run every registered cleanup, newest first, each bounded in time. */
export async function runAllCleanups(timeoutMs = 15_000): Promise<void> {
  while (cleanups.length > 0) {
    const c = cleanups.pop()!;
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        Promise.resolve().then(c.fn),
        new Promise<void>((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`cleanup "${c.name}" took over ${timeoutMs} ms`)),
            timeoutMs,
          );
        }),
      ]);
    } catch (err) {
      process.stderr.write(
        `bench: cleanup "${c.name}" failed: ${err instanceof Error ? err.message : String(err)}\n`,
      );
    } finally {
      clearTimeout(timer);
    }
  }
}

function killChildrenNow(): void {
  for (const c of children) {
    try {
      c.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
}

/** Install the exit hook and the signal handlers (once). A second Ctrl-C exits at once. */
export function installCleanupHooks(): void {
  if (installed) return;
  installed = true;
  process.on('exit', killChildrenNow);
  const onSignal = (signal: NodeJS.Signals) => {
    if (interrupted) {
      process.stderr.write(`\nbench: second ${signal}; exiting now\n`);
      process.exit(130);
    }
    interrupted = true;
    process.stderr.write(
      `\nbench: ${signal}: stopping every server, socket and child process...\n`,
    );
    void runAllCleanups(8_000).finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('SIGHUP', onSignal);
}
