/**
 * Boot snapshots (ADR 0015): the open actors and the store position they cover, written atomically
 * beside the store so boot restores them and folds only the tail. Anything doubtful about a
 * snapshot (missing, torn, checksum, format, chart versions) means a full read instead.
 */
import { createHash } from 'node:crypto';
import { mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { openSync, fsyncSync, closeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { AnyMachineSnapshot, Snapshot } from 'xstate';
import { z } from 'zod';
import { CHARTS, type Chart } from '../../machines/index.js';
import { errorMessage } from '../shared/errors.js';
import type { Logger } from '../shared/log.js';
import type { ActorRecord } from './actorTypes.js';
import { Deciders } from './decide.js';
import { kindOf } from '../../machines/vocabulary.js';

const deciders = new Deciders();

/** Bumped whenever the file's layout or the meaning of a field changes. */
export const SNAPSHOT_FORMAT = 1;

/** What the runtime hands out to be saved, and takes back at boot. */
export interface BootSnapshot {
  /** Every event at or below this store position is reflected in `records`. */
  readonly position: number;
  /** Open actors (active, with at least one stored event). */
  readonly records: readonly ActorRecord[];
}

/**
 * Chart ids and a fingerprint of each chart's definition (states, transitions, guard and action
 * names): a chart edited without a new id still invalidates snapshots made by the old one.
 */
export function chartVersions(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [kind, chart] of Object.entries(CHARTS) as [string, Chart][]) {
    let shape = '';
    try {
      shape = createHash('sha256')
        .update(JSON.stringify(chart.machine.config))
        .digest('hex')
        .slice(0, 16);
    } catch {
      shape = 'unhashable';
    }
    out[kind] = `${chart.id}#${shape}`;
  }
  return out;
}

const recentEntry = z.object({
  type: z.string(),
  at: z.string(),
  version: z.number().int(),
  instance: z.string().optional(),
});

const actorEntry = z.object({
  stream: z.string(),
  chart: z.string(),
  state: z.looseObject({ value: z.unknown(), context: z.unknown(), status: z.literal('active') }),
  version: z.number().int().positive(),
  recent: z.array(recentEntry),
  touchedAt: z.number(),
});

const body = z.object({
  format: z.literal(SNAPSHOT_FORMAT),
  /** Which store the position belongs to (`file`, `nats:<stream>`): another store's is useless. */
  store: z.string(),
  charts: z.record(z.string(), z.string()),
  position: z.number().int().nonnegative(),
  takenAt: z.number(),
  actors: z.array(actorEntry),
});

type Body = z.infer<typeof body>;

/** Serialise a snapshot: a header line (format, length, sha256 of the body), then the body. */
export function encodeSnapshot(s: BootSnapshot, opts: { store: string; takenAt: number }): string {
  const b: Body = {
    format: SNAPSHOT_FORMAT,
    store: opts.store,
    charts: chartVersions(),
    position: s.position,
    takenAt: opts.takenAt,
    actors: s.records.map((r) => ({
      stream: r.stream,
      chart: r.chart.id,
      // XState's persisted form, as JSON: only open actors are written, so its status is `active`.
      state: r.chart.machine.getPersistedSnapshot(
        r.snapshot,
      ) as unknown as Body['actors'][number]['state'],
      version: r.version,
      recent: r.recent.map((x) => ({
        type: x.type,
        at: x.at,
        version: x.version,
        ...(x.instance === undefined ? {} : { instance: x.instance }),
      })),
      touchedAt: r.touchedAt,
    })),
  };
  const text = JSON.stringify(b);
  const header = JSON.stringify({
    format: SNAPSHOT_FORMAT,
    bytes: Buffer.byteLength(text),
    sha256: sha256(text),
  });
  return `${header}\n${text}\n`;
}

export type DecodeResult =
  { ok: true; snapshot: BootSnapshot; takenAt: number } | { ok: false; why: string };

/** Parse and check a snapshot; every doubt is a reason to read the whole store instead. */
export function decodeSnapshot(text: string, opts: { store: string }): DecodeResult {
  const nl = text.indexOf('\n');
  if (nl < 0) return { ok: false, why: 'no header line (truncated)' };
  let header: { format?: unknown; bytes?: unknown; sha256?: unknown };
  try {
    header = JSON.parse(text.slice(0, nl)) as typeof header;
  } catch {
    return { ok: false, why: 'header does not parse' };
  }
  if (header.format !== SNAPSHOT_FORMAT)
    return {
      ok: false,
      why: `format ${String(header.format)}, this build reads ${SNAPSHOT_FORMAT}`,
    };
  const rest = text.slice(nl + 1);
  const content = rest.endsWith('\n') ? rest.slice(0, -1) : rest;
  if (Buffer.byteLength(content) !== header.bytes || !rest.endsWith('\n'))
    return { ok: false, why: 'body length differs from the header (truncated)' };
  if (sha256(content) !== header.sha256) return { ok: false, why: 'checksum mismatch' };
  let raw: unknown;
  try {
    raw = JSON.parse(content);
  } catch {
    return { ok: false, why: 'body does not parse' };
  }
  const parsed = body.safeParse(raw);
  if (!parsed.success) return { ok: false, why: `body does not decode: ${parsed.error.message}` };
  const b = parsed.data;
  if (b.store !== opts.store)
    return { ok: false, why: `snapshot of store ${b.store}, this is ${opts.store}` };
  const now = chartVersions();
  for (const k of new Set([...Object.keys(now), ...Object.keys(b.charts)]))
    if (now[k] !== b.charts[k])
      return {
        ok: false,
        why: `chart ${k} is ${now[k] ?? 'gone'}, snapshot has ${b.charts[k] ?? 'none'}`,
      };
  const records: ActorRecord[] = [];
  for (const a of b.actors) {
    const kind = kindOf(a.stream);
    if (!kind) return { ok: false, why: `not an actor stream: ${a.stream}` };
    const chart: Chart = CHARTS[kind];
    if (chart.id !== a.chart) return { ok: false, why: `${a.stream} was folded by ${a.chart}` };
    let snapshot: AnyMachineSnapshot;
    try {
      // Restored in the chart's inert scope (the charts spawn no children to attach to it).
      // The JSON of a persisted snapshot (checked above), back to XState's persisted form.
      const persisted = structuredClone(a.state) as unknown as Snapshot<unknown>;
      snapshot = deciders.of(chart).restore(persisted);
    } catch (err) {
      return { ok: false, why: `${a.stream} does not restore: ${errorMessage(err)}` };
    }
    records.push({
      stream: a.stream,
      kind,
      chart,
      snapshot,
      version: a.version,
      recent: a.recent.map((x) => ({ ...x, instance: x.instance })),
      touchedAt: a.touchedAt,
    });
  }
  return { ok: true, snapshot: { position: b.position, records }, takenAt: b.takenAt };
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/**
 * Write `text` to `path` so that a reader sees the old file or the new one, never a part: a temp
 * file beside it, fsynced, renamed over it, then the directory fsynced (the rename is durable).
 */
export async function writeFileAtomic(path: string, text: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${Date.now()}.tmp`);
  const fh = await open(tmp, 'w');
  try {
    await fh.writeFile(text);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => {});
    throw err;
  }
  try {
    const d = openSync(dirname(path), 'r');
    try {
      fsyncSync(d);
    } finally {
      closeSync(d);
    }
  } catch {
    // Some filesystems refuse to fsync a directory; the rename is still atomic.
  }
}

/** The snapshot file of one store (and one instance): load at boot, save periodically and at stop. */
export class SnapshotFile {
  private writing: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly o: { path: string; store: string; log: Logger; now: () => number },
  ) {}

  /** The snapshot to boot from, or undefined (then boot reads everything; logged at warn). */
  async load(): Promise<BootSnapshot | undefined> {
    let text: string;
    try {
      text = await readFile(this.o.path, 'utf8');
    } catch (err) {
      const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
      this.o.log.warn(
        { path: this.o.path, ...(missing ? {} : { err: errorMessage(err) }) },
        missing
          ? 'no boot snapshot: reading the whole store'
          : 'boot snapshot unreadable: reading the whole store',
      );
      return undefined;
    }
    const res = decodeSnapshot(text, { store: this.o.store });
    if (!res.ok) {
      this.o.log.warn(
        { path: this.o.path, why: res.why },
        'boot snapshot refused: reading the whole store',
      );
      return undefined;
    }
    this.o.log.info(
      {
        path: this.o.path,
        position: res.snapshot.position,
        actors: res.snapshot.records.length,
        takenAt: new Date(res.takenAt).toISOString(),
      },
      'boot snapshot loaded',
    );
    return res.snapshot;
  }

  /** Write one (writes never overlap; a failure is logged, the previous file stays). */
  save(s: BootSnapshot | undefined): Promise<boolean> {
    if (!s) return Promise.resolve(false);
    const text = encodeSnapshot(s, { store: this.o.store, takenAt: this.o.now() });
    const run = this.writing.then(async () => {
      try {
        await writeFileAtomic(this.o.path, text);
        return true;
      } catch (err) {
        this.o.log.warn({ path: this.o.path, err: errorMessage(err) }, 'boot snapshot not written');
        return false;
      }
    });
    this.writing = run;
    return run;
  }
}
