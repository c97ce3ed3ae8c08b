/**
 * Entry point of the program every Useless Machine VM runs: read the env, listen, check readiness,
 * call home, and switch off on TTL, when the viewers are done, or on SIGTERM/SIGINT.
 */
import { readFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { SystemTimers, systemClock } from '../adapters/system/systemClock.js';
import { loadEnvOrExit } from '../shared/env.js';
import { errorMessage } from '../shared/errors.js';
import { createLogger, type Logger } from '../shared/log.js';
import { httpFetch } from './httpFetch.js';
import { buildApp } from './app.js';
import { listenHost, uselessEnv } from './config.js';
import { claimedEnv, fetchClaim, pooledEnv } from './poolClaim.js';

// A pooled machine learns its launch from its claim before anything else (ADR 0022).
if (process.env.WM_POOL_REGION) await takeClaim();
const config = loadEnvOrExit(uselessEnv, 'useless');
// JSON lines always: the platform reads a VM's output, and the bundle carries no pretty printer.
// Every line names the launch (and its trace), so one grep follows a click into this VM.
const log = createLogger({ name: 'useless', level: config.logLevel, pretty: false }).child({
  launchId: config.launchId,
  machineId: config.machineId,
  ...(config.trace ? { traceId: config.trace.traceId } : {}),
});

/** The browser bundle sits next to the server bundle (dist/web/), or in dist/ when run from source. */
async function loadScript(logger: Logger): Promise<string | undefined> {
  for (const candidate of ['./web/machine.js', '../../dist/web/machine.js']) {
    try {
      return await readFile(new URL(candidate, import.meta.url), 'utf8');
    } catch {
      // try the next place
    }
  }
  logger.warn(
    'browser script not found (run the build); the page will be served without animation',
  );
  return undefined;
}

/** Our own listener as seen from this machine: loopback when bound to a wildcard address. */
function selfUrl(address: AddressInfo): string {
  const host =
    address.address === '::' || address.address === '0.0.0.0' ? '127.0.0.1' : address.address;
  return `http://${host.includes(':') ? `[${host}]` : host}:${address.port}`;
}

function exit(code: number): never {
  log.flush();
  process.exit(code);
}

const machine = buildApp({
  config,
  log,
  clock: systemClock,
  timers: new SystemTimers(systemClock),
  fetch: httpFetch,
  exit,
  script: await loadScript(log),
});

let host = listenHost(config);
try {
  await machine.app.listen({ host, port: config.port });
} catch (err) {
  // A host without IPv6 cannot bind `::`; IPv4 everywhere is the next best thing.
  if (host === '::' && err instanceof Error && 'code' in err && err.code === 'EAFNOSUPPORT') {
    host = '0.0.0.0';
    await machine.app.listen({ host, port: config.port });
  } else {
    log.fatal({ err: errorMessage(err), host, port: config.port }, 'cannot listen');
    exit(1);
  }
}

let signals = 0;
const onSignal = (signal: NodeJS.Signals): void => {
  signals++;
  if (signals > 1) {
    log.warn({ signal }, 'second signal: exiting now');
    exit(0);
  }
  log.info({ signal }, 'signal received');
  void machine.stop('signal');
};
process.on('SIGTERM', onSignal);
process.on('SIGINT', onSignal);

const address = machine.app.server.address();
if (address === null || typeof address === 'string') {
  log.fatal({ address }, 'listening on an unexpected address');
  exit(1);
}
machine.start(selfUrl(address)).catch((err: unknown) => {
  log.fatal({ err: errorMessage(err) }, 'lifecycle failed');
  exit(1);
});

/** Fetch this pooled machine's claim into the environment, or stop: nobody claimed it. */
async function takeClaim(): Promise<void> {
  const pool = loadEnvOrExit(pooledEnv, 'useless');
  const plog = createLogger({ name: 'useless', level: 'info', pretty: false }).child({
    machineId: pool.machineId,
    pool: pool.region,
  });
  const clock = systemClock;
  const result = await fetchClaim({
    fetch: httpFetch,
    clock,
    sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
    log: plog,
    pool,
  });
  if (!result.ok) {
    // Unclaimed or refused: exit 0, nothing to retry (the pool retires it). No answer at all:
    // exit 1, and the restart policy asks again.
    plog.warn(
      { reason: result.reason, status: result.status },
      'no claim for this pooled machine; exiting',
    );
    plog.flush();
    process.exit(result.reason === 'budget' ? 1 : 0);
  }
  plog.info({ launchId: result.claim.launchId, attempts: result.attempts }, 'claimed by a launch');
  Object.assign(process.env, claimedEnv(result.claim));
}
