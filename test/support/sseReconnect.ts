/**
 * G9 driver: many SSE clients on launch streams over real loopback sockets, each dropping its
 * connection 1–5 times (seeded) and resuming with Last-Event-ID, while the launches move through
 * their lives. Returns what each client saw, beside what a client that never dropped would see.
 */
import { request, type ClientRequest } from 'node:http';
import { click } from './floods.js';
import type { WhereRig } from './whereRig.js';

export interface SseReconnectOptions {
  clients: number;
  launches: number;
  /** Time between the steps of every launch (ready, stopping, exit). */
  stepMs: number;
  seed: number;
}

export interface ClientLog {
  launchId: string;
  ids: number[];
  plannedDrops: number;
  drops: number;
  connects: number;
  /** Connections the server answered with neither 200 nor 204. */
  refused: number;
}

export interface SseReconnectResult {
  clients: ClientLog[];
  /** Per launch, the versions a client that never dropped receives. */
  reference: Map<string, number[]>;
  /** Launch-stream subscriptions and fleet visitors the server still holds after every client left. */
  watchersAfter: number;
  connectionsAfter: number;
}

/** mulberry32: a small seeded generator, so a failing run can be replayed by its seed. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * One connection: resolves when the server ends the stream (or answers 204), or when `dropAfterMs`
 * passes and the client cuts it (a dropped network). Ids of complete frames go to `onId`.
 */
function connectOnce(
  url: URL,
  lastId: number | undefined,
  dropAfterMs: number | undefined,
  onId: (id: number) => void,
): Promise<'ended' | 'dropped' | 'gone' | 'refused'> {
  return new Promise((resolve) => {
    let req: ClientRequest | undefined = undefined;
    let dropTimer: NodeJS.Timeout | undefined;
    let settled = false;
    const done = (how: 'ended' | 'dropped' | 'gone' | 'refused') => {
      if (settled) return;
      settled = true;
      if (dropTimer) clearTimeout(dropTimer);
      resolve(how);
    };
    req = request(
      {
        host: url.hostname,
        port: url.port,
        path: url.pathname,
        agent: false,
        headers: {
          accept: 'text/event-stream',
          ...(lastId !== undefined ? { 'last-event-id': String(lastId) } : {}),
        },
      },
      (res) => {
        if (res.statusCode === 204) {
          res.resume();
          return done('gone');
        }
        if (res.statusCode !== 200) {
          res.resume();
          return done('refused');
        }
        let buf = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          if (settled) return;
          buf += chunk;
          let i: number;
          while ((i = buf.indexOf('\n\n')) >= 0) {
            const block = buf.slice(0, i);
            buf = buf.slice(i + 2);
            const m = /^id: (\d+)$/m.exec(block);
            if (m) onId(Number(m[1]));
          }
        });
        res.on('end', () => done('ended'));
        res.on('error', () => done('dropped'));
        res.on('close', () => done('ended'));
      },
    );
    req.on('error', () => done('dropped'));
    if (dropAfterMs !== undefined) {
      dropTimer = setTimeout(() => {
        // Mark the drop before destroying, so close events that follow are not read as an end.
        if (settled) return;
        settled = true;
        req.destroy();
        resolve('dropped');
      }, dropAfterMs);
    }
    req.end();
  });
}

