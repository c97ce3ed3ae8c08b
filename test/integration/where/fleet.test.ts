/**
 * The fleet stream (`GET /events`): every visitor sees every machine appear, change and go, starting
 * from a snapshot of the live fleet; a client that stops reading is cut off without holding up the
 * others.
 */
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { frame, MAX_BACKLOG } from '../../../src/where/sse.js';
import type { FleetMachine, FleetSnapshot, MachineGone } from '../../../src/where/wire.js';
import { openSse, type SseReader } from '../../support/sse.js';
import { launch, whereRig, type WhereRig } from '../../support/whereRig.js';

let rig: WhereRig | undefined;
const readers: SseReader[] = [];
const sockets: Socket[] = [];
afterEach(async () => {
  for (const r of readers.splice(0)) r.close();
  for (const s of sockets.splice(0)) s.destroy();
  // fetch opens a spare socket after an aborted stream, which would hold close() for seconds.
  rig?.system.publicApp.server.closeAllConnections();
  await rig?.stop();
  rig = undefined;
});

async function visitor(r: WhereRig): Promise<SseReader> {
  const sse = await openSse(`${r.base}/events`);
  readers.push(sse);
  expect(sse.status).toBe(200);
  await expect.poll(() => sse.frames.length).toBeGreaterThan(0);
  expect(sse.frames[0]!.event).toBe('fleet');
  return sse;
}

const snapshotOf = (s: SseReader) => s.frames[0]!.data as FleetSnapshot;
const machineFrames = (s: SseReader, id: string) =>
  s.frames
    .filter((f) => f.event === 'machine' && (f.data as FleetMachine).machineId === id)
    .map((f) => f.data as FleetMachine);
const goneFrames = (s: SseReader, id: string) =>
  s.frames.filter((f) => f.event === 'machineGone' && (f.data as MachineGone).machineId === id);

describe('the fleet stream', () => {
  it("shows another visitor's machine appear, change, and go; a later visitor gets it in the snapshot", async () => {
    rig = await whereRig({ WM_AUTOSPAWN: '0' });
    const watcher = await visitor(rig);
    expect(snapshotOf(watcher).machines).toEqual([]);
    expect(snapshotOf(watcher).capacity).toEqual({ live: 0, limit: rig.cfg.maxMachines });

    // Someone else launches (no stream of their own needed).
    const { launchId } = (await (await launch(rig, { region: 'syd' })).json()) as {
      launchId: string;
    };
    await expect.poll(() => rig!.fly.live().length).toBe(1);
    const machineId = rig.fly.live()[0]!.id;
    await expect
      .poll(() => machineFrames(watcher, machineId).map((m) => m.status))
      .toContain('started');
    expect(machineFrames(watcher, machineId)[0]).toMatchObject({
      machineId,
      launchId,
      region: 'syd',
      source: 'button',
    });
    await expect
      .poll(() =>
        watcher.frames.some(
          (f) => f.event === 'capacity' && (f.data as { live: number }).live === 1,
        ),
      )
      .toBe(true);

    // A visitor arriving now finds it in the first message.
    const late = await visitor(rig);
    expect(snapshotOf(late).machines).toEqual([
      expect.objectContaining({ machineId, launchId, region: 'syd', status: 'started' }),
    ]);
    expect(snapshotOf(late).capacity.live).toBe(1);

    const cb = await rig.callback({
      machineId,
      launchId,
      region: 'syd',
      status: 'listening',
      at: new Date().toISOString(),
    });
    expect(cb.status).toBe(200);
    for (const s of [watcher, late])
      await expect.poll(() => machineFrames(s, machineId).at(-1)?.status).toBe('listening');

    // The VM finishes and the platform destroys it: both see it go, and the count drop.
    await rig.callback({
      machineId,
      launchId,
      region: 'syd',
      status: 'stopping',
      reason: 'finished',
      at: new Date().toISOString(),
    });
    rig.fly.exit(machineId, 0);
    for (const s of [watcher, late]) {
      await expect.poll(() => goneFrames(s, machineId).length).toBe(1);
      await expect
        .poll(() => s.frames.filter((f) => f.event === 'capacity').at(-1)?.data)
        .toEqual({ live: 0, limit: rig.cfg.maxMachines });
    }
    const statuses = machineFrames(watcher, machineId).map((m) => m.status);
    expect(statuses.filter((st, i) => st !== statuses[i - 1])).toEqual([
      'created',
      'started',
      'listening',
      'stopping',
    ]);
    // Nothing about it after it went.
    const goneAt = watcher.frames.findIndex((f) => f.event === 'machineGone');
    expect(watcher.frames.slice(goneAt + 1).filter((f) => f.event === 'machine')).toEqual([]);
    expect(rig.system.services.fleet.machines()).toEqual([]);
    const again = await visitor(rig);
    expect(snapshotOf(again).machines).toEqual([]);
  });

  it('shows machines found by reconciliation, foreign ones included, to visitors already watching', async () => {
    rig = await whereRig({ WM_AUTOSPAWN: '0' });
    const foreign = await rig.fly.create({
      region: 'gru',
      image: 'someone/else:1',
      env: {},
      metadata: {},
      internalPort: 8080,
      autoDestroy: true,
      restart: { policy: 'no' },
      stop: { signal: 'SIGTERM', timeoutS: 10 },
    });
    // Opening the stream asks for a reconciliation, which finds the machine and tells everyone.
    const first = await visitor(rig);
    const seen = () =>
      first.frames.some(
        (f) =>
          (f.event === 'machine' && (f.data as FleetMachine).machineId === foreign.id) ||
          (f.event === 'fleet' &&
            (f.data as FleetSnapshot).machines.some((m) => m.machineId === foreign.id)),
      );
    await expect.poll(seen).toBe(true);
    const second = await visitor(rig);
    expect(snapshotOf(second).machines).toEqual([
      expect.objectContaining({
        machineId: foreign.id,
        region: 'gru',
        source: 'foreign',
        status: 'started',
      }),
    ]);
  });

  it(`cuts off a client that stops reading (over ${MAX_BACKLOG} bytes behind) and keeps serving the others`, async () => {
    rig = await whereRig({ WM_AUTOSPAWN: '0' });
    const fleet = rig.system.services.fleet;
    const good = await visitor(rig);

    // A client that sends its request, reads the response head, then never reads again.
    const { port } = new URL(rig.base);
    const slow = connect(Number(port), '127.0.0.1');
    sockets.push(slow);
    slow.on('error', () => {});
    slow.write(
      `GET /events HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAccept: text/event-stream\r\n\r\n`,
    );
    await new Promise<void>((resolve) => slow.once('data', () => resolve()));
    slow.pause();
    await expect.poll(() => fleet.visitors).toBe(2);

    // Big messages, one at a time, each read by the good client before the next: only the
    // silent one falls behind (the kernel's buffers first, then the server's backlog).
    const pad = 'x'.repeat(256 * 1024);
    let sent = 0;
    while (fleet.visitors === 2 && sent < 400) {
      fleet.broadcast(frame('pad', { i: sent, pad }));
      const i = sent++;
      await expect
        .poll(() => good.frames.some((f) => f.event === 'pad' && (f.data as { i: number }).i === i))
        .toBe(true);
    }
    expect(fleet.visitors).toBe(1);
    // The good client lost nothing, in order.
    expect(
      good.frames.filter((f) => f.event === 'pad').map((f) => (f.data as { i: number }).i),
    ).toEqual([...Array(sent).keys()]);

    // And it keeps getting the fleet's news.
    await launch(rig);
    await expect.poll(() => good.frames.some((f) => f.event === 'machine')).toBe(true);
  });
});
