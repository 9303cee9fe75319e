/** What a test reads of a Galet from the outside: its log lines and its Prometheus samples. */
import assert from 'node:assert/strict';
import type { Logger } from '../../src/logger.js';
import { TEST_ADMIN_TOKEN } from './galet.js';

export interface LogEntry {
  level: 'debug' | 'info' | 'warn' | 'error';
  /** The entry's fields with the bindings of the child logger that wrote it. */
  fields: Record<string, unknown>;
  message: string;
}

/** A Logger that keeps every entry (with its child bindings) for the test to read. */
export function capturingLogger(
  entries: LogEntry[],
  bindings: Record<string, unknown> = {},
): Logger {
  const at =
    (level: LogEntry['level']) =>
    (obj: object, message = '') =>
      entries.push({ level, fields: { ...bindings, ...obj }, message });
  return {
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    child: (more) => capturingLogger(entries, { ...bindings, ...more }),
  };
}

/** The value of one Prometheus sample (`name{labels}`) of the Galet at `baseUrl`, 0 when absent. */
export async function metricSample(baseUrl: string, name: string): Promise<number> {
  const response = await fetch(`${baseUrl}/api/v1/metrics`, {
    headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` },
  });
  assert.equal(response.status, 200);
  for (const line of (await response.text()).split('\n')) {
    if (line.startsWith(`${name} `)) return Number(line.slice(name.length + 1));
  }
  return 0;
}
