/** Runs the EventStore contract against the file store, plus its crash-safety rules. */
import { hostname } from 'node:os';
import {
  appendFileSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  FileEventStore,
  FileStoreCorruptError,
  FileStoreLockedError,
} from '../../src/adapters/file/fileEventStore.js';
import { eventStoreContract } from './eventStore.contract.js';
import { aStream, anEvent } from '../support/events.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'wm-file-store-'));

eventStoreContract(
  'file',
  async () => {
    const dir = tmp();
    const path = join(dir, 'events.log');
    const h = {
      store: FileEventStore.open(path, { fsync: false }),
      reopen: async () => {
        await h.store.close();
        return FileEventStore.open(path, { fsync: false });
      },
      cleanup: async () => rmSync(dir, { recursive: true, force: true }),
    };
    return h;
  },
  { durable: true },
);

describe('FileEventStore crash safety', () => {
  it('drops a torn last record and appends cleanly after it', async () => {
    const dir = tmp();
    const path = join(dir, 'events.log');
    const s = aStream();
    const store = FileEventStore.open(path);
    await store.append(s, [anEvent(s), anEvent(s)], { expectedVersion: 0 });
    await store.close();
    const whole = statSync(path).size;
    // A crash mid-write: half of a third record, no newline.
    const third = anEvent(s);
    appendFileSync(path, `00000000 ${JSON.stringify(third).slice(0, 40)}`);
    const torn: number[] = [];
    const again = FileEventStore.open(path, { onTornRecord: (t) => torn.push(t.line) });
    expect(torn).toEqual([3]);
    expect(statSync(path).size).toBe(whole);
    expect(await again.read(s)).toHaveLength(2);
    await again.append(s, [third], { expectedVersion: 2 });
    await again.close();
    const reread = FileEventStore.open(path);
    expect((await reread.read(s)).map((e) => e.id).at(-1)).toBe(third.id);
    await reread.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('drops a complete last line whose checksum does not match, never misreading it', async () => {
    const dir = tmp();
    const path = join(dir, 'events.log');
    const s = aStream();
    const store = FileEventStore.open(path);
    await store.append(s, [anEvent(s), anEvent(s)], { expectedVersion: 0 });
    await store.close();
    const text = readFileSync(path, 'utf8');
    // Flip one digit inside the last record's JSON (a bit flip the length check would not see).
    const lines = text.trimEnd().split('\n');
    lines[1] = lines[1]!.replace('"version":2', '"version":7');
    writeFileSync(path, lines.join('\n') + '\n');
    const again = FileEventStore.open(path);
    const back = await again.read(s);
    expect(back.map((e) => e.version)).toEqual([1]);
    await again.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses to open a file damaged before its last record', async () => {
    const dir = tmp();
    const path = join(dir, 'events.log');
    const s = aStream();
    const store = FileEventStore.open(path);
    await store.append(s, [anEvent(s), anEvent(s), anEvent(s)], { expectedVersion: 0 });
    await store.close();
    const lines = readFileSync(path, 'utf8').trimEnd().split('\n');
    lines[0] = 'garbage';
    writeFileSync(path, lines.join('\n') + '\n');
    expect(() => FileEventStore.open(path)).toThrow(FileStoreCorruptError);
    truncateSync(path, 0);
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses a second live writer on the same file', async () => {
    const dir = tmp();
    const path = join(dir, 'events.log');
    writeFileSync(`${path}.lock`, String(process.ppid));
    expect(() => FileEventStore.open(path)).toThrow(FileStoreLockedError);
    writeFileSync(`${path}.lock`, `${process.ppid} ${hostname()}`);
    expect(() => FileEventStore.open(path)).toThrow(FileStoreLockedError);
    rmSync(dir, { recursive: true, force: true });
  });

  it('takes over a lock left by another host (a volume that outlived its machine), whatever pid runs here', async () => {
    const dir = tmp();
    const path = join(dir, 'events.log');
    writeFileSync(`${path}.lock`, `${process.ppid} an-old-machine`);
    const store = FileEventStore.open(path);
    expect(readFileSync(`${path}.lock`, 'utf8')).toBe(`${process.pid} ${hostname()}`);
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('takes over the lock of a writer that died', async () => {
    const dir = tmp();
    const path = join(dir, 'events.log');
    writeFileSync(`${path}.lock`, '999999999');
    const store = FileEventStore.open(path);
    expect(readFileSync(`${path}.lock`, 'utf8')).toBe(`${process.pid} ${hostname()}`);
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
});
