/**
 * Runs the shipped NATS deployment (deploy/nats/nats.conf through deploy/nats/start.sh) as local
 * processes: three servers on loopback with their own ports, names and store dirs, everything else
 * as fly.toml sets it on Fly. Used by the deploy tests (the cluster, the guide).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { freePorts } from './natsServer.js';
import { NATS_SERVER } from './require.js';
import { ROOT, parseToml, read } from './deployFiles.js';

const HOST = '127.0.0.1';

/** fly.toml [env] of the NATS app: what every machine of it runs with on Fly. */
export const NATS_FLY_ENV = (parseToml(read('deploy/nats/fly.toml')).env ?? {}) as Record<
  string,
  string
>;

/** The local nats-server's version, e.g. [2, 9, 10]. */
export function natsServerVersion(): [number, number, number] | undefined {
  if (!NATS_SERVER) return undefined;
  const out = execFileSync(NATS_SERVER, ['--version'], { encoding: 'utf8' });
  const m = /v(\d+)\.(\d+)\.(\d+)/.exec(out);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : undefined;
}

/**
 * The shipped configuration as the local server can run it. `sync_interval` exists from 2.10 on (the
 * image runs 2.10.29); an older local server (Debian's 2.9.10) refuses the unknown field, so that one
 * line, and nothing else, is left out here, and the test says so.
 */
export function configForLocalServer(): { text: string; dropped: string[] } {
  const text = read('deploy/nats/nats.conf');
  const v = natsServerVersion();
  const old = v !== undefined && (v[0] < 2 || (v[0] === 2 && v[1] < 10));
  if (!old) return { text, dropped: [] };
  const dropped: string[] = [];
  const kept = text.split('\n').filter((line) => {
    const drop = /^\s*sync_interval\s*:/.test(line);
    if (drop) dropped.push(line.trim());
    return !drop;
  });
  return { text: kept.join('\n'), dropped };
}

/** A password as docs/operations.md makes it: `wm` and hex (`wm$(openssl rand -hex 24)`). */
export const guidePassword = (): string => `wm${randomBytes(24).toString('hex')}`;

export interface DeployedNode {
  readonly name: string;
  readonly port: number;
  readonly clusterPort: number;
  readonly httpPort: number;
  readonly url: string;
  readonly storeDir: string;
  readonly running: boolean;
  start(): Promise<void>;
  kill(): Promise<void>;
  logs(): string;
}

/** Three (by default) servers started from the shipped files, forming one cluster. */
export class DeployedNatsCluster {
  private constructor(
    readonly nodes: DeployedNode[],
    readonly user: string,
    readonly password: string,
    readonly dropped: string[],
    private readonly work: string,
  ) {}

  /**
   * Starts the cluster, once more on fresh ports if the first try does not come up: the ports are
   * picked free, but on a busy test run another test's server (one restarted on its own port after
   * a kill) can take one before ours binds it.
   */
  static async start(
    opts: { size?: number; password?: string } = {},
  ): Promise<DeployedNatsCluster> {
    try {
      return await DeployedNatsCluster.startOnce(opts);
    } catch (err) {
      process.stderr.write(
        `deploy/nats cluster did not come up; once more on fresh ports:\n${String(err)}\n`,
      );
      return DeployedNatsCluster.startOnce(opts);
    }
  }

  private static async startOnce(opts: {
    size?: number;
    password?: string;
  }): Promise<DeployedNatsCluster> {
    if (!NATS_SERVER) throw new Error('nats-server is not installed (guard with needs())');
    const size = opts.size ?? 3;
    const work = mkdtempSync(join(tmpdir(), 'wm-nats-deploy-'));
    const { text, dropped } = configForLocalServer();
    const config = join(work, 'where-nats.conf');
    writeFileSync(config, text);
    const ports = await freePorts(size * 3);
    const clusterPorts = ports.slice(size, size * 2);
    const routes = `[${clusterPorts.map((p) => `nats-route://${HOST}:${p}`).join(', ')}]`;
    const user = NATS_FLY_ENV.NATS_USER ?? 'where';
    const password = opts.password ?? guidePassword();
    const nodes = Array.from({ length: size }, (_, i) =>
      makeNode({
        i,
        work,
        config,
        port: ports[i]!,
        clusterPort: clusterPorts[i]!,
        httpPort: ports[size * 2 + i]!,
        routes,
        user,
        password,
      }),
    );
    const cluster = new DeployedNatsCluster(nodes, user, password, dropped, work);
    try {
      await Promise.all(nodes.map((n) => n.start()));
      await cluster.waitHealthy(40_000);
    } catch (err) {
      await cluster.cleanup();
      throw err;
    }
    return cluster;
  }

