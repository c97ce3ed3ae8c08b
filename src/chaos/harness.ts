/**
 * The chaos harness: runs the built programs (dist/flylocal.mjs with seeded faults and Fly's rate
 * limits, dist/where.mjs on the file store or on a nats-server it owns) as real processes, drives
 * rounds of concurrent launches while SIGKILLing landing instances (and the broker), samples the
 * emulator's ledger every 100 ms, and judges what it saw with the pure checks in checks.ts.
 */
import { randomBytes } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect } from '@nats-io/transport-node';
import { FileEventStore } from '../adapters/file/fileEventStore.js';
import { JetStreamEventStore } from '../adapters/nats/jetStreamEventStore.js';
import { silentLogger } from '../shared/log.js';
import {
  CHECKS,
  checkCap,
  checkExits,
  checkFinal,
  checkHttp,
  checkKnown,
  checkMachinesLeft,
  checkOneMachinePerLaunch,
  checkProcessesLeft,
  checkStore,
  launchOf,
  runningOf,
  scanLog,
  type CapSample,
  type CheckName,
  type HttpAnswer,
  type KnownProbe,
  type LaunchOutcome,
  type LedgerMachine,
  type StoredFact,
  type Violation,
} from './checks.js';
import { DEFAULTS, faultConfig, replayCommand, schedule, type ChaosOptions } from './config.js';
import {
  ManagedProcess,
  freePorts,
  natsAnswers,
  pidAlive,
  processesWithEnv,
  sleep,
  waitUntil,
} from './procs.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const READY_WAIT_MS = 60_000;
const HTTP_TIMEOUT_MS = 45_000;
const SAMPLE_EVERY_MS = 100;
/** How many violating launches get their stored facts fetched into the report. */
const EVIDENCE_LAUNCHES = 25;

export interface ChaosFigures {
  rounds: number;
  launchesSent: number;
  accepted: number;
  capacity: number;
  /** Other answers to POST /launches, "<status> <code>" → count. */
  otherAnswers: Record<string, number>;
  /** POSTs cut by the harness's own kill (no answer). */
  cutByKill: number;
  /** POSTs held back until the killed instance was up again. */
  waitedForRestart: number;
  landingKills: number;
  natsKills: number;
  faultsInjected: number;
  faultsByKind: Record<string, number>;
  rateLimited: number;
  samples: number;
  sampleErrors: number;
  maxSampleGapMs: number;
  maxRunning: number;
  cap: number;
  machinesCreated: number;
  duplicates: number;
  lost: number;
  notFinal: number;
  machinesLeft: number;
  processesLeft: number;
  storeEvents: number;
  storeStreams: number;
  roundMsAvg: number;
  durationMs: number;
}

export interface LaunchEvidence {
  launchId: string;
  /** `/debug/actors/launch.<id>`: the actor and its whole stored history. */
  debug: unknown;
  /** `GET /launches/:id`: what the visitor sees (a launch in cleanup already says `failed`). */
  view: unknown;
  /** `/debug/actors/vm.<machineId>` for each of its machines. */
  vms: Record<string, unknown>;
  machines: LedgerMachine[];
}

export interface ChaosReport {
  options: ChaosOptions;
  command: string;
  runDir: string;
  kept: boolean;
  aborted: boolean;
  /** A failure of the harness itself (could not start something), not a violation found. */
  harnessError: string | undefined;
  figures: ChaosFigures;
  violations: Violation[];
  evidence: LaunchEvidence[];
}

export interface ChaosIo {
  log: (line: string) => void;
  signal?: AbortSignal;
}

// ---- small HTTP client: a fresh connection per request, so a killed peer never poisons a pool --

interface HttpResult {
  status: number;
  body: unknown;
  text: string;
}

function http(
  url: string,
  o: { method?: string; headers?: Record<string, string>; body?: string; timeoutMs?: number } = {},
): Promise<HttpResult> {
  return new Promise((resolvePromise, reject) => {
    const req = httpRequest(
      url,
      {
        method: o.method ?? 'GET',
        headers: o.headers ?? {},
        agent: false,
        timeout: o.timeoutMs ?? HTTP_TIMEOUT_MS,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let body: unknown;
          try {
            body = JSON.parse(text) as unknown;
          } catch {
            body = undefined;
          }
          resolvePromise({ status: res.statusCode ?? 0, body, text });
        });
      },
    );
    req.on('timeout', () =>
      req.destroy(new Error(`no answer within ${o.timeoutMs ?? HTTP_TIMEOUT_MS} ms`)),
    );
    req.on('error', reject);
    req.end(o.body);
  });
}

