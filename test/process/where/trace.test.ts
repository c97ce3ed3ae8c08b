/**
 * One trace per launch, end to end through the local platform: a click that sends a W3C
 * traceparent gets a launch whose trace id is the caller's, and that id reaches the Fly create
 * (request header and machine metadata), the VM (its environment, its own log lines, its calls
 * home), the landing app's log lines about the launch, and the launch's SSE frames.
 */
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryEventStore } from '../../../src/adapters/memory/memoryEventStore.js';
import {
  MemoryCapacityLedger,
  MemoryLeases,
  MemoryPresence,
} from '../../../src/adapters/memory/memoryCoordination.js';
import { SystemTimers, systemClock } from '../../../src/adapters/system/systemClock.js';
import { UlidIds } from '../../../src/adapters/system/ulidIds.js';
import { FlyMachinesHttp } from '../../../src/adapters/fly/client.js';
import { startFlyLocal, type FlyLocalHandle } from '../../../src/flylocal/index.js';
import { parseTraceparent } from '../../../src/shared/trace.js';
import { createWhere, type WhereSystem } from '../../../src/where/system.js';
import { freePort } from '../../support/stack.js';
import { testConfig } from '../../support/whereRig.js';

type Line = Record<string, unknown>;

/** A pino logger whose JSON lines land in `lines` (parsed). */
function capture(lines: Line[]) {
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString('utf8').split('\n')) if (l) lines.push(JSON.parse(l) as Line);
      done();
    },
  });
  return pino({ level: 'debug' }, sink);
}

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const CALLER_SPAN = '00f067aa0ba902b7';
const appLines: Line[] = [];
const platformLines: Line[] = [];
/** The traceparent header of every request the Fly client sent, by method and path. */
const sent: { method: string; path: string; traceparent: string | null }[] = [];

let flylocal: FlyLocalHandle | undefined;
let system: WhereSystem | undefined;
let base = '';

beforeAll(async () => {
  flylocal = await startFlyLocal({ port: 0, closeGraceMs: 1000, logger: capture(platformLines) });
  const cfg = testConfig({
    PRIVATE_PORT: String(await freePort()),
    FLY_API_BASE_URL: flylocal.apiUrl,
    FLY_API_TOKEN: flylocal.token,
    WM_VM_IDLE_MS: '1500',
  });
  const recording: typeof fetch = (input, init) => {
    const url = new URL(input instanceof Request ? input.url : input);
    const headers = new Headers(init?.headers);
    sent.push({
      method: init?.method ?? 'GET',
      path: url.pathname,
      traceparent: headers.get('traceparent'),
    });
    return fetch(input, init);
  };
  system = await createWhere(cfg, {
    store: new MemoryEventStore(),
    ledger: new MemoryCapacityLedger(),
    leases: new MemoryLeases(),
    presence: new MemoryPresence(),
    fly: new FlyMachinesHttp({
      baseUrl: flylocal.apiUrl,
      token: flylocal.token,
      app: cfg.fly.vmApp,
      fetch: recording,
    }),
    clock: systemClock,
    timers: new SystemTimers(systemClock),
    ids: new UlidIds(),
    log: capture(appLines),
  });
  base = (await system.start()).publicUrl!;
});

afterAll(async () => {
  await system?.stop();
  await flylocal?.close();
});

/** The `data:` payloads of a launch's SSE stream until it ends (the launch is over). */
async function frames(launchId: string): Promise<Line[]> {
  const res = await fetch(`${base}/launches/${launchId}/events`, {
    headers: { accept: 'text/event-stream' },
    signal: AbortSignal.timeout(30_000),
  });
  expect(res.status).toBe(200);
  const text = await res.text();
  return text
    .split('\n')
    .filter((l) => l.startsWith('data:'))
    .map((l) => JSON.parse(l.slice(5)) as Line);
}

