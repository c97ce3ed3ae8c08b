/**
 * One process writes a file store at a time: a lock file beside the log names the process and its
 * host, and a second open while that process lives fails with FileStoreLockedError.
 */
import { hostname } from 'node:os';
import { existsSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';

export class FileStoreLockedError extends Error {
  readonly code = 'FILE_STORE_LOCKED';
  constructor(path: string, pid: number) {
    super(`${path} is in use by process ${pid}`);
    this.name = 'FileStoreLockedError';
  }
}

export class StoreLock {
  private readonly lockPath: string;
  private readonly text = `${process.pid} ${hostname()}`;

  /**
   * Takes the lock of the log at `path`. A lock from another host is stale whatever pid now runs
   * here under that number: on a volume that outlives its machine (a deploy) the old holder is gone.
   */
  constructor(private readonly path: string) {
    this.lockPath = `${path}.lock`;
    if (existsSync(this.lockPath)) {
      const [pidText, host] = readFileSync(this.lockPath, 'utf8').trim().split(/\s+/);
      const pid = Number(pidText);
      const here = host === undefined || host === hostname();
      if (here && Number.isInteger(pid) && pid !== process.pid && isAlive(pid)) {
        throw new FileStoreLockedError(this.path, pid);
      }
    }
    writeFileSync(this.lockPath, this.text);
  }

  /** Releases the lock if it is still ours. */
  release(): void {
    try {
      if (readFileSync(this.lockPath, 'utf8').trim() === this.text) unlinkSync(this.lockPath);
    } catch {
      // The lock is gone already: nothing to release.
    }
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
