/**
 * The landing app's entry: parse the environment, build the adapters, boot, listen, and shut down
 * cleanly on SIGTERM/SIGINT (SSE streams closed, effects in flight given a moment, files flushed).
 */
import { loadEnvOrExit } from '../shared/env.js';
import { createLogger } from '../shared/log.js';
import { errorMessage } from '../shared/errors.js';
import { toConfig, whereEnv } from './config.js';
import { buildPorts } from './wiring.js';
import { createWhere } from './system.js';
import { WhereMetrics } from './metrics.js';

const cfg = toConfig(loadEnvOrExit(whereEnv, 'where'));
const log = createLogger({ name: 'where', level: cfg.logLevel, pretty: cfg.logPretty });

async function main(): Promise<void> {
  // One registry for this process: the Fly client reports into the same one the app serves.
  const metrics = new WhereMetrics({ now: () => Date.now() });
  const ports = await buildPorts(cfg, log, { flyObserver: metrics.fly });
  const system = await createWhere(cfg, ports, { metrics });
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    const force = setTimeout(() => {
      log.error('shutdown took too long; exiting');
      process.exit(1);
    }, 20_000);
    force.unref();
    await system.stop();
    log.info('stopped');
    // Let the process end on its own: process.exit() can hang in the logger's final flush when
    // stdout is a pipe whose reader is gone. The fallback only fires if something still holds on.
    process.exitCode = 0;
    setTimeout(() => process.exit(0), 3000).unref();
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
  const { publicUrl, privateUrl } = await system.start();
  log.info(
    {
      publicUrl,
      privateUrl,
      instance: cfg.instance,
      region: cfg.region,
      store: cfg.nats ? 'nats' : 'file',
    },
    'listening',
  );
  if (cfg.local && !process.env.DEBUG_TOKEN) {
    log.info(
      `debug endpoint: ${privateUrl}/debug/actors  (Authorization: Bearer ${cfg.debugToken})`,
    );
  }
  process.send?.({
    type: 'ready',
    publicUrl,
    privateUrl,
    instance: cfg.instance,
    debugToken: cfg.local ? cfg.debugToken : undefined,
  });
}

main().catch((err: unknown) => {
  log.fatal({ err: errorMessage(err) }, 'could not start');
  process.exit(1);
});
