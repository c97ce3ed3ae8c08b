/**
 * The one shape of every error answer, from any of our listeners: Fastify's
 * `{ statusCode, code, error, message }`, with the reason phrase from Node's own table.
 */
import { STATUS_CODES } from 'node:http';

export interface ErrorBody {
  statusCode: number;
  code: string;
  error: string;
  message: string;
}

export const reasonPhrase = (statusCode: number): string => STATUS_CODES[statusCode] ?? 'Error';

export function errorBody(statusCode: number, code: string, message: string): ErrorBody {
  return { statusCode, code, error: reasonPhrase(statusCode), message };
}
