/**
 * The processes of one chaos run: flylocal (seeded faults, Fly's rate limits), the landing
 * instances (`dist/where.mjs`, one per region) and in NATS mode a nats-server, each with a clean
 * env and its logs in the run dir; started, SIGKILLed and started again, stopped, and read back.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { FileEventStore } from '../adapters/file/fileEventStore.js';
import { JetStreamEventStore } from '../adapters/nats/jetStreamEventStore.js';
import { silentLogger } from '../shared/log.js';
import type { HttpAnswer, LedgerMachine, StoredFact, Violation } from './checks.js';
import { DEFAULTS, faultConfig, type ChaosOptions } from './config.js';
import { http, type HttpResult } from './http.js';
import { NatsServer } from './natsServer.js';
import { ManagedProcess, freePorts, waitUntil } from './procs.js';

export const READY_WAIT_MS = 60_000;

export interface Landing {
  index: number;
  region: string;
  id: string;
  port: number;
  privatePort: number;
  dataDir: string;
  proc: ManagedProcess;
  /** Killed and not yet answering again. */
  down: boolean;
  /** Bumped at every kill: a request that saw it change was cut by the harness. */
  epoch: number;
  restarts: number;
}

/** What every process of the run shares: ports, secrets, and the URL its VMs carry in their env. */
interface Shared {
  readonly opts: ChaosOptions;
  readonly runDir: string;
  readonly root: string;
  readonly baseEnv: Record<string, string>;
  readonly flyPort: number;
  readonly natsPort: number;
  readonly flyToken: string;
  readonly debugToken: string;
  readonly callbackSecret: string;
  readonly publicUrl: string;
  /** Names this run's things apart from another's (the public host, the broker's name). */
  readonly tag: string;
}

/** Only what a program needs to start: nothing of the caller's configuration leaks in. */
function cleanEnv(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of ['PATH', 'HOME', 'LANG', 'TMPDIR']) {
    const v = process.env[k];
    if (v !== undefined) out[k] = v;
  }
  return out;
}

function flylocalProcess(s: Shared): ManagedProcess {
  const faults = faultConfig(s.opts.faults, s.opts.seed);
  writeFileSync(join(s.runDir, 'faults.json'), JSON.stringify(faults, null, 2));
  return new ManagedProcess({
    name: 'flylocal',
    command: process.execPath,
    args: ['dist/flylocal.mjs'],
    env: {
      ...s.baseEnv,
      FLYLOCAL_HOST: '127.0.0.1',
      FLYLOCAL_PORT: String(s.flyPort),
      FLYLOCAL_TOKEN: s.flyToken,
      FLYLOCAL_REGION: s.opts.regions[0]!,
      FLYLOCAL_FAULTS: JSON.stringify(faults),
      FLYLOCAL_RATE_LIMITS: 'true',
      FLYLOCAL_PROFILE: 'fast',
      FLYLOCAL_PROXY: 'false',
      LOG_LEVEL: 'info',
    },
    cwd: s.root,
    logDir: s.runDir,
  });
}

