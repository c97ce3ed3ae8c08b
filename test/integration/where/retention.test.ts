/**
 * Retention of finished actors (ADR 0013), over HTTP: the real landing app on a real file store in
 * a temp dir, a manual clock driving time and the retention service. Within retention nothing a
 * visitor or operator sees changes; past it a finished launch answers 410 Gone; the service itself.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { FileEventStore } from '../../../src/adapters/file/fileEventStore.js';
import { FakeFlyMachines } from '../../../src/adapters/fly/fakeFlyMachines.js';
import { MemoryEventStore } from '../../../src/adapters/memory/memoryEventStore.js';
import {
  MemoryCapacityLedger,
  MemoryLeases,
  MemoryPresence,
} from '../../../src/adapters/memory/memoryCoordination.js';
import { ManualClock } from '../../../src/adapters/system/manualClock.js';
import { UlidIds } from '../../../src/adapters/system/ulidIds.js';
import type { CompactionSummary } from '../../../src/ports/eventStore.js';
import { deriveLaunchKey, signBody, SIGNATURE_HEADER } from '../../../src/shared/callbackAuth.js';
import { ConfigError } from '../../../src/shared/env.js';
import { silentLogger } from '../../../src/shared/log.js';
import { fileStoreOptions } from '../../../src/where/wiring.js';
import { Retention, describeWindow } from '../../../src/where/services/retention.js';
import { createWhere, type WhereSystem } from '../../../src/where/system.js';
import { testConfig } from '../../support/whereRig.js';

const MIN = 60_000;
const HOUR = 60 * MIN;
const READY_MS = MIN;
const cfg = testConfig({
  WM_AUTOSPAWN: '0',
  WM_COOLDOWN_MS: '0',
  WM_READY_TIMEOUT_MS: String(READY_MS),
  WM_TTL_BUTTON_MS: String(48 * HOUR),
  WM_RECONCILE_INTERVAL_MS: String(24 * HOUR),
  WM_RETENTION: '1h',
  WM_COMPACT_INTERVAL: '10m',
});
const auth = { authorization: `Bearer ${cfg.debugToken}` };
const UNKNOWN = '01JZ0000000000000000000042';

const dirs: string[] = [];
const running: WhereSystem[] = [];
afterEach(async () => {
  for (const s of running.splice(0)) {
    s.privateApp.server.closeAllConnections();
    s.publicApp.server.closeAllConnections();
    await s.stop();
  }
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

interface App {
  system: WhereSystem;
  store: FileEventStore;
  base: string;
  priv: string;
}

/** One landing process on the file store in `dir`, wired as production wires it (fileStoreOptions). */
async function boot(dir: string, clock: ManualClock, fly: FakeFlyMachines): Promise<App> {
  const log = silentLogger();
  const store = FileEventStore.open(join(dir, 'events.log'), {
    ...fileStoreOptions(cfg, clock, log),
    fsync: false,
  });
  const system = await createWhere(
    cfg,
    {
      store,
      ledger: new MemoryCapacityLedger(),
      leases: new MemoryLeases(),
      presence: new MemoryPresence(),
      fly,
      clock,
      timers: clock,
      ids: new UlidIds(clock),
      log,
      close: () => store.close(),
    },
    { beatMs: HOUR, random: () => 0.5 },
  );
  running.push(system);
  const urls = await system.start();
  return { system, store, base: urls.publicUrl!, priv: urls.privateUrl! };
}

async function stop(app: App): Promise<void> {
  running.splice(running.indexOf(app.system), 1);
  app.system.privateApp.server.closeAllConnections();
  app.system.publicApp.server.closeAllConnections();
  await app.system.stop();
}

async function startLaunch(app: App): Promise<string> {
  const res = await fetch(`${app.base}/launches`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      origin: app.base,
      'sec-fetch-site': 'same-origin',
    },
    body: '{}',
  });
  expect(res.status).toBe(202);
  return ((await res.json()) as { launchId: string }).launchId;
}

/** What a visitor and an operator see of a launch and its machine: status and body of each route. */
async function seen(app: App, launchId: string, machineId: string) {
  const get = async (url: string, headers: Record<string, string> = {}) => {
    const res = await fetch(url, { headers });
    return { status: res.status, body: await res.text() };
  };
  return {
    json: await get(`${app.base}/launches/${launchId}`),
    html: await get(`${app.base}/launches/${launchId}`, { accept: 'text/html' }),
    events: await get(`${app.base}/launches/${launchId}/events`, { accept: 'text/event-stream' }),
    debugLaunch: await get(`${app.priv}/debug/actors/launch.${launchId}`, auth),
    debugVm: await get(`${app.priv}/debug/actors/vm.${machineId}`, auth),
  };
}

