/**
 * Section `vm`: boot-to-listening of the Useless Machine (`node dist/useless.mjs` with its full
 * environment): spawn → /health 200, and spawn → its signed "listening" callback, p50/p99 over 20
 * spawns, beside bare `node -e` spawns (to exit; to a one-line HTTP server answering) interleaved
 * with them in the same run.
 */
import type { SectionContext, SectionDef, SectionOutput } from '../lib/context.js';
import { atMost, row } from '../lib/report.js';
import { fmtMs, p50, p99, summarize } from '../lib/stats.js';
import {
  POLL_MS,
  bootFloorExit,
  bootFloorHttp,
  bootUseless,
  requireBuild,
  startCallbackSink,
} from '../lib/vmBoot.js';

export interface VmBootSamples {
  health: number[];
  callback: number[];
  listen: number[];
  selfCheck: number[];
  call: number[];
  floorHttp: number[];
  floorExit: number[];
}

/** `n` rounds of (floor exit, floor http, useless), after one warm-up round (file cache). */
export async function measureVmBoots(
  n: number,
  progress?: (i: number) => void,
): Promise<VmBootSamples> {
  requireBuild();
  const sink = await startCallbackSink();
  const out: VmBootSamples = {
    health: [],
    callback: [],
    listen: [],
    selfCheck: [],
    call: [],
    floorHttp: [],
    floorExit: [],
  };
  try {
    await bootFloorExit();
    await bootFloorHttp();
    await bootUseless(sink);
    for (let i = 0; i < n; i++) {
      progress?.(i);
      out.floorExit.push(await bootFloorExit());
      out.floorHttp.push(await bootFloorHttp());
      const b = await bootUseless(sink);
      out.health.push(b.healthMs);
      out.callback.push(b.callbackMs);
      out.listen.push(b.listenMs);
      out.selfCheck.push(b.selfCheckMs);
      out.call.push(b.callMs);
    }
  } finally {
    await sink.close();
  }
  return out;
}

export function vmRows(s: VmBootSamples, label = ''): SectionOutput['rows'] {
  const cbP50 = p50(s.callback);
  const floorP50 = p50(s.floorHttp);
  return [
    row({
      metric: `${label}boot-to-listening (spawn → callback), p50`,
      value: cbP50,
      unit: 'ms',
      fmt: fmtMs,
      floor: floorP50,
      checks: [atMost(cbP50, 300, '≤ 300 ms'), atMost(cbP50 / floorP50, 4, '≤ 4× floor')],
    }),
    row({
      metric: `${label}boot-to-listening (spawn → callback), p99`,
      value: p99(s.callback),
      unit: 'ms',
      fmt: fmtMs,
      floor: p99(s.floorHttp),
    }),
    row({
      metric: `${label}spawn → /health 200, p50`,
      value: p50(s.health),
      unit: 'ms',
      fmt: fmtMs,
      floor: floorP50,
    }),
    row({
      metric: `${label}spawn → /health 200, p99`,
      value: p99(s.health),
      unit: 'ms',
      fmt: fmtMs,
      floor: p99(s.floorHttp),
    }),
    row({
      metric: `${label}floor 2: node -e 0, spawn → exit, p50`,
      value: p50(s.floorExit),
      unit: 'ms',
      fmt: fmtMs,
    }),
    row({
      metric: `${label}  phase: spawn → "Server listening" (VM log), p50`,
      value: p50(s.listen),
      unit: 'ms',
      fmt: fmtMs,
      floor: floorP50,
    }),
    row({
      metric: `${label}  phase: listening → "ready to serve" (self-check), p50`,
      value: p50(s.selfCheck),
      unit: 'ms',
      fmt: fmtMs,
    }),
    row({
      metric: `${label}  phase: ready → callback arrives, p50`,
      value: p50(s.call),
      unit: 'ms',
      fmt: fmtMs,
    }),
  ];
}

export const vmSection: SectionDef = {
  name: 'vm',
  title: 'Useless Machine boot-to-listening (real process)',
  async run(ctx: SectionContext): Promise<SectionOutput> {
    const n = ctx.quick ? 3 : 20;
    const s = await measureVmBoots(n, (i) => ctx.progress(`vm: spawn round ${i + 1}/${n}`));
    return {
      rows: vmRows(s),
      notes: [
        `${n} rounds, each: node -e 0 (to exit), node -e <one-line http server> (to 200), then the Useless Machine; p99 of ${n} samples is their maximum.`,
        "phases come from the VM's own pino log times (whole ms) against the spawn time on the same clock; they add up to the callback time.",
        `floor = the one-line HTTP server spawn (same node binary, same polling every ${POLL_MS} ms). The callback goes to a local HTTP server that answers 200 at once.`,
      ],
      data: {
        samples: s,
        callback: summarize(s.callback),
        health: summarize(s.health),
        listen: summarize(s.listen),
        selfCheck: summarize(s.selfCheck),
        call: summarize(s.call),
        floorHttp: summarize(s.floorHttp),
        floorExit: summarize(s.floorExit),
      },
    };
  },
};
