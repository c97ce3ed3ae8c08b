/**
 * Routes of both apps declare their params, querystrings, bodies and replies as zod schemas
 * (fastify-type-provider-zod); a request a schema refuses gets the route's stable error code.
 */
import type {
  FastifyBaseLogger,
  FastifyInstance,
  FastifySchemaValidationError,
  FastifyServerOptions,
  RawReplyDefaultExpression,
  RawRequestDefaultExpression,
  RawServerDefault,
} from 'fastify';
import {
  serializerCompiler,
  validatorCompiler,
  type ZodTypeProvider,
} from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { ErrorCode } from '../../machines/vocabulary.js';
import { AppError } from './errors.js';

type SchemaErrorFormatter = NonNullable<FastifyServerOptions['schemaErrorFormatter']>;
/** The parts of a request a schema checks: `body`, `params`, `querystring`, `headers`. */
type RequestPart = Parameters<SchemaErrorFormatter>[1];

/** The code a refused part answers with, and fixed words for it (else zod's own, as a list). */
export type PartError = ErrorCode | readonly [ErrorCode, string];

/**
 * A route's `schemaErrorFormatter`: which stable error each refused part of a request earns
 * (BAD_REQUEST unless told). The error handler answers it like any other AppError.
 */
export function schemaErrors(
  parts: Partial<Record<RequestPart, PartError>> = {},
): SchemaErrorFormatter {
  return (errors, part) => {
    const given = parts[part] ?? 'BAD_REQUEST';
    const [code, words] = typeof given === 'string' ? [given, undefined] : given;
    return new AppError(code, words ?? zodWords(errors));
  };
}

/**
 * The type provider hands zod's issues over as Fastify validation errors (the path flattened into
 * `instancePath`); rebuilt, zod words them exactly as `z.prettifyError` does for a parse.
 */
function zodWords(errors: FastifySchemaValidationError[]): string {
  const issues = errors.map((e) => ({
    ...e.params,
    code: e.keyword,
    message: e.message ?? 'invalid',
    path: e.instancePath
      .split('/')
      .filter((seg) => seg !== '')
      .map((seg) => (/^\d+$/.test(seg) ? Number(seg) : seg)),
  }));
  return z.prettifyError(new z.ZodError(issues as z.core.$ZodIssue[]));
}

/**
 * Zod validates what comes in and shapes what goes out (a reply schema sends only the keys it
 * declares); a refusal is BAD_REQUEST unless a route says otherwise.
 */
export function zodRoutes<L extends FastifyBaseLogger>(
  app: FastifyInstance<RawServerDefault, RawRequestDefaultExpression, RawReplyDefaultExpression, L>,
): ZodApp<L> {
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  app.setSchemaErrorFormatter(schemaErrors());
  return app.withTypeProvider<ZodTypeProvider>();
}

/** A Fastify instance whose routes are typed by their zod schemas. */
export type ZodApp<L extends FastifyBaseLogger = FastifyBaseLogger> = FastifyInstance<
  RawServerDefault,
  RawRequestDefaultExpression,
  RawReplyDefaultExpression,
  L,
  ZodTypeProvider
>;
