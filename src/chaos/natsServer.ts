/**
 * The one nats-server launcher, for the chaos harness, the tests and the benches: a real
 * nats-server with JetStream on a loopback port and its own store, that can be stopped, SIGKILLed
 * and started again on the same port and store (a crash), alone or as a cluster. Never the shared
 * server on :4222. cleanup() releases the process and the directories it made.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { ManagedProcess, freePorts, natsAnswers, sleep } from './procs.js';

const HOST = '127.0.0.1';
const LOG_LINES = 200;

/** The nats-server binary on PATH, if any. */
export function natsServerBinary(): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    if (dir && existsSync(join(dir, 'nats-server'))) return join(dir, 'nats-server');
  }
  return undefined;
}

export interface NatsServerOptions {
  /** Client port; default a free one. */
  port?: number;
  /** The server's directory (config, and by default store and logs); default a fresh temp dir that cleanup() removes. */
  dir?: string;
  /** JetStream store directory; default `<dir>/store`. */
  storeDir?: string;
  /** Where `nats-server.out.log`/`.err.log` are appended across restarts; default `dir`. */
  logDir?: string;
  /** server_name (required by clustered JetStream); default `n<port>`. */
  serverName?: string;
  /** Join a cluster: its name, this node's cluster port and every node's cluster port. */
  cluster?: { name: string; port: number; routes: readonly number[] };
  /** How long start() waits for the server to accept connections. Default 20 s. */
  startTimeoutMs?: number;
  /** The server's environment; default this process's. */
  env?: Readonly<Record<string, string>>;
}

function processEnv(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) out[k] = v;
  return out;
}

function renderConfig(s: NatsServer, cluster: NatsServerOptions['cluster']): string {
  const lines = [
    `server_name: ${JSON.stringify(s.serverName)}`,
    `host: ${JSON.stringify(HOST)}`,
    `port: ${s.port}`,
    // Small enough for a shared 2-core CI box; big enough for every test and chaos run.
    `jetstream { store_dir: ${JSON.stringify(s.storeDir)}, max_memory_store: 268435456, max_file_store: 1073741824 }`,
  ];
  if (cluster) {
    lines.push(
      `cluster {`,
      `  name: ${JSON.stringify(cluster.name)}`,
      `  listen: "${HOST}:${cluster.port}"`,
      `  routes: [${cluster.routes.map((p) => `"nats-route://${HOST}:${p}"`).join(', ')}]`,
      `}`,
    );
  }
  return lines.join('\n') + '\n';
}

export class NatsServer {
  readonly port: number;
  readonly url: string;
  readonly storeDir: string;
  readonly serverName: string;
  /** The process itself: its pids and exits, for whoever judges them (the chaos checks). */
  readonly process: ManagedProcess;
  private readonly ownedDirs: string[] = [];
  private readonly startTimeoutMs: number;

