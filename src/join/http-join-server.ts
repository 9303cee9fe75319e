import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type Logger, silentLogger } from '../logger.js';
import { answerJoinReq, type JoinAnsKeks } from './backend-join.js';
import type { JoinServer } from './join-server.js';

const MAX_REQUEST_BYTES = 64 * 1024;

export interface HttpJoinServerOptions {
  joinServer: JoinServer;
  /** The KEK shared with the network (network keys) and the application role's KEK (AppSKey). */
  keks: JoinAnsKeks;
  logger?: Logger;
}

/**
 * A join server's Backend Interfaces endpoint over HTTP (synchronous mode): a JoinReq POSTed as
 * JSON is answered in the response with its JoinAns (HTTP 200, failures included, as
 * `answerJoinReq` makes them). A body that is not JSON, too large or not POSTed gets a 4xx and
 * a log line; the process carries on.
 */
export function joinReqRequestHandler(
  options: HttpJoinServerOptions,
): (request: IncomingMessage, response: ServerResponse) => void {
  const logger = options.logger ?? silentLogger;
  const reply = (response: ServerResponse, status: number, body: unknown) => {
    response.writeHead(status, { 'content-type': 'application/json' });
    response.end(JSON.stringify(body));
  };
  return (request, response) => {
    if (request.method !== 'POST') {
      reply(response, 405, { error: 'METHOD_NOT_ALLOWED', message: 'POST a JoinReq' });
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let refused = false;
    request.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_REQUEST_BYTES && !refused) {
        refused = true;
        logger.warn({ bytes: size }, 'Backend Interfaces request too large: refused');
        reply(response, 413, { error: 'TOO_LARGE', message: `at most ${MAX_REQUEST_BYTES} bytes` });
        request.resume();
      }
      if (!refused) chunks.push(chunk);
    });
    request.on('error', () => undefined);
    request.on('end', () => {
      if (refused) return;
      let message: unknown;
      try {
        message = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        logger.warn({}, 'Backend Interfaces request is not JSON: refused');
        reply(response, 400, { error: 'INVALID_JSON', message: 'the body is not JSON' });
        return;
      }
      answerJoinReq(options.joinServer, message, options.keks).then(
        ({ answer, accepted }) => {
          if (accepted !== undefined) {
            logger.info({ devEui: accepted.devEui }, 'device joined through Backend Interfaces');
          }
          reply(response, 200, answer);
        },
        (error: unknown) => {
          logger.error(
            { error: error instanceof Error ? error.message : String(error) },
            'JoinReq not answered',
          );
          reply(response, 500, { error: 'INTERNAL', message: 'the join server failed' });
        },
      );
    });
  };
}

/** `joinReqRequestHandler` on its own HTTP server; `url` is where to POST. */
export async function listenHttpJoinServer(
  options: HttpJoinServerOptions & { host: string; port: number },
): Promise<{ url: string; close(): Promise<void> }> {
  const server = createServer(joinReqRequestHandler(options));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${options.host}:${port}/`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
