/** What every section receives, and what one section may leave for a later one in the same run. */
import type { StoredEvent } from '../../src/events/envelope.js';
import type { Row } from './report.js';

export interface Shared {
  /** ~100k stored events from ~9.1k whole launches (the runtime section's throughput run). */
  lifecycleEvents?: StoredEvent[];
}

export interface SectionContext {
  /** Small sizes for a smoke run (`--quick`): same code paths, figures not meaningful. */
  readonly quick: boolean;
  readonly shared: Shared;
  /** A progress line on stderr (the tables go to stdout). */
  progress(line: string): void;
}

export interface SectionOutput {
  rows: Row[];
  notes: string[];
  data: Record<string, unknown>;
  skipped?: string;
}

export interface SectionDef {
  readonly name: string;
  readonly title: string;
  run(ctx: SectionContext): Promise<SectionOutput>;
}
