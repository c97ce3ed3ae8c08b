/** Runs the port contracts against the in-memory adapters. */
import { MemoryEventStore } from '../../src/adapters/memory/memoryEventStore.js';
import { MemoryEventBus } from '../../src/adapters/memory/memoryEventBus.js';
import {
  MemoryCapacityLedger,
  MemoryLeases,
  MemoryPresence,
} from '../../src/adapters/memory/memoryCoordination.js';
import { eventStoreContract } from './eventStore.contract.js';
import { eventBusContract } from './eventBus.contract.js';
import { capacityContract, leasesContract, presenceContract } from './coordination.contract.js';

eventStoreContract('memory', async () => ({ store: new MemoryEventStore() }));
eventBusContract('memory', async () => ({ bus: new MemoryEventBus() }));
capacityContract('memory', async () => ({ ledger: new MemoryCapacityLedger() }));
leasesContract('memory', async () => ({ leases: new MemoryLeases() }));
presenceContract('memory', async () => ({ presence: new MemoryPresence() }));
