/**
 * Launch times through the real app (in-memory store, Fly fake): after launches get ready, the
 * fleet stream carries each region's typical time, a launch's view carries its timeline and how it
 * compared, its page shows both, and a restarted app (same store) tells the same numbers.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryEventStore } from '../../../src/adapters/memory/memoryEventStore.js';
import { FileEventStore } from '../../../src/adapters/file/fileEventStore.js';
import { median } from '../../../src/where/services/launchTimes.js';
import type { LaunchTimesView, LaunchView } from '../../../src/where/wire.js';
import { openSse, type SseReader } from '../../support/sse.js';
import { launch, whereRig, type WhereRig } from '../../support/whereRig.js';

const ENV = { WM_AUTOSPAWN: '0', WM_COOLDOWN_MS: '0', WM_LAUNCHES_PER_MINUTE: '100' };

let rig: WhereRig | undefined;
const readers: SseReader[] = [];
afterEach(async () => {
  for (const r of readers.splice(0)) r.close();
  rig?.system.publicApp.server.closeAllConnections();
  await rig?.stop();
  rig = undefined;
});

/** One launch to ready: the POST, the create (fake), then the VM's callback. */
async function readyLaunch(r: WhereRig, region: string): Promise<LaunchView> {
  const before = new Set(r.fly.live().map((m) => m.id));
  const res = await launch(r, { region });
  expect(res.status).toBe(202);
  const { launchId } = (await res.json()) as { launchId: string };
  await expect.poll(() => r.fly.live().some((m) => !before.has(m.id))).toBe(true);
  const machine = r.fly.live().find((m) => !before.has(m.id))!;
  // Let the launch wait a little, so durations differ.
  await new Promise((resolve) => setTimeout(resolve, 20 + Math.floor(Math.random() * 60)));
  const cb = await r.callback({
    machineId: machine.id,
    launchId,
    region,
    status: 'listening',
    at: new Date().toISOString(),
  });
  expect(cb.status).toBe(200);
  return view(r, launchId, 'ready');
}

async function view(r: WhereRig, launchId: string, status: string): Promise<LaunchView> {
  let v: LaunchView | undefined;
  await expect
    .poll(async () => {
      v = (await (await fetch(`${r.base}/launches/${launchId}`)).json()) as LaunchView;
      return v.status;
    })
    .toBe(status);
  return v!;
}

/** Click→ready from the launch's own facts, as its view tells them. */
function readyMs(v: LaunchView): number {
  const ready = v.timeline?.find((s) => s.step === 'ready');
  expect(ready?.fact).toBe('vm.listening');
  return Date.parse(ready!.at) - Date.parse(v.requestedAt);
}

const lastTimes = (s: SseReader) =>
  s.frames.filter((f) => f.event === 'launchTimes').at(-1)?.data as LaunchTimesView | undefined;

