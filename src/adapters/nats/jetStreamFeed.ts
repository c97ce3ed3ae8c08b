/**
 * The JetStream event store's live feeds: each delivers every event after its start, in order and
 * once, through ordered consumers it reopens from the last sequence it delivered whenever one ends,
 * so a feed outlives any outage without a gap.
 */
import type { Consumer, ConsumerMessages } from '@nats-io/jetstream';
import type { StoredEvent } from '../../events/envelope.js';
import { errorMessage } from '../../shared/errors.js';
import { onHeartbeatsMissed, VERSION_HEADER, type JetStreamIo } from './jetStreamIo.js';

interface Feed {
  stopped: boolean;
  last: number;
  messages: ConsumerMessages | undefined;
  wake: (() => void) | undefined;
  done: Promise<void>;
}

export class LiveFeeds {
  private readonly feeds = new Set<Feed>();

  constructor(private readonly io: JetStreamIo) {}

  /** Feed `onEvent` every event after `afterPosition`; returns a function that stops the feed. */
  open(afterPosition: number, onEvent: (event: StoredEvent) => void): () => void {
    const feed: Feed = {
      stopped: false,
      last: afterPosition,
      messages: undefined,
      wake: undefined,
      done: Promise.resolve(),
    };
    feed.done = this.run(feed, onEvent);
    this.feeds.add(feed);
    return () => this.stop(feed);
  }

  /** End every feed's current consumer: each reopens at once from where it was. */
  reopenAll(): void {
    for (const feed of this.feeds) feed.messages?.stop();
  }

  /** Stop every feed and wait until each has ended. */
  async stopAll(): Promise<void> {
    const feeds = [...this.feeds];
    for (const feed of feeds) this.stop(feed);
    await Promise.all(feeds.map((f) => f.done));
  }

  /**
   * Deliver every event after `feed.last`, in order, each once. Whenever the ordered consumer ends
   * (a reconnect, missed heartbeats, an error, the library giving up) this loop opens a new one from
   * `feed.last + 1` with a growing backoff, so the feed outlives any outage without a gap.
   */
  private async run(feed: Feed, onEvent: (event: StoredEvent) => void): Promise<void> {
    const { io } = this;
    let failures = 0;
    while (!feed.stopped) {
      let consumer: Consumer | undefined;
      try {
        consumer = await io.js.consumers.get(io.config.name, {
          filter_subjects: io.allSubjects,
          opt_start_seq: feed.last + 1,
        });
        if (feed.stopped) break;
        // Pull expiry 5 s: idle heartbeats every 2.5 s, so a consumer lost with its server (a killed
        // stream leader) is noticed and recreated within ~5 s even when our connection stays up.
        const messages = await consumer.consume({ max_messages: 256, expires: 5_000 });
        feed.messages = messages;
        // See JetStreamIo.scan(): a consumer stranded on a dead server is replaced, not waited for.
        onHeartbeatsMissed(messages, () => messages.stop());
        for await (const m of feed.messages) {
          failures = 0;
          if (feed.stopped) break;
          if (m.seq <= feed.last) continue;
          feed.last = m.seq;
          const { event } = io.decode(m.subject, m.seq, m.headers?.get(VERSION_HEADER), m.string());
          if (event) this.deliver(onEvent, event);
        }
        if (!feed.stopped) io.log.info({ after: feed.last }, 'event feed reopening');
      } catch (err) {
        if (feed.stopped || io.nc.isClosed()) break;
        io.log.warn({ err: errorMessage(err), after: feed.last }, 'event feed failed; reopening');
      } finally {
        feed.messages?.stop();
        feed.messages = undefined;
        if (consumer) io.forget(consumer);
      }
      if (feed.stopped || io.nc.isClosed()) break;
      await this.pause(feed, Math.min(5000, 50 * 2 ** failures++));
    }
  }

  /** A subscriber that throws is logged; the feed goes on. */
  private deliver(onEvent: (event: StoredEvent) => void, event: StoredEvent): void {
    try {
      onEvent(event);
    } catch (err) {
      this.io.log.error(
        { err: errorMessage(err), position: event.position },
        'event subscriber threw; the feed goes on',
      );
    }
  }

  /** Wait before reopening; stopping the feed cuts the wait short. */
  private async pause(feed: Feed, ms: number): Promise<void> {
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, ms);
      feed.wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
    feed.wake = undefined;
  }

  private stop(feed: Feed): void {
    if (feed.stopped) return;
    feed.stopped = true;
    feed.messages?.stop();
    feed.wake?.();
    this.feeds.delete(feed);
  }
}