async function mapLimit<T, R>(
  items: readonly T[],
  n: number,
  fn: (t: T) => Promise<R>,
): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.min(n, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  });
  await Promise.all(workers);
  return out;
}

const errText = (err: unknown): string => (err instanceof Error ? err.message : String(err));

// ---- the run -------------------------------------------------------------------------------------

interface Landing {
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

interface Accepted {
  launchId: string;
  instance: string;
  sentAt: number;
  answeredAt: number;
  round: number;
}

/** The nats-server binary on PATH, if any. */
export function natsServerBinary(): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    if (dir && existsSync(join(dir, 'nats-server'))) return join(dir, 'nats-server');
  }
  return undefined;
}

export async function runChaos(opts: ChaosOptions, io: ChaosIo): Promise<ChaosReport> {
  const started = Date.now();
  const { log, signal } = io;
  const command = replayCommand(opts);
  for (const f of ['dist/flylocal.mjs', 'dist/where.mjs', 'dist/useless.mjs']) {
    if (!existsSync(join(ROOT, f)))
      throw new Error(`${f} is missing: run node scripts/build.mjs first`);
  }
  if (opts.mode === 'file' && opts.regions.length !== 1)
    throw new Error('file mode runs exactly one landing instance (name one region)');
  const natsBin = opts.mode === 'nats' ? natsServerBinary() : undefined;
  if (opts.mode === 'nats' && !natsBin) throw new Error('NATS mode needs nats-server on PATH');

  const base = opts.baseDir ?? tmpdir();
  mkdirSync(base, { recursive: true });
  const runDir = mkdtempSync(join(base, `wm-chaos-${opts.seed}-`));
  const tag = randomBytes(4).toString('hex');
  const plan = schedule(opts);
  const fig: ChaosFigures = {
    rounds: 0,
    launchesSent: 0,
    accepted: 0,
    capacity: 0,
    otherAnswers: {},
    cutByKill: 0,
    waitedForRestart: 0,
    landingKills: 0,
    natsKills: 0,
    faultsInjected: 0,
    faultsByKind: {},
    rateLimited: 0,
    samples: 0,
    sampleErrors: 0,
    maxSampleGapMs: 0,
    maxRunning: 0,
    cap: opts.cap,
    machinesCreated: 0,
    duplicates: 0,
    lost: 0,
    notFinal: 0,
    machinesLeft: 0,
    processesLeft: 0,
    storeEvents: 0,
    storeStreams: 0,
    roundMsAvg: 0,
    durationMs: 0,
  };
  const violations: Violation[] = [];
  const evidence: LaunchEvidence[] = [];
  const answers: HttpAnswer[] = [];
  const probes: KnownProbe[] = [];
  const samples: CapSample[] = [];
  const accepted: Accepted[] = [];
  let harnessError: string | undefined;
  const journal: string[] = [];
  const note = (line: string): void => {
    const l = `${new Date().toISOString()} ${line}`;
    journal.push(l);
    log(line);
  };
  note(`seed ${opts.seed}, mode ${opts.mode}, run dir ${runDir}`);
  note(`replay: ${command}`);

  // Ports, secrets, and the marker every VM of this run carries in its env (WM_HOME_URL).
  const ports = await freePorts(2 + opts.regions.length * 2);
  const flyPort = ports[0]!;
  const natsPort = ports[1]!;
  const flyToken = `chaos-${randomBytes(12).toString('hex')}`;
  const debugToken = randomBytes(18).toString('base64url');
  const callbackSecret = randomBytes(32).toString('hex');
  const landings: Landing[] = opts.regions.map((region, i) => ({
    index: i,
    region,
    id: `where-${region}`,
    port: ports[2 + i * 2]!,
    privatePort: ports[3 + i * 2]!,
    dataDir: join(runDir, 'data', region),
    proc: undefined as unknown as ManagedProcess,
    down: true,
    epoch: 0,
    restarts: 0,
  }));
  const publicUrl = `http://chaos-${tag}.localhost:${landings[0]!.port}`;
  const vmMarker = `WM_HOME_URL=${publicUrl}`;
  const baseEnv: Record<string, string> = {};
  for (const k of ['PATH', 'HOME', 'LANG', 'TMPDIR']) {
    const v = process.env[k];
    if (v !== undefined) baseEnv[k] = v;
  }
  const natsDir = join(runDir, 'nats');
  const nats =
    opts.mode === 'nats'
      ? new ManagedProcess({
          name: 'nats-server',
          command: natsBin!,
          args: [
            '-a',
            '127.0.0.1',
            '-p',
            String(natsPort),
            '-js',
            '-sd',
            natsDir,
            '-n',
            `chaos-${tag}`,
          ],
          env: baseEnv,
          cwd: runDir,
          logDir: runDir,
        })
      : undefined;
  const faults = faultConfig(opts.faults, opts.seed);
  writeFileSync(join(runDir, 'faults.json'), JSON.stringify(faults, null, 2));
  const flylocal = new ManagedProcess({
    name: 'flylocal',
    command: process.execPath,
    args: ['dist/flylocal.mjs'],
    env: {
      ...baseEnv,
      FLYLOCAL_HOST: '127.0.0.1',
      FLYLOCAL_PORT: String(flyPort),
      FLYLOCAL_TOKEN: flyToken,
      FLYLOCAL_REGION: opts.regions[0]!,
      FLYLOCAL_FAULTS: JSON.stringify(faults),
      FLYLOCAL_RATE_LIMITS: 'true',
      FLYLOCAL_PROXY: 'false',
      LOG_LEVEL: 'info',
    },
    cwd: ROOT,
    logDir: runDir,
  });
  for (const [i, l] of landings.entries()) {
    const other = landings[(i + 1) % landings.length]!;
    mkdirSync(l.dataDir, { recursive: true });
    l.proc = new ManagedProcess({
      name: l.id,
      command: process.execPath,
      args: ['dist/where.mjs'],
      env: {
        ...baseEnv,
        LOG_LEVEL: 'info',
        LOG_PRETTY: 'false',
        WM_LOCAL: '1',
        WM_INSTANCE_ID: l.id,
        FLY_REGION: l.region,
        HOST: '127.0.0.1',
        PORT: String(l.port),
        PRIVATE_HOST: '127.0.0.1',
        PRIVATE_PORT: String(l.privatePort),
        FLY_API_BASE_URL: `http://127.0.0.1:${flyPort}/v1`,
        FLY_API_TOKEN: flyToken,
        WM_VM_PUBLIC_URL: `http://useless-machine.localhost:${landings[0]!.port}`,
        WM_PUBLIC_URL: publicUrl,
        WM_CALLBACK_SECRET: callbackSecret,
        WM_CALLBACK_BASE_URL: `http://127.0.0.1:${l.privatePort}`,
        WM_CALLBACK_FALLBACK_URL: `http://127.0.0.1:${other.privatePort}`,
        DEBUG_TOKEN: debugToken,
        WM_DATA_DIR: l.dataDir,
        WM_MAX_MACHINES: String(opts.cap),
        WM_READY_TIMEOUT_MS: String(opts.readyTimeoutMs),
        WM_TTL_BUTTON_MS: String(opts.ttlMs),
        WM_AUTOSPAWN: 'false',
        WM_COOLDOWN_MS: '0',
        WM_LAUNCHES_PER_MINUTE: '10000',
        WM_REQUESTS_PER_MINUTE: '1000000',
        WM_RECONCILE_INTERVAL_MS: String(opts.reconcileIntervalMs),
        WM_RECONCILE_MIN_GAP_MS: String(Math.min(5_000, opts.reconcileIntervalMs)),
        WM_SNAPSHOT_INTERVAL: String(opts.snapshotIntervalMs ?? DEFAULTS.snapshotIntervalMs),
        ...(nats ? { NATS_URL: `nats://127.0.0.1:${natsPort}` } : {}),
      },
      cwd: ROOT,
      logDir: runDir,
    });
  }

  const flyAdmin = (path: string): Promise<HttpResult> =>
    http(`http://127.0.0.1:${flyPort}/__flylocal${path}`, {
      headers: { authorization: `Bearer ${flyToken}` },
      timeoutMs: 10_000,
    });
  const ledger = async (): Promise<LedgerMachine[]> => {
    const r = await flyAdmin('/machines');
    if (r.status !== 200 || !Array.isArray(r.body)) throw new Error(`ledger: HTTP ${r.status}`);
    return r.body as LedgerMachine[];
  };

  const startNats = async (): Promise<void> => {
    nats!.start();
    if (!(await waitUntil(() => natsAnswers(natsPort), 20_000, 50, signal)))
      throw new Error(`nats-server did not accept connections on ${natsPort}`);
  };
  const startLanding = async (l: Landing): Promise<void> => {
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
  };

  // The sampler: the ledger every 100 ms, one request at a time.
  let sampling = true;
  let lastSampleAt = 0;
  let latestLedger: LedgerMachine[] = [];
  let sampler: Promise<void> = Promise.resolve();
  const startSampler = (): void => {
    sampler = (async () => {
      while (sampling) {
        const t = Date.now();
        try {
          const l = await ledger();
          latestLedger = l;
          const s: CapSample = { at: Date.now(), running: runningOf(l) };
          samples.push(s);
          fig.samples++;
          fig.maxRunning = Math.max(fig.maxRunning, s.running.length);
          if (lastSampleAt) fig.maxSampleGapMs = Math.max(fig.maxSampleGapMs, s.at - lastSampleAt);
          lastSampleAt = s.at;
        } catch {
          fig.sampleErrors++;
        }
        await sleep(Math.max(0, SAMPLE_EVERY_MS - (Date.now() - t)));
      }
    })();
  };

  const postLaunch = async (l: Landing, ip: string, round: number): Promise<void> => {
    fig.launchesSent++;
    // A visitor whose click finds the instance down (killed by us) clicks again once it is back:
    // a launch is worth more to the checks than a refused connection.
    if (l.down) {
      fig.waitedForRestart++;
      await waitUntil(async () => !l.down, READY_WAIT_MS, 50, signal);
    }
    const epoch = l.epoch;
    const wasDown = l.down;
    const sentAt = Date.now();
    try {
      const r = await http(`http://127.0.0.1:${l.port}/launches`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'fly-client-ip': ip },
        body: '{}',
      });
      const body = (r.body ?? {}) as { launchId?: string; code?: string };
      answers.push({
        at: Date.now(),
        instance: l.id,
        method: 'POST',
        path: '/launches',
        status: r.status,
        ...(body.code ? { code: body.code } : {}),
        instanceKilled: false,
        ...(body.launchId ? { launchId: body.launchId } : {}),
      });
      if (r.status === 202 && body.launchId) {
        fig.accepted++;
        accepted.push({
          launchId: body.launchId,
          instance: l.id,
          sentAt,
          answeredAt: Date.now(),
          round,
        });
      } else if (r.status === 503 && body.code === 'CAPACITY') fig.capacity++;
      else {
        const k = `${r.status} ${body.code ?? ''}`.trim();
        fig.otherAnswers[k] = (fig.otherAnswers[k] ?? 0) + 1;
      }
    } catch (err) {
      const killed = wasDown || l.down || l.epoch !== epoch;
      if (killed) fig.cutByKill++;
      answers.push({
        at: Date.now(),
        instance: l.id,
        method: 'POST',
        path: '/launches',
        error: errText(err),
        instanceKilled: killed,
      });
    }
  };

  /** GET /launches/:id for every accepted launch on one instance, right after a restart. */
  const knownCheck = async (l: Landing, restart: number): Promise<void> => {
    const ids = accepted.map((a) => a.launchId);
    await mapLimit(ids, 8, async (launchId) => {
      let last: KnownProbe = {
        launchId,
        instance: l.id,
        restart,
        status: 'error',
        error: 'not asked',
      };
      for (let attempt = 1; attempt <= 6; attempt++) {
        const epoch = l.epoch;
        try {
          const r = await http(`http://127.0.0.1:${l.port}/launches/${launchId}`, {
            headers: { 'fly-replay-src': 'chaos-harness', 'fly-client-ip': '10.255.255.254' },
            timeoutMs: 15_000,
          });
          const code = (r.body as { code?: string } | undefined)?.code;
          answers.push({
            at: Date.now(),
            instance: l.id,
            method: 'GET',
            path: `/launches/${launchId}`,
            status: r.status,
            ...(code ? { code } : {}),
            instanceKilled: false,
            launchId,
          });
          last = { launchId, instance: l.id, restart, status: r.status };
          if (r.status === 200) break;
          // A 404 is asked once more (a read racing the boot); anything else a few times.
          if (r.status === 404 && attempt >= 2) break;
        } catch (err) {
          answers.push({
            at: Date.now(),
            instance: l.id,
            method: 'GET',
            path: `/launches/${launchId}`,
            error: errText(err),
            instanceKilled: l.down || l.epoch !== epoch,
          });
          last = { launchId, instance: l.id, restart, status: 'error', error: errText(err) };
        }
        await sleep(attempt === 1 ? 1000 : 500, signal);
      }
      probes.push(last);
    });
  };

  const debugActor = async (launchId: string, kind = 'launch'): Promise<unknown> => {
    let lastErr = '';
    for (const l of landings) {
      if (l.down) continue;
      try {
        const r = await http(`http://127.0.0.1:${l.privatePort}/debug/actors/${kind}.${launchId}`, {
          headers: { authorization: `Bearer ${debugToken}` },
          timeoutMs: 15_000,
        });
        if (r.status === 200 || r.status === 404) return r.body;
        lastErr = `HTTP ${r.status} from ${l.id}`;
      } catch (err) {
        lastErr = `${l.id}: ${errText(err)}`;
      }
    }
    throw new Error(lastErr || 'no instance up');
  };

  const publicView = async (launchId: string): Promise<unknown> => {
    const l = landings.find((x) => !x.down);
    if (!l) throw new Error('no instance up');
    const r = await http(`http://127.0.0.1:${l.port}/launches/${launchId}`, {
      headers: { 'fly-replay-src': 'chaos-harness', 'fly-client-ip': '10.255.255.254' },
      timeoutMs: 15_000,
    });
    return r.body;
  };

  const everyPid = (): { pid: number; what: string }[] =>
    [...(nats ? [nats] : []), flylocal, ...landings.map((l) => l.proc)].flatMap((p) =>
      p.pids.map((pid) => ({ pid, what: p.spec.name })),
    );

  const stopAll = async (): Promise<void> => {
    for (const l of landings) {
      await l.proc.stop(25_000).catch(() => undefined);
      l.down = true;
    }
    sampling = false;
    await sampler;
    await flylocal.stop(15_000).catch(() => undefined);
  };

  const readStore = async (): Promise<StoredFact[]> => {
    if (opts.mode === 'file') {
      const store = FileEventStore.open(join(landings[0]!.dataDir, 'events.log'), { fsync: false });
      try {
        const out: StoredFact[] = [];
        for await (const e of store.readAll()) out.push(e);
        return out;
      } finally {
        await store.close();
      }
    }
    const nc = await connect({ servers: `nats://127.0.0.1:${natsPort}`, timeout: 5000 });
    try {
      const store = await JetStreamEventStore.open(nc, {
        logger: silentLogger(),
        stream: { name: 'WM_EVENTS', replicas: 1 },
        onDecodeError: (err, where) =>
          violations.push({
            check: 'store',
            message: `message ${where.position} on ${where.subject} does not decode: ${err.message}`,
            evidence: where,
          }),
      });
      const out: StoredFact[] = [];
      try {
        for await (const e of store.readAll()) out.push(e);
      } finally {
        await store.close();
      }
      return out;
    } finally {
      await nc.close();
    }
  };

  const roundTimes: number[] = [];
  let aborted = false;
  try {
    // -- start -------------------------------------------------------------------------------
    if (nats) await startNats();
    flylocal.start();
    if (
      !(await waitUntil(
        async () =>
          (await http(`http://127.0.0.1:${flyPort}/__flylocal/health`, { timeoutMs: 2000 }))
            .status === 200,
        30_000,
        100,
        signal,
      ))
    )
      throw new Error('flylocal did not come up');
    startSampler();
    await Promise.all(landings.map((l) => startLanding(l)));
    note(
      `up: flylocal :${flyPort}, ${landings.map((l) => `${l.id} :${l.port}/:${l.privatePort}`).join(', ')}${nats ? `, nats :${natsPort}` : ''}`,
    );

    // -- rounds ------------------------------------------------------------------------------
    for (const r of plan) {
      if (signal?.aborted) break;
      const t0 = Date.now();
      const tasks: Promise<void>[] = [];
      for (const lp of r.launches) {
        tasks.push(
          sleep(lp.atMs, signal).then(() =>
            signal?.aborted ? undefined : postLaunch(landings[lp.instance]!, lp.clientIp, r.round),
          ),
        );
      }
      const victim = landings[r.kill.instance]!;
      tasks.push(
        sleep(r.kill.atMs, signal).then(async () => {
          if (signal?.aborted) return;
          victim.down = true;
          victim.epoch++;
          await victim.proc.kill9();
          fig.landingKills++;
          victim.restarts++;
          note(`round ${r.round}: SIGKILL ${victim.id} at +${r.kill.atMs} ms; starting it again`);
          await startLanding(victim);
        }),
      );
      if (r.natsKill && nats) {
        const nk = r.natsKill;
        tasks.push(
          sleep(nk.atMs, signal).then(async () => {
            if (signal?.aborted) return;
            await nats.kill9();
            fig.natsKills++;
            note(`round ${r.round}: kill -9 nats-server at +${nk.atMs} ms, down ${nk.downMs} ms`);
            await sleep(nk.downMs, signal);
            await startNats();
          }),
        );
      }
      const settled = await Promise.allSettled(tasks);
      const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
      if (failed) throw failed.reason;
      await knownCheck(victim, victim.restarts);
      fig.rounds++;
      const took = Date.now() - t0;
      await sleep(Math.max(0, opts.roundMs - took), signal);
      roundTimes.push(Date.now() - t0);
      note(
        `round ${r.round}/${plan.length}: ${Date.now() - t0} ms; accepted ${fig.accepted}, capacity ${fig.capacity}, running now ${samples.at(-1)?.running.length ?? '?'}, max ${fig.maxRunning}/${opts.cap}`,
      );
    }
    const roundsEnd = Date.now();

    // -- every accepted launch reaches a final state in time ----------------------------------
    const slack = 2 * opts.reconcileIntervalMs;
    const outcomes = new Map<string, LaunchOutcome>();
    const readOutcome = async (a: Accepted): Promise<LaunchOutcome> => {
      try {
        const body = (await debugActor(a.launchId)) as {
          actor?: { status?: string; state?: unknown };
          history?: { at: string }[];
          code?: string;
        };
        const first = body.history?.[0]?.at;
        const requestedAt = first ? Date.parse(first) : a.sentAt;
        const lastAt = body.history?.at(-1)?.at;
        const status = body.actor?.status ?? (body.code ? `404 ${body.code}` : undefined);
        return {
          launchId: a.launchId,
          requestedAt,
          deadlineAt: requestedAt + opts.readyTimeoutMs + opts.ttlMs + slack,
          status,
          state: body.actor?.state,
          finalAt: status === 'done' && lastAt ? Date.parse(lastAt) : undefined,
        };
      } catch (err) {
        return {
          launchId: a.launchId,
          requestedAt: a.sentAt,
          deadlineAt: a.sentAt + opts.readyTimeoutMs + opts.ttlMs + slack,
          status: undefined,
          state: undefined,
          finalAt: undefined,
          error: errText(err),
        };
      }
    };
    const lastDeadline = Math.max(
      roundsEnd,
      ...accepted.map((a) => a.sentAt + opts.readyTimeoutMs + opts.ttlMs + slack),
    );
    note(
      `rounds done; waiting for ${accepted.length} launches to finish (until ${Math.round((lastDeadline - Date.now()) / 1000)} s from now)`,
    );
    for (let pass = 0; !signal?.aborted; pass++) {
      const open = accepted.filter((a) => outcomes.get(a.launchId)?.status !== 'done');
      if (open.length === 0) break;
      for (const o of await mapLimit(open, 8, readOutcome)) outcomes.set(o.launchId, o);
      const stillOpen = [...outcomes.values()].filter((o) => o.status !== 'done');
      if (stillOpen.length === 0) break;
      if (Date.now() > Math.max(...stillOpen.map((o) => o.deadlineAt)) + 2000) break;
      await sleep(1000, signal);
    }

    // -- after the TTLs: no machine and no VM process left ---------------------------------------
    const settleBy = roundsEnd + opts.readyTimeoutMs + opts.ttlMs + slack;
    await waitUntil(
      async () => (await ledger()).every((m) => m.state === 'destroyed'),
      Math.max(0, settleBy - Date.now()),
      250,
      signal,
    );
    const finalLedger = await ledger().catch(() => latestLedger);
    writeFileSync(join(runDir, 'ledger.json'), JSON.stringify(finalLedger, null, 2));
    let vms = processesWithEnv(vmMarker) ?? [];
    if (vms.length > 0) {
      await sleep(2000);
      vms = processesWithEnv(vmMarker) ?? [];
    }

    // -- judge what can be judged while the landing app still answers --------------------------
    if (!signal?.aborted) {
      violations.push(...checkFinal([...outcomes.values()]));
      violations.push(...checkMachinesLeft(finalLedger));
      violations.push(
        ...checkProcessesLeft(
          vms.map((v) => ({ ...v, what: 'VM process' })),
          'after the TTLs',
        ),
      );
    }
    violations.push(...checkCap(samples, opts.cap));
    violations.push(...checkOneMachinePerLaunch(finalLedger));
    violations.push(...checkKnown(probes));
    violations.push(...checkHttp(answers));
    fig.machinesCreated = finalLedger.length;
    fig.duplicates = new Set(
      violations.filter((v) => v.check === 'oneMachinePerLaunch').flatMap((v) => v.launchIds ?? []),
    ).size;
    fig.lost = new Set(probes.filter((p) => p.status === 404).map((p) => p.launchId)).size;
    fig.notFinal = violations.filter((v) => v.check === 'final').length;
    fig.machinesLeft = finalLedger.filter((m) => m.state !== 'destroyed').length;
    fig.processesLeft = vms.length;

    const stats = await flyAdmin('/stats').catch(() => undefined);
    const st = (stats?.body ?? {}) as {
      faults?: Record<string, number>;
      rateLimited?: Record<string, number>;
    };
    fig.faultsByKind = st.faults ?? {};
    fig.faultsInjected = Object.values(fig.faultsByKind).reduce((a, b) => a + b, 0);
    fig.rateLimited = Object.values(st.rateLimited ?? {}).reduce((a, b) => a + b, 0);

    // Evidence: each violating launch's stored facts (debug endpoint) and its ledger rows.
    const suspects = [...new Set(violations.flatMap((v) => v.launchIds ?? []))].slice(
      0,
      EVIDENCE_LAUNCHES,
    );
    for (const launchId of suspects) {
      const machines = finalLedger.filter(
        (m) => launchOf(m)?.toUpperCase() === launchId.toUpperCase(),
      );
      const vms: Record<string, unknown> = {};
      for (const m of machines)
        vms[m.id] = await debugActor(m.id, 'vm').catch((err: unknown) => ({ error: errText(err) }));
      evidence.push({
        launchId,
        vms,
        debug: await debugActor(launchId).catch((err: unknown) => ({ error: errText(err) })),
        view: await publicView(launchId).catch((err: unknown) => ({ error: errText(err) })),
        machines,
      });
    }
  } catch (err) {
    harnessError = errText(err);
    note(`harness error: ${harnessError}`);
  } finally {
    aborted = signal?.aborted ?? false;
    if (aborted) note('interrupted: stopping everything');
    await stopAll();
    // The store, read back with the landing app stopped (NATS: before the broker stops).
    try {
      if (!harnessError || opts.mode === 'file' || nats?.running) {
        const events = await readStore();
        fig.storeEvents = events.length;
        fig.storeStreams = new Set(events.map((e) => e.stream)).size;
        violations.push(...checkStore(events));
      }
    } catch (err) {
      violations.push({
        check: 'store',
        message: `could not read the store back: ${errText(err)}`,
      });
    }
    await nats?.stop(10_000).catch(() => undefined);
    // Logs of every process, and exits nobody asked for.
    for (const f of readdirSync(runDir).filter((n) => n.endsWith('.log'))) {
      violations.push(...scanLog(f, readFileSync(join(runDir, f), 'utf8')));
    }
    violations.push(
      ...checkExits(
        [...(nats ? [nats] : []), flylocal, ...landings.map((l) => l.proc)].flatMap((p) => p.exits),
      ),
    );
    // Nothing of this run may outlive it.
    const left = [
      ...everyPid().filter((p) => pidAlive(p.pid)),
      ...(processesWithEnv(vmMarker) ?? []).map((v) => ({ ...v, what: 'VM process' })),
    ];
    violations.push(...checkProcessesLeft(left, 'after the harness stopped everything'));
    fig.processesLeft += left.length;
  }

  fig.roundMsAvg = roundTimes.length
    ? Math.round(roundTimes.reduce((a, b) => a + b, 0) / roundTimes.length)
    : 0;
  fig.durationMs = Date.now() - started;
  const failed = violations.length > 0 || harnessError !== undefined;
  const kept = opts.keep || failed || aborted;
  const report: ChaosReport = {
    options: opts,
    command,
    runDir,
    kept,
    aborted,
    harnessError,
    figures: fig,
    violations,
    evidence,
  };
  writeFileSync(join(runDir, 'journal.log.txt'), journal.join('\n') + '\n');
  writeFileSync(
    join(runDir, 'samples.ndjson'),
    samples.map((s) => JSON.stringify({ at: s.at, running: s.running.length })).join('\n') + '\n',
  );
  writeFileSync(
    join(runDir, 'report.json'),
    JSON.stringify({ ...report, answers, probes }, null, 2),
  );
  if (!kept) rmSync(runDir, { recursive: true, force: true });
  return report;
}