/** Move the clock one compaction interval and wait for the pass it starts to finish. */
async function tick(app: App, clock: ManualClock): Promise<CompactionSummary> {
  const before = app.system.services.retention.last;
  clock.advance(cfg.retention.compactIntervalMs);
  await expect.poll(() => app.system.services.retention.last !== before).toBe(true);
  const last = app.system.services.retention.last!;
  if (!last.ok) throw new Error(`the retention pass failed: ${last.error}`);
  return last.summary;
}

/** A launch that never got ready: it failed at its deadline, its machine was destroyed. */
async function finishedLaunch(app: App, clock: ManualClock, fly: FakeFlyMachines) {
  const launchId = await startLaunch(app);
  const runtime = app.system.services.runtime;
  await runtime.settled();
  await expect.poll(() => fly.ledger().some((m) => m.metadata.launch_id === launchId)).toBe(true);
  const machineId = fly.ledger().find((m) => m.metadata.launch_id === launchId)!.id;
  clock.advance(READY_MS + 1);
  await expect.poll(() => runtime.actor(`launch.${launchId}`)?.snapshot.status).toBe('done');
  await expect.poll(() => runtime.actor(`vm.${machineId}`)?.snapshot.status).toBe('done');
  await runtime.settled();
  return { launchId, machineId };
}

/** A launch whose machine called back "listening": it stays open until its machine goes. */
async function openLaunch(app: App, clock: ManualClock, fly: FakeFlyMachines) {
  const launchId = await startLaunch(app);
  const runtime = app.system.services.runtime;
  await expect
    .poll(() => fly.ledger().find((m) => m.metadata.launch_id === launchId)?.state)
    .toBe('started');
  const machineId = fly.ledger().find((m) => m.metadata.launch_id === launchId)!.id;
  const raw = JSON.stringify({
    machineId,
    launchId,
    region: cfg.region,
    status: 'listening',
    at: new Date(clock.now()).toISOString(),
  });
  const res = await fetch(`${app.priv}/api/machine_status`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      [SIGNATURE_HEADER]: signBody(
        deriveLaunchKey(cfg.callback.secret, launchId),
        raw,
        clock.now(),
      ),
    },
    body: raw,
  });
  expect(res.status).toBe(200);
  await runtime.settled();
  expect(runtime.actor(`launch.${launchId}`)?.snapshot.status).toBe('active');
  return { launchId, machineId };
}

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'wm-retention-'));
  dirs.push(dir);
  return dir;
}