  constructor(opts: NatsServerOptions & { port: number }) {
    const bin = natsServerBinary();
    if (!bin) throw new Error('nats-server is not installed (guard the suite with needs())');
    const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'wm-nats-'));
    if (opts.dir) mkdirSync(opts.dir, { recursive: true });
    else this.ownedDirs.push(dir);
    this.port = opts.port;
    this.url = `nats://${HOST}:${opts.port}`;
    this.storeDir = opts.storeDir ?? join(dir, 'store');
    this.serverName = opts.serverName ?? `n${opts.port}`;
    this.startTimeoutMs = opts.startTimeoutMs ?? 20_000;
    const configPath = join(dir, 'server.conf');
    writeFileSync(configPath, renderConfig(this, opts.cluster));
    this.process = new ManagedProcess({
      name: 'nats-server',
      command: bin,
      args: ['-c', configPath],
      env: opts.env ?? processEnv(),
      cwd: dir,
      logDir: opts.logDir ?? dir,
    });
  }

  /** Start a server on a free port (unless given) and wait until it accepts client connections. */
  static async start(opts: NatsServerOptions = {}): Promise<NatsServer> {
    // A free port can be taken by someone else before the server binds it: retry with a new one,
    // unless the caller chose the port.
    for (let attempt = 1; ; attempt++) {
      const port = opts.port ?? (await freePorts(1))[0]!;
      const server = new NatsServer({ ...opts, port });
      try {
        await server.start();
        return server;
      } catch (err) {
        await server.cleanup();
        if (opts.port !== undefined || attempt >= 3 || !/address already in use/i.test(String(err)))
          throw err;
      }
    }
  }

  get pid(): number | undefined {
    return this.process.pid;
  }

  get running(): boolean {
    return this.process.running;
  }

  /** The last lines the server printed, for failure messages. */
  logs(): string {
    const read = (path: string): string[] =>
      existsSync(path) ? readFileSync(path, 'utf8').split('\n').filter(Boolean) : [];
    return [...read(this.process.outLog), ...read(this.process.errLog)]
      .slice(-LOG_LINES)
      .join('\n');
  }

  /** Start the process (again): same port, same store dir. */
  async start(): Promise<void> {
    if (this.running) throw new Error(`nats-server on ${this.port} is already running`);
    this.process.start();
    try {
      await this.waitAccepting();
    } catch (err) {
      await this.kill();
      throw err;
    }
  }

  /** Graceful stop (SIGTERM); SIGKILL if it has not exited after `graceMs`. */
  async stop(graceMs = 10_000): Promise<void> {
    await this.process.stop(graceMs);
  }

  /** A crash: SIGKILL, then wait until the process is gone. */
  async kill(): Promise<void> {
    await this.process.kill9();
  }

  /** Kill -9 and start again on the same port and store dir. */
  async restart(): Promise<void> {
    await this.kill();
    await this.start();
  }

  /** Kill the process if it runs and delete the directories this launcher made. */
  async cleanup(): Promise<void> {
    await this.kill();
    for (const dir of this.ownedDirs) rmSync(dir, { recursive: true, force: true });
  }

  private async waitAccepting(): Promise<void> {
    const deadline = Date.now() + this.startTimeoutMs;
    for (;;) {
      if (!this.running)
        throw new Error(`nats-server on ${this.port} exited while starting:\n${this.logs()}`);
      if (await natsAnswers(this.port)) return;
      if (Date.now() > deadline) {
        throw new Error(
          `nats-server on ${this.port} did not accept connections in ${this.startTimeoutMs} ms:\n${this.logs()}`,
        );
      }
      await sleep(50);
    }
  }
}

/** A 3-node (by default) JetStream cluster on loopback: each node a NatsServer with its own store. */
export class NatsCluster {
  private constructor(readonly servers: readonly NatsServer[]) {}

  static async start(size = 3, name = 'wm-test'): Promise<NatsCluster> {
    const ports = await freePorts(size * 2);
    const clientPorts = ports.slice(0, size);
    const routePorts = ports.slice(size);
    const servers: NatsServer[] = [];
    try {
      for (let i = 0; i < size; i++) {
        servers.push(
          await NatsServer.start({
            port: clientPorts[i]!,
            serverName: `${name}-${i}`,
            cluster: { name, port: routePorts[i]!, routes: routePorts },
          }),
        );
      }
      const cluster = new NatsCluster(servers);
      await cluster.waitJetStream();
      return cluster;
    } catch (err) {
      await Promise.all(servers.map((s) => s.cleanup()));
      throw err;
    }
  }

  /** Every node's client URL (give them all to a client so it fails over). */
  get urls(): string[] {
    return this.servers.map((s) => s.url);
  }

  /** Wait until the cluster has a JetStream meta leader (the API answers) through any running node. */
  async waitJetStream(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const urls = this.servers.filter((s) => s.running).map((s) => s.url);
    let last: unknown;
    while (Date.now() < deadline) {
      const nc = await connect({ servers: urls, timeout: 2000 }).catch((err: unknown) => {
        last = err;
        return undefined;
      });
      if (nc) {
        try {
          const jsm = await jetstreamManager(nc, { timeout: 2000 });
          const info = await jsm.getAccountInfo();
          if (info) return;
        } catch (err) {
          last = err;
        } finally {
          await nc.close();
        }
      }
      await sleep(250);
    }
    throw new Error(`JetStream cluster not ready after ${timeoutMs} ms: ${String(last)}`);
  }

  async cleanup(): Promise<void> {
    await Promise.all(this.servers.map((s) => s.cleanup()));
  }
}
