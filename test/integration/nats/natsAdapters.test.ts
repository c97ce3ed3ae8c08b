/** openNatsAdapters(): one connection, every adapter working on it, and close() releasing it all. */
import { describe, expect, it } from 'vitest';
import { openNatsAdapters } from '../../../src/adapters/nats/natsAdapters.js';
import { StoreUnavailableError } from '../../../src/shared/errors.js';
import { NatsServer } from '../../support/natsServer.js';
import { aStream } from '../../support/events.js';
import { NATS_SERVER, needs } from '../../support/require.js';
import { ev, logger } from './helpers.js';

const HAVE_NATS = needs('nats-server', NATS_SERVER);
const T0 = Date.UTC(2026, 0, 1);

describe.skipIf(!HAVE_NATS)('openNatsAdapters', () => {
  it('opens store, ledger, leases and presence on one connection and closes them together', async () => {
    const server = await NatsServer.start();
    try {
      const nats = await openNatsAdapters({
        url: `${server.url}, ${server.url}`,
        name: 'where-test',
        logger,
        stream: { name: 'WM_WIRED' },
      });
      const s = aStream('launch');
      expect(await nats.store.append(s, [ev(s)], { expectedVersion: 0 })).toMatchObject({
        version: 1,
      });
      expect((await nats.ledger.reserve('l1', 1, T0, T0 + 1000)).ok).toBe(true);
      expect(await nats.leases.acquire('autospawner', 'i1', 1000, T0)).toBe(true);
      await nats.presence.report('i1', 2, 1000, T0);
      expect(await nats.presence.total(T0)).toBe(2);

      await nats.close();
      expect(nats.nc.isClosed()).toBe(true);
      await expect(nats.store.read(s)).rejects.toBeInstanceOf(StoreUnavailableError);
    } finally {
      await server.cleanup();
    }
  });

  it('fails with StoreUnavailableError when nothing listens at the URL', async () => {
    const server = await NatsServer.start();
    const url = server.url;
    await server.cleanup();
    await expect(openNatsAdapters({ url, name: 'nobody', logger })).rejects.toBeInstanceOf(
      StoreUnavailableError,
    );
  });
});