describe('retention of finished launches, over HTTP on the file store', () => {
  it('answers as before within retention, and 410 Gone once a pass archived a finished launch', async () => {
    const clock = new ManualClock(Date.now());
    const fly = new FakeFlyMachines({ clock, timers: clock });
    const app = await boot(tempDir(), clock, fly);
    const done = await finishedLaunch(app, clock, fly);
    const open = await openLaunch(app, clock, fly);

    const before = await seen(app, done.launchId, done.machineId);
    expect(before.json.status).toBe(200);
    expect(JSON.parse(before.json.body)).toMatchObject({ status: 'failed' });
    expect(before.html.status).toBe(200);
    expect(before.events.status).toBe(200);
    expect(before.events.body).toMatch(/event: launch/);
    expect(before.debugLaunch.status).toBe(200);
    expect(before.debugVm.status).toBe(200);
    const openBefore = await fetch(`${app.base}/launches/${open.launchId}`);
    expect(openBefore.status).toBe(200);
    const openView = await openBefore.text();

    // Three passes inside the hour: nothing is archived, and every answer is what it was.
    for (let i = 0; i < 3; i++) expect((await tick(app, clock)).droppedStreams).toBe(0);
    const within = await seen(app, done.launchId, done.machineId);
    expect(within.json).toEqual(before.json);
    expect(within.events).toEqual(before.events);
    expect(within.debugLaunch).toEqual(before.debugLaunch);
    expect(within.debugVm).toEqual(before.debugVm);
    expect(within.html.status).toBe(200);
    expect(app.store.status(`launch.${done.launchId}`)).toBe('live');

    // Past the hour the finished launch and its machine are archived; the open launch is not.
    let archived = 0;
    for (let i = 0; i < 5; i++) archived += (await tick(app, clock)).droppedStreams;
    expect(archived).toBe(2);
    expect(app.store.status(`launch.${done.launchId}`)).toBe('archived');
    expect(app.store.status(`vm.${done.machineId}`)).toBe('archived');
    expect(app.store.status(`launch.${open.launchId}`)).toBe('live');
    expect(app.store.status(`vm.${open.machineId}`)).toBe('live');

    const after = await seen(app, done.launchId, done.machineId);
    for (const r of [after.json, after.events]) {
      expect(r.status).toBe(410);
      expect(JSON.parse(r.body)).toEqual({
        statusCode: 410,
        code: 'LAUNCH_GONE',
        error: 'Gone',
        message: expect.stringMatching(/finished more than the retention window ago.*1 h/),
      });
    }
    expect(after.html.status).toBe(410);
    expect(after.html.body).toMatch(/<!doctype html>/i);
    expect(after.html.body).toMatch(/retention window/);
    for (const r of [after.debugLaunch, after.debugVm]) {
      expect(r.status).toBe(410);
      expect(JSON.parse(r.body)).toMatchObject({ statusCode: 410, code: 'ACTOR_GONE' });
    }

    // The open launch answers exactly as before, over hours of passes.
    const openAfter = await fetch(`${app.base}/launches/${open.launchId}`);
    expect(openAfter.status).toBe(200);
    expect(await openAfter.text()).toBe(openView);

    // An id never seen is still 404, on every route.
    const unknown = await seen(app, UNKNOWN, 'd8d9e1fe471890');
    expect(unknown.json.status).toBe(404);
    expect(JSON.parse(unknown.json.body)).toMatchObject({ code: 'LAUNCH_NOT_FOUND' });
    expect(unknown.events.status).toBe(404);
    expect(unknown.debugLaunch.status).toBe(404);
    expect(JSON.parse(unknown.debugLaunch.body)).toMatchObject({ code: 'ACTOR_NOT_FOUND' });
  });

  it('still answers 410 after a restart (the launch is no longer in memory), and 404 for an unknown id', async () => {
    const clock = new ManualClock(Date.now());
    const fly = new FakeFlyMachines({ clock, timers: clock });
    const dir = tempDir();
    const first = await boot(dir, clock, fly);
    const done = await finishedLaunch(first, clock, fly);
    for (let i = 0; i < 7; i++) await tick(first, clock);
    expect(first.store.status(`launch.${done.launchId}`)).toBe('archived');
    await stop(first);

    const second = await boot(dir, clock, fly);
    expect(second.system.services.runtime.actor(`launch.${done.launchId}`)).toBeUndefined();
    const after = await seen(second, done.launchId, done.machineId);
    expect([after.json.status, after.events.status, after.html.status]).toEqual([410, 410, 410]);
    expect(JSON.parse(after.json.body)).toMatchObject({ code: 'LAUNCH_GONE' });
    expect(JSON.parse(after.debugVm.body)).toMatchObject({ code: 'ACTOR_GONE' });
    const unknown = await fetch(`${second.base}/launches/${UNKNOWN}`);
    expect(unknown.status).toBe(404);
  });

  it('archives beyond WM_RETENTION_MAX_FINISHED the oldest finished actors first, within the window', async () => {
    const clock = new ManualClock(Date.now());
    const fly = new FakeFlyMachines({ clock, timers: clock });
    const dir = tempDir();
    const capped = { ...cfg, retention: { ...cfg.retention, maxFinished: 2 } };
    const log = silentLogger();
    const store = FileEventStore.open(join(dir, 'events.log'), {
      ...fileStoreOptions(capped, clock, log),
      fsync: false,
    });
    const system = await createWhere(
      capped,
      {
        store,
        ledger: new MemoryCapacityLedger(),
        leases: new MemoryLeases(),
        presence: new MemoryPresence(),
        fly,
        clock,
        timers: clock,
        ids: new UlidIds(clock),
        log,
        close: () => store.close(),
      },
      { beatMs: HOUR, random: () => 0.5 },
    );
    running.push(system);
    const urls = await system.start();
    const app = { system, store, base: urls.publicUrl!, priv: urls.privateUrl! };
    const older = await finishedLaunch(app, clock, fly);
    const newer = await finishedLaunch(app, clock, fly);
    // Four finished actors (two launches, two machines), two kept: the older launch goes.
    expect((await tick(app, clock)).droppedStreams).toBe(2);
    const gone = await fetch(`${app.base}/launches/${older.launchId}`);
    expect(gone.status).toBe(410);
    expect(((await gone.json()) as { message: string }).message).toMatch(/at most the newest 2/);
    expect((await fetch(`${app.base}/launches/${newer.launchId}`)).status).toBe(200);
  });
});

