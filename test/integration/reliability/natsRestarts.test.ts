/**
 * G3, NATS restarts (CI size): actor streams appended at 100 events/s through the JetStream event
 * store while the nats-server is SIGKILLed and restarted 3 times on the same port and store; every
 * acknowledged append is in the stream exactly once, versions are gap-free per actor stream, and
 * a live subscriber saw each event once, in order. The 60 s / 10-kill figure is
 * bench/reliability/natsRestarts.ts.
 */
import { describe, expect, it } from 'vitest';
import { runNatsRestarts } from '../../../bench/reliability/natsRestarts.js';
import { NATS_SERVER, needs } from '../../support/require.js';

const HAVE_NATS = needs('nats-server', NATS_SERVER);

describe.skipIf(!HAVE_NATS)('G3: event store through repeated nats-server kill -9/restarts', () => {
  it(
    'loses no acknowledged event, stores none twice and keeps every actor stream gap-free',
    { timeout: 90_000 },
    async () => {
      const r = await runNatsRestarts({ durationMs: 15_000, ratePerS: 100, kills: 3, seed: 7 });
      const where = JSON.stringify({ ...r, outagesMs: r.outagesMs });
      expect(r.kills, where).toBe(3);
      expect(r.errors, where).toEqual([]);
      expect(r.issued, where).toBe(1500);
      expect(r.acked, where).toBe(r.issued);
      // Count msg ids in the stream: each acknowledged one once, nothing else.
      expect(r.lost, where).toBe(0);
      expect(r.storedTwice, where).toBe(0);
      expect(r.unacked, where).toBe(0);
      expect(r.stored, where).toBe(r.acked);
      expect(r.streamMessages, where).toBe(r.acked);
      // Per actor stream: versions 1..n in the order they were acknowledged.
      expect(r.gappedStreams, where).toBe(0);
      // The live feed rode out every crash.
      expect(r.feedMissing, where).toBe(0);
      expect(r.feedDuplicates, where).toBe(0);
      expect(r.feedReordered, where).toBe(0);
    },
  );
});
