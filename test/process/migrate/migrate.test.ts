/**
 * The file store → JetStream migration on a real history: the landing app on its file store (the
 * ports buildPorts (src/where/wiring.ts) makes, the Fly fake) drives thousands of launches to their end, retention archives
 * the older ones to segments, and a few launches are left in flight. The history is then moved to a
 * nats-server of our own: nothing lost or doubled, a second run (through `npm run migrate`'s entry
 * point) copies nothing, a history that disagrees with JetStream exits non-zero, and a landing app
 * booted on NATS carries on with the launches that were in flight.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jetstreamManager } from '@nats-io/jetstream';
import { FakeFlyMachines } from '../../../src/adapters/fly/fakeFlyMachines.js';
import { FileEventStore } from '../../../src/adapters/file/fileEventStore.js';
import { UlidIds } from '../../../src/adapters/system/ulidIds.js';
import { connectNats, type NatsConnection } from '../../../src/adapters/nats/connection.js';
import { JetStreamEventStore } from '../../../src/adapters/nats/jetStreamEventStore.js';
import type { StoredEvent } from '../../../src/events/envelope.js';
import { migrateFileToJetStream } from '../../../src/migrate/copy.js';
import { silentLogger } from '../../../src/shared/log.js';
import type { WhereConfig } from '../../../src/where/config.js';
import { buildPorts } from '../../../src/where/wiring.js';
import { createWhere, type WhereSystem } from '../../../src/where/system.js';
import {
  INSTANCE,
  REGION,
  changeWaiters,
  runLaunch,
  storeRigConfig,
} from '../../../bench/lib/runtimeRig.js';
import { anEvent } from '../../support/events.js';
import { NatsServer } from '../../support/natsServer.js';
import { NATS_SERVER, needs } from '../../support/require.js';

const HAVE_NATS = needs('nats-server', NATS_SERVER);
const log = silentLogger();
const ROOT = new URL('../../../', import.meta.url).pathname;
const run = promisify(execFile);

/** Finished launches driven through the app, and launches left waiting for their VM. */
const FINISHED = 2000;
const IN_FLIGHT = 12;

function config(dataDir: string, natsUrl?: string): WhereConfig {
  return storeRigConfig({
    name: 'migrate-test',
    dataDir,
    natsUrl,
    env: {
      // Retention keeps the newest 1,000 finished actors live; the rest go to archive segments.
      WM_RETENTION_MAX_FINISHED: '1000',
      WM_COMPACT_INTERVAL: '1h',
      WM_SNAPSHOT_INTERVAL: '0',
    },
  });
}

async function boot(cfg: WhereConfig, fly: FakeFlyMachines): Promise<WhereSystem> {
  const system = await createWhere(cfg, { ...(await buildPorts(cfg, log)), fly });
  await system.start(false);
  return system;
}

async function all(it: AsyncIterable<StoredEvent>): Promise<StoredEvent[]> {
  const out: StoredEvent[] = [];
  for await (const e of it) out.push(e);
  return out;
}

