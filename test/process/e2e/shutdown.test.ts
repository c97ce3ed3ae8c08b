/**
 * `npm start`'s stack shuts down cleanly: on SIGTERM the landing app, the platform and every VM
 * process it started are gone, with the VMs' own processes found by what their environment names.
 */
import { describe, expect, it } from 'vitest';
import { processesOf, startStack } from '../../support/stack.js';

describe('the local stack', () => {
  it('leaves no process behind, VMs included, when it is stopped', async () => {
    const stack = await startStack({ WM_AUTOSPAWN: 'off', WM_COOLDOWN_MS: '0' });
    try {
      for (const region of ['ams', 'nrt']) {
        const res = await fetch(`${stack.url}/launches`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', origin: stack.url },
          body: JSON.stringify({ region }),
        });
        expect(res.status).toBe(202);
      }
      // The landing app and two VMs (whose callback URL names this stack's private port).
      await expect
        .poll(() => processesOf(stack).length, { timeout: 20_000 })
        .toBeGreaterThanOrEqual(3);
    } finally {
      await stack.stop();
    }
    await expect.poll(() => processesOf(stack), { timeout: 20_000 }).toEqual([]);
  });
});
