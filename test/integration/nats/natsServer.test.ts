/**
 * The nats-server harness itself: a server on its own free port with JetStream, a SIGKILL that
 * really ends the process, a restart on the same port and store that keeps the data, and a
 * cleanup that leaves no process and no directory behind.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { NatsServer, processAlive } from '../../support/natsServer.js';
import { NATS_SERVER, needs } from '../../support/require.js';
import { connectTo, drainAll } from './helpers.js';
import { connectNats } from '../../../src/adapters/nats/connection.js';
import { StoreUnavailableError } from '../../../src/shared/errors.js';
import { logger } from './helpers.js';

const HAVE_NATS = needs('nats-server', NATS_SERVER);

/** Pids of running nats-server processes whose command line mentions `needle`. */
function serversMentioning(needle: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmd = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (cmd.includes('nats-server') && cmd.includes(needle) && processAlive(Number(entry)))
        pids.push(Number(entry));
    } catch {
      // The process ended while we looked.
    }
  }
  return pids;
}

describe.skipIf(!HAVE_NATS)('nats-server harness', () => {
  it('starts on a free port (never 4222) with JetStream, survives kill -9 + restart with its data, and cleans up', async () => {
    const server = await NatsServer.start();
    const pid = server.pid!;
    const configDir = server.storeDir.replace(/\/store$/, '');
    try {
      expect(server.port).not.toBe(4222);
      expect(processAlive(pid)).toBe(true);
      const nc = await connectTo(server.url, 'harness');
      const jsm = await jetstreamManager(nc);
      await jsm.streams.add({ name: 'HARNESS', subjects: ['harness.>'] });
      await jetstream(nc).publish('harness.a', 'kept');
      await drainAll(nc);

      await server.kill();
      expect(server.running).toBe(false);
      expect(processAlive(pid)).toBe(false);
      await expect(
        connectNats({ servers: server.url, name: 'refused', logger, timeoutMs: 1000 }),
      ).rejects.toBeInstanceOf(StoreUnavailableError);

      await server.start();
      expect(server.pid).not.toBe(pid);
      const nc2 = await connectTo(server.url, 'harness-again');
      const msg = await (
        await jetstreamManager(nc2)
      ).streams.getMessage('HARNESS', { last_by_subj: 'harness.a' });
      expect(msg?.string()).toBe('kept');
      await drainAll(nc2);
    } finally {
      await server.cleanup();
    }
    expect(server.running).toBe(false);
    expect(processAlive(server.pid ?? pid)).toBe(false);
    expect(serversMentioning(configDir)).toEqual([]);
    expect(existsSync(configDir)).toBe(false);
  });

  it('stops gracefully and picks distinct ports for servers started together', async () => {
    const servers = await Promise.all([NatsServer.start(), NatsServer.start()]);
    try {
      expect(new Set(servers.map((s) => s.port)).size).toBe(2);
      const pids = servers.map((s) => s.pid!);
      await Promise.all(servers.map((s) => s.stop()));
      expect(pids.filter(processAlive)).toEqual([]);
    } finally {
      await Promise.all(servers.map((s) => s.cleanup()));
    }
  });
});
