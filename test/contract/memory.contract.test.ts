/** Runs the port contracts against the in-memory adapters. */
import { MemoryEventStore } from '../../src/adapters/memory/memoryEventStore.js';
import {
  MemoryCapacityLedger,
  MemoryLeases,
  MemoryPresence,
} from '../../src/adapters/memory/memoryCoordination.js';
import { eventStoreContract } from './eventStore.contract.js';
import { capacityContract, leasesContract, presenceContract } from './coordination.contract.js';

eventStoreContract('memory', async () => ({ store: new MemoryEventStore() }));
capacityContract('memory', async () => ({ ledger: new MemoryCapacityLedger() }));
leasesContract('memory', async () => ({ leases: new MemoryLeases() }));
presenceContract('memory', async () => ({ presence: new MemoryPresence() }));