describe('launch times through the landing app', () => {
  it('the fleet stream carries the typical time of each region, from the launches’ facts', async () => {
    rig = await whereRig(ENV);
    const watcher = await openSse(`${rig.base}/events`);
    readers.push(watcher);
    await expect.poll(() => watcher.frames.map((f) => f.event)).toEqual(['fleet', 'launchTimes']);
    expect(lastTimes(watcher)?.regions).toEqual({});

    const syd = [await readyLaunch(rig, 'syd'), await readyLaunch(rig, 'syd')];
    syd.push(await readyLaunch(rig, 'syd'));
    const fra = await readyLaunch(rig, 'fra');
    const want = {
      syd: { medianMs: median(syd.map(readyMs)), count: 3 },
      fra: { medianMs: readyMs(fra), count: 1 },
    };
    await expect.poll(() => lastTimes(watcher)?.regions, { timeout: 5_000 }).toEqual(want);
    // Debounced: far fewer messages than changes, and the same numbers for a newcomer.
    expect(watcher.frames.filter((f) => f.event === 'launchTimes').length).toBeLessThan(5);
    const late = await openSse(`${rig.base}/events`);
    readers.push(late);
    await expect.poll(() => lastTimes(late)?.regions).toEqual(want);

    // Each launch's timeline: its facts in order, and how it compared with the others that day.
    const last = syd[2]!;
    expect(last.timeline?.map((s) => [s.step, s.fact])).toEqual([
      ['requested', 'launch.requested'],
      ['created', 'fly.machineCreated'],
      ['started', 'fly.machineObserved'],
      ['ready', 'vm.listening'],
    ]);
    const others = syd.slice(0, 2).map(readyMs);
    const slower = others.filter((ms) => ms > readyMs(last)).length;
    expect(last.readyTime).toEqual({
      ms: readyMs(last),
      fasterThanPct: Math.floor((100 * slower) / 2),
      of: 2,
    });
    // Compared with the day's launches as they stand when asked.
    expect((await view(rig, syd[0]!.launchId, 'ready')).readyTime).toMatchObject({ of: 2 });

    // The launch's SSE stream: the timeline grows with each message, the ready one compares.
    const stream = await openSse(`${rig.base}/launches/${last.launchId}/events`);
    readers.push(stream);
    await expect.poll(() => stream.frames.length).toBeGreaterThanOrEqual(4);
    const views = stream.frames.map((f) => f.data as LaunchView);
    expect(views.map((v) => v.timeline?.length)).toEqual([1, 2, 3, 4]);
    expect(views.at(-1)?.readyTime?.ms).toBe(readyMs(last));

    // The launch's page, without JavaScript: the comparison, the timeline, and the typical time.
    const page = await (
      await fetch(`${rig.base}/launches/${last.launchId}?from=machine`, {
        headers: { accept: 'text/html' },
      })
    ).text();
    expect(page).not.toContain('http-equiv="refresh"'); // back from the machine: no forwarding
    expect(page).toContain('Back to your machine');
    expect(page).toContain(`Your machine was ready in `);
    expect(page).toContain('of launches in Sydney today.');
    expect(page).toMatch(/<li data-fact="vm.listening">VM listening <time datetime="[^"]+">/);
    expect(page).toContain(`Launches in Sydney: typical `);
    const forward = await (
      await fetch(`${rig.base}/launches/${last.launchId}`, { headers: { accept: 'text/html' } })
    ).text();
    expect(forward).toContain('http-equiv="refresh"');

    // The landing page's first paint has the numbers too: the marker's title and the panel.
    const landing = await (await fetch(rig.base)).text();
    expect(landing).toMatch(/Sydney \(syd\) · [^<]* · typical \d+\.\d s \(last 3\)/);
    expect(landing).toContain('id="launch-typical" data-region="ams"');
  });

  it('a restarted app tells the same numbers: boot counts what it folded from the store', async () => {
    const store = new MemoryEventStore();
    rig = await whereRig(ENV, { store });
    const launches = [await readyLaunch(rig, 'nrt'), await readyLaunch(rig, 'nrt')];
    const want = { nrt: { medianMs: median(launches.map(readyMs)), count: 2 } };
    await expect.poll(() => rig!.system.services.launchTimes.view().regions).toEqual(want);
    await rig.stop();
    rig = await whereRig(ENV, { store });
    expect(rig.system.services.launchTimes.view().regions).toEqual(want);
    // Its machine is unknown to this app's Fly, so the launch may be over by now: its history stays.
    const again = (await (
      await fetch(`${rig.base}/launches/${launches[0]!.launchId}`)
    ).json()) as LaunchView;
    expect(again.timeline?.map((s) => s.step).slice(0, 4)).toEqual([
      'requested',
      'created',
      'started',
      'ready',
    ]);
    expect(again.readyTime?.ms).toBe(readyMs(launches[0]!));
  });

  it('with a file store, saves the numbers beside the boot snapshot and reads only the tail after', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wm-times-'));
    try {
      const snapshot = { path: join(dir, 'snapshot.json'), store: 'file' };
      let store: FileEventStore | undefined;
      const restart = async () => {
        await rig?.stop();
        await store?.close();
        store = FileEventStore.open(join(dir, 'events.log'), { fsync: false });
        rig = await whereRig(ENV, { store, snapshot });
        return rig;
      };
      const first = await readyLaunch(await restart(), 'gru');
      const second = await readyLaunch(await restart(), 'gru');
      expect(existsSync(join(dir, 'snapshot.launch-times.json'))).toBe(true);
      const saved = JSON.parse(readFileSync(join(dir, 'snapshot.launch-times.json'), 'utf8')) as {
        position: number;
        regions: Record<string, { recent: unknown[] }>;
      };
      expect(saved.regions.gru?.recent).toHaveLength(1);
      expect(saved.position).toBeGreaterThan(0);
      // The second launch is in no saved copy yet: the boot reads it from the store's tail.
      const booted = await restart();
      expect(booted.system.services.launchTimes.view().regions).toEqual({
        gru: { medianMs: median([readyMs(first), readyMs(second)]), count: 2 },
      });
      await rig?.stop();
      rig = undefined;
      await store?.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
