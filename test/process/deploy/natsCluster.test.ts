/**
 * The NATS deployment as it ships (deploy/nats): three servers started through start.sh from
 * nats.conf, with fly.toml's environment and only ports, names and store dirs changed, form a
 * JetStream cluster that the landing app's event store uses with replicas 3 and the credentials the
 * guide makes, and that keeps taking and serving facts when one server is killed. Plus the static
 * agreement of the app's fly.toml, Dockerfile, start.sh and config.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { connectNats } from '../../../src/adapters/nats/connection.js';
import { JetStreamEventStore } from '../../../src/adapters/nats/jetStreamEventStore.js';
import { NatsCapacityLedger } from '../../../src/adapters/nats/natsKv.js';
import { parseEnv } from '../../../src/shared/env.js';
import { silentLogger } from '../../../src/shared/log.js';
import { toConfig, whereEnv } from '../../../src/where/config.js';
import { anEvent, aStream } from '../../support/events.js';
import { NATS_SERVER, needs } from '../../support/require.js';
import {
  ROOT,
  ops,
  parseDockerfile,
  parseToml,
  read,
  str,
  type TomlTable,
} from '../../support/deployFiles.js';
import {
  DeployedNatsCluster,
  NATS_FLY_ENV,
  configVariables,
  guidePassword,
  healthz,
} from '../../support/natsDeploy.js';

const HAVE_NATS = needs('nats-server', NATS_SERVER);
const logger = silentLogger();
const toml = parseToml(read('deploy/nats/fly.toml'));

describe('deploy/nats: the files agree', () => {
  it('is its own app: three regions by name, a volume each, no public service, checked, scraped', () => {
    expect(str(toml, 'app')).toBe('where-nats');
    expect(toml.services).toBeUndefined();
    expect(toml.http_service).toBeUndefined();
    const mounts = toml.mounts as TomlTable;
    expect(str(mounts, 'destination')).toBe('/data');
    expect(NATS_FLY_ENV.NATS_STORE_DIR!.startsWith('/data/')).toBe(true);
    // Routes by the app's internal DNS names, one per region, the primary among them.
    const routes = [
      ...NATS_FLY_ENV.NATS_ROUTES!.matchAll(
        /nats-route:\/\/([a-z]{3})\.where-nats\.internal:(\d+)/g,
      ),
    ];
    expect(routes.map((m) => m[1])).toEqual(['ams', 'ord', 'syd']);
    expect(routes.map((m) => m[1])).toContain(str(toml, 'primary_region'));
    for (const m of routes) expect(m[2]).toBe(NATS_FLY_ENV.NATS_CLUSTER_PORT);
    // Clients and routes on the 6PN address only.
    expect(NATS_FLY_ENV.NATS_HOST).toBe('fly-local-6pn');
    const check = (toml.checks as Record<string, TomlTable>).jetstream!;
    expect(check.type).toBe('http');
    expect(check.port).toBe(Number(NATS_FLY_ENV.NATS_HTTP!.split(':').at(-1)));
    expect(check.path).toBe('/healthz');
    expect((toml.metrics as TomlTable).port).toBe(Number(NATS_FLY_ENV.NATS_EXPORTER_PORT));
    expect(toml.kill_signal).toBe('SIGUSR2');
  });

  it('sets every variable the config reads, in [env], in start.sh, or as the one secret', () => {
    const start = read('deploy/nats/start.sh');
    const fromStart = [...start.matchAll(/^\s*export (\w+)/gm)].map((m) => m[1]!);
    const secrets = ['NATS_PASSWORD'];
    const missing = configVariables().filter(
      (v) => !(v in NATS_FLY_ENV) && !fromStart.includes(v) && !secrets.includes(v),
    );
    expect(missing).toEqual([]);
    // The secret is named in fly.toml's comments and never given a value there.
    expect(read('deploy/nats/fly.toml')).toMatch(/NATS_PASSWORD/);
    expect(Object.keys(NATS_FLY_ENV)).not.toContain('NATS_PASSWORD');
    // fsync before every acknowledgement, on the volume.
    expect(read('deploy/nats/nats.conf')).toMatch(/^\s*sync_interval:\s*always\s*$/m);
  });

  it('starts only with a password the config can carry as it is (start.sh refuses the rest)', () => {
    const run = (password: string) =>
      spawnSync('/bin/sh', [join(ROOT, 'deploy/nats/start.sh')], {
        env: {
          PATH: '/nonexistent',
          FLY_REGION: 'ams',
          FLY_MACHINE_ID: '1',
          NATS_USER: 'where',
          NATS_PASSWORD: password,
        },
        encoding: 'utf8',
      });
    // A value nats-server would read as a number, a float, a cut-off comment or two words.
    for (const bad of ['', '12345', '3e45aa', 'wm#secret', 'wm secret', 'wm-secret']) {
      const r = run(bad);
      expect(r.status, bad).toBe(2);
      expect(r.stderr).toMatch(/NATS_PASSWORD must be letters and digits/);
    }
    // The guide's form passes the check (and then fails only for want of nats-server on this PATH).
    const ok = run(guidePassword());
    expect(ok.stderr).not.toMatch(/NATS_PASSWORD/);
  });

  it('builds an image of a nats-server that understands it, with the config and entry point', () => {
    const stages = parseDockerfile(read('deploy/nats/Dockerfile'));
    const final = stages.at(-1)!;
    const m = /^nats:(\d+)\.(\d+)\.(\d+)-alpine$/.exec(final.from);
    expect(m, `FROM ${final.from}`).not.toBeNull();
    const [maj, min, patch] = [Number(m![1]), Number(m![2]), Number(m![3])];
    // sync_interval from 2.10; 2.10.23 fixed a stream lost to kill -9; not 2.12 (see the Dockerfile).
    expect(maj === 2 && min === 10 && patch >= 23).toBe(true);
    const copies = ops(final, 'COPY').join('\n');
    expect(copies).toMatch(/nats\.conf \/etc\/nats\/where-nats\.conf/);
    expect(read('deploy/nats/start.sh')).toMatch(/\/etc\/nats\/where-nats\.conf/);
    expect(ops(final, 'ENTRYPOINT').at(-1)).toContain('where-nats-start');
    expect(copies).toMatch(/start\.sh \/usr\/local\/bin\/where-nats-start/);
  });
});

describe.skipIf(!HAVE_NATS)('deploy/nats: three servers from the shipped config', () => {
  let cluster: DeployedNatsCluster;
  beforeAll(async () => {
    cluster = await DeployedNatsCluster.start();
    if (cluster.dropped.length > 0)
      process.stderr.write(
        `\n\x1b[33m⚠ the local nats-server predates 2.10: running deploy/nats/nats.conf without ${cluster.dropped.join(', ')} (the image runs 2.10)\x1b[0m\n`,
      );
  }, 150_000);
  afterAll(async () => {
    await cluster?.cleanup();
  });

  const connectAs = (name: string, urls = cluster.urls) =>
    connectNats({
      servers: urls,
      name,
      logger,
      reconnectTimeWaitMs: 100,
      reconnectJitterMs: 50,
      auth: { user: cluster.user, pass: cluster.password },
    });

  it('names each server after its machine and answers its health check and monitoring', async () => {
    for (const n of cluster.nodes) {
      expect(await healthz(n.httpPort)).toBe(200);
      const varz = (await (await fetch(`http://127.0.0.1:${n.httpPort}/varz`)).json()) as {
        server_name: string;
        cluster: { name: string };
        jetstream: { config: { store_dir: string } };
      };
      expect(varz.server_name).toBe(n.name);
      expect(varz.server_name).toMatch(/^(ams|ord|syd)-/);
      expect(varz.cluster.name).toBe('where-nats');
      expect(varz.jetstream.config.store_dir).toContain(n.storeDir);
    }
  });

  it('refuses clients without the credentials', async () => {
    await expect(connect({ servers: cluster.urls[0]!, reconnect: false })).rejects.toThrow(
      /authorization/i,
    );
    await expect(
      connect({
        servers: cluster.urls[0]!,
        reconnect: false,
        user: cluster.user,
        pass: guidePassword(),
      }),
    ).rejects.toThrow(/authorization/i);
  });

  it('takes the landing app as it is configured on Fly: NATS_URL, NATS_USER and NATS_PASSWORD', async () => {
    const cfg = toConfig(
      parseEnv(whereEnv, {
        WM_LOCAL: '1',
        NATS_URL: cluster.urls.join(','),
        NATS_USER: cluster.user,
        NATS_PASSWORD: cluster.password,
        WM_NATS_REPLICAS: '3',
      }),
    );
    expect(cfg.nats?.auth).toEqual({ user: cluster.user, pass: cluster.password });
    const nc = await connectNats({
      servers: cfg.nats!.url.split(','),
      name: 'where-config',
      logger,
      ...(cfg.nats!.auth ? { auth: cfg.nats!.auth } : {}),
    });
    try {
      const store = await JetStreamEventStore.open(nc, {
        logger,
        stream: { name: cfg.nats!.stream, replicas: cfg.nats!.replicas },
      });
      const info = await (await jetstreamManager(nc)).streams.info(cfg.nats!.stream);
      expect(info.config.num_replicas).toBe(3);
      expect(info.cluster?.replicas).toHaveLength(2);
      const ledger = await NatsCapacityLedger.open(nc, { logger, replicas: 3, key: 'deploy-cap' });
      expect((await ledger.reserve('one', 2, Date.now(), Date.now() + 60_000)).ok).toBe(true);
      await store.close();
    } finally {
      await nc.drain();
    }
  });

  it(
    'appends and reads through the event store (replicas 3) while one server is killed and after it returns',
    { timeout: 180_000 },
    async () => {
      const nc = await connectAs('writer');
      const ncR = await connectAs('reader');
      try {
        const streamCfg = { replicas: 3 };
        const store = await JetStreamEventStore.open(nc, {
          logger,
          stream: streamCfg,
          requestTimeoutMs: 2000,
        });
        const reader = await JetStreamEventStore.open(ncR, { logger, stream: streamCfg });
        const jsm = await jetstreamManager(nc);
        const streams = [aStream('launch'), aStream('vm'), aStream('launch')];
        const ids = new Map(streams.map((s) => [s, [] as string[]]));
        const round = async (n: number) => {
          for (let i = 0; i < n; i++) {
            const s = streams[i % streams.length]!;
            const e = anEvent(s, 'presence.changed', { visitors: i, roll: 0 });
            const r = await store.append(s, [e], { expectedVersion: ids.get(s)!.length });
            ids.get(s)!.push(e.id);
            expect(r.version).toBe(ids.get(s)!.length);
          }
        };
        await round(30);

        // Kill the server that leads the stream: the other two elect a new leader and go on.
        const leader = (await jsm.streams.info('WM_EVENTS')).cluster?.leader;
        const victim = cluster.nodes.find((n) => n.name === leader)!;
        expect(victim, `leader ${leader}`).toBeDefined();
        await victim.kill();
        await round(30);
        for (const s of streams) {
          const back = await reader.read(s);
          expect(back.map((e) => e.id)).toEqual(ids.get(s));
          expect(back.map((e) => e.version)).toEqual(ids.get(s)!.map((_, i) => i + 1));
        }

        // It comes back on its own store dir and catches up: read through it alone.
        await victim.start();
        await cluster.waitHealthy();
        await round(6);
        const ncV = await connectAs('victim-reader', [victim.url]);
        try {
          const viaVictim = await JetStreamEventStore.open(ncV, { logger, stream: streamCfg });
          for (const s of streams)
            expect((await viaVictim.read(s)).map((e) => e.id)).toEqual(ids.get(s));
          await viaVictim.close();
        } finally {
          await ncV.drain();
        }
        const info = await jsm.streams.info('WM_EVENTS');
        expect(info.cluster?.replicas?.every((r) => r.current)).toBe(true);
        await store.close();
        await reader.close();
      } finally {
        await Promise.all([nc, ncR].map((c) => c.drain()));
      }
    },
  );
});
