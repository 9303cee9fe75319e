import { pino } from 'pino';

/** The logging surface every part of Galet takes (pino's, so any pino logger fits). */
export interface Logger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  child(bindings: Record<string, unknown>): Logger;
}

export function createLogger(options: { level?: string; name?: string } = {}): Logger {
  return pino({
    name: options.name ?? 'galet',
    level: options.level ?? process.env['GALET_LOG_LEVEL'] ?? 'info',
    // Defence in depth: anything named like a key is never written out.
    redact: {
      paths: [
        '*.appKey',
        '*.nwkKey',
        '*.appSKey',
        '*.nwkSKey',
        '*.keys',
        'appKey',
        'nwkKey',
        'token',
      ],
      censor: '[redacted]',
    },
  });
}

/** A logger that drops everything (tests, library use). */
export const silentLogger: Logger = {
  debug: () => {},
  info: () => {},
  warn: () => {},
  error: () => {},
  child: () => silentLogger,
};
