/**
 * KV coordination beyond the contracts: the cap holds under a burst from four connections, names
 * that are not valid KV keys round-trip, and a closed connection fails with StoreUnavailableError.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NatsConnection } from '@nats-io/transport-node';
import {
  keyFor,
  nameForKey,
  NatsCapacityLedger,
  NatsLeases,
  NatsPresence,
} from '../../../src/adapters/nats/natsKv.js';
import { StoreUnavailableError } from '../../../src/shared/errors.js';
import { NatsServer } from '../../support/natsServer.js';
import { NATS_SERVER, needs } from '../../support/require.js';
import { connectTo, drainAll, logger } from './helpers.js';

const HAVE_NATS = needs('nats-server', NATS_SERVER);
const T0 = Date.UTC(2026, 0, 1);

describe.skipIf(!HAVE_NATS)('NATS KV coordination', () => {
  let server: NatsServer;
  let ncs: NatsConnection[] = [];

  beforeAll(async () => {
    server = await NatsServer.start();
    ncs = await Promise.all([0, 1, 2, 3].map((i) => connectTo(server.url, `kv${i}`)));
  });
  afterAll(async () => {
    await drainAll(...ncs);
    await server?.cleanup();
  });

  it('never grants more than the limit to a burst from four connections', async () => {
    const ledgers = await Promise.all(
      ncs.map((nc) => NatsCapacityLedger.open(nc, { logger, key: 'burst' })),
    );
    const results = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        ledgers[i % ledgers.length]!.reserve(`launch-${i}`, 7, T0, T0 + 60_000),
      ),
    );
    expect(results.filter((r) => r.ok)).toHaveLength(7);
    for (const r of results) expect(r.live).toBeLessThanOrEqual(7);
    expect(await ledgers[0]!.holds(T0)).toHaveLength(7);
    // Releasing one frees exactly one slot.
    const winner = results.findIndex((r) => r.ok);
    await ledgers[3]!.release(`launch-${winner}`);
    const again = await Promise.all([
      ledgers[1]!.reserve('late-a', 7, T0, T0 + 1),
      ledgers[2]!.reserve('late-b', 7, T0, T0 + 1),
    ]);
    expect(again.filter((r) => r.ok)).toHaveLength(1);
  });

  it('stores names that are not valid KV keys under an encoded key, and gives them back', async () => {
    for (const name of [
      'launch.01J/abc',
      'with space',
      'ünïcode',
      '=starts-with-equals',
      'plain_name-1',
    ]) {
      expect(nameForKey(keyFor(name))).toBe(name);
      expect(keyFor(name)).toMatch(/^[-/_=.A-Za-z0-9]+$/);
    }
    const leases = await NatsLeases.open(ncs[0]!, { logger });
    expect(await leases.acquire('auto spawner/leader', 'instance a', 1000, T0)).toBe(true);
    expect(await leases.holder('auto spawner/leader', T0 + 1)).toBe('instance a');
    const presence = await NatsPresence.open(ncs[1]!, { logger, bucket: 'presence_names' });
    await presence.report('fra:instance.1', 4, 1000, T0);
    expect(await presence.instances(T0)).toEqual(['fra:instance.1']);
    expect(await presence.total(T0)).toBe(4);
  });

  it('fails with StoreUnavailableError once its connection is closed', async () => {
    const nc = await connectTo(server.url, 'kv-closing');
    const ledger = await NatsCapacityLedger.open(nc, { logger, key: 'closing' });
    const leases = await NatsLeases.open(nc, { logger });
    await nc.close();
    await expect(ledger.reserve('x', 1, T0, T0 + 1)).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(leases.holder('x', T0)).rejects.toBeInstanceOf(StoreUnavailableError);
  });
});
