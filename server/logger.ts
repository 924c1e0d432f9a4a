import { type Logger, pino } from 'pino';

export type { Logger };

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

/**
 * Field names pino blanks out wherever they appear. A backstop only: values never reach a log
 * call in the first place, and the canary tests check that.
 */
const REDACT_PATHS = [
  'value',
  '*.value',
  'secret',
  '*.secret',
  'token',
  '*.token',
  'authorization',
  '*.authorization',
  'credential',
  '*.credential',
];

export interface LoggerOptions {
  level: LogLevel;
  pretty: boolean;
  /** Where JSON lines go; stderr by default so stdout stays free for command output. */
  destination?: NodeJS.WritableStream;
}

export function createLogger(options: LoggerOptions): Logger {
  const base = { level: options.level, redact: { paths: REDACT_PATHS, censor: '[redacted]' } };
  if (options.pretty) {
    return pino({
      ...base,
      transport: { target: 'pino-pretty', options: { destination: 2, colorize: true } },
    });
  }
  return pino(base, options.destination ?? pino.destination({ fd: 2, sync: true }));
}
