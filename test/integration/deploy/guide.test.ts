/**
 * docs/operations.md walks a newcomer from `fly auth login` to three regions on NATS. This reads
 * its commands and names and holds them to the repository: the steps come in a working order, and
 * every app, volume, file, variable and secret it names exists and agrees with fly.toml,
 * deploy/nats/ and the env schemas.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { eventStreamConfig } from '../../../src/adapters/nats/connection.js';
import { uselessEnv } from '../../../src/useless/config.js';
import { whereEnv } from '../../../src/where/config.js';
import { ROOT, parseToml, read, str, type TomlTable } from '../../support/deployFiles.js';
import { NATS_FLY_ENV, configVariables } from '../../support/natsDeploy.js';

const guide = read('docs/operations.md');
const whereToml = parseToml(read('fly.toml'));
const natsToml = parseToml(read('deploy/nats/fly.toml'));
const WHERE = str(whereToml, 'app');
const NATS_APP = str(natsToml, 'app');
const whereEnvToml = whereToml.env as Record<string, string>;
const VM_APP = whereEnvToml.WM_VM_APP ?? 'useless-machine';
const NATS_REGIONS = [...NATS_FLY_ENV.NATS_ROUTES!.matchAll(/\/\/([a-z]{3})\./g)].map((m) => m[1]!);

/** Every command of the guide's `sh` blocks, in order, comments and continuations removed. */
const commands: string[] = [...guide.matchAll(/```sh\n([\s\S]*?)```/g)]
  .flatMap((m) => m[1]!.replace(/\\\n/g, ' ').split('\n'))
  .map((l) => l.replace(/\s+#(?![^"]*"\s*$).*$/, '').trim())
  .filter((l) => l && !l.startsWith('#'));

const appOf = (cmd: string) => / -a ([a-z0-9-]+)/.exec(cmd)?.[1];

describe('docs/operations.md: a deploy from nothing to three regions', () => {
  it('lists its commands in an order that works', () => {
    const steps: [string, RegExp][] = [
      ['log in', /^fly auth login\b/],
      ['create the landing app', new RegExp(`^fly apps create ${WHERE} `)],
      ['create the VM app', new RegExp(`^fly apps create ${VM_APP} `)],
      ["create the landing app's volume", new RegExp(`^fly volumes create .* -a ${WHERE}$`)],
      ['set its secrets', new RegExp(`^fly secrets set .*-a ${WHERE} `)],
      ['deploy one machine', /^fly deploy --ha=false/],
      ['create the NATS app', new RegExp(`^fly apps create ${NATS_APP} `)],
      ['its volumes', new RegExp(`^fly volumes create .* -a ${NATS_APP}$`)],
      ['its secret', new RegExp(`^fly secrets set .*-a ${NATS_APP} `)],
      ['deploy it', /^fly deploy deploy\/nats\b/],
      ['scale it to three regions', new RegExp(`^fly scale count .*-a ${NATS_APP}$`)],
      ['hold the landing app', /^fly machine update .*--command/],
      ['migrate the history', /migrate\.mjs --from/],
      ['point the app at NATS', /^fly secrets set .*NATS_URL=/],
      ['deploy it on NATS', /^fly deploy --ha=false/],
      ['add regions', /^fly machine clone .*--region/],
    ];
    let at = -1;
    for (const [what, re] of steps) {
      const i = commands.findIndex((c, k) => k > at && re.test(c));
      expect(
        i,
        `"${what}" (${re}) after command ${at}: ${commands[at] ?? 'start'}`,
      ).toBeGreaterThan(at);
      at = i;
    }
  });

  it('creates and addresses the apps the files deploy, and no other', () => {
    const created = commands
      .map((c) => /^fly apps create ([a-z0-9-]+)/.exec(c)?.[1])
      .filter((x): x is string => x !== undefined);
    expect(created.sort()).toEqual([NATS_APP, VM_APP, WHERE].sort());
    for (const c of commands) {
      const app = appOf(c);
      if (app) expect([WHERE, VM_APP, NATS_APP], c).toContain(app);
    }
  });

  it("creates each app's volume under the name its fly.toml mounts, in the regions its machines run", () => {
    const volumes = commands
      .map((c) => /^fly volumes create (\S+) --region ([a-z]{3}) .*-a ([a-z0-9-]+)$/.exec(c))
      .filter((m): m is RegExpExecArray => m !== null);
    const forApp = (app: string) => volumes.filter((m) => m[3] === app);
    const whereMount = whereToml.mounts as TomlTable;
    expect(forApp(WHERE).map((m) => m[1])).toEqual([str(whereMount, 'source')]);
    expect(forApp(WHERE).map((m) => m[2])).toEqual([str(whereToml, 'primary_region')]);
    // The volume holds WM_DATA_DIR, which the migration reads.
    expect(str(whereMount, 'destination')).toBe(whereEnvToml.WM_DATA_DIR);
    expect(guide).toContain(`--from file:${whereEnvToml.WM_DATA_DIR}`);
    const natsMount = natsToml.mounts as TomlTable;
    expect(new Set(forApp(NATS_APP).map((m) => m[1]))).toEqual(new Set([str(natsMount, 'source')]));
    expect(forApp(NATS_APP).map((m) => m[2])).toEqual(NATS_REGIONS);
    expect(NATS_REGIONS).toContain(str(natsToml, 'primary_region'));
    const scale = commands.find((c) => /^fly scale count/.test(c))!;
    const [, n, regions] = /^fly scale count (\d+) --region (\S+)/.exec(scale)!;
    expect(Number(n)).toBe(NATS_REGIONS.length);
    expect(regions!.split(',')).toEqual(NATS_REGIONS);
  });

  it('sets as secrets only variables the app reads, and never a value fly.toml already sets', () => {
    const whereVars = Object.keys(whereEnv.shape);
    const natsVars = configVariables();
    for (const c of commands.filter((x) => /^fly secrets set /.test(x))) {
      const names = [...c.matchAll(/ ([A-Z][A-Z0-9_]*)=/g)].map((m) => m[1]!);
      expect(names.length, c).toBeGreaterThan(0);
      const app = appOf(c);
      for (const name of names) {
        if (app === WHERE) {
          expect(whereVars, c).toContain(name);
          expect(Object.keys(whereEnvToml), c).not.toContain(name);
        } else {
          expect(app, c).toBe(NATS_APP);
          expect(natsVars, c).toContain(name);
          expect(Object.keys(NATS_FLY_ENV), c).not.toContain(name);
        }
      }
    }
    // The NATS password: made in the one form nats.conf carries unchanged (start.sh checks it), and
    // the same secret on both apps, for the user fly.toml names.
    expect(guide).toMatch(/NATS_PASSWORD="wm\$\(openssl rand -hex \d+\)"/);
    const natsUser = NATS_FLY_ENV.NATS_USER!;
    const onWhere = commands.find((c) => /NATS_URL=/.test(c))!;
    expect(onWhere).toContain(`NATS_USER=${natsUser}`);
    expect(onWhere).toContain('NATS_PASSWORD="$NATS_PASSWORD"');
  });

  it('points the app and the migration at the NATS app by its internal name and client port', () => {
    const url = `nats://${NATS_APP}.internal:${NATS_FLY_ENV.NATS_PORT}`;
    expect(commands.find((c) => /NATS_URL=/.test(c))).toContain(`NATS_URL="${url}"`);
    const migrate = commands.find((c) => /migrate\.mjs/.test(c))!;
    expect(migrate).toContain(`--to ${url}`);
    expect(migrate).toContain(`NATS_USER=${NATS_FLY_ENV.NATS_USER}`);
    // The flags it passes are the tool's.
    const usage = read('src/migrate/main.ts');
    for (const flag of migrate.match(/--[a-z-]+/g) ?? []) expect(usage).toContain(`${flag} `);
    // The replicas the migration makes are the ones fly.toml asks the app for.
    expect(migrate).toContain('WM_NATS_REPLICAS=3');
    expect(read('fly.toml')).toMatch(/^\s*#?\s*WM_NATS_REPLICAS = "3"$/m);
  });

  it('names only files that exist, and bundles that the build makes', () => {
    const programs = /const programs = \[([^\]]*)\]/.exec(read('scripts/build.mjs'))![1]!;
    const paths = new Set<string>();
    for (const m of guide.matchAll(/`([^`\s]+)`/g)) {
      const p = m[1]!;
      if (/^https?:|[<>*$]|^\/|^\.\.?\//.test(p)) continue;
      if (/^[\w.-]+(\/[\w.-]+)+\.(ts|md|toml|sh|conf|mjs|json|js)$/.test(p) || /^[\w-]+\/$/.test(p))
        paths.add(p);
    }
    for (const c of commands) {
      const d = /^fly deploy (deploy\/\S+)/.exec(c)?.[1];
      if (d) paths.add(`${d}/fly.toml`);
      const b = /\/app\/(dist\/\S+\.mjs)/.exec(c)?.[1];
      if (b) paths.add(b);
    }
    expect(paths.size).toBeGreaterThan(5);
    for (const p of paths) {
      const dist = /^dist\/(\w+)\.mjs$/.exec(p);
      if (dist) {
        expect(programs, `${p} is built`).toContain(`'${dist[1]}'`);
        expect(existsSync(join(ROOT, `src/${dist[1]}/main.ts`)), p).toBe(true);
      } else expect(existsSync(join(ROOT, p)), p).toBe(true);
    }
  });

  it('names only variables that the landing app, the VM, the devstack or the NATS servers read', () => {
    const stream = eventStreamConfig();
    const known = new Set<string>([
      ...Object.keys(whereEnv.shape),
      ...Object.keys(uselessEnv.in.shape),
      ...configVariables(),
      ...Object.keys(NATS_FLY_ENV),
      stream.name,
      stream.archive.name,
    ]);
    const devstack = read('src/devstack/main.ts');
    const named = new Set(
      [...guide.matchAll(/`((?:WM|NATS|FLY)_[A-Z0-9_]*[A-Z0-9])(?: = [^`]*)?`/g)].map((m) => m[1]!),
    );
    expect(named.size).toBeGreaterThan(20);
    const unknown = [...named].filter((v) => !known.has(v) && !devstack.includes(v));
    expect(unknown).toEqual([]);
  });
});
