/**
 * The cap sampler: flylocal's ledger every 100 ms, one request at a time, kept as the machines
 * running a VM at each sample (what the cap check judges) and as the latest ledger seen.
 */
import { runningOf, type CapSample, type LedgerMachine } from './checks.js';
import { sleep } from './procs.js';
import type { ChaosFigures } from './report.js';

const SAMPLE_EVERY_MS = 100;

export class LedgerSampler {
  readonly samples: CapSample[] = [];
  /** The last ledger read, for when the final read fails. */
  latest: LedgerMachine[] = [];
  private sampling = false;
  private loop: Promise<void> = Promise.resolve();
  private lastSampleAt = 0;

  constructor(
    private readonly ledger: () => Promise<LedgerMachine[]>,
    private readonly fig: ChaosFigures,
  ) {}

  start(): void {
    this.sampling = true;
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.sampling = false;
    await this.loop;
  }

  private async run(): Promise<void> {
    while (this.sampling) {
      const t = Date.now();
      try {
        this.record(await this.ledger());
      } catch {
        this.fig.sampleErrors++;
      }
      await sleep(Math.max(0, SAMPLE_EVERY_MS - (Date.now() - t)));
    }
  }

  private record(ledger: LedgerMachine[]): void {
    const fig = this.fig;
    this.latest = ledger;
    const s: CapSample = { at: Date.now(), running: runningOf(ledger) };
    this.samples.push(s);
    fig.samples++;
    fig.maxRunning = Math.max(fig.maxRunning, s.running.length);
    if (this.lastSampleAt)
      fig.maxSampleGapMs = Math.max(fig.maxSampleGapMs, s.at - this.lastSampleAt);
    this.lastSampleAt = s.at;
  }
}