describe('one trace per launch', () => {
  it('follows a click into the Fly create, the VM, its calls home, the logs and the SSE frames', async () => {
    const res = await fetch(`${base}/launches`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        origin: base,
        'sec-fetch-site': 'same-origin',
        traceparent: `00-${TRACE_ID}-${CALLER_SPAN}-01`,
      },
      body: JSON.stringify({ region: 'ams' }),
    });
    expect(res.status).toBe(202);
    const accepted = (await res.json()) as { launchId: string; traceId?: string };
    expect(accepted.traceId).toBe(TRACE_ID);
    const { launchId } = accepted;

    // The SSE stream, from the first status to the last, names the trace in every frame.
    const seen = await frames(launchId);
    expect(seen.map((f) => f.status)).toContain('ready');
    expect(seen.at(-1)?.status).toBe('done');
    for (const f of seen) expect(f.traceId, JSON.stringify(f)).toBe(TRACE_ID);

    // The create went out with the trace in its header and its metadata, under a span of its own.
    const create = sent.find((r) => r.method === 'POST' && r.path.endsWith('/machines'));
    const header = parseTraceparent(create?.traceparent);
    expect(header?.traceId).toBe(TRACE_ID);
    expect(header?.spanId).not.toBe(CALLER_SPAN);
    const machineId = seen.find((f) => typeof f.machineId === 'string')?.machineId as string;
    const machine = await new FlyMachinesHttp({
      baseUrl: flylocal!.apiUrl,
      token: flylocal!.token,
      app: 'useless-machine',
    })
      .list({ metadata: { launch_id: launchId }, includeDeleted: true })
      .then((ms) => ms.find((m) => m.id === machineId));
    expect(parseTraceparent(machine?.metadata.traceparent)?.traceId).toBe(TRACE_ID);

    // The landing app's lines about this launch all carry its trace; the ones that matter exist.
    const about = appLines.filter((l) => l.launchId === launchId);
    expect(about.length).toBeGreaterThan(0);
    for (const l of about) expect(l.traceId, JSON.stringify(l)).toBe(TRACE_ID);
    const msgs = about.map((l) => l.msg);
    expect(msgs).toContain('launch accepted');
    // Both calls home (listening, stopping) arrived with the VM's traceparent.
    expect(msgs.filter((m) => m === 'machine status received')).toHaveLength(2);
    // Every call that changed the machine logged Fly's request id, inside the launch's lines.
    const flyCalls = about.filter((l) => l.msg === 'fly call' && l.action === 'create');
    expect(flyCalls).toHaveLength(1);
    expect(typeof flyCalls[0]!.flyRequestId).toBe('string');

    // The VM's own lines (relayed by the platform) name the launch and the trace.
    const vmLines = platformLines
      .filter((l) => l.machine === machineId && typeof l.msg === 'string' && l.msg.startsWith('{'))
      .map((l) => JSON.parse(l.msg as string) as Line);
    expect(vmLines.length).toBeGreaterThan(0);
    for (const l of vmLines) {
      expect(l.launchId).toBe(launchId);
      expect(l.traceId).toBe(TRACE_ID);
    }
  });

  it('starts a trace of its own when the caller sends none, or a malformed one', async () => {
    for (const traceparent of [undefined, '00-zz-00f067aa0ba902b7-01']) {
      const res = await fetch(`${base}/launches`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          origin: base,
          'sec-fetch-site': 'same-origin',
          // Each from its own address, past the per-address cooldown.
          'fly-client-ip': traceparent ? '127.9.0.2' : '127.9.0.1',
          ...(traceparent ? { traceparent } : {}),
        },
        body: JSON.stringify({ region: 'ams' }),
      });
      expect(res.status).toBe(202);
      const { traceId } = (await res.json()) as { traceId?: string };
      expect(traceId).toMatch(/^[0-9a-f]{32}$/);
      expect(traceId).not.toBe(TRACE_ID);
    }
  });
});