export async function runSseReconnect(
  rig: WhereRig,
  o: SseReconnectOptions,
): Promise<SseReconnectResult> {
  const rnd = seeded(o.seed);
  const launchIds: string[] = [];
  for (let i = 0; i < o.launches; i++) {
    // node:http without keep-alive, so the connections counted at the end are the streams' only.
    const res = await click(rig.base);
    if (res.status !== 202 || !res.launchId) throw new Error(`launch answered ${res.status}`);
    launchIds.push(res.launchId);
  }

  const logs: ClientLog[] = Array.from({ length: o.clients }, (_, i) => ({
    launchId: launchIds[i % launchIds.length]!,
    ids: [],
    plannedDrops: 1 + Math.floor(rnd() * 5),
    drops: 0,
    connects: 0,
    refused: 0,
  }));
  // Drop delays drawn up front (seeded), short enough to land while each launch still moves.
  const delays = logs.map((l) =>
    Array.from({ length: l.plannedDrops }, () => 10 + Math.floor(rnd() * o.stepMs)),
  );

  const runClient = async (log: ClientLog, k: number) => {
    const url = new URL(`/launches/${log.launchId}/events`, rig.base);
    let last: number | undefined;
    for (;;) {
      const drop = log.drops < log.plannedDrops ? delays[k]![log.drops] : undefined;
      log.connects++;
      const how = await connectOnce(url, last, drop, (id) => {
        log.ids.push(id);
        last = id;
      });
      if (how === 'dropped') {
        log.drops++;
        continue;
      }
      if (how === 'refused') log.refused++;
      // The server ended the stream after the final status (or had nothing more: 204).
      return;
    }
  };

  // Drive every launch through its life while the clients come and go.
  const drive = async () => {
    await sleep(o.stepMs);
    const machines = new Map(
      rig.fly.live().map((m) => [m.metadata.launch_id ?? '', m.id] as const),
    );
    const call = (status: 'listening' | 'stopping') =>
      Promise.all(
        launchIds.map((launchId) =>
          rig.callback({
            machineId: machines.get(launchId),
            launchId,
            region: rig.cfg.region,
            status,
            ...(status === 'stopping' ? { reason: 'finished' } : {}),
            at: new Date().toISOString(),
          }),
        ),
      );
    await call('listening');
    await sleep(o.stepMs);
    await call('stopping');
    await sleep(o.stepMs);
    for (const id of machines.values()) rig.fly.exit(id, 0);
  };

  await Promise.all([drive(), ...logs.map((l, k) => runClient(l, k))]);

  // What a client that never dropped sees: one connection from the start.
  const reference = new Map<string, number[]>();
  for (const launchId of launchIds) {
    const ids: number[] = [];
    await connectOnce(
      new URL(`/launches/${launchId}/events`, rig.base),
      undefined,
      undefined,
      (id) => ids.push(id),
    );
    reference.set(launchId, ids);
  }

  // Let the server see every close, then count what it still holds.
  const launches = rig.system.services.launches;
  // `watchers` is private: reading it here is the one way to see subscriptions leak.
  const watchers = () => (Reflect.get(launches, 'watchers') as Map<string, Set<unknown>>).size;
  const connections = () =>
    new Promise<number>((r) => rig.system.publicApp.server.getConnections((_e, n) => r(n)));
  const until = Date.now() + 10_000;
  while (Date.now() < until && (watchers() > 0 || (await connections()) > 0)) await sleep(50);
  return {
    clients: logs,
    reference,
    watchersAfter: watchers() + rig.system.services.fleet.visitors,
    connectionsAfter: await connections(),
  };
}

/** Check each client against the reference: counts of clients with a gap, a reorder, a duplicate. */
export function checkSse(r: SseReconnectResult): {
  gaps: number;
  reorders: number;
  duplicates: number;
  drops: number;
  connects: number;
} {
  let gaps = 0;
  let reorders = 0;
  let duplicates = 0;
  for (const c of r.clients) {
    const ref = r.reference.get(c.launchId) ?? [];
    if (new Set(c.ids).size !== c.ids.length) duplicates++;
    if (c.ids.some((id, i) => i > 0 && id <= c.ids[i - 1]!)) reorders++;
    const seen = new Set(c.ids);
    if (ref.some((id) => !seen.has(id))) gaps++;
  }
  return {
    gaps,
    reorders,
    duplicates,
    drops: r.clients.reduce((n, c) => n + c.drops, 0),
    connects: r.clients.reduce((n, c) => n + c.connects, 0),
  };
}
