/**
 * The whole body of an HTTP message from node:http, as UTF-8 text: the small clients that skip
 * `fetch` (the VM's calls home, the chaos harness) read their answers with it.
 */
import type { IncomingMessage } from 'node:http';

/** Resolves at the end of the body; rejects if the stream fails first. */
export function readText(res: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('error', reject);
    res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
  });
}
