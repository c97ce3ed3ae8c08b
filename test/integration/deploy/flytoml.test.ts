/**
 * The deployment files against the code they deploy: fly.toml's env, port, check and signal against
 * the landing app's env schema and routes; the Dockerfile's stages, user and command against the
 * build's output and the VM command. There is no Docker engine here, so the image is checked by reading.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeFlyMachines } from '../../../src/adapters/fly/fakeFlyMachines.js';
import { MemoryEventStore } from '../../../src/adapters/memory/memoryEventStore.js';
import {
  MemoryCapacityLedger,
  MemoryLeases,
  MemoryPresence,
} from '../../../src/adapters/memory/memoryCoordination.js';
import { SystemTimers, systemClock } from '../../../src/adapters/system/systemClock.js';
import { UlidIds } from '../../../src/adapters/system/ulidIds.js';
import { ConfigError, parseEnv } from '../../../src/shared/env.js';
import { silentLogger } from '../../../src/shared/log.js';
import { REGION_CODES } from '../../../src/shared/regions.js';
import { uselessEnv } from '../../../src/useless/config.js';
import { toConfig, whereEnv, type WhereConfig } from '../../../src/where/config.js';
import { CALLBACK_PATH, VM_PORT, machineSpec } from '../../../src/where/machineSpec.js';
import { createWhere, type WhereSystem } from '../../../src/where/system.js';

import {
  ROOT,
  copySources,
  lineage,
  ops,
  parseDockerfile,
  parseToml,
  read,
  str,
  type TomlTable,
} from '../../support/deployFiles.js';

// ---------------------------------------------------------------- shared fixtures

const toml = parseToml(read('fly.toml'));
const APP = str(toml, 'app');
const PRIMARY_REGION = str(toml, 'primary_region');
const envSection = toml.env as Record<string, string>;
const httpService = toml.http_service as TomlTable;
const stages = parseDockerfile(read('Dockerfile'));
const finalStage = stages.at(-1)!;
const buildStage = stages.find((s) => /npm run build/.test(ops(s, 'RUN').join('\n')));

/** What Fly sets on every machine of the app (the values are stand-ins of the right shape). */
const FLY_PROVIDED = {
  FLY_APP_NAME: APP,
  FLY_REGION: PRIMARY_REGION,
  FLY_MACHINE_ID: '3d8d9e1fe47189',
  FLY_PRIVATE_IP: 'fdaa:0:1a2b:a7b:1c2:3d4e:5f6a:2',
  FLY_IMAGE_REF: `registry.fly.io/${APP}:deployment-01J9Z8X7W6V5T4S3R2Q1P0NMKH`,
};
const SECRET_NAMES = ['FLY_API_TOKEN', 'WM_CALLBACK_SECRET', 'DEBUG_TOKEN', 'NATS_URL'] as const;
const DUMMY_SECRETS = {
  FLY_API_TOKEN: 'FlyV1 fm2_not-a-real-token',
  WM_CALLBACK_SECRET: 'c'.repeat(40),
  DEBUG_TOKEN: 'd'.repeat(24),
};

/** The landing app's configuration on a machine of this deployment. */
const productionEnv = () => ({ ...envSection, ...FLY_PROVIDED, ...DUMMY_SECRETS });
/** Parsed in a hook, so a value the schema refuses fails the tests with the ConfigError naming it. */
let cfg: WhereConfig;
beforeAll(() => {
  cfg = toConfig(parseEnv(whereEnv, productionEnv()));
});

// ---------------------------------------------------------------- fly.toml