describe('the retention service', () => {
  const retentionCfg = {
    maxAgeMs: HOUR,
    maxFinished: undefined,
    compactIntervalMs: 10 * MIN,
    archiveSegments: undefined,
  };
  const summary: CompactionSummary = {
    droppedStreams: 0,
    droppedEvents: 0,
    keptStreams: 0,
    keptEvents: 0,
  };

  it('never runs two passes at once: a call during a pass gets that pass', async () => {
    const clock = new ManualClock();
    let release!: () => void;
    const compact = vi.fn(
      () => new Promise<CompactionSummary>((r) => (release = () => r(summary))),
    );
    const store = Object.assign(new MemoryEventStore(), { compact });
    const log = silentLogger();
    const retention = new Retention({ store, clock, timers: clock, log, cfg: retentionCfg });
    retention.start();
    clock.advance(10 * MIN); // the timer's pass starts and hangs
    const a = retention.run();
    const b = retention.run();
    expect(a).toBe(b);
    clock.advance(10 * MIN); // the next pass is armed only once this one ends
    expect(compact).toHaveBeenCalledTimes(1);
    release();
    expect(await a).toMatchObject({ ok: true });
    expect(compact).toHaveBeenCalledTimes(1);
    // Re-armed one interval after the pass ended.
    await expect.poll(() => clock.pending().size).toBe(1);
    clock.advance(10 * MIN);
    expect(compact).toHaveBeenCalledTimes(2);
    release();
    await retention.stop();
    expect(clock.pending().size).toBe(0);
  });

  it('survives a failing pass: logs it, answers ok:false, and runs again at the next interval', async () => {
    const clock = new ManualClock();
    const compact = vi
      .fn<() => Promise<CompactionSummary>>()
      .mockRejectedValueOnce(new Error('ENOSPC: no space left on device'))
      .mockResolvedValue({ ...summary, droppedStreams: 3, droppedEvents: 30 });
    const store = Object.assign(new MemoryEventStore(), { compact });
    const log = silentLogger();
    const errors = vi.spyOn(log, 'error');
    const retention = new Retention({ store, clock, timers: clock, log, cfg: retentionCfg });
    retention.start();
    clock.advance(10 * MIN);
    await expect.poll(() => retention.last).toMatchObject({ ok: false, error: /ENOSPC/ });
    expect(errors).toHaveBeenCalledTimes(1);
    await expect.poll(() => clock.pending().size).toBe(1);
    clock.advance(10 * MIN);
    await expect.poll(() => retention.last).toMatchObject({ ok: true });
    expect(retention.last).toMatchObject({ summary: { droppedStreams: 3 } });
    await retention.stop();
  });

  it('does nothing on a store without compaction (memory): nothing armed, every status unknown', async () => {
    const clock = new ManualClock();
    const store = new MemoryEventStore();
    const retention = new Retention({
      store,
      clock,
      timers: clock,
      log: silentLogger(),
      cfg: retentionCfg,
    });
    retention.start();
    expect(retention.active).toBe(false);
    expect(clock.pending().size).toBe(0);
    expect(await retention.status('launch.x')).toBe('unknown');
    expect(await retention.run()).toMatchObject({ ok: false });
    await retention.stop();
  });

  it('reads WM_RETENTION and WM_COMPACT_INTERVAL as milliseconds or with a unit, and refuses nonsense', () => {
    expect(testConfig().retention).toEqual({
      maxAgeMs: 24 * HOUR,
      maxFinished: 50_000,
      compactIntervalMs: 10 * MIN,
      archiveSegments: 1008,
    });
    const r = testConfig({
      WM_RETENTION: '90000',
      WM_COMPACT_INTERVAL: '30s',
      WM_RETENTION_MAX_FINISHED: '0',
      WM_ARCHIVE_SEGMENTS: '0',
    }).retention;
    expect(r).toEqual({
      maxAgeMs: 90_000,
      maxFinished: undefined,
      compactIntervalMs: 30_000,
      archiveSegments: undefined,
    });
    expect(testConfig({ WM_RETENTION: '7d' }).retention.maxAgeMs).toBe(7 * 24 * HOUR);
    for (const bad of ['24 hours', '-1h', '1.5h', '', '0'])
      expect(() => testConfig({ WM_RETENTION: bad }), bad).toThrow(ConfigError);
    expect(describeWindow(24 * HOUR)).toBe('24 h');
    expect(describeWindow(7 * 24 * HOUR)).toBe('7 d');
    expect(describeWindow(90 * MIN)).toBe('90 min');
    expect(describeWindow(HOUR)).toBe('1 h');
  });
});