/** The report as a table (the CLI prints it; tests print it on failure). */
export function formatReport(r: ChaosReport): string {
  const f = r.figures;
  const byCheck = new Map<CheckName, number>();
  for (const v of r.violations) byCheck.set(v.check, (byCheck.get(v.check) ?? 0) + 1);
  const rows: [string, string][] = [
    ['seed', String(r.options.seed)],
    ['mode', `${r.options.mode} (${r.options.regions.join(',')})`],
    ['faults', r.options.faults],
    ['rounds', `${f.rounds} (avg ${f.roundMsAvg} ms per round)`],
    ['launches sent', String(f.launchesSent)],
    ['  202 accepted', String(f.accepted)],
    ['  503 CAPACITY', String(f.capacity)],
    ['  other answers', JSON.stringify(f.otherAnswers)],
    ['  cut by a kill', String(f.cutByKill)],
    ['  held until restarted', String(f.waitedForRestart)],
    ['landing kills', String(f.landingKills)],
    ['nats kills', String(f.natsKills)],
    ['faults injected', `${f.faultsInjected} ${JSON.stringify(f.faultsByKind)}`],
    ['rate-limited (429)', String(f.rateLimited)],
    ['ledger samples', `${f.samples} (errors ${f.sampleErrors}, max gap ${f.maxSampleGapMs} ms)`],
    ['max running vs cap', `${f.maxRunning} / ${f.cap}`],
    ['machines created', String(f.machinesCreated)],
    ['duplicates', String(f.duplicates)],
    ['lost (unknown after restart)', String(f.lost)],
    ['not final in time', String(f.notFinal)],
    ['machines left', String(f.machinesLeft)],
    ['processes left', String(f.processesLeft)],
    ['store', `${f.storeEvents} events in ${f.storeStreams} streams`],
    ['duration', `${Math.round(f.durationMs / 1000)} s`],
  ];
  const w = Math.max(...rows.map(([k]) => k.length));
  const lines = rows.map(([k, v]) => `  ${k.padEnd(w)}  ${v}`);
  lines.push('', '  check                 violations');
  for (const c of CHECKS) lines.push(`  ${c.padEnd(22)}${byCheck.get(c) ?? 0}`);
  if (r.aborted)
    lines.push(
      '',
      `  INTERRUPTED after ${f.rounds} round(s): the final, machinesLeft and processesLeft-after-TTL checks did not run`,
    );
  if (r.harnessError) lines.push('', `  HARNESS ERROR: ${r.harnessError}`);
  if (r.violations.length > 0) {
    lines.push('', `  ${r.violations.length} violation(s):`);
    for (const v of r.violations.slice(0, 40)) lines.push(`  - [${v.check}] ${v.message}`);
    if (r.violations.length > 40) lines.push(`  … ${r.violations.length - 40} more in report.json`);
  }
  return lines.join('\n');
}

