/**
 * Child process for the compaction crash test: opens the file store at LOG_PATH, appends short
 * closed streams without pause (each acknowledged one printed as a JSON line once durable) and
 * compacts in rounds. With KILL_AT=<step> it SIGKILLs itself the KILL_NTH time that step is reached.
 */
import { FileEventStore, type CompactionStep } from '../../../src/adapters/file/fileEventStore.js';
import { makeEnvelope } from '../../../src/events/envelope.js';
import { monotonicFactory } from 'ulid';

const env = process.env;
const killAt = env.KILL_AT as CompactionStep | undefined;
const killNth = Number(env.KILL_NTH ?? 1);
const out = (o: unknown) => process.stdout.write(JSON.stringify(o) + '\n');
const ulid = monotonicFactory();

let reached = 0;
const store = FileEventStore.open(env.LOG_PATH!, {
  retention: { maxClosedStreams: Number(env.KEEP_CLOSED) },
  onCompactionStep: (step) => {
    if (step === killAt && ++reached === killNth) process.kill(process.pid, 'SIGKILL');
  },
});
out({ kind: 'open' });

let stop = false;
let acked: () => void = () => {};
/** Resolves after the next acknowledged append. */
const nextAck = () => new Promise<void>((r) => (acked = r));
const appender = (async () => {
  for (let i = 0; !stop; i++) {
    const stream = `launch.child${process.pid}x${i}`;
    const at = Date.now();
    const evs = [0, 1].map((k) =>
      makeEnvelope({
        id: ulid(),
        type: 'presence.changed',
        stream,
        at: at + k,
        data: { visitors: k, roll: 0.5 },
        meta: k === 1 ? { closes: true } : {},
      }),
    );
    await store.append(stream, evs, { expectedVersion: 0 });
    out({ kind: 'acked', stream, ids: evs.map((e) => e.id) });
    acked();
  }
})();

for (let round = 0; round < Number(env.ROUNDS ?? 3); round++) {
  // A stream closed since the last round, so every round has something to archive and reaches
  // every step (the kill points count on it).
  await nextAck();
  const r = await store.compact();
  out({ kind: 'compacted', ...r });
}
stop = true;
await appender;
await store.close();
out({ kind: 'done' });
