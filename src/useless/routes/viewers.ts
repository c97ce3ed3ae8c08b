/**
 * The viewers API: a page registers (`POST /machine/viewers`), says it is still there (`…/beat`)
 * and that its sequence finished (`…/done`). Each change lets the machine reconsider switching off.
 */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { errorBodySchema } from '../../shared/errorBody.js';
import { AppError } from '../../shared/errors.js';
import { schemaErrors } from '../../shared/zodRoutes.js';
import type { MachineLife } from '../lifecycle.js';
import { VIEWER_ID, type Viewers } from '../viewers.js';

const VIEWER_ID_WORDS = 'viewer ids are 16 url-safe characters';
const viewerParams = z.strictObject({ id: z.string().regex(VIEWER_ID, VIEWER_ID_WORDS) });
const registered = z.object({ id: z.string(), beatEveryMs: z.number(), graceMs: z.number() });
const errors = { '4xx': errorBodySchema, '5xx': errorBodySchema };

/** `beat` and `done`: a known viewer, 204; an unknown one, 404. */
const onViewer = {
  schema: { params: viewerParams, response: { 204: z.undefined(), ...errors } },
  schemaErrorFormatter: schemaErrors({ params: ['BAD_VIEWER_ID', VIEWER_ID_WORDS] }),
};

export const viewerRoutes: FastifyPluginAsyncZod<{
  life: MachineLife;
  viewers: Viewers;
  beatEveryMs: number;
}> = async (app, { life, viewers, beatEveryMs }) => {
  app.post(
    '/machine/viewers',
    { schema: { response: { 201: registered, ...errors } } },
    async (_req, reply) => {
      if (life.switchingOff)
        throw new AppError('MACHINE_STOPPING', 'this machine is switching itself off');
      const id = viewers.register();
      if (!id)
        throw new AppError('TOO_MANY_VIEWERS', 'this machine has as many viewers as it can take');
      life.reconsider();
      return reply.code(201).send({ id, beatEveryMs, graceMs: viewers.graceMs });
    },
  );

  for (const [path, seen] of [
    ['beat', (id: string) => viewers.touch(id)],
    ['done', (id: string) => viewers.done(id)],
  ] as const) {
    app.post(`/machine/viewers/:id/${path}`, onViewer, async (req, reply) => {
      if (!seen(req.params.id))
        throw new AppError('VIEWER_UNKNOWN', 'no such viewer on this machine');
      life.reconsider();
      return reply.code(204).send();
    });
  }
};