/** Each violating launch's stored facts and ledger rows, compactly (report.json has all of it). */
export function formatEvidence(r: ChaosReport): string {
  const out: string[] = [];
  for (const e of r.evidence) {
    const d = e.debug as {
      actor?: { status?: string; state?: unknown };
      history?: {
        version: number;
        at: string;
        type: string;
        data: unknown;
        meta?: { instance?: string };
      }[];
      error?: string;
    };
    const v = e.view as { status?: string; reason?: string; at?: string } | undefined;
    out.push(
      `  launch ${e.launchId}: actor ${d.actor?.status ?? '?'} ${JSON.stringify(d.actor?.state ?? d.error ?? null)}; visitor sees ${v?.status ?? '?'}${v?.reason ? ` (${v.reason})` : ''}${v?.at ? ` since ${v.at}` : ''}`,
    );
    for (const h of d.history ?? []) {
      out.push(
        `    v${h.version} ${h.at} ${h.type} ${JSON.stringify(h.data).slice(0, 160)} [${h.meta?.instance ?? ''}]`,
      );
    }
    for (const m of e.machines) {
      out.push(`    ledger: ${m.id} ${m.name} ${m.state} (${m.states.join(' → ')})`);
      const vm = e.vms?.[m.id] as
        | {
            actor?: { status?: string; state?: unknown };
            history?: {
              version: number;
              at: string;
              type: string;
              data: unknown;
              meta?: { instance?: string };
            }[];
          }
        | undefined;
      if (!vm) continue;
      out.push(
        `    vm.${m.id}: actor ${vm.actor?.status ?? '?'} ${JSON.stringify(vm.actor?.state ?? null)}`,
      );
      for (const h of vm.history ?? [])
        out.push(
          `      v${h.version} ${h.at} ${h.type} ${JSON.stringify(h.data).slice(0, 140)} [${h.meta?.instance ?? ''}]`,
        );
    }
    if (e.machines.length === 0) out.push('    ledger: no machine');
  }
  return out.join('\n');
}
