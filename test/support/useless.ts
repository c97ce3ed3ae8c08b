/** Test support for the Useless Machine: a config builder and a stand-in for the landing app's callback API. */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { uselessEnv, type UselessConfig } from '../../src/useless/config.js';

export const SELF = 'm0self0000001';
export const OTHER = 'm0other000002';
export const LAUNCH_ID = '01JQ7Z0000000000000000ABCD';
export const KEY = 'k'.repeat(64);

export function aConfig(env: Record<string, string> = {}): UselessConfig {
  return uselessEnv.parse({
    FLY_MACHINE_ID: SELF,
    FLY_REGION: 'ams',
    WM_LAUNCH_ID: LAUNCH_ID,
    WM_CALLBACK_KEY: KEY,
    WM_CALLBACK_URL: 'http://127.0.0.1:9/api/machine_status',
    WM_HOME_URL: 'http://localhost:8080/',
    ...env,
  });
}

export interface Received {
  headers: IncomingHttpHeaders;
  raw: string;
  url: string;
}

/**
 * A small HTTP server playing the landing app's private API: records every callback and answers with
 * the next status from `statuses` (the last one repeats).
 */
export class CallbackReceiver {
  readonly received: Received[] = [];
  private readonly server: Server;
  private statuses: number[];

  constructor(statuses: number[] = [200]) {
    this.statuses = [...statuses];
    this.server = createServer((req, res) => {
      let raw = '';
      req.setEncoding('utf8');
      req.on('data', (c: string) => (raw += c));
      req.on('end', () => {
        this.received.push({ headers: req.headers, raw, url: req.url ?? '' });
        const status = this.statuses.length > 1 ? this.statuses.shift()! : this.statuses[0]!;
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(status < 300 ? '{"ok":true}' : '{"error":"no"}');
      });
    });
  }

  respondWith(statuses: number[]): void {
    this.statuses = [...statuses];
  }

  async listen(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    const { port } = this.server.address() as AddressInfo;
    return `http://127.0.0.1:${port}/api/machine_status`;
  }

  bodies(): Array<Record<string, unknown>> {
    return this.received.map((r) => JSON.parse(r.raw) as Record<string, unknown>);
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** A URL nothing listens on: bind a port, note it, release it. */
export async function deadUrl(): Promise<string> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return `http://127.0.0.1:${port}/api/machine_status`;
}

/** Records exit codes instead of ending the test process. */
export function exitRecorder(): { exit: (code: number) => void; codes: number[] } {
  const codes: number[] = [];
  return { exit: (code) => void codes.push(code), codes };
}