/** A landing instance's env; its callbacks fall back to `other`'s private listener. */
function landingEnv(s: Shared, l: Landing, other: Landing, first: Landing): Record<string, string> {
  const o = s.opts;
  return {
    ...s.baseEnv,
    LOG_LEVEL: 'info',
    LOG_PRETTY: 'false',
    WM_LOCAL: '1',
    WM_INSTANCE_ID: l.id,
    FLY_REGION: l.region,
    HOST: '127.0.0.1',
    PORT: String(l.port),
    PRIVATE_HOST: '127.0.0.1',
    PRIVATE_PORT: String(l.privatePort),
    FLY_API_BASE_URL: `http://127.0.0.1:${s.flyPort}/v1`,
    FLY_API_TOKEN: s.flyToken,
    WM_VM_PUBLIC_URL: `http://useless-machine.localhost:${first.port}`,
    WM_PUBLIC_URL: s.publicUrl,
    WM_CALLBACK_SECRET: s.callbackSecret,
    WM_CALLBACK_BASE_URL: `http://127.0.0.1:${l.privatePort}`,
    WM_CALLBACK_FALLBACK_URL: `http://127.0.0.1:${other.privatePort}`,
    DEBUG_TOKEN: s.debugToken,
    WM_DATA_DIR: l.dataDir,
    WM_MAX_MACHINES: String(o.cap),
    WM_READY_TIMEOUT_MS: String(o.readyTimeoutMs),
    WM_TTL_BUTTON_MS: String(o.ttlMs),
    WM_AUTOSPAWN: 'false',
    WM_COOLDOWN_MS: '0',
    WM_LAUNCHES_PER_MINUTE: '10000',
    WM_REQUESTS_PER_MINUTE: '1000000',
    WM_RECONCILE_INTERVAL_MS: String(o.reconcileIntervalMs),
    WM_RECONCILE_MIN_GAP_MS: String(Math.min(5_000, o.reconcileIntervalMs)),
    WM_SNAPSHOT_INTERVAL: String(o.snapshotIntervalMs ?? DEFAULTS.snapshotIntervalMs),
    ...(o.mode === 'nats' ? { NATS_URL: `nats://127.0.0.1:${s.natsPort}` } : {}),
    // Launches claim pooled machines under the same kills and faults (ADR 0022).
    ...(o.pool ? { WM_POOL: o.regions.map((r) => `${r}:${o.pool}`).join(',') } : {}),
  };
}

function landings(s: Shared, ports: readonly number[]): Landing[] {
  const all: Landing[] = s.opts.regions.map((region, i) => ({
    index: i,
    region,
    id: `where-${region}`,
    port: ports[i * 2]!,
    privatePort: ports[i * 2 + 1]!,
    dataDir: join(s.runDir, 'data', region),
    proc: undefined as unknown as ManagedProcess,
    down: true,
    epoch: 0,
    restarts: 0,
  }));
  for (const [i, l] of all.entries()) {
    mkdirSync(l.dataDir, { recursive: true });
    const env = landingEnv(s, l, all[(i + 1) % all.length]!, all[0]!);
    l.proc = new ManagedProcess({
      name: l.id,
      command: process.execPath,
      args: ['dist/where.mjs'],
      env,
      cwd: s.root,
      logDir: s.runDir,
    });
  }
  return all;
}

export class ChaosStack {
  readonly landings: Landing[];
  readonly flylocal: ManagedProcess;
  readonly nats: NatsServer | undefined;
  /** In every VM's env of this run (WM_HOME_URL): how the OS process list tells them apart. */
  readonly vmMarker: string;

  private constructor(
    private readonly s: Shared,
    ports: readonly number[],
  ) {
    this.landings = landings(s, ports);
    this.vmMarker = `WM_HOME_URL=${s.publicUrl}`;
    this.nats =
      s.opts.mode === 'nats'
        ? new NatsServer({
            port: s.natsPort,
            dir: join(s.runDir, 'nats'),
            storeDir: join(s.runDir, 'nats'),
            logDir: s.runDir,
            serverName: `chaos-${s.tag}`,
            env: s.baseEnv,
          })
        : undefined;
    this.flylocal = flylocalProcess(s);
  }

  /** Ports, secrets and processes for a run (nothing started yet). */
  static async create(opts: ChaosOptions, runDir: string, root: string): Promise<ChaosStack> {
    const ports = await freePorts(2 + opts.regions.length * 2);
    const tag = randomBytes(4).toString('hex');
    const shared: Shared = {
      opts,
      runDir,
      root,
      baseEnv: cleanEnv(),
      flyPort: ports[0]!,
      natsPort: ports[1]!,
      flyToken: `chaos-${randomBytes(12).toString('hex')}`,
      debugToken: randomBytes(18).toString('base64url'),
      callbackSecret: randomBytes(32).toString('hex'),
      publicUrl: `http://chaos-${tag}.localhost:${ports[2]!}`,
      tag,
    };
    return new ChaosStack(shared, ports.slice(2));
  }

  get runDir(): string {
    return this.s.runDir;
  }

  get debugToken(): string {
    return this.s.debugToken;
  }

  /** Every process of the run, the broker first. */
  processes(): ManagedProcess[] {
    return [
      ...(this.nats ? [this.nats.process] : []),
      this.flylocal,
      ...this.landings.map((l) => l.proc),
    ];
  }

