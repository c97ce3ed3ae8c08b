/**
 * The edge proxy's own error answers. These codes are Fly's proxy's, not the app's (those live in
 * machines/vocabulary.ts): one table with their statuses, sent in the body every listener uses.
 */
import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { errorBody } from '../shared/errorBody.js';
import { VIA } from './edgeHeaders.js';

export const EDGE_ERROR_CODES = {
  /** The app has no started instance to take the request. */
  NO_INSTANCE: 503,
  /** The chosen instance refused the connection or broke it before answering. */
  INSTANCE_UNREACHABLE: 502,
  /** A replay was asked for a request whose body was too large to keep. */
  REPLAY_BODY_TOO_LARGE: 413,
  /** More replays than one request may go through. */
  REPLAY_LOOP: 508,
  /** A `fly-replay` header the proxy cannot read. */
  BAD_REPLAY: 502,
  /** Nothing matches where the `fly-replay` header sends the request. */
  REPLAY_TARGET_UNAVAILABLE: 503,
  PROXY_CLOSING: 503,
  /** The proxy itself failed. */
  PROXY_ERROR: 502,
} as const satisfies Record<string, number>;

export type EdgeErrorCode = keyof typeof EDGE_ERROR_CODES;

/** Answer with the proxy's error, or break the response if its head is already out. */
export function sendEdgeError(
  res: ServerResponse,
  code: EdgeErrorCode,
  message: string,
  extra: OutgoingHttpHeaders = {},
): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const statusCode = EDGE_ERROR_CODES[code];
  const body = JSON.stringify(errorBody(statusCode, code, message));
  res.writeHead(statusCode, {
    ...extra,
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    via: VIA,
  });
  res.end(body);
}
