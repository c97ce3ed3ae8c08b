/** Shared bits for the NATS adapter tests: connections to a test server, valid events, collectors. */
import type { NatsConnection } from '@nats-io/transport-node';
import { connectNats } from '../../../src/adapters/nats/connection.js';
import type { EventEnvelope } from '../../../src/events/envelope.js';
import { silentLogger } from '../../../src/shared/log.js';
import { anEvent } from '../../support/events.js';

export const logger = silentLogger();

let n = 0;

/** A connection that reconnects fast (tests kill servers and wait for the client to come back). */
export function connectTo(
  servers: string | readonly string[],
  name = 'test',
): Promise<NatsConnection> {
  return connectNats({
    servers,
    name: `${name}-${n++}`,
    logger,
    reconnectTimeWaitMs: 100,
    reconnectJitterMs: 100,
  });
}

/** A valid event for `stream` (explicit data, so it decodes whatever the builder's default is). */
export function ev(stream: string, visitors = 1): EventEnvelope {
  return anEvent(stream, 'presence.changed', { visitors, roll: 0 });
}

export async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

export async function drainAll(...ncs: NatsConnection[]): Promise<void> {
  await Promise.all(ncs.filter((nc) => !nc.isClosed()).map((nc) => nc.drain()));
}
