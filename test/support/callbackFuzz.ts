/**
 * G7 driver: fast-check callbacks against the private API of a real landing system (in-memory
 * adapters, Fly fake, a clock that stands still), judged call by call by a model of each launch.
 * The body arbitraries are those of test/integration/where/callbacks.test.ts; on top of them come
 * forged signatures, exact replays, re-signed duplicates, unknown launches and foreign machines.
 */
import fc from 'fast-check';
import { FakeFlyMachines } from '../../src/adapters/fly/fakeFlyMachines.js';
import { MemoryEventStore } from '../../src/adapters/memory/memoryEventStore.js';
import {
  MemoryCapacityLedger,
  MemoryLeases,
  MemoryPresence,
} from '../../src/adapters/memory/memoryCoordination.js';
import { ManualClock } from '../../src/adapters/system/manualClock.js';
import { UlidIds } from '../../src/adapters/system/ulidIds.js';
import { deriveLaunchKey, SIGNATURE_HEADER, signBody } from '../../src/shared/callbackAuth.js';
import { silentLogger } from '../../src/shared/log.js';
import { createWhere } from '../../src/where/system.js';
import { testConfig } from './whereRig.js';

const SECRET = 'f'.repeat(48);
const REGION = 'fra';

export interface Launched {
  launchId: string;
  machineId: string;
}

/** Whether a fuzzed value happens to be valid for its field (then it is no mutation). */
export function isValidField(key: string, value: string, l: Launched): boolean {
  switch (key) {
    case 'machineId':
      return value === l.machineId;
    case 'launchId':
      return value === l.launchId;
    case 'region':
      return /^[a-z]{3}$/.test(value);
    case 'status':
      return value === 'listening' || value === 'stopping';
    case 'at':
      return !Number.isNaN(Date.parse(value)) && /^\d{4}-\d\d-\d\dT/.test(value);
    default:
      return false;
  }
}

/** Raw bodies that are not a valid callback for `l` (one mutation of a valid body, or junk). */
export function invalidRaws(valid: Record<string, unknown>, l: Launched): fc.Arbitrary<string> {
  const keys = Object.keys(valid);
  const mutation = fc.oneof(
    fc
      .constantFrom(...keys)
      .map(
        (k) => (v: Record<string, unknown>) =>
          Object.fromEntries(Object.entries(v).filter(([key]) => key !== k)),
      ),
    fc
      .tuple(
        fc.constantFrom(...keys),
        fc.oneof(fc.integer(), fc.boolean(), fc.constant(null), fc.array(fc.string()), fc.object()),
      )
      .map(([k, x]) => (v: Record<string, unknown>) => ({ ...v, [k]: x })),
    fc
      .tuple(
        fc.constantFrom('machineId', 'launchId', 'region', 'status', 'at'),
        fc.string({ maxLength: 300 }),
      )
      .filter(([k, x]) => !isValidField(k, x, l))
      .map(([k, x]) => (v: Record<string, unknown>) => ({ ...v, [k]: x })),
    fc
      .tuple(
        fc
          .string({ minLength: 1, maxLength: 20 })
          .filter((k) => !keys.includes(k) && k !== 'reason'),
        fc.jsonValue(),
      )
      .map(([k, x]) => (v: Record<string, unknown>) => ({ ...v, [k]: x })),
    fc
      .constantFrom('xyz', 'qqq', 'zzz')
      .map((region) => (v: Record<string, unknown>) => ({ ...v, region })),
  );
  return fc.oneof(
    { weight: 3, arbitrary: mutation.map((m) => JSON.stringify(m({ ...valid }))) },
    { weight: 1, arbitrary: fc.jsonValue().map((v) => JSON.stringify(v) ?? 'null') },
    { weight: 1, arbitrary: fc.string({ maxLength: 400 }) },
  );
}

/** How a validly shaped body gets a signature that must not pass. */
export type Forgery =
  | 'missing'
  | 'garbage'
  | 'otherSecret'
  | 'masterSecret'
  | 'otherLaunchKey'
  | 'bodyChanged'
  | 'timestampChanged'
  | 'truncated'
  | 'expiredPast'
  | 'expiredFuture';

