/**
 * Runs every port contract against the NATS adapters on a real nats-server (our own, on a free port):
 * the JetStream event store (durable: reopen = a new connection), and the KV ledger, leases and
 * presence with a second connection as the rival.
 */
import { afterAll, beforeAll, describe } from 'vitest';
import type { NatsConnection } from '@nats-io/transport-node';
import { connectNats } from '../../src/adapters/nats/connection.js';
import { JetStreamEventStore } from '../../src/adapters/nats/jetStreamEventStore.js';
import { NatsCapacityLedger, NatsLeases, NatsPresence } from '../../src/adapters/nats/natsKv.js';
import { silentLogger } from '../../src/shared/log.js';
import { NatsServer } from '../support/natsServer.js';
import { NATS_SERVER, needs } from '../support/require.js';
import { eventStoreContract, type StoreHarness } from './eventStore.contract.js';
import { capacityContract, leasesContract, presenceContract } from './coordination.contract.js';

const HAVE_NATS = needs('nats-server', NATS_SERVER);
const logger = silentLogger();

describe.skipIf(!HAVE_NATS)('NATS adapters against a real nats-server', () => {
  let server: NatsServer | undefined;
  beforeAll(async () => {
    server = await NatsServer.start();
  });
  afterAll(async () => {
    await server?.cleanup();
  });

  let n = 0;
  const conn = (name: string): Promise<NatsConnection> =>
    connectNats({ servers: server!.url, name: `${name}-${n++}`, logger });
  const closeAll = async (...ncs: NatsConnection[]) => {
    await Promise.all(ncs.filter((nc) => !nc.isClosed()).map((nc) => nc.drain()));
  };

  eventStoreContract(
    'jetstream',
    async () => {
      const h: StoreHarness = {
        store: await JetStreamEventStore.open(await conn('store'), {
          logger,
          ownsConnection: true,
        }),
        reopen: async () => {
          await h.store.close();
          return JetStreamEventStore.open(await conn('store-reopened'), {
            logger,
            ownsConnection: true,
          });
        },
      };
      return h;
    },
    { durable: true },
  );

  capacityContract('nats kv', async () => {
    const key = `ledger-${n++}`; // a fresh cap per test: holds from other tests must not count
    const [a, b] = await Promise.all([conn('ledger'), conn('ledger2')]);
    return {
      ledger: await NatsCapacityLedger.open(a, { logger, key }),
      ledger2: await NatsCapacityLedger.open(b, { logger, key }),
      cleanup: () => closeAll(a, b),
    };
  });

  leasesContract('nats kv', async () => {
    const [a, b] = await Promise.all([conn('leases'), conn('leases2')]);
    return {
      leases: await NatsLeases.open(a, { logger }),
      leases2: await NatsLeases.open(b, { logger }),
      cleanup: () => closeAll(a, b),
    };
  });

  presenceContract('nats kv', async () => {
    const nc = await conn('presence');
    // A bucket per test: total() sums every instance in the bucket.
    return {
      presence: await NatsPresence.open(nc, { logger, bucket: `presence_${n++}` }),
      cleanup: () => closeAll(nc),
    };
  });
});
