/**
 * The warm pool end to end through the local platform (`npm start`'s stack, the emulator's fast
 * profile, real VM processes): a pooled machine is created stopped, a click claims it, the VM
 * starts, fetches its claim, calls home and the visitor is sent to it; at its end the machine is
 * destroyed (consumed, not returned) and the pool refills with a new one.
 */
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openSse, type SseReader } from '../../support/sse.js';
import { startStack, type Stack } from '../../support/stack.js';

interface PoolActor {
  actor: {
    context: {
      machines: Record<string, { state: string; launchId?: string }>;
      creating?: string;
    };
  };
}

/** The status of a GET through the edge proxy for a host name (no DNS needed for `*.localhost`). */
function viaEdge(port: number, path: string, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path, headers: { host: `${host}:${port}` } },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

describe('a warm pool through the local platform', () => {
  let stack: Stack;
  let sse: SseReader | undefined;
  beforeAll(async () => {
    stack = await startStack({
      WM_POOL: 'ams:1',
      WM_COOLDOWN_MS: '0',
      WM_AUTOSPAWN: 'off',
      // A short life: the test waits for the machine's end.
      WM_TTL_BUTTON_MS: '4000',
      WM_VM_IDLE_MS: '2000',
    });
  });
  afterAll(async () => {
    sse?.close();
    await stack?.stop();
  });

  const pool = async (): Promise<PoolActor['actor']['context']> => {
    const res = await fetch(`${stack.privateUrl}/debug/actors/pool.ams`, {
      headers: { authorization: `Bearer ${stack.debugToken}` },
    });
    if (res.status !== 200) return { machines: {} };
    return ((await res.json()) as PoolActor).actor.context;
  };
  const byState = async (state: string) =>
    Object.entries((await pool()).machines)
      .filter(([, m]) => m.state === state)
      .map(([id]) => id);

  it(
    'takes the pooled machine for a click, runs it, destroys it and refills',
    { timeout: 90_000 },
    async () => {
      await expect.poll(() => byState('ready'), { timeout: 20_000 }).toHaveLength(1);
      const [warm] = await byState('ready');

      const res = await fetch(`${stack.url}/launches`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', origin: stack.url },
        body: JSON.stringify({ region: 'ams' }),
      });
      expect(res.status).toBe(202);
      const body = (await res.json()) as { launchId: string; events: string };
      sse = await openSse(stack.url + body.events);
      const frames = () =>
        sse!.frames
          .filter((f) => f.event === 'launch')
          .map((f) => f.data as { status: string; url?: string; machineId?: string });

      // The VM fetched its claim and called home: the visitor is sent to it.
      await expect.poll(() => frames().at(-1)?.status, { timeout: 20_000 }).toBe('ready');
      const ready = frames().at(-1)!;
      expect(ready.machineId).toBe(warm);
      expect(ready.url).toContain(`instance=${warm}`);
      const claimed = (await pool()).machines[warm!];
      expect(claimed).toMatchObject({ state: 'claimed', launchId: body.launchId });

      // The VM answers its visitor through the edge proxy (as the browser reaches it).
      const vmUrl = new URL(ready.url!);
      expect(await viaEdge(stack.port, `${vmUrl.pathname}${vmUrl.search}`, vmUrl.hostname)).toBe(
        200,
      );

      // The pool refills at once with a new machine; the claimed one ends destroyed.
      await expect.poll(() => byState('ready'), { timeout: 20_000 }).toHaveLength(1);
      expect(await byState('ready')).not.toContain(warm);
      await expect.poll(() => frames().at(-1)?.status, { timeout: 40_000 }).toBe('done');
      const vm = await fetch(`${stack.privateUrl}/debug/actors/vm.${warm}`, {
        headers: { authorization: `Bearer ${stack.debugToken}` },
      });
      const v = (await vm.json()) as { actor: { state: unknown } };
      expect(JSON.stringify(v.actor.state)).toContain('destroyed');
      const metrics = await (await fetch(`${stack.privateUrl}/metrics`)).text();
      expect(metrics).toMatch(/wm_pool_claims_total\{region="ams",result="claimed"\} 1/);
    },
  );
});