  /** Every pid any process of the run ever had. */
  everyPid(): { pid: number; what: string }[] {
    return this.processes().flatMap((p) => p.pids.map((pid) => ({ pid, what: p.spec.name })));
  }

  /** Where everything listens, for the journal. */
  describe(): string {
    const landings = this.landings.map((l) => `${l.id} :${l.port}/:${l.privatePort}`).join(', ');
    return `flylocal :${this.s.flyPort}, ${landings}${this.nats ? `, nats :${this.s.natsPort}` : ''}`;
  }

  flyAdmin(path: string): Promise<HttpResult> {
    return http(`http://127.0.0.1:${this.s.flyPort}/__flylocal${path}`, {
      headers: { authorization: `Bearer ${this.s.flyToken}` },
      timeoutMs: 10_000,
    });
  }

  /** flylocal's ledger: every machine it ever made. */
  async ledger(): Promise<LedgerMachine[]> {
    const r = await this.flyAdmin('/machines');
    if (r.status !== 200 || !Array.isArray(r.body)) throw new Error(`ledger: HTTP ${r.status}`);
    return r.body as LedgerMachine[];
  }

  async startFlylocal(signal: AbortSignal | undefined): Promise<void> {
    this.flylocal.start();
    const url = `http://127.0.0.1:${this.s.flyPort}/__flylocal/health`;
    const up = await waitUntil(
      async () => (await http(url, { timeoutMs: 2000 })).status === 200,
      30_000,
      100,
      signal,
    );
    if (!up) throw new Error('flylocal did not come up');
  }

  /** Start a landing instance and wait for `/readyz`; not getting ready is recorded as an answer. */
  async startLanding(
    l: Landing,
    signal: AbortSignal | undefined,
    answers: HttpAnswer[],
  ): Promise<void> {
    l.proc.start();
    const ok = await waitUntil(
      async () =>
        (await http(`http://127.0.0.1:${l.port}/readyz`, { timeoutMs: 2000 })).status === 200,
      READY_WAIT_MS,
      100,
      signal,
    );
    if (!ok && !signal?.aborted) {
      answers.push({
        at: Date.now(),
        instance: l.id,
        method: 'GET',
        path: '/readyz',
        error: `not ready ${READY_WAIT_MS} ms after start #${l.proc.incarnation}`,
        instanceKilled: false,
      });
      throw new Error(`${l.id} did not get ready within ${READY_WAIT_MS} ms`);
    }
    l.down = false;
  }

  /** SIGKILL a landing instance; requests out to it from now on count as cut by the harness. */
  async killLanding(l: Landing): Promise<void> {
    l.down = true;
    l.epoch++;
    await l.proc.kill9();
    l.restarts++;
  }

  async stopLandings(): Promise<void> {
    for (const l of this.landings) {
      await l.proc.stop(25_000).catch(() => undefined);
      l.down = true;
    }
  }

  /**
   * The store as the landing app left it (file: its events.log; NATS: the WM_EVENTS stream, read
   * while the broker still runs), with each message that does not decode reported.
   */
  async readStore(undecodable: (v: Violation) => void): Promise<StoredFact[]> {
    if (this.s.opts.mode === 'file') {
      const path = join(this.landings[0]!.dataDir, 'events.log');
      return readAll(FileEventStore.open(path, { fsync: false }));
    }
    const nc = await connect({ servers: `nats://127.0.0.1:${this.s.natsPort}`, timeout: 5000 });
    try {
      const store = await JetStreamEventStore.open(nc, {
        logger: silentLogger(),
        stream: { name: 'WM_EVENTS', replicas: 1 },
        onDecodeError: (err, where) =>
          undecodable({
            check: 'store',
            message: `message ${where.position} on ${where.subject} does not decode: ${err.message}`,
            evidence: where,
          }),
      });
      return await readAll(store);
    } finally {
      await nc.close();
    }
  }
}

async function readAll(store: {
  readAll(): AsyncIterable<StoredFact>;
  close(): Promise<void>;
}): Promise<StoredFact[]> {
  const out: StoredFact[] = [];
  try {
    for await (const e of store.readAll()) out.push(e);
  } finally {
    await store.close();
  }
  return out;
}
