/**
 * Logging: pino, JSON lines in production, pretty in a terminal. Secrets are redacted by path so a
 * token that slips into a logged object never reaches the output.
 */
import { pino, type Logger, type LoggerOptions } from 'pino';

export type { Logger };

export const REDACT_PATHS = [
  'req.headers.authorization',
  'headers.authorization',
  'authorization',
  'token',
  'apiToken',
  'secret',
  'callbackSecret',
  'debugToken',
  'key',
  '*.token',
  '*.apiToken',
  '*.secret',
  '*.callbackSecret',
  '*.debugToken',
  'env.FLY_API_TOKEN',
  'env.WM_CALLBACK_KEY',
];

export interface LogOptions {
  name: string;
  level?: string;
  /** Force pretty (true) or JSON (false); default: pretty when stdout is a terminal. */
  pretty?: boolean;
}

export function loggerOptions(opts: LogOptions): LoggerOptions {
  const pretty = opts.pretty ?? process.stdout.isTTY;
  return {
    name: opts.name,
    level: opts.level ?? 'info',
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    ...(pretty
      ? {
          transport: {
            target: 'pino-pretty',
            options: { colorize: true, translateTime: 'HH:MM:ss.l' },
          },
        }
      : {}),
  };
}

export function createLogger(opts: LogOptions): Logger {
  return pino(loggerOptions(opts));
}

/** A logger that writes nothing: for tests and benches that assert behaviour, not log lines. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
