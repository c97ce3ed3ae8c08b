/**
 * The tests' nats-server harness: the launcher in src/chaos/natsServer.ts (real servers with
 * JetStream on free ports and temp store dirs, alone or as a cluster), under the names tests import.
 */
export { NatsCluster, NatsServer, type NatsServerOptions } from '../../src/chaos/natsServer.js';
export { freePorts, pidAlive as processAlive } from '../../src/chaos/procs.js';
