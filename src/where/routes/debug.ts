/**
 * The operators' view of the actor system, on the private listener behind DEBUG_TOKEN: every live
 * actor (chart, state, tags, context, version, armed deadlines), one actor with its stored history,
 * and a live feed of transitions. Nothing secret is in a chart's context; keys that look secret are
 * redacted anyway.
 */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { STREAM_NAME_PATTERN } from '../../../machines/vocabulary.js';
import type { ActorRecord } from '../../runtime/actorRuntime.js';
import { AppError } from '../../shared/errors.js';
import { schemaErrors } from '../../shared/zodRoutes.js';
import type { WhereServices } from '../app.js';
import { requireToken, wantsHtml } from '../http.js';
import { frame, type SseRegistry } from '../sse.js';
import { escapeHtml } from '../views/html.js';
import { errorBodySchema } from '../wire.js';

// Key names that could hold a secret; `key` alone is a timer's name and stays readable.
const SECRETISH = /token|secret|password|authorization|apikey|callbackkey|credential/i;

function redact(value: unknown, depth = 0): unknown {
  if (depth > 6 || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1));
  return Object.fromEntries(
    Object.entries(value as Record<string, unknown>).map(([k, v]) => [
      k,
      SECRETISH.test(k) ? '[redacted]' : redact(v, depth + 1),
    ]),
  );
}

function describeActor(r: ActorRecord, timers: ReadonlyMap<string, number>) {
  return {
    id: r.stream,
    kind: r.kind,
    chart: r.chart.id,
    status: r.snapshot.status,
    state: r.snapshot.value as unknown,
    tags: [...r.snapshot.tags].sort(),
    version: r.version,
    context: redact(r.snapshot.context),
    deadlines: Object.fromEntries([...timers].map(([k, at]) => [k, new Date(at).toISOString()])),
    recent: r.recent,
  };
}

const actorParams = z.object({ id: z.string().regex(STREAM_NAME_PATTERN) });
/** One actor (live, or replayed from its stream) and its stored history, redacted. */
const actorDetail = z.looseObject({ actor: z.unknown(), history: z.array(z.unknown()) });
const BAD_ACTOR_ID = schemaErrors({
  params: [
    'BAD_ACTOR_ID',
    'actor ids look like launch.<id>, vm.<id>, autospawner.main or pool.<region>',
  ],
});

export const debugRoutes: FastifyPluginAsyncZod<{
  services: WhereServices;
  sse: SseRegistry;
}> = async (app, { services: s, sse }) => {
  // Operator data: never kept by a browser or a proxy on the way.
  app.addHook('onRequest', async (_req, reply) => {
    reply.header('cache-control', 'no-store');
  });
  app.addHook('onRequest', requireToken(s.cfg.debugToken));

  app.get('/debug/actors', async (req, reply) => {
    const actors = s.runtime
      .actors()
      .map((r) => describeActor(r, s.runtime.pendingTimers(r.stream)))
      .sort((a, b) => a.id.localeCompare(b.id));
    const body = {
      instance: s.cfg.instance,
      region: s.cfg.region,
      leader: s.cluster.isLeader(),
      members: s.cluster.members(),
      reconciler: s.reconciler.last ?? null,
      actors,
    };
    if (!wantsHtml(req)) return body;
    const rows = actors
      .map(
        (a) =>
          `<tr><td><a href="/debug/actors/${encodeURIComponent(a.id)}">${escapeHtml(a.id)}</a></td><td>${escapeHtml(a.chart)}</td><td>${escapeHtml(JSON.stringify(a.state))}</td><td>${escapeHtml(a.tags.join(' '))}</td><td>${a.version}</td><td><code>${escapeHtml(JSON.stringify(a.deadlines))}</code></td></tr>`,
      )
      .join('');
    return reply
      .header('content-type', 'text/html; charset=utf-8')
      .header('content-security-policy', "default-src 'none'; style-src 'unsafe-inline'")
      .send(
        `<!doctype html><meta charset="utf-8"><title>Actors · ${escapeHtml(s.cfg.instance)}</title><style>body{font:14px system-ui;margin:1rem}td,th{padding:.2rem .6rem;text-align:left;border-bottom:1px solid #ccc}code{font-size:12px}</style><h1>${actors.length} actors on ${escapeHtml(s.cfg.instance)} (${escapeHtml(s.cfg.region)}${body.leader ? ', leader' : ''})</h1><table><thead><tr><th>actor</th><th>chart</th><th>state</th><th>tags</th><th>version</th><th>deadlines</th></tr></thead><tbody>${rows}</tbody></table>`,
      );
  });

  const onActor = {
    schema: { params: actorParams, response: { 200: actorDetail, '4xx': errorBodySchema } },
    schemaErrorFormatter: BAD_ACTOR_ID,
  };
  app.get('/debug/actors/:id', onActor, async (req) => {
    const id = req.params.id;
    const history = await s.runtime.history(id);
    const r = s.runtime.actor(id);
    // No history left: retention archived it (its finished copy may linger in memory a while),
    // so it is gone, not unknown. A live actor is never archived.
    if (
      history.length === 0 &&
      r?.snapshot.status !== 'active' &&
      (await s.retention.status(id)) === 'archived'
    )
      throw new AppError('ACTOR_GONE', s.retention.goneMessage('actor'));
    if (!r && history.length === 0) throw new AppError('ACTOR_NOT_FOUND', 'no such actor');
    const steps = r ? undefined : await s.runtime.replay(id);
    const last = steps?.at(-1);
    return {
      actor: r
        ? describeActor(r, s.runtime.pendingTimers(id))
        : {
            id,
            status: last?.snapshot.status,
            state: last?.snapshot.value as unknown,
            evicted: true,
            context: redact(last?.snapshot.context),
          },
      history: history.map((e) => ({
        version: e.version,
        type: e.type,
        at: e.at,
        id: e.id,
        data: redact(e.data),
        meta: e.meta,
      })),
    };
  });

  app.get('/debug/stream', { sse: 'only' }, async (_req, reply) => {
    const client = sse.open(reply, () => stop());
    const stop = s.runtime.onChange((c) => {
      client.write(
        frame('transition', {
          id: c.record.stream,
          type: c.event.type,
          version: c.event.version,
          at: c.event.at,
          by: c.event.meta.instance,
          state: c.record.snapshot.value as unknown,
          tags: [...c.record.snapshot.tags].sort(),
          status: c.record.snapshot.status,
        }),
      );
    });
    return reply;
  });
};
