/**
 * Child process of the `sse` section: holds N fleet-stream connections (raw sockets speaking
 * HTTP/1.1, so the client side costs as little as possible) and stamps, with the host-wide
 * monotonic clock relative to `base`, when each connection first sees each change's frame.
 * A process holds at most ~20k descriptors here, so the N client sockets live apart from the
 * server's N.
 */
import { readdirSync } from 'node:fs';
import { connect, type Socket } from 'node:net';

export type ClientMsg =
  | { type: 'connected'; n: number; ms: number; fds: number }
  | { type: 'armed'; k: number }
  | { type: 'received'; k: number; times: number[]; missing: number }
  | { type: 'error'; message: string };
export type ClientCmd = { type: 'expect'; k: number; timeoutMs: number } | { type: 'close' };

const [portArg, nArg, baseArg] = process.argv.slice(2);
const port = Number(portArg);
const n = Number(nArg);
const base = BigInt(baseArg ?? '0');
const send = (m: ClientMsg) => process.send!(m);
process.on('disconnect', () => process.exit(0));

const MARK = 'ssek';
const sockets: Socket[] = [];
/** Per broadcast k: arrival time per socket (NaN = not yet). */
const arrivals = new Map<number, Float64Array>();
const counts = new Map<number, number>();
const expecting = new Map<number, () => void>();

function attach(i: number, s: Socket, onFirst: () => void): void {
  let first = true;
  let tail = '';
  s.on('data', (chunk: Buffer) => {
    const t = Number(process.hrtime.bigint() - base) / 1e6;
    if (first) {
      first = false;
      onFirst();
    }
    const text = tail + chunk.toString('latin1');
    for (
      let at = text.indexOf(MARK);
      at >= 0 && at + 10 <= text.length;
      at = text.indexOf(MARK, at + 1)
    ) {
      const k = Number(text.slice(at + 4, at + 10));
      const arr = arrivals.get(k);
      if (!arr || !Number.isNaN(arr[i]!)) continue;
      arr[i] = t;
      const c = (counts.get(k) ?? 0) + 1;
      counts.set(k, c);
      if (c === n) expecting.get(k)?.();
    }
    tail = text.slice(-10);
  });
  s.on('error', () => undefined);
}

async function connectAll(): Promise<void> {
  const t0 = performance.now();
  const BATCH = 250;
  for (let start = 0; start < n; start += BATCH) {
    const batch: Promise<void>[] = [];
    for (let i = start; i < Math.min(n, start + BATCH); i++) {
      batch.push(
        new Promise<void>((resolve, reject) => {
          const s = connect({ port, host: '127.0.0.1' });
          s.setNoDelay(true);
          sockets[i] = s;
          const fail = (err: Error) => reject(new Error(`connection ${i}: ${err.message}`));
          s.once('error', fail);
          s.once('connect', () =>
            s.write(
              `GET /events HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAccept: text/event-stream\r\n\r\n`,
            ),
          );
          attach(i, s, () => {
            s.off('error', fail);
            resolve();
          });
        }),
      );
    }
    await Promise.all(batch);
  }
  send({
    type: 'connected',
    n,
    ms: performance.now() - t0,
    fds: readdirSync('/proc/self/fd').length,
  });
}

process.on('message', (cmd: ClientCmd) => {
  if (cmd.type === 'close') {
    for (const s of sockets) s.destroy();
    process.exit(0);
  }
  const { k, timeoutMs } = cmd;
  // Registered before the parent asks the server for the change, so no arrival is missed.
  arrivals.set(k, new Float64Array(n).fill(Number.NaN));
  counts.set(k, 0);
  const done = () => {
    clearTimeout(timer);
    expecting.delete(k);
    const arr = arrivals.get(k)!;
    arrivals.delete(k);
    const times = Array.from(arr).filter((t) => !Number.isNaN(t));
    send({ type: 'received', k, times, missing: n - times.length });
  };
  const timer = setTimeout(done, timeoutMs);
  expecting.set(k, done);
  send({ type: 'armed', k });
});

connectAll().catch((err: unknown) => {
  send({ type: 'error', message: err instanceof Error ? err.message : String(err) });
  process.exit(1);
});