  get urls(): string[] {
    return this.nodes.map((n) => n.url);
  }

  /** Until every running node's /healthz answers 200 (JetStream current with the cluster). */
  async waitHealthy(timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const codes = await Promise.all(
        this.nodes.filter((n) => n.running).map((n) => healthz(n.httpPort)),
      );
      if (codes.every((c) => c === 200)) return;
      if (Date.now() > deadline)
        throw new Error(
          `cluster not healthy after ${timeoutMs} ms (${codes.join(',')}):\n${this.nodes.map((n) => n.logs()).join('\n---\n')}`,
        );
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  async cleanup(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.kill()));
    rmSync(this.work, { recursive: true, force: true });
  }
}

export async function healthz(httpPort: number): Promise<number> {
  try {
    const res = await fetch(`http://${HOST}:${httpPort}/healthz`, {
      signal: AbortSignal.timeout(2000),
    });
    await res.text();
    return res.status;
  } catch {
    return 0;
  }
}

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

function makeNode(o: {
  i: number;
  work: string;
  config: string;
  port: number;
  clusterPort: number;
  httpPort: number;
  routes: string;
  user: string;
  password: string;
}): DeployedNode {
  const storeDir = join(o.work, `store-${o.i}`);
  const output: string[] = [];
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  // Fly's env for the app, then what differs on one laptop: ports, loopback, store dir, routes.
  const env: Record<string, string> = {
    PATH: `${dirname(NATS_SERVER!)}:${process.env.PATH ?? ''}`,
    ...NATS_FLY_ENV,
    // What Fly sets on a machine; start.sh names the server from them.
    FLY_REGION: ['ams', 'ord', 'syd'][o.i % 3]!,
    FLY_MACHINE_ID: `${o.i}8ed599c5728${o.i}`,
    NATS_PASSWORD: o.password,
    NATS_USER: o.user,
    NATS_HOST: HOST,
    NATS_PORT: String(o.port),
    NATS_CLUSTER_PORT: String(o.clusterPort),
    NATS_HTTP: `${HOST}:${o.httpPort}`,
    NATS_STORE_DIR: storeDir,
    NATS_MAX_FILE_STORE: '1G',
    NATS_ROUTES: o.routes,
    NATS_CONFIG: o.config,
  };
  const node: DeployedNode = {
    name: `${env.FLY_REGION}-${env.FLY_MACHINE_ID}`,
    port: o.port,
    clusterPort: o.clusterPort,
    httpPort: o.httpPort,
    url: `nats://${HOST}:${o.port}`,
    storeDir,
    get running() {
      return child !== undefined;
    },
    async start() {
      if (child) throw new Error('already running');
      const c = spawn('sh', [join(ROOT, 'deploy/nats/start.sh')], {
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      child = c;
      live.add(c);
      const onData = (b: Buffer) => {
        output.push(...b.toString('utf8').split('\n').filter(Boolean));
        if (output.length > 300) output.splice(0, output.length - 300);
      };
      c.stdout?.on('data', onData);
      c.stderr?.on('data', onData);
      exited = new Promise((resolve) =>
        c.once('exit', () => {
          live.delete(c);
          if (child === c) child = undefined;
          resolve();
        }),
      );
      const deadline = Date.now() + 20_000;
      while (!(await answersInfo(o.port))) {
        if (!child) throw new Error(`server ${node.name} exited:\n${output.join('\n')}`);
        if (Date.now() > deadline)
          throw new Error(`server ${node.name} did not listen:\n${output.join('\n')}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    async kill() {
      const c = child;
      if (!c) return;
      c.kill('SIGKILL');
      await exited;
    },
    logs: () => `[${node.name}]\n${output.join('\n')}`,
  };
  return node;
}

function answersInfo(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = createConnection({ host: HOST, port });
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(1000, () => done(false));
    sock.once('error', () => done(false));
    sock.once('data', (d) => done(d.toString('utf8').startsWith('INFO ')));
  });
}

/** The `$NAME`s the configuration reads from the environment. */
export function configVariables(): string[] {
  const text = readFileSync(join(ROOT, 'deploy/nats/nats.conf'), 'utf8')
    .split('\n')
    .map((l) => l.replace(/#.*$/, ''))
    .join('\n');
  return [...new Set([...text.matchAll(/\$([A-Z][A-Z0-9_]*)/g)].map((m) => m[1]!))].sort();
}
