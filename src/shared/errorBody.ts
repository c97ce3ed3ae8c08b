/**
 * The one shape of every error answer, from any of our listeners: Fastify's
 * `{ statusCode, code, error, message }`, with the reason phrase from Node's own table.
 */
import { STATUS_CODES } from 'node:http';
import { z } from 'zod';

/** Routes declare it as their 4xx/5xx reply schema. */
export const errorBodySchema = z.object({
  statusCode: z.number().int(),
  code: z.string(),
  error: z.string(),
  message: z.string(),
});
export type ErrorBody = z.infer<typeof errorBodySchema>;

export const reasonPhrase = (statusCode: number): string => STATUS_CODES[statusCode] ?? 'Error';

export function errorBody(statusCode: number, code: string, message: string): ErrorBody {
  return { statusCode, code, error: reasonPhrase(statusCode), message };
}
