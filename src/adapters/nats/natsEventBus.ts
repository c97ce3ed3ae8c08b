/**
 * Adapter: EventBus over core NATS, for facts that need not last (presence heartbeats, live debug
 * feed). JSON payloads; a payload that does not parse is dropped with a log line, never thrown at a
 * subscriber. Messages published while reconnecting are buffered by the client, not lost silently.
 */
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import type { EventBus } from '../../ports/eventBus.js';
import { errorMessage, StoreUnavailableError } from '../../shared/errors.js';
import type { Logger } from '../../shared/log.js';
import { isConnectionGone } from './retry.js';

export interface NatsEventBusOptions {
  logger: Logger;
  /** Drain the connection in close(). Default false: whoever made the connection closes it. */
  ownsConnection?: boolean;
}

/** A message on the bus that is not JSON. */
export class BusPayloadError extends Error {
  readonly code = 'BUS_PAYLOAD';
  constructor(
    readonly subject: string,
    message: string,
  ) {
    super(`bad payload on ${subject}: ${message}`);
    this.name = 'BusPayloadError';
  }
}

const TOKEN = /^[^\s.*>]+$/;

/** A NATS subject: non-empty tokens without whitespace; with wildcards, `*` tokens and a final `>`. */
export function isValidSubject(subject: string, wildcards: boolean): boolean {
  const tokens = subject.split('.');
  return tokens.every(
    (t, i) => TOKEN.test(t) || (wildcards && (t === '*' || (t === '>' && i === tokens.length - 1))),
  );
}

export class NatsEventBus implements EventBus {
  private readonly subs = new Set<Subscription>();
  private readonly log: Logger;
  private closed = false;

  constructor(
    private readonly nc: NatsConnection,
    private readonly opts: NatsEventBusOptions,
  ) {
    this.log = opts.logger.child({ component: 'nats-bus' });
  }

  publish(subject: string, payload: unknown): void {
    if (!isValidSubject(subject, false)) {
      throw new RangeError(`cannot publish to subject ${JSON.stringify(subject)}`);
    }
    const body = JSON.stringify(payload);
    if (body === undefined) throw new TypeError(`payload for ${subject} is not JSON-serialisable`);
    if (this.closed) throw new StoreUnavailableError(`event bus is closed (publish to ${subject})`);
    try {
      this.nc.publish(subject, body);
    } catch (err) {
      if (isConnectionGone(err))
        throw new StoreUnavailableError(`cannot publish to ${subject}: ${errorMessage(err)}`, {
          cause: err,
        });
      throw err;
    }
  }

  subscribe(subject: string, onMessage: (payload: unknown, subject: string) => void): () => void {
    if (!isValidSubject(subject, true))
      throw new RangeError(`cannot subscribe to subject ${JSON.stringify(subject)}`);
    if (this.closed)
      throw new StoreUnavailableError(`event bus is closed (subscribe to ${subject})`);
    const sub = this.nc.subscribe(subject, {
      callback: (err, msg) => {
        if (err) {
          this.log.error({ subject, err: errorMessage(err) }, 'bus subscription failed');
          return;
        }
        let payload: unknown;
        try {
          payload = JSON.parse(msg.string());
        } catch (e) {
          const bad = new BusPayloadError(msg.subject, errorMessage(e));
          this.log.warn(
            { subject: msg.subject, code: bad.code, err: bad.message },
            'dropping a bus message that is not JSON',
          );
          return;
        }
        try {
          onMessage(payload, msg.subject);
        } catch (e) {
          this.log.error({ subject: msg.subject, err: errorMessage(e) }, 'bus subscriber threw');
        }
      },
    });
    this.subs.add(sub);
    return () => {
      if (!this.subs.delete(sub)) return;
      if (!sub.isClosed()) sub.unsubscribe();
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const sub of this.subs) if (!sub.isClosed()) sub.unsubscribe();
    this.subs.clear();
    if (this.opts.ownsConnection && !this.nc.isClosed()) await this.nc.drain();
    else if (!this.nc.isClosed()) await this.nc.flush().catch(() => undefined);
  }
}
