/**
 * The emulator's own endpoints, `/__flylocal/*`: health, faults read and set at run time, the
 * machine ledger and each machine's logs, the HTTP stats, and `/metrics` in Prometheus text.
 */
import type { FastifyInstance } from 'fastify';
import type { FlyLocalEmulator } from './emulator.js';
import { zodIssues } from './emulatorError.js';
import { faultConfigSchema } from './faults.js';
import { emulatorMetrics, type HttpStats } from './stats.js';

export function registerAdmin(
  app: FastifyInstance,
  emulator: FlyLocalEmulator,
  stats: HttpStats,
): void {
  app.get('/__flylocal/health', async () => ({
    ok: true,
    machines: emulator.ledger().filter((m) => m.state !== 'destroyed').length,
  }));
  app.get('/__flylocal/faults', async () => emulator.faults.current);
  app.post('/__flylocal/faults', async (req, reply) => {
    const cfg = faultConfigSchema.safeParse(req.body ?? {});
    if (!cfg.success)
      return reply.code(400).send({ error: `invalid_argument: ${zodIssues(cfg.error)}` });
    emulator.faults.set(cfg.data);
    return emulator.faults.current;
  });
  app.delete('/__flylocal/faults', async () => {
    emulator.faults.set({});
    return emulator.faults.current;
  });
  app.get('/__flylocal/machines', async () => emulator.ledger());
  app.get('/__flylocal/machines/:machine_id/logs', async (req, reply) => {
    const id = (req.params as { machine_id: string }).machine_id;
    if (!emulator.machine(id))
      return reply.code(404).send({ error: 'not_found: machine not found' });
    return emulator.logs(id);
  });
  app.get('/__flylocal/stats', async () => ({
    ...stats.toJSON(),
    faults: Object.fromEntries(emulator.faults.injected),
  }));
  // Prometheus text (no auth, like the other local-only admin reads): what the stats say.
  const registry = emulatorMetrics(emulator, stats);
  app.get('/metrics', async (_req, reply) =>
    reply.header('content-type', registry.contentType).send(await registry.metrics()),
  );
}
