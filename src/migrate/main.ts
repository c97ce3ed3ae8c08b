/**
 * `npm run migrate -- --from file:<dir> --to nats://host:4222[,nats://…]` (on Fly: `node
 * dist/migrate.mjs …` inside the `where` machine): copies the file store's history into JetStream,
 * reads both back, prints a summary, and exits 0 when they agree, 1 when they do not or the copy
 * failed, 2 on bad flags. Credentials and stream settings come from the same variables as the app's.
 */
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { connectNats } from '../adapters/nats/connection.js';
import { ConfigError, parseEnv } from '../shared/env.js';
import { loggerOptions } from '../shared/log.js';
import { errorMessage } from '../shared/errors.js';
import { toConfig, whereEnv, type WhereConfig } from '../where/config.js';
import { migrateFileToJetStream, type MigrationReport } from './copy.js';

const USAGE = `usage: npm run migrate -- --from file:<dir> --to nats://<host>:4222[,nats://…] [--replicas <n>]
  --from file:<dir>   the file store's directory (WM_DATA_DIR: events.log and its archive segments)
  --to <urls>         the NATS servers, comma-separated (like NATS_URL)
  --replicas <n>      replicas of the streams if this run creates them (default WM_NATS_REPLICAS, 1)
Credentials: NATS_USER and NATS_PASSWORD, or NATS_TOKEN. Stream settings: WM_NATS_STREAM,
WM_NATS_ARCHIVE_MAX_AGE, WM_NATS_ARCHIVE_MAX_BYTES, as the landing app reads them.
The landing app must not be running on the file store (the store's lock says so).`;

function fail(msg: string): never {
  process.stderr.write(`migrate: ${msg}\n${USAGE}\n`);
  process.exit(2);
}

function formatReport(r: MigrationReport): string {
  const row = (name: string, p: MigrationReport['live']) =>
    `${name.padEnd(9)} ${String(p.streams).padStart(8)} ${String(p.events).padStart(9)} ${String(p.copied).padStart(8)} ${String(p.present).padStart(9)}`;
  const lines = [
    `part      ${'streams'.padStart(8)} ${'events'.padStart(9)} ${'copied'.padStart(8)} ${'present'.padStart(9)}`,
    row('live', r.live),
    row(`archive`, r.archive),
    `archive segments read: ${r.archive.segments}; facts JetStream holds after the file's last: ${r.newerInJetStream}`,
    "snapshots: not copied (their positions are the file store's; the first boot on NATS reads the stream and writes its own)",
    r.problems.length === 0
      ? `read back: both sides agree (${r.ms} ms)`
      : `read back: ${r.problems.length} problem(s):\n  ${r.problems.join('\n  ')}`,
  ];
  return lines.join('\n');
}

async function main(): Promise<number> {
  let values: { from?: string; to?: string; replicas?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      options: {
        from: { type: 'string' },
        to: { type: 'string' },
        replicas: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }));
  } catch (err) {
    fail(errorMessage(err));
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const from = /^file:(.+)$/.exec(values.from ?? '')?.[1];
  if (!from) fail('--from file:<dir> is required');
  const to = (values.to ?? '')
    .split(',')
    .map((u) => u.trim())
    .filter(Boolean);
  if (to.length === 0 || !to.every((u) => /^nats:\/\/[^/\s]+$/.test(u)))
    fail('--to nats://<host>:<port>[,nats://…] is required');
  if (values.replicas !== undefined && !/^[1-5]$/.test(values.replicas))
    fail('--replicas: a whole number from 1 to 5');
  // The app's own schema and derivation (credentials, stream name, archive bounds), from the same
  // variables; local mode only so that the app's other secrets are not asked for.
  let cfg: WhereConfig;
  try {
    cfg = toConfig(
      parseEnv(whereEnv, {
        ...pick(process.env, [
          'LOG_LEVEL',
          'NATS_USER',
          'NATS_PASSWORD',
          'NATS_TOKEN',
          'WM_NATS_STREAM',
          'WM_NATS_REPLICAS',
          'WM_NATS_ARCHIVE_MAX_AGE',
          'WM_NATS_ARCHIVE_MAX_BYTES',
        ]),
        ...(values.replicas === undefined ? {} : { WM_NATS_REPLICAS: values.replicas }),
        WM_LOCAL: '1',
        NATS_URL: to.join(','),
      }),
    );
  } catch (err) {
    if (err instanceof ConfigError) fail(err.message);
    throw err;
  }
  const nats = cfg.nats!;

  // Log lines on stderr; the summary alone on stdout.
  const log = pino(
    loggerOptions({ name: 'migrate', level: cfg.logLevel, pretty: false }),
    pino.destination(2),
  );
  const nc = await connectNats({
    servers: to,
    name: 'wm-migrate',
    logger: log,
    ...(nats.auth ? { auth: nats.auth } : {}),
  });
  try {
    const report = await migrateFileToJetStream({
      dataDir: from,
      nc,
      stream: { name: nats.stream, replicas: nats.replicas, archive: nats.archive },
      logger: log,
      onProgress: (p) => log.info(p, 'copying'),
    });
    process.stdout.write(`${formatReport(report)}\n`);
    return report.problems.length === 0 ? 0 : 1;
  } finally {
    await nc.drain();
  }
}

function pick(env: NodeJS.ProcessEnv, keys: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of keys) if (env[k] !== undefined) out[k] = env[k];
  return out;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`migrate: ${errorMessage(err)}\n`);
    process.exit(1);
  },
);
