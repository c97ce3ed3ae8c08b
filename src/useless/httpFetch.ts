/**
 * A small `fetch` over node:http for the VM's own calls (its readiness self-check and its calls
 * home): Node's global fetch loads undici on first use, ~45 ms on the path from boot to "ready".
 * Supports what those calls use: method, headers, a string body, an AbortSignal; the answer's
 * status, text() and json().
 */
import { request } from 'node:http';
import { readText } from '../shared/readText.js';
import type { Fetch } from './callbacks.js';

export const httpFetch: Fetch = ((input: string | URL, init: RequestInit = {}) =>
  new Promise((resolve, reject) => {
    const url = new URL(String(input));
    if (url.protocol !== 'http:') {
      // Anything but plain HTTP (https to a real host) goes to the full client.
      globalThis.fetch(input, init).then(resolve, reject);
      return;
    }
    const body = typeof init.body === 'string' ? init.body : undefined;
    // Plain objects only (what our calls pass): the Headers class would load undici too.
    const headers: Record<string, string> = {
      ...((init.headers as Record<string, string> | undefined) ?? {}),
    };
    if (body !== undefined) headers['content-length'] = String(Buffer.byteLength(body));
    const req = request(
      url,
      { method: init.method ?? 'GET', headers, signal: init.signal ?? undefined },
      (res) => {
        readText(res).then((text) => {
          const status = res.statusCode ?? 0;
          resolve({
            status,
            ok: status >= 200 && status < 300,
            text: async () => text,
            json: async () => JSON.parse(text) as unknown,
          } as Response);
        }, reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  })) as Fetch;