describe('fly.toml: the landing app', () => {
  it('is the app `where`, in a primary region the env schema accepts as FLY_REGION', () => {
    expect(toml.app).toBe('where');
    expect(REGION_CODES).toContain(toml.primary_region);
    expect(cfg.region).toBe(toml.primary_region);
    expect((toml.build as TomlTable).dockerfile).toBe('Dockerfile');
    expect((toml.deploy as TomlTable).strategy).toBe('rolling');
    expect(toml.vm).toEqual([expect.objectContaining({ size: expect.any(String) })]);
  });

  it('parses as a production configuration (not local mode) with the values the deployment needs', () => {
    expect(cfg.local).toBe(false);
    expect(cfg.appName).toBe('where');
    expect(cfg.publicUrl).toBe(`https://${APP}.fly.dev`);
    expect(cfg.fly.vmApp).toBe('useless-machine');
    expect(cfg.fly.baseUrl).toBe('https://api.machines.dev/v1');
    expect(cfg.vm.publicUrl).toBe(`https://${cfg.fly.vmApp}.fly.dev`);
    // The VMs run this machine's own image unless WM_VM_IMAGE says otherwise.
    expect(cfg.vm.image).toBe(FLY_PROVIDED.FLY_IMAGE_REF);
    expect(cfg.instance).toBe(FLY_PROVIDED.FLY_MACHINE_ID);
    // Fly-Client-IP is believed from Fly's proxy only (ADR 0020), never from every peer.
    expect(cfg.limits.trustedProxies).not.toContain('*');
    // A VM calls home over 6PN: this machine first, then any machine of the app.
    expect(cfg.callback.baseUrl).toBe(
      `http://[${FLY_PROVIDED.FLY_PRIVATE_IP}]:${cfg.private.port}`,
    );
    expect(cfg.callback.fallbackUrl).toBe(`http://${APP}.internal:${cfg.private.port}`);
    // Without NATS_URL: the file store, one machine.
    expect(cfg.nats).toBeUndefined();
  });

  it('has internal_port equal to the port the app listens on, on every interface', () => {
    expect(httpService.internal_port).toBe(cfg.public.port);
    expect(cfg.public.port).toBe(8080);
    expect(cfg.public.host).toBe('::');
    expect(httpService.force_https).toBe(true);
    expect(httpService.auto_stop_machines).toBe('off');
    expect(httpService.min_machines_running).toBeGreaterThanOrEqual(1);
  });

  it('never exposes the private port: it is bound to the 6PN address and no service names it', () => {
    expect(cfg.private.host).toBe(FLY_PROVIDED.FLY_PRIVATE_IP);
    expect(cfg.private.port).not.toBe(cfg.public.port);
    expect(toml.services).toBeUndefined();
    // [metrics] names it only for Fly's scraper, which reads it over 6PN (checked below).
    const { metrics: _scraped, ...exposed } = toml;
    const text = JSON.stringify(exposed);
    expect(text).not.toMatch(new RegExp(`"(internal_)?port":${cfg.private.port}\\b`));
    expect('PRIVATE_HOST' in envSection).toBe(false);
  });

  it('names only variables the env schema knows in [env], as strings, none with the platform prefix FLY_', () => {
    const known = Object.keys(whereEnv.shape);
    const keys = Object.keys(envSection);
    expect(keys.length).toBeGreaterThan(0);
    expect(keys.filter((k) => !known.includes(k))).toEqual([]);
    expect(keys.filter((k) => k.startsWith('FLY_'))).toEqual([]);
    for (const k of keys) expect(typeof envSection[k], k).toBe('string');
  });

  it('puts no secret in [env], and lists every secret the schema requires in its comments (names only)', () => {
    const keys = Object.keys(envSection);
    for (const name of SECRET_NAMES) expect(keys).not.toContain(name);
    expect(keys.filter((k) => /TOKEN|SECRET|PASSWORD|KEY/i.test(k))).toEqual([]);

    // What the schema refuses to start without outside local mode, on a Fly machine (FLY_IMAGE_REF set).
    let missing: string[] = [];
    try {
      parseEnv(whereEnv, { ...envSection, ...FLY_PROVIDED });
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      missing = err.issues.map((i) => i.variable);
    }
    expect(missing.sort()).toEqual(['DEBUG_TOKEN', 'FLY_API_TOKEN', 'WM_CALLBACK_SECRET']);

    const comments = read('fly.toml')
      .split('\n')
      .filter((l) => l.trim().startsWith('#'))
      .join('\n');
    for (const name of [...missing, 'NATS_URL'])
      expect(comments).toMatch(new RegExp(`\\b${name}\\b`));
    // A comment names a secret; it never assigns one.
    for (const name of SECRET_NAMES)
      expect(read('fly.toml')).not.toMatch(new RegExp(`\\b${name}\\s*=\\s*["']?[^\\s.'"]`));
  });

  it('keeps the file store on a Fly volume, so launches in flight survive a deploy', () => {
    // Without NATS_URL the events are a file in WM_DATA_DIR: on the machine's root filesystem
    // they would be gone after every deploy, and the reconciler would destroy every VM in flight.
    const mounts = toml.mounts as TomlTable | undefined;
    expect(mounts, 'a [mounts] section').toBeDefined();
    expect(Array.isArray(mounts), 'one [mounts] table: one machine, one volume').toBe(false);
    expect(str(mounts!, 'source')).toMatch(/^[a-z0-9_]{1,30}$/);
    // The store's directory is the mount point or inside it.
    const destination = str(mounts!, 'destination');
    expect(destination).toMatch(/^\/[^\s]*[^/]$/);
    expect(
      cfg.dataDir === destination || cfg.dataDir.startsWith(`${destination}/`),
      `WM_DATA_DIR ${cfg.dataDir} on the volume mounted at ${destination}`,
    ).toBe(true);
    expect(cfg.dataDir).toBe('/data');
  });

  it('counts SSE viewers as connections, with limits one instance meets in the fan-out bench', () => {
    const c = httpService.concurrency as TomlTable;
    // Every viewer is a request that never ends: what an instance holds is open connections.
    expect(c.type).toBe('connections');
    const soft = c.soft_limit as number;
    const hard = c.hard_limit as number;
    expect(Number.isInteger(soft) && Number.isInteger(hard)).toBe(true);
    expect(soft).toBeLessThan(hard);
    // The bench's figure: N streams on one instance, and the RSS each costs there.
    const bench = read('docs/benchmarks.md');
    const served = [
      ...bench.matchAll(/fleet (?:SSE )?fan-out to (\d[\d,\s]*?)(k?) clients on one instance/g),
    ].map((m) => Number(m[1]!.replace(/[,\s]/g, '')) * (m[2] === 'k' ? 1000 : 1));
    expect(served.length, 'docs/benchmarks.md names the fan-out bench').toBeGreaterThan(0);
    expect(hard).toBeLessThanOrEqual(Math.min(...served));
    // Viewers in the bench's order of magnitude, not the 1,000 requests an instance stopped at before.
    expect(hard).toBeGreaterThanOrEqual(Math.min(...served) / 2);
    const rssKb = [...bench.matchAll(/server RSS per connection \| ([\d.]+) KB/g)].map((m) =>
      Number(m[1]),
    );
    expect(rssKb.length).toBeGreaterThan(0);
    const vmMb = Number(/^(\d+)mb$/.exec(str((toml.vm as TomlTable[])[0]!, 'memory'))![1]);
    // At the hard limit the streams take at most half the VM's memory.
    expect((hard * Math.max(...rssKb)) / 1024).toBeLessThan(vmMb / 2);
    // The proxy stops first: the app's own cap on streams is a backstop above it.
    expect(cfg.limits.maxStreams).toBeGreaterThanOrEqual(hard);
    // The reasoning is written down for operators.
    expect(read('docs/operations.md')).toMatch(/### Concurrency/);
  });

  it('sets a retention the schema accepts: finished actors kept a day, capped in count, compacted often', () => {
    for (const k of [
      'WM_RETENTION',
      'WM_RETENTION_MAX_FINISHED',
      'WM_COMPACT_INTERVAL',
      'WM_ARCHIVE_SEGMENTS',
    ])
      expect(Object.keys(envSection), k).toContain(k);
    const r = cfg.retention;
    expect(r.maxAgeMs).toBe(24 * 3_600_000);
    // ~0.55 KB of index per finished actor (ADR 0012): the cap keeps it a small part of the heap.
    expect(r.maxFinished).toBeDefined();
    expect(r.maxFinished! * 0.55 * 1024).toBeLessThan(64 * 1024 * 1024);
    // Several passes inside the window, so an actor leaves within a pass of its time.
    expect(r.compactIntervalMs * 6).toBeLessThanOrEqual(r.maxAgeMs);
    expect(r.archiveSegments).toBeDefined();
  });

  it('stops the app with SIGTERM and waits longer than the app takes to drain', () => {
    expect(toml.kill_signal).toBe('SIGTERM');
    const main = read('src/where/main.ts');
    expect(main).toMatch(/process\.on\('SIGTERM'/);
    const force =
      /setTimeout\(\s*\(\)\s*=>\s*\{[^}]*shutdown took too long[^}]*\},\s*([\d_]+)\s*\)/.exec(main);
    expect(
      force,
      "main.ts's force-exit timer (the drain budget) was not found; update this test",
    ).not.toBeNull();
    const drainMs = Number(force![1]!.replace(/_/g, ''));
    const killTimeout = /^(\d+)s$/.exec(str(toml, 'kill_timeout'));
    expect(killTimeout, 'kill_timeout in seconds, e.g. "30s"').not.toBeNull();
    expect(Number(killTimeout![1]) * 1000).toBeGreaterThan(drainMs);
  });

  describe('the health check', () => {
    let system: WhereSystem | undefined;
    beforeAll(async () => {
      const clock = systemClock;
      system = await createWhere(cfg, {
        store: new MemoryEventStore(),
        ledger: new MemoryCapacityLedger(),
        leases: new MemoryLeases(),
        presence: new MemoryPresence(),
        fly: new FakeFlyMachines(),
        clock,
        timers: new SystemTimers(clock),
        ids: new UlidIds(),
        log: silentLogger(),
      });
      await system.start(false);
    });
    afterAll(async () => {
      await system?.stop();
    });

    it('asks for a path the public listener answers with 200 once the app is up', async () => {
      const checks = httpService.checks as TomlTable[];
      expect(checks.length).toBeGreaterThan(0);
      for (const check of checks) {
        const path = str(check, 'path');
        expect(path).toBe('/healthz');
        expect(check.method ?? 'GET').toBe('GET');
        const res = await system!.publicApp.inject({ method: 'GET', url: path });
        expect(res.statusCode, path).toBe(200);
      }
      expect((await system!.publicApp.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(
        200,
      );
    });

    it('has Fly scrape Prometheus metrics from the private listener, which serves them; the public one does not', async () => {
      const metrics = toml.metrics as TomlTable;
      expect(metrics.port).toBe(cfg.private.port);
      const path = str(metrics, 'path');
      expect(path).toBe('/metrics');
      const res = await system!.privateApp.inject({ method: 'GET', url: path });
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
      expect(res.body).toMatch(/^# TYPE wm_launches_total counter$/m);
      expect((await system!.publicApp.inject({ method: 'GET', url: path })).statusCode).toBe(404);
    });

    it('is on the public listener, which serves neither the VM callback nor /debug (those are 6PN only)', async () => {
      expect(
        (await system!.publicApp.inject({ method: 'POST', url: CALLBACK_PATH, payload: {} }))
          .statusCode,
      ).toBe(404);
      expect(
        (await system!.publicApp.inject({ method: 'GET', url: '/debug/actors' })).statusCode,
      ).toBe(404);
      const debug = await system!.privateApp.inject({ method: 'GET', url: '/debug/actors' });
      expect(debug.statusCode).toBe(401);
    });
  });
});

// ---------------------------------------------------------------- Dockerfile and the build

describe('Dockerfile: one image for both apps', () => {
  const programs = (() => {
    const m = /const programs = \[([^\]]*)\]/.exec(read('scripts/build.mjs'));
    return m ? [...m[1]!.matchAll(/'([^']+)'/g)].map((x) => x[1]!) : [];
  })();

  /** A bundle the build wrote. Polled: a build running elsewhere in the tree (npm start, another test run) empties dist/ for a moment. */
  const built = (file: string) => existsSync(join(ROOT, file));
  const BUILD_WAIT = { timeout: 20_000, interval: 100 };

  beforeAll(() => {
    // The suite's globalSetup builds dist/; build here only when this file runs without it.
    if (!existsSync(join(ROOT, 'dist')))
      execFileSync(process.execPath, ['scripts/build.mjs'], { cwd: ROOT, stdio: 'inherit' });
  });

  it('starts from node:22-slim and builds in a stage of its own: npm ci, npm run build, npm prune --omit=dev', () => {
    expect(stages[0]!.from).toBe('node:22-slim');
    expect(buildStage, 'a stage that runs npm run build').toBeDefined();
    const runs = ops(buildStage!, 'RUN').join('\n');
    expect(runs).toMatch(/\bnpm ci\b/);
    expect(runs).toMatch(/\bnpm run build\b/);
    expect(runs).toMatch(/\bnpm prune --omit=dev\b/);
    expect(runs.indexOf('npm run build')).toBeLessThan(runs.indexOf('npm prune'));
    expect(buildStage).not.toBe(finalStage);
  });

  it('copies into the build stage every top-level folder the sources import from', () => {
    const copied = new Set(
      ops(buildStage!, 'COPY')
        .flatMap((a) => copySources(a).sources)
        .map((s) => s.replace(/^\.\//, '').replace(/\/$/, '')),
    );
    const needed = new Set<string>(['package.json', 'package-lock.json', 'scripts']);
    const walk = (dir: string): string[] =>
      readdirSync(dir).flatMap((f) => {
        const p = join(dir, f);
        return statSync(p).isDirectory() ? walk(p) : /\.ts$/.test(f) ? [p] : [];
      });
    for (const file of walk(join(ROOT, 'src'))) {
      for (const m of readFileSync(file, 'utf8').matchAll(
        /(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g,
      )) {
        const target = relative(ROOT, resolve(dirname(file), m[1]!));
        needed.add(target.split(sep)[0]!);
      }
    }
    expect(needed).toContain('src');
    expect(needed).toContain('machines');
    expect([...needed].filter((n) => !copied.has(n))).toEqual([]);
  });

  it('keeps local state and build output out of the build context, but not what the build copies', () => {
    const ignored = read('.dockerignore')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    for (const p of ['node_modules', 'dist', '.data', '.git', 'test-results', 'coverage'])
      expect(ignored).toContain(p);
    const copied = ops(buildStage!, 'COPY').flatMap((a) =>
      copySources(a).sources.map((s) => s.replace(/^\.\//, '').replace(/\/$/, '')),
    );
    for (const c of copied) expect(ignored, c).not.toContain(c);
  });

  it('ships only package.json, the production node_modules and dist/ into the runtime stage', () => {
    const copies = ops(finalStage, 'COPY').map(copySources);
    expect(copies.every((c) => c.from === buildStage!.name)).toBe(true);
    expect(copies.flatMap((c) => c.sources).sort()).toEqual([
      '/app/dist',
      '/app/node_modules',
      '/app/package.json',
    ]);
    expect(ops(finalStage, 'ENV').join('\n')).toMatch(/\bNODE_ENV=production\b/);
    expect(stages.flatMap((s) => ops(s, 'HEALTHCHECK'))).toEqual([]);
  });

  it('runs as a non-root user, who can write the file store directory (the volume) and nothing is needed beyond it', () => {
    const users = ops(finalStage, 'USER');
    const user = users.at(-1);
    expect(user, 'a USER in the runtime stage').toBeDefined();
    expect(user).not.toMatch(/^(root|0)(:|$)/);
    const workdir = lineage(stages, finalStage)
      .flatMap((s) => ops(s, 'WORKDIR'))
      .at(-1);
    expect(workdir).toBe('/app');
    const dataDir = resolve(workdir!, cfg.dataDir);
    // Fly mounts a volume owned by the image's USER; a directory of the image must be chowned.
    const mounted = (toml.mounts as TomlTable | undefined)?.destination === dataDir;
    if (!mounted)
      expect(ops(finalStage, 'RUN').join('\n')).toMatch(
        new RegExp(`chown\\s+${user}(:\\S+)?\\s+${dataDir.replace(/\./g, '\\.')}\\b`),
      );
  });

  it("runs the landing app's bundle as its command, with node itself (not npm)", async () => {
    const cmd = ops(finalStage, 'CMD').at(-1);
    expect(cmd, 'a CMD in exec form').toMatch(/^\[/);
    const argv = JSON.parse(cmd!) as string[];
    expect(argv).toEqual(['node', 'dist/where.mjs']);
    expect(programs).toContain('where');
    await expect.poll(() => built(argv[1]!), BUILD_WAIT).toBe(true);
  });

  it('exposes the public port, the private port and the VM port', () => {
    const exposed = ops(finalStage, 'EXPOSE')
      .flatMap((a) => a.split(/\s+/))
      .map((p) => Number(p.replace(/\/tcp$/, '')));
    expect(exposed).toEqual(expect.arrayContaining([cfg.public.port, cfg.private.port, VM_PORT]));
  });

  it("creates each VM with a command that runs a bundle the build produces, and an env the VM's schema accepts", async () => {
    expect(cfg.vm.cmd).toEqual(['node', 'dist/useless.mjs']);
    // The VM app is built on its own, self-contained (see scripts/build.mjs).
    expect(read('scripts/build.mjs')).toMatch(/useless: 'src\/useless\/main\.ts'/);
    await expect.poll(() => built(cfg.vm.cmd[1]!), BUILD_WAIT).toBe(true);

    const launchId = '01J9Z8X7W6V5T4S3R2Q1P0NMKH';
    const spec = machineSpec(cfg, {
      launchId,
      region: 'ams',
      source: 'button',
      ttlMs: cfg.ttl.buttonMs,
      owner: cfg.instance,
    });
    expect(spec.cmd).toEqual(cfg.vm.cmd);
    expect(spec.image).toBe(FLY_PROVIDED.FLY_IMAGE_REF);
    // What Fly adds on the VM; the rest comes from the create request.
    const vm = uselessEnv.safeParse({
      ...spec.env,
      FLY_MACHINE_ID: '148ed599c57289',
      FLY_REGION: 'ams',
      FLY_APP_NAME: cfg.fly.vmApp,
      FLY_PRIVATE_IP: 'fdaa:0:1a2b:a7b:9c:1d2e:3f4a:2',
    });
    expect(vm.success, vm.error?.message).toBe(true);
    expect(vm.data!.port).toBe(spec.internalPort);
    expect(vm.data!.callbackUrl).toBe(
      `http://[${FLY_PROVIDED.FLY_PRIVATE_IP}]:${cfg.private.port}${CALLBACK_PATH}`,
    );
    expect(vm.data!.homeUrl).toBe(cfg.publicUrl);
  });
});
