/**
 * The core-NATS bus beyond its contract: junk payloads are dropped (and later messages still
 * arrive), a throwing subscriber does not break delivery, subscriptions come back after the server
 * restarts, and misuse (wildcard publish, publish after close) fails loudly with a typed error.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NatsConnection } from '@nats-io/transport-node';
import { NatsEventBus } from '../../src/adapters/nats/natsEventBus.js';
import { StoreUnavailableError } from '../../src/shared/errors.js';
import { NatsServer } from '../support/natsServer.js';
import { NATS_SERVER, needs } from '../support/require.js';
import { connectTo, drainAll, logger } from './helpers.js';

const HAVE_NATS = needs('nats-server', NATS_SERVER);

describe.skipIf(!HAVE_NATS)('NatsEventBus', () => {
  let server: NatsServer;
  let ncPub: NatsConnection;
  let ncSub: NatsConnection;
  let pub: NatsEventBus;
  let sub: NatsEventBus;
  let k = 0;
  const subject = () => `wm.presence.test${k++}.i1`;

  beforeAll(async () => {
    server = await NatsServer.start();
    [ncPub, ncSub] = await Promise.all([
      connectTo(server.url, 'pub'),
      connectTo(server.url, 'sub'),
    ]);
    pub = new NatsEventBus(ncPub, { logger });
    sub = new NatsEventBus(ncSub, { logger });
  });
  afterAll(async () => {
    await pub?.close();
    await sub?.close();
    if (ncPub && ncSub) await drainAll(ncPub, ncSub);
    await server?.cleanup();
  });

  it('drops a payload that is not JSON and keeps delivering the next ones', async () => {
    const s = subject();
    const got: unknown[] = [];
    sub.subscribe(s, (p) => got.push(p));
    await ncSub.flush();
    ncPub.publish(s, 'not json {');
    ncPub.publish(s, new Uint8Array([0xff, 0xfe]));
    pub.publish(s, { visitors: 3 });
    await expect.poll(() => got.length, { timeout: 10_000 }).toBe(1);
    expect(got).toEqual([{ visitors: 3 }]);
  });

  it('keeps delivering after a subscriber throws', async () => {
    const s = subject();
    const got: number[] = [];
    sub.subscribe(s, (p) => {
      got.push(p as number);
      if (p === 1) throw new Error('subscriber bug');
    });
    await ncSub.flush();
    pub.publish(s, 1);
    pub.publish(s, 2);
    await expect.poll(() => got, { timeout: 10_000 }).toEqual([1, 2]);
  });

  it('resubscribes after the server is killed and restarted', async () => {
    const s = subject();
    const got: unknown[] = [];
    sub.subscribe(s, (p) => got.push(p));
    await ncSub.flush();
    await server.restart();
    // Publish until one arrives: both clients must have reconnected and the subscription be back.
    let n = 0;
    await expect
      .poll(
        () => {
          pub.publish(s, n++);
          return got.length;
        },
        { timeout: 20_000, interval: 100 },
      )
      .toBeGreaterThan(0);
  });

  it('refuses a wildcard publish, and any publish after close, with typed errors', async () => {
    expect(() => pub.publish('wm.presence.*', 1)).toThrow(RangeError);
    expect(() => pub.publish('wm..x', 1)).toThrow(RangeError);
    expect(() => sub.subscribe('wm. bad', () => undefined)).toThrow(RangeError);
    const nc = await connectTo(server.url, 'closing');
    const bus = new NatsEventBus(nc, { logger, ownsConnection: true });
    await bus.close();
    expect(nc.isClosed()).toBe(true);
    expect(() => bus.publish('wm.presence.x.y', 1)).toThrow(StoreUnavailableError);
  });
});