/** One generated call: `launch` and `ref` are indexes, reduced modulo what exists when it runs. */
export type CallbackCommand =
  | { kind: 'invalid'; launch: number; raw: string; sign: boolean }
  | { kind: 'forged'; launch: number; status: Status; forgery: Forgery }
  | { kind: 'valid'; launch: number; status: Status }
  | { kind: 'replay'; ref: number }
  | { kind: 'unknownLaunch'; status: Status }
  | { kind: 'foreignMachine'; launch: number; status: Status }
  | { kind: 'newLaunch' };

type Status = 'listening' | 'stopping';

const status: fc.Arbitrary<Status> = fc.constantFrom('listening', 'stopping');

/**
 * Commands for `launches` launches; invalid bodies are built against launch 0's valid body (the
 * mutations do not depend on which launch, and a mutated id is invalid for every launch).
 */
export function callbackCommands(template: Record<string, unknown>, l0: Launched) {
  const launch = fc.nat({ max: 1 << 16 });
  return fc.oneof(
    {
      weight: 4,
      arbitrary: fc.record({
        kind: fc.constant('invalid' as const),
        launch,
        raw: invalidRaws(template, l0),
        sign: fc.boolean(),
      }),
    },
    {
      weight: 3,
      arbitrary: fc.record({
        kind: fc.constant('forged' as const),
        launch,
        status,
        forgery: fc.constantFrom<Forgery>(
          'missing',
          'garbage',
          'otherSecret',
          'masterSecret',
          'otherLaunchKey',
          'bodyChanged',
          'timestampChanged',
          'truncated',
          'expiredPast',
          'expiredFuture',
        ),
      }),
    },
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('valid' as const), launch, status }) },
    {
      weight: 3,
      arbitrary: fc.record({ kind: fc.constant('replay' as const), ref: fc.nat({ max: 1 << 20 }) }),
    },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('unknownLaunch' as const), status }) },
    {
      weight: 1,
      arbitrary: fc.record({ kind: fc.constant('foreignMachine' as const), launch, status }),
    },
    // A visitor clicks meanwhile: a new launch whose VM has not called yet.
    { weight: 1, arbitrary: fc.constant({ kind: 'newLaunch' as const }) },
  );
}

export interface CallbackFuzzResult {
  runs: number;
  seed: number;
  /** Launches at the start, and at the end (visitors keep clicking during the run). */
  launches: number;
  launchesAtEnd: number;
  /** Calls per command kind, and statuses per kind (`401 SIGNATURE_INVALID`, `200 accepted`…). */
  byKind: Record<string, number>;
  statuses: Record<string, Record<string, number>>;
  /** Calls that threw out of inject, 5xx answers, unhandled rejections during the run. */
  crashes: number;
  fivexx: number;
  unhandled: number;
  /** Calls that must be refused (invalid, forged, replayed, unknown, foreign) and their 4xx. */
  mustRefuse: number;
  refused4xx: number;
  /** Events stored by calls that must change nothing (forged and replayed among them). */
  changesFromRefused: number;
  changesFromForgedOrReplayed: number;
  /** Valid calls whose transition had already happened (re-signed duplicates): 2xx, and events they stored. */
  duplicates: number;
  duplicates2xx: number;
  extraTransitionsFromDuplicates: number;
  /** First valid calls: answered 200 accepted:true and stored something. */
  firsts: number;
  firstsAccepted: number;
  /** Per launch stream at the end: more than one vm.listening or vm.stopping (a doubled transition). */
  doubledTransitions: number;
  /** Where a call and the model disagreed (first 20). */
  violations: string[];
}

/**
 * Run `runs` generated callbacks (seeded) against `launches` started launches; count every
 * outcome against the model instead of stopping at the first disagreement.
 */
