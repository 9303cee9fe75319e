/** Real link endpoints on 127.0.0.1 with ephemeral ports, and the waiting helpers the tests share. */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TestContext } from 'node:test';
import { LinkClient, type LinkClientOptions } from '../../src/link/client.js';
import type { LinkLogger } from '../../src/link/log.js';
import { InMemoryLinkOutbox, type LinkOutboxStore } from '../../src/link/outbox.js';
import { LinkServer, type LinkServerOptions } from '../../src/link/server.js';

export const TOKEN_A = 'link-token-a-0123456789';
export const TOKEN_B = 'link-token-b-0123456789';
export const TOKENS: Record<string, string> = { [TOKEN_A]: 'provider-a', [TOKEN_B]: 'provider-b' };

export interface LogLine {
  level: 'debug' | 'info' | 'warn' | 'error';
  fields: Record<string, unknown>;
  message: string;
}

export function recordingLogger(): LinkLogger & { lines: LogLine[]; text(): string } {
  const lines: LogLine[] = [];
  const record =
    (level: LogLine['level']) =>
    (fields: Record<string, unknown>, message: string): void => {
      lines.push({ level, fields, message });
    };
  return {
    lines,
    debug: record('debug'),
    info: record('info'),
    warn: record('warn'),
    error: record('error'),
    text: () => lines.map((line) => `${line.message} ${JSON.stringify(line.fields)}`).join('\n'),
  };
}

export interface TestNetwork {
  http: Server;
  server: LinkServer;
  outbox: LinkOutboxStore;
  logger: ReturnType<typeof recordingLogger>;
  /** `http://127.0.0.1:<port>` */
  url: string;
  port: number;
  /** Tokens seen by `authenticate`. */
  tokensSeen: string[];
}

/** A plain HTTP server with a LinkServer on it, closed after the test. */
export async function startNetwork(
  t: TestContext,
  options: Partial<LinkServerOptions> = {},
): Promise<TestNetwork> {
  const http = createServer((_request, response) => {
    response.statusCode = 404;
    response.end();
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const port = (http.address() as AddressInfo).port;
  const logger = recordingLogger();
  const outbox = options.outbox ?? new InMemoryLinkOutbox();
  const tokensSeen: string[] = [];
  const server = new LinkServer({
    server: http,
    outbox,
    logger,
    authenticate: async (token) => {
      tokensSeen.push(token);
      const linkId = TOKENS[token];
      return linkId === undefined ? undefined : { linkId };
    },
    redeliveryDelayMs: 10,
    maxRedeliveryDelayMs: 50,
    ...options,
  });
  t.after(async () => {
    await server.close();
    http.closeAllConnections();
    await new Promise<void>((resolve) => http.close(() => resolve()));
  });
  return { http, server, outbox, logger, url: `http://127.0.0.1:${port}`, port, tokensSeen };
}

/** A started LinkClient with short reconnect delays, closed after the test. */
export function startProvider(
  t: TestContext,
  network: { url: string },
  options: Partial<LinkClientOptions> & { start?: boolean } = {},
): LinkClient & { logger: ReturnType<typeof recordingLogger> } {
  const logger = recordingLogger();
  const client = new LinkClient({
    networkUrl: network.url,
    token: TOKEN_A,
    logger,
    reconnect: { initialDelayMs: 10, maxDelayMs: 50 },
    ...options,
  });
  t.after(() => client.close());
  if (options.start !== false) client.start();
  return Object.assign(client, { logger });
}

/** Polls `check` every 5 ms until it holds; fails after `timeoutMs`. */
export async function eventually(
  check: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 3000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, index) => from + index);
}
