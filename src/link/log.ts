/** The logging the link does: structured fields first, as pino takes them. */
export interface LinkLogger {
  debug(fields: Record<string, unknown>, message: string): void;
  info(fields: Record<string, unknown>, message: string): void;
  warn(fields: Record<string, unknown>, message: string): void;
  error(fields: Record<string, unknown>, message: string): void;
}

export const SILENT_LINK_LOGGER: LinkLogger = {
  debug: () => {},
  info: () => {},
  warn: () => {},
  error: () => {},
};

/**
 * How often the link logs a repeated condition (a peer sending garbage, a refused token
 * hammered, a full outbox): one line per interval through `LogThrottle`, with the number of
 * lines held back since the previous one.
 */
export const LINK_LOG_INTERVAL_MS = 10_000;