export async function runCallbackFuzz(opts: {
  runs: number;
  launches?: number;
  seed?: number;
}): Promise<CallbackFuzzResult> {
  const seed = opts.seed ?? 42;
  const nLaunches = opts.launches ?? 40;
  const clock = new ManualClock(Date.UTC(2026, 11, 3, 12));
  const fly = new FakeFlyMachines({ clock, timers: new ManualClock(0) });
  const store = new MemoryEventStore();
  const cfg = testConfig({
    WM_AUTOSPAWN: 'off',
    WM_CALLBACK_SECRET: SECRET,
    WM_COOLDOWN_MS: '0',
    WM_LAUNCHES_PER_MINUTE: '10000',
    WM_REQUESTS_PER_MINUTE: '1000000',
    WM_MAX_MACHINES: '1000',
    FLY_REGION: REGION,
  });
  const system = await createWhere(
    cfg,
    {
      store,
      ledger: new MemoryCapacityLedger(),
      leases: new MemoryLeases(),
      presence: new MemoryPresence(),
      fly,
      clock,
      timers: clock,
      ids: new UlidIds(),
      log: silentLogger(),
    },
    { beatMs: 3_600_000 },
  );
  let unhandled = 0;
  const onUnhandled = () => unhandled++;
  process.on('unhandledRejection', onUnhandled);
  try {
    await system.start(false);
    const runtime = system.services.runtime;
    const launched: Launched[] = [];
    /** Model: per launch, which transitions a callback has already made. */
    const model: { listened: boolean; stopped: boolean }[] = [];
    const launchOne = async () => {
      const v = await system.services.launches.start({ region: REGION, source: 'button' });
      await runtime.settled();
      const m = fly.live().find((x) => x.metadata.launch_id === v.launchId);
      if (!m) throw new Error(`no machine for launch ${v.launchId}`);
      launched.push({ launchId: v.launchId, machineId: m.id });
      model.push({ listened: false, stopped: false });
    };
    for (let i = 0; i < nLaunches; i++) await launchOne();
    // Every event stored from here on is counted against the call that caused it.
    let stored = 0;
    runtime.onChange((c) => {
      if (c.local) stored++;
    });

    let seq = 0;
    const bodyOf = (l: Launched, st: Status, over: Record<string, unknown> = {}) => ({
      machineId: l.machineId,
      launchId: l.launchId,
      region: REGION,
      status: st,
      ...(st === 'stopping' ? { reason: 'finished' } : {}),
      // A distinct `at` per call: the same content re-signed is a new request, not a replay.
      at: new Date(clock.now() - ++seq).toISOString(),
      ...over,
    });
    const keyOf = (launchId: string) => deriveLaunchKey(SECRET, launchId);
    const sign = (launchId: string, raw: string, at = clock.now()) =>
      signBody(keyOf(launchId), raw, at);

    /** Requests sent so far (for exact replays), with what they were. */
    const sent: { raw: string; sig: string | undefined; replayStatus: number | undefined }[] = [];

    const template = bodyOf(launched[0]!, 'listening');
    const commands = fc.sample(callbackCommands(template, launched[0]!), {
      numRuns: opts.runs,
      seed,
    });

    const res: CallbackFuzzResult = {
      runs: opts.runs,
      seed,
      launches: nLaunches,
      launchesAtEnd: 0,
      byKind: {},
      statuses: {},
      crashes: 0,
      fivexx: 0,
      unhandled: 0,
      mustRefuse: 0,
      refused4xx: 0,
      changesFromRefused: 0,
      changesFromForgedOrReplayed: 0,
      duplicates: 0,
      duplicates2xx: 0,
      extraTransitionsFromDuplicates: 0,
      firsts: 0,
      firstsAccepted: 0,
      doubledTransitions: 0,
      violations: [],
    };
    const violate = (what: string) => {
      if (res.violations.length < 20) res.violations.push(what);
    };

    for (const cmd of commands) {
      if (cmd.kind === 'newLaunch') {
        res.byKind.newLaunch = (res.byKind.newLaunch ?? 0) + 1;
        if (launched.length < 900) await launchOne();
        continue;
      }
      const n = launched.length;
      let raw: string;
      let sig: string | undefined;
      let label: string = cmd.kind;
      /** What the call must do: be refused with this status (or any 4xx), or be taken. */
      let expect:
        | { refuse: true; status?: number }
        | { refuse: false; first: boolean; launch: number; status: Status };
      /** What an exact replay of this request must get (undefined: any 4xx). */
      let replayStatus: number | undefined;
      switch (cmd.kind) {
        case 'invalid': {
          const l = launched[cmd.launch % n]!;
          raw = cmd.raw;
          sig = cmd.sign ? sign(l.launchId, raw) : undefined;
          expect = { refuse: true };
          break;
        }
        case 'forged': {
          const i = cmd.launch % n;
          const l = launched[i]!;
          raw = JSON.stringify(bodyOf(l, cmd.status));
          const good = sign(l.launchId, raw);
          label = `forged:${cmd.forgery}`;
          sig = forge(cmd.forgery, {
            raw,
            good,
            now: clock.now(),
            launchId: l.launchId,
            other: launched[(i + 1) % n]!.launchId,
          });
          if (cmd.forgery === 'bodyChanged') raw = raw.replace(cmd.status, flip(cmd.status));
          expect = { refuse: true, status: 401 };
          replayStatus = 401;
          break;
        }
        case 'valid': {
          const i = cmd.launch % n;
          const l = launched[i]!;
          raw = JSON.stringify(bodyOf(l, cmd.status));
          sig = sign(l.launchId, raw);
          const m = model[i]!;
          const first = cmd.status === 'listening' ? !m.listened && !m.stopped : !m.stopped;
          label = first ? `valid:${cmd.status}` : `duplicate:${cmd.status}`;
          expect = { refuse: false, first, launch: i, status: cmd.status };
          replayStatus = 409;
          break;
        }
        case 'replay': {
          const earlier = sent.length > 0 ? sent[cmd.ref % sent.length] : undefined;
          if (!earlier) continue;
          raw = earlier.raw;
          sig = earlier.sig;
          // A replay of a request that was taken is a 409 CALLBACK_REPLAYED; of one that was refused,
          // the same refusal again.
          expect =
            earlier.replayStatus !== undefined
              ? { refuse: true, status: earlier.replayStatus }
              : { refuse: true };
          replayStatus = earlier.replayStatus;
          label = earlier.replayStatus === 409 ? 'replay' : 'replay:refused';
          break;
        }
        case 'unknownLaunch': {
          const id = `01JZ${String(seq + 1).padStart(22, '0')}`;
          raw = JSON.stringify(bodyOf({ launchId: id, machineId: 'eeeeeeeeeeeeee' }, cmd.status));
          sig = sign(id, raw);
          expect = { refuse: true, status: 404 };
          replayStatus = 404;
          break;
        }
        case 'foreignMachine': {
          const l = launched[cmd.launch % n]!;
          raw = JSON.stringify(bodyOf(l, cmd.status, { machineId: 'ffffffffffffff' }));
          sig = sign(l.launchId, raw);
          expect = { refuse: true, status: 409 };
          replayStatus = 409;
          break;
        }
      }
      res.byKind[label] = (res.byKind[label] ?? 0) + 1;
      const before = stored;
      let statusCode: number;
      let body: { code?: string; accepted?: boolean } = {};
      try {
        const headers: Record<string, string> = { 'content-type': 'application/json' };
        if (sig !== undefined) headers[SIGNATURE_HEADER] = sig;
        const r = await system.privateApp.inject({
          method: 'POST',
          url: '/api/machine_status',
          headers,
          payload: raw,
        });
        statusCode = r.statusCode;
        try {
          body = r.json<typeof body>();
        } catch {
          body = {};
        }
        // A VM that said "stopping" goes: its process exits (Fly then stops and destroys it), so the
        // effects waiting for that end, and the facts they bring are counted against this call.
        if (body.accepted === true && expect.refuse === false && expect.status === 'stopping')
          fly.exit(launched[expect.launch]!.machineId);
        await runtime.settled();
      } catch (err) {
        res.crashes++;
        violate(`${label}: threw ${String(err)}`);
        continue;
      }
      sent.push({ raw, sig, replayStatus });
      const changed = stored - before;
      const key = `${statusCode}${body.code ? ` ${body.code}` : ''}${body.accepted !== undefined ? ` accepted:${body.accepted}` : ''}`;
      const kindStatuses = (res.statuses[label] ??= {});
      kindStatuses[key] = (kindStatuses[key] ?? 0) + 1;
      if (statusCode >= 500) res.fivexx++;

      if (expect.refuse) {
        res.mustRefuse++;
        const ok4xx = statusCode >= 400 && statusCode < 500;
        if (ok4xx) res.refused4xx++;
        if (!ok4xx || (expect.status !== undefined && statusCode !== expect.status))
          violate(`${label}: ${key}, expected ${expect.status ?? '4xx'}`);
        res.changesFromRefused += changed;
        if (cmd.kind === 'forged' || cmd.kind === 'replay')
          res.changesFromForgedOrReplayed += changed;
        if (changed > 0) violate(`${label}: stored ${changed} events`);
      } else if (expect.first) {
        res.firsts++;
        if (statusCode === 200 && body.accepted === true && changed > 0) res.firstsAccepted++;
        else violate(`${label}: ${key}, stored ${changed}; expected 200 accepted:true`);
        const m = model[expect.launch]!;
        if (expect.status === 'listening') m.listened = true;
        else m.stopped = true;
      } else {
        res.duplicates++;
        if (statusCode >= 200 && statusCode < 300) res.duplicates2xx++;
        res.extraTransitionsFromDuplicates += changed;
        if (statusCode !== 200 || body.accepted !== false || changed > 0)
          violate(
            `${label}: ${key}, stored ${changed}; expected 200 accepted:false, nothing stored`,
          );
      }
    }

    for (const l of launched) {
      for (const stream of [`launch.${l.launchId}`, `vm.${l.machineId}`]) {
        const types = (await store.read(stream)).map((e) => e.type);
        if (types.filter((t) => t === 'vm.listening').length > 1) res.doubledTransitions++;
        if (types.filter((t) => t === 'vm.stopping').length > 1) res.doubledTransitions++;
      }
    }
    res.unhandled = unhandled;
    res.launchesAtEnd = launched.length;
    return res;
  } finally {
    process.off('unhandledRejection', onUnhandled);
    await system.stop();
  }
}

