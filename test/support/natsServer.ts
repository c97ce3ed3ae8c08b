/**
 * Test harness: real nats-server child processes with JetStream on free ports and temp store dirs,
 * that a test can stop, SIGKILL and restart on the same port and store (a crash), alone or as a
 * 3-node cluster. Never the shared server on :4222. Everything is released by cleanup().
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { NATS_SERVER } from './require.js';

const HOST = '127.0.0.1';
const LOG_LINES = 200;

/** Every server process this module started and has not yet seen exit: the safety net below kills them. */
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

/** Ports the OS says are free right now (held together so they are distinct, then released). */
export async function freePorts(n: number): Promise<number[]> {
  const servers: Server[] = [];
  try {
    const ports: number[] = [];
    for (let i = 0; i < n; i++) {
      const srv = createServer();
      servers.push(srv);
      await new Promise<void>((resolve, reject) => {
        srv.once('error', reject);
        srv.listen(0, HOST, () => resolve());
      });
      const addr = srv.address();
      if (addr === null || typeof addr === 'string') throw new Error('no port from the OS');
      ports.push(addr.port);
    }
    return ports;
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
  }
}

/** Is a process with this pid still running (a zombie, dead but not yet reaped, counts as gone)? */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    // /proc/<pid>/stat: "pid (comm) S ..."; S = Z for a zombie.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true;
  }
}

export interface NatsServerOptions {
  /** Client port; default a free one. */
  port?: number;
  /** JetStream store directory; default a fresh temp dir that cleanup() removes. */
  storeDir?: string;
  /** server_name (required by clustered JetStream); default `n<port>`. */
  serverName?: string;
  /** Join a cluster: its name, this node's cluster port and every node's cluster port. */
  cluster?: { name: string; port: number; routes: readonly number[] };
  /** How long start() waits for the server to accept connections. Default 20 s. */
  startTimeoutMs?: number;
}

export class NatsServer {
  readonly port: number;
  readonly url: string;
  readonly storeDir: string;
  readonly serverName: string;
  private readonly configPath: string;
  private readonly ownedDirs: string[];
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private readonly output: string[] = [];
  private readonly startTimeoutMs: number;

  private constructor(opts: Required<Pick<NatsServerOptions, 'port'>> & NatsServerOptions) {
    const work = mkdtempSync(join(tmpdir(), 'wm-nats-'));
    this.ownedDirs = [work];
    this.port = opts.port;
    this.url = `nats://${HOST}:${opts.port}`;
    this.storeDir = opts.storeDir ?? join(work, 'store');
    this.serverName = opts.serverName ?? `n${opts.port}`;
    this.startTimeoutMs = opts.startTimeoutMs ?? 20_000;
    this.configPath = join(work, 'server.conf');
    writeFileSync(this.configPath, renderConfig(this, opts.cluster));
  }

  /** Start a server and wait until it accepts client connections. */
  static async start(opts: NatsServerOptions = {}): Promise<NatsServer> {
    if (!NATS_SERVER)
      throw new Error('nats-server is not installed (guard the suite with needs())');
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
    return this.child?.pid;
  }

  get running(): boolean {
    return this.child !== undefined;
  }

  /** The last lines the server printed, for failure messages. */
  logs(): string {
    return this.output.join('\n');
  }

  /** Start the process (again): same port, same store dir. */
  async start(): Promise<void> {
    if (this.child) throw new Error(`nats-server on ${this.port} is already running`);
    const child = spawn(NATS_SERVER!, ['-c', this.configPath], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    live.add(child);
    const onData = (chunk: Buffer) => {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line) this.output.push(line);
      }
      if (this.output.length > LOG_LINES) this.output.splice(0, this.output.length - LOG_LINES);
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    this.exited = new Promise<void>((resolve) => {
      child.once('exit', () => {
        live.delete(child);
        if (this.child === child) this.child = undefined;
        resolve();
      });
    });
    try {
      await this.waitAccepting();
    } catch (err) {
      await this.kill();
      throw err;
    }
  }

  /** Graceful stop (SIGTERM); SIGKILL if it has not exited after 10 s. */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await this.exited;
    clearTimeout(timer);
  }

  /** A crash: SIGKILL, then wait until the process is gone. */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child) return;
    child.kill('SIGKILL');
    await this.exited;
  }

  /** Kill -9 and start again on the same port and store dir. */
  async restart(): Promise<void> {
    await this.kill();
    await this.start();
  }

  /** Kill the process if it runs and delete the directories this harness made. */
  async cleanup(): Promise<void> {
    await this.kill();
    for (const dir of this.ownedDirs) rmSync(dir, { recursive: true, force: true });
  }

  private async waitAccepting(): Promise<void> {
    const deadline = Date.now() + this.startTimeoutMs;
    for (;;) {
      if (!this.child)
        throw new Error(`nats-server on ${this.port} exited while starting:\n${this.logs()}`);
      if (await answersInfo(this.port)) return;
      if (Date.now() > deadline) {
        throw new Error(
          `nats-server on ${this.port} did not accept connections in ${this.startTimeoutMs} ms:\n${this.logs()}`,
        );
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/** Connect and read the server's INFO line: it is listening for clients. */
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

function renderConfig(s: NatsServer, cluster: NatsServerOptions['cluster']): string {
  const lines = [
    `server_name: ${JSON.stringify(s.serverName)}`,
    `host: ${JSON.stringify(HOST)}`,
    `port: ${s.port}`,
    // Small enough for a shared 2-core CI box; big enough for every test here.
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
      await new Promise((r) => setTimeout(r, 250));
    }
    throw new Error(`JetStream cluster not ready after ${timeoutMs} ms: ${String(last)}`);
  }

  async cleanup(): Promise<void> {
    await Promise.all(this.servers.map((s) => s.cleanup()));
  }
}
