/**
 * `fly-replay`, as Fly's proxy reads it: parse the header an instance answered with, decide whether
 * the request may be replayed at all, and pick where it goes next (instance, region list, app,
 * elsewhere), with the `fly-replay-src` headers the next instance sees.
 */
import type { OutgoingHttpHeaders } from 'node:http';
import type { EdgeErrorCode } from './edgeErrors.js';
import {
  APP_NAME,
  isStarted,
  pickNearest,
  type EdgeDirectory,
  type EdgeInstance,
  type Turns,
} from './edgeRouting.js';

export interface ReplayDirective {
  app?: string;
  instance?: string;
  preferInstance?: string;
  /** Preference order; `any` matches every region. */
  regions?: string[];
  state?: string;
  elsewhere: boolean;
}

function splitOutsideQuotes(s: string, sep: string): string[] {
  const parts: string[] = [];
  let current = '';
  let quoted = false;
  for (const ch of s) {
    if (ch === '"') quoted = !quoted;
    if (ch === sep && !quoted) {
      parts.push(current);
      current = '';
    } else current += ch;
  }
  parts.push(current);
  return parts;
}

function fieldsOf(header: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const part of splitOutsideQuotes(header, ';')) {
    const eq = part.indexOf('=');
    if (eq <= 0) continue;
    const key = part.slice(0, eq).trim().toLowerCase();
    const value = part
      .slice(eq + 1)
      .trim()
      .replace(/^"(.*)"$/, '$1')
      .trim();
    fields.set(key, value);
  }
  return fields;
}

/**
 * Parse a `fly-replay` header: `;`-separated `key=value` fields, values optionally quoted (a region
 * list must be: `region="sjc,any"`). Unknown fields are ignored; undefined when nothing usable.
 */
export function parseFlyReplay(header: string): ReplayDirective | undefined {
  const fields = fieldsOf(header);
  const d: ReplayDirective = { elsewhere: fields.get('elsewhere') === 'true' };
  const app = fields.get('app');
  if (app) d.app = app;
  const instance = fields.get('instance');
  if (instance) d.instance = instance;
  const prefer = fields.get('prefer_instance');
  if (prefer) d.preferInstance = prefer;
  const region = fields.get('region');
  if (region)
    d.regions = region
      .split(',')
      .map((r) => r.trim().toLowerCase())
      .filter(Boolean);
  const state = fields.get('state');
  if (state !== undefined) d.state = state;
  const usable =
    d.app || d.instance || d.preferInstance || d.regions || d.elsewhere || d.state !== undefined;
  return usable ? d : undefined;
}

type Resolved =
  | { ok: true; app: string; target: EdgeInstance; preferredUnavailable: boolean }
  | { ok: false; message: string };

interface ReplayContext {
  directory: EdgeDirectory;
  turns: Turns;
  /** The app and instance that answered with the header. */
  app: string;
  responder: EdgeInstance;
  edgeRegion: string;
}

/** Where a `fly-replay` sends the request next. */
async function resolveReplay(d: ReplayDirective, c: ReplayContext): Promise<Resolved> {
  const targetApp = d.app ?? c.app;
  if (!APP_NAME.test(targetApp))
    return { ok: false, message: `fly-replay names an invalid app "${targetApp}"` };
  const all = (await c.directory.instances(targetApp)).filter(isStarted);
  const candidates = d.elsewhere
    ? all.filter((i) => !(i.id === c.responder.id && targetApp === c.app))
    : all;
  const found = (target: EdgeInstance, preferredUnavailable = false): Resolved => ({
    ok: true,
    app: targetApp,
    target,
    preferredUnavailable,
  });
  if (d.instance) {
    const target = candidates.find((i) => i.id === d.instance);
    return target
      ? found(target)
      : {
          ok: false,
          message: `replay target instance ${d.instance} of app ${targetApp} is not running`,
        };
  }
  if (d.preferInstance) {
    const target = candidates.find((i) => i.id === d.preferInstance);
    if (target) return found(target);
  }
  const preferredUnavailable = d.preferInstance !== undefined;
  if (d.regions) {
    for (const r of d.regions) {
      const inRegion = r === 'any' ? candidates : candidates.filter((i) => i.region === r);
      const near = r === 'any' ? c.edgeRegion : r;
      const target =
        inRegion.length > 0 ? pickNearest(inRegion, near, c.turns.next(targetApp)) : undefined;
      if (target) return found(target, preferredUnavailable);
    }
    return {
      ok: false,
      message: `no running instance of app ${targetApp} in ${d.regions.join(', ')}`,
    };
  }
  const target = pickNearest(candidates, c.edgeRegion, c.turns.next(targetApp));
  return target
    ? found(target, preferredUnavailable)
    : { ok: false, message: `no running instance of app ${targetApp} to replay to` };
}

export type ReplayDecision =
  | { ok: true; app: string; target: EdgeInstance; headers: OutgoingHttpHeaders }
  | { ok: false; code: EdgeErrorCode; message: string };

/**
 * What to do with an answer that carried `fly-replay`: refuse (body not kept, too many replays, an
 * unreadable header, nowhere to go) or replay to the next target with Fly's `fly-replay-src`.
 */
export async function decideReplay(
  header: string,
  c: ReplayContext & { replays: number; maxReplays: number; bodyKept: boolean; bodyLimit: number },
): Promise<ReplayDecision> {
  const from = c.responder;
  if (!c.bodyKept) {
    return {
      ok: false,
      code: 'REPLAY_BODY_TOO_LARGE',
      message: `instance ${from.id} asked for a replay, but request bodies over ${c.bodyLimit} bytes cannot be replayed`,
    };
  }
  if (c.replays >= c.maxReplays) {
    return {
      ok: false,
      code: 'REPLAY_LOOP',
      message: `gave up after ${c.maxReplays} replays (last: ${header} from ${from.id})`,
    };
  }
  const d = parseFlyReplay(header);
  if (!d) {
    return {
      ok: false,
      code: 'BAD_REPLAY',
      message: `instance ${from.id} answered with an unusable fly-replay header: ${header}`,
    };
  }
  const next = await resolveReplay(d, c);
  if (!next.ok) return { ok: false, code: 'REPLAY_TARGET_UNAVAILABLE', message: next.message };
  const src = `instance=${from.id};region=${from.region};t=${Date.now() * 1000}${d.state !== undefined ? `;state=${d.state}` : ''}`;
  const headers: OutgoingHttpHeaders = {
    'fly-replay-src': src,
    ...(next.preferredUnavailable
      ? { 'fly-preferred-instance-unavailable': d.preferInstance }
      : {}),
  };
  return { ok: true, app: next.app, target: next.target, headers };
}
