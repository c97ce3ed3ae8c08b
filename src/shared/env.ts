/**
 * Parse the environment once, with zod, at start. A bad value stops the process with a message that
 * names the variable, never a stack trace deep inside the app.
 */
import { z } from 'zod';

export class ConfigError extends Error {
  constructor(readonly issues: { variable: string; message: string }[]) {
    super(
      'invalid configuration:\n' + issues.map((i) => `  ${i.variable}: ${i.message}`).join('\n'),
    );
    this.name = 'ConfigError';
  }
}

export function parseEnv<S extends z.ZodType>(
  schema: S,
  env: Record<string, string | undefined> = process.env,
): z.infer<S> {
  const result = schema.safeParse(env);
  if (result.success) return result.data;
  throw new ConfigError(
    result.error.issues.map((i) => ({
      variable: i.path.map(String).join('.') || '(environment)',
      message: i.message,
    })),
  );
}

/** For main.ts: parse, or print the problem and exit 2 (a configuration error, not a crash). */
export function loadEnvOrExit<S extends z.ZodType>(schema: S, program: string): z.infer<S> {
  try {
    return parseEnv(schema);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${program}: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
}

// Reusable field parsers for env strings.
export const envInt = (min = 0, max = Number.MAX_SAFE_INTEGER) =>
  z
    .string()
    .trim()
    .regex(/^-?\d+$/, 'expected an integer')
    .transform(Number)
    .pipe(z.number().int().min(min).max(max));

export const envBool = z
  .enum(['1', '0', 'true', 'false', 'yes', 'no', 'on', 'off'], {
    message: 'expected one of 1/0, true/false, yes/no, on/off',
  })
  .transform((v) => ['1', 'true', 'yes', 'on'].includes(v));

export const envUrl = z.url({ message: 'expected a URL' });

export const envList = z.string().transform((s) =>
  s
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean),
);