function flip(s: Status): Status {
  return s === 'listening' ? 'stopping' : 'listening';
}

function forge(
  f: Forgery,
  c: { raw: string; good: string; now: number; launchId: string; other: string },
): string | undefined {
  switch (f) {
    case 'missing':
      return undefined;
    case 'garbage':
      return 'hello';
    case 'otherSecret':
      return signBody(deriveLaunchKey('y'.repeat(40), c.launchId), c.raw, c.now);
    case 'masterSecret':
      return signBody(SECRET, c.raw, c.now);
    case 'otherLaunchKey':
      return signBody(deriveLaunchKey(SECRET, c.other), c.raw, c.now);
    case 'bodyChanged':
      return c.good; // the caller changes the body after signing
    case 'timestampChanged':
      return c.good.replace(/t=(\d+)/, (_m, t: string) => `t=${Number(t) + 1}`);
    case 'truncated':
      return c.good.slice(0, -2);
    case 'expiredPast':
      return signBody(deriveLaunchKey(SECRET, c.launchId), c.raw, c.now - 301_000);
    case 'expiredFuture':
      return signBody(deriveLaunchKey(SECRET, c.launchId), c.raw, c.now + 301_000);
  }
}

/** The goal's pass criterion on one run. */
export function g7Holds(r: CallbackFuzzResult): boolean {
  return (
    r.crashes === 0 &&
    r.fivexx === 0 &&
    r.unhandled === 0 &&
    r.refused4xx === r.mustRefuse &&
    r.changesFromRefused === 0 &&
    r.duplicates2xx === r.duplicates &&
    r.extraTransitionsFromDuplicates === 0 &&
    r.firstsAccepted === r.firsts &&
    r.doubledTransitions === 0 &&
    r.violations.length === 0
  );
}