describe.skipIf(!HAVE_NATS)('npm run migrate: file store → JetStream', () => {
  let dir: string;
  let nats: NatsServer;
  let nc: NatsConnection;
  /** The same fake Fly for both apps: the in-flight VMs keep running across the switch. */
  const fly = new FakeFlyMachines({ mode: 'immediate', region: REGION });
  const inFlight: string[] = [];
  let fileLive: StoredEvent[] = [];
  let archivedEvents = 0;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'wm-migrate-'));
    nats = await NatsServer.start();
    nc = await connectNats({ servers: nats.url, name: 'migrate-test', logger: log });
    // ---- a history on the file store, made by the app itself
    const system = await boot(config(dir), fly);
    const { runtime, retention } = system.services;
    const waiters = changeWaiters(runtime);
    const rig = {
      runtime,
      fly,
      ids: new UlidIds(),
      until: (...a: Parameters<typeof waiters.until>) => waiters.until(a[0], a[1], a[2] ?? 60_000),
    };
    let next = 0;
    await Promise.all(
      Array.from({ length: 32 }, async () => {
        while (next < FINISHED) {
          next++;
          await runLaunch(rig);
        }
      }),
    );
    await runtime.settled();
    const pass = await retention.run();
    if (!pass.ok) throw new Error(`retention pass failed: ${pass.error}`);
    expect(pass.summary.droppedStreams).toBeGreaterThan(0);
    // A few more, stopped half-way: created and started, waiting for their VM to say it listens.
    for (let i = 0; i < IN_FLIGHT; i++) {
      const launchId = rig.ids.next();
      inFlight.push(launchId);
      await runtime.dispatch({
        type: 'launch.requested',
        data: {
          launchId,
          region: REGION,
          source: 'button',
          owner: INSTANCE,
          readyTimeoutMs: 600_000,
          ttlMs: 600_000,
        },
      });
      await rig.until(`launch.${launchId}`, (r) => r.snapshot.matches({ waitingReady: 'started' }));
    }
    await runtime.settled();
    waiters.stop();
    await system.stop();
    // What the file store holds, read on its own.
    const store = FileEventStore.open(join(dir, 'events.log'));
    fileLive = await all(store.readAll());
    await store.close();
    archivedEvents = readdirSync(dir).filter((f) => /^events\.archive\.\d+\.log$/.test(f)).length;
  }, 600_000);

  afterAll(async () => {
    await nc?.drain();
    await nats?.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  it(
    'copies the live log and the archive segments, with the same ids, versions and order',
    { timeout: 300_000 },
    async () => {
      expect(archivedEvents).toBeGreaterThan(0);
      const report = await migrateFileToJetStream({ dataDir: dir, nc, logger: log });
      expect(report.problems).toEqual([]);
      expect(report.live.events).toBe(fileLive.length);
      expect(report.live.copied).toBe(fileLive.length);
      expect(report.live.present).toBe(0);
      expect(report.archive.segments).toBeGreaterThan(0);
      expect(report.archive.events).toBeGreaterThan(0);
      expect(report.archive.copied).toBe(report.archive.events);
      // Thousands of launches: every launch is in one place or the other, with both its actors.
      const launches = report.live.streams + report.archive.streams;
      expect(launches).toBeGreaterThanOrEqual(2 * FINISHED);

      // Read back independently of the tool: nothing lost, nothing doubled, the order kept.
      const store = await JetStreamEventStore.open(nc, { logger: log });
      const nats = await all(store.readAll());
      await store.close();
      expect(nats.map((e) => e.id)).toEqual(fileLive.map((e) => e.id));
      expect(new Set(nats.map((e) => e.id)).size).toBe(nats.length);
      expect(nats.map((e) => [e.stream, e.version, e.type, e.at])).toEqual(
        fileLive.map((e) => [e.stream, e.version, e.type, e.at]),
      );
      const jsm = await jetstreamManager(nc);
      expect((await jsm.streams.info('WM_EVENTS')).state.messages).toBe(fileLive.length);
      expect((await jsm.streams.info('WM_ARCHIVE')).state.messages).toBe(report.archive.events);
    },
  );

  it(
    'copies nothing the second time, through npm run migrate, and says both sides agree',
    { timeout: 120_000 },
    async () => {
      const { stdout } = await run(
        process.execPath,
        ['--import', 'tsx', 'src/migrate/main.ts', '--from', `file:${dir}`, '--to', nats.url],
        { cwd: ROOT, env: { ...process.env, LOG_LEVEL: 'warn' } },
      );
      expect(stdout).toMatch(/^live\s+\d+\s+\d+\s+0\s+\d+$/m);
      expect(stdout).toMatch(/^archive\s+\d+\s+\d+\s+0\s+\d+$/m);
      expect(stdout).toMatch(/read back: both sides agree/);
      const jsm = await jetstreamManager(nc);
      expect((await jsm.streams.info('WM_EVENTS')).state.messages).toBe(fileLive.length);
    },
  );

  it(
    'boots the landing app on NATS with the launches that were in flight, which then finish',
    { timeout: 120_000 },
    async () => {
      const system = await boot(config(join(dir, 'nats-instance'), nats.url), fly);
      try {
        const { runtime } = system.services;
        for (const id of inFlight) {
          const a = runtime.actor(`launch.${id}`);
          expect(a?.snapshot.status, id).toBe('active');
          expect(a!.snapshot.matches({ waitingReady: 'started' })).toBe(true);
        }
        // Nothing the file store closed is open again.
        const open = runtime.actors('launch').filter((r) => r.snapshot.status === 'active');
        expect(open.map((r) => r.stream).sort()).toEqual(
          inFlight.map((id) => `launch.${id}`).sort(),
        );
        // One of them goes on: its VM reports listening and the visitor is sent there.
        const id = inFlight[0]!;
        const machineId = (runtime.actor(`launch.${id}`)!.snapshot.context as { machineId: string })
          .machineId;
        await runtime.dispatch({
          type: 'vm.listening',
          data: { machineId, launchId: id, region: REGION, ttlMs: 600_000 },
        });
        const after = await runtime.waitFor(
          `launch.${id}`,
          (r) => r.snapshot.matches('redirect'),
          10_000,
        );
        expect(after?.snapshot.matches('redirect')).toBe(true);
      } finally {
        await system.stop();
      }
    },
  );

  it(
    'exits non-zero when JetStream holds another history for a stream',
    { timeout: 120_000 },
    async () => {
      const other = mkdtempSync(join(tmpdir(), 'wm-migrate-bad-'));
      // Another deployment's JetStream: a different first fact on a stream the file store also has.
      const elsewhere = await NatsServer.start();
      const nc2 = await connectNats({ servers: elsewhere.url, name: 'migrate-bad', logger: log });
      try {
        const s = `launch.01J9Z8X7W6V5T4S3R2Q1P0NMKH`;
        const file = FileEventStore.open(join(other, 'events.log'));
        await file.append(s, [anEvent(s, 'presence.changed', { visitors: 1, roll: 0 })], {
          expectedVersion: 0,
        });
        await file.close();
        const js = await JetStreamEventStore.open(nc2, { logger: log });
        await js.append(s, [anEvent(s, 'presence.changed', { visitors: 2, roll: 0 })], {
          expectedVersion: 0,
        });
        await js.close();
        const report = await migrateFileToJetStream({ dataDir: other, nc: nc2, logger: log });
        expect(report.live.copied).toBe(0);
        expect(report.problems.join('\n')).toMatch(/missing from WM_EVENTS/);
        const cli = await run(
          process.execPath,
          [
            '--import',
            'tsx',
            'src/migrate/main.ts',
            '--from',
            `file:${other}`,
            '--to',
            elsewhere.url,
          ],
          { cwd: ROOT, env: { ...process.env, LOG_LEVEL: 'warn' } },
        ).then(
          () => ({ code: 0, stdout: '' }),
          (err: { code: number; stdout: string }) => err,
        );
        expect(cli.code).toBe(1);
        expect(cli.stdout).toMatch(/read back: 1 problem/);
      } finally {
        await nc2.drain();
        await elsewhere.cleanup();
        rmSync(other, { recursive: true, force: true });
      }
    },
  );
});
