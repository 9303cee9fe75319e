import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type Logger, silentLogger } from '../logger.js';
import type { FailureResultCode } from './backend-interfaces/index.js';
import { answerJoinReq, type JoinAnsKeks, unreadRequestAnswer } from './backend-join.js';
import type { JoinServer } from './join-server.js';

/** Largest request body read (the Backend Interfaces codec reads at most this much too). */
export const MAX_REQUEST_BYTES = 64 * 1024;
/** Beyond this, an oversized body is not even drained: the connection is cut. */
const MAX_DRAINED_BYTES = 16 * MAX_REQUEST_BYTES;

/** A network the endpoint let in, and the KEKs its answers are wrapped with. */
export interface JoinEndpointCaller {
  /** As configured; the metrics' `kind` label and the logs' `network` field. */
  name: string;
  keks: JoinAnsKeks;
}

/**
 * Who is calling: a caller, or why not (`refused`: a short reason, the metrics' `kind` label;
 * `detail`: for the log line, never a credential).
 */
export type CallerCheck = (
  request: IncomingMessage,
) => { caller: JoinEndpointCaller } | { refused: string; detail: string };

/** The endpoint's counters (the metrics' `kind` label is the key). */
export interface JoinEndpointCounters {
  /** JoinReq and RejoinReq read from a caller let in, by caller. */
  joinRequests: Record<string, number>;
  joinsAccepted: Record<string, number>;
  /** Answered with a failure (UnknownDevEUI, MICFailed, MalformedRequest...), by caller. */
  joinsRefused: Record<string, number>;
  /** HTTP 401: no credential, a wrong token, an untrusted certificate..., by reason. */
  requestsUnauthorized: Record<string, number>;
  /** Not a POST, too large, not JSON, by reason. */
  requestsMalformed: Record<string, number>;
}

export function newJoinEndpointCounters(callers: readonly string[] = []): JoinEndpointCounters {
  const zero = () => Object.fromEntries(callers.map((name) => [name, 0]));
  return {
    joinRequests: zero(),
    joinsAccepted: zero(),
    joinsRefused: zero(),
    requestsUnauthorized: {},
    requestsMalformed: {},
  };
}

export type HttpJoinServerOptions = {
  joinServer: JoinServer;
  logger?: Logger;
  /** Counted here when given (the endpoint's metrics). */
  counters?: JoinEndpointCounters;
} & (
  | {
      /** Who may call, and the KEKs each caller's answers are wrapped with. */
      authenticate: CallerCheck;
    }
  | {
      /**
       * No credential asked: every caller gets answers wrapped with these KEKs (the network
       * keys' KEK is shared with one network only; for tests and closed networks).
       */
      keks: JoinAnsKeks;
    }
);

/** The caller name of an endpoint without credentials (metrics, logs). */
export const UNAUTHENTICATED_CALLER = 'unauthenticated';

function increment(counter: Record<string, number>, key: string): void {
  counter[key] = (counter[key] ?? 0) + 1;
}

/**
 * A join server's Backend Interfaces endpoint over HTTP (synchronous mode): a JoinReq or
 * RejoinReq POSTed as JSON by a caller `authenticate` lets in is answered in the response with
 * its JoinAns or RejoinAns (HTTP 200, failures such as UnknownDevEUI included), the network keys
 * wrapped with that caller's KEK. A request refused before it is read gets a Backend
 * Interfaces-shaped failed answer too: 401 (`UnknownSender`: Backend Interfaces has no result
 * code for a refused credential), 400 (not JSON: `MalformedRequest`), 413 (over 64 KiB) or 405
 * (not a POST), with a counter and a log line; the process carries on.
 */
export function joinReqRequestHandler(
  options: HttpJoinServerOptions,
): (request: IncomingMessage, response: ServerResponse) => void {
  const logger = options.logger ?? silentLogger;
  const counters = options.counters ?? newJoinEndpointCounters();
  const authenticate: CallerCheck =
    'authenticate' in options
      ? options.authenticate
      : () => ({ caller: { name: UNAUTHENTICATED_CALLER, keks: options.keks } });
  const reply = (
    response: ServerResponse,
    status: number,
    body: Record<string, unknown>,
    headers: Record<string, string> = {},
  ) => {
    if (response.headersSent || response.destroyed) return;
    response.writeHead(status, { 'content-type': 'application/json', ...headers });
    response.end(JSON.stringify(body));
  };
  const refuseMalformed = (
    request: IncomingMessage,
    response: ServerResponse,
    refusal: { status: number; kind: string; resultCode: FailureResultCode; description: string },
    message: unknown,
  ) => {
    increment(counters.requestsMalformed, refusal.kind);
    logger.warn(
      { remoteAddress: request.socket.remoteAddress, reason: refusal.kind },
      `Backend Interfaces request refused: ${refusal.description}`,
    );
    reply(
      response,
      refusal.status,
      unreadRequestAnswer(message, refusal.resultCode, refusal.description),
    );
  };
  return (request, response) => {
    if (request.method !== 'POST') {
      refuseMalformed(
        request,
        response,
        {
          status: 405,
          kind: 'not-post',
          resultCode: 'MalformedRequest',
          description: `${request.method} is not how a JoinReq comes: POST it`,
        },
        undefined,
      );
      request.resume();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    request.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_REQUEST_BYTES) chunks.push(chunk);
      else if (size > MAX_DRAINED_BYTES) request.socket.destroy();
    });
    request.on('error', () => undefined);
    request.on('end', () => {
      if (size > MAX_REQUEST_BYTES) {
        refuseMalformed(
          request,
          response,
          {
            status: 413,
            kind: 'too-large',
            resultCode: 'MalformedRequest',
            description: `the body has ${size} bytes, more than ${MAX_REQUEST_BYTES}`,
          },
          undefined,
        );
        return;
      }
      let message: unknown;
      let json = true;
      try {
        message = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        json = false;
      }
      // Credentials first: a caller not let in learns nothing about its body.
      const checked = authenticate(request);
      if ('refused' in checked) {
        increment(counters.requestsUnauthorized, checked.refused);
        logger.warn(
          {
            remoteAddress: request.socket.remoteAddress,
            reason: checked.refused,
            detail: checked.detail,
          },
          'Backend Interfaces request refused: no credential this join server accepts',
        );
        reply(
          response,
          401,
          unreadRequestAnswer(
            json ? message : undefined,
            'UnknownSender',
            'no credential this join server accepts (bearer token or client certificate)',
          ),
          { 'www-authenticate': 'Bearer realm="galet-backend-interfaces"' },
        );
        return;
      }
      const { caller } = checked;
      if (!json) {
        refuseMalformed(
          request,
          response,
          {
            status: 400,
            kind: 'not-json',
            resultCode: 'MalformedRequest',
            description: 'the body is not JSON',
          },
          undefined,
        );
        return;
      }
      increment(counters.joinRequests, caller.name);
      answerJoinReq(options.joinServer, message, caller.keks).then(
        ({ answer, accepted, resultCode }) => {
          const fields = {
            network: caller.name,
            devEui: devEuiOf(message),
            messageType: answer['MessageType'],
          };
          if (accepted !== undefined) {
            increment(counters.joinsAccepted, caller.name);
            logger.info(
              { ...fields, devEui: accepted.devEui },
              'device joined through Backend Interfaces',
            );
          } else {
            increment(counters.joinsRefused, caller.name);
            const result = answer['Result'] as { Description?: unknown } | undefined;
            logger.info(
              { ...fields, resultCode, description: result?.Description },
              'Backend Interfaces join refused',
            );
          }
          reply(response, 200, answer);
        },
        (error: unknown) => {
          logger.error(
            {
              network: caller.name,
              error: error instanceof Error ? error.message : String(error),
            },
            'JoinReq not answered',
          );
          reply(
            response,
            500,
            unreadRequestAnswer(message, 'Other', 'the join server failed; try again'),
          );
        },
      );
    });
  };
}

/** The DevEUI a request names, lower-case, when it is 16 hex digits (for the log line). */
function devEuiOf(message: unknown): string | undefined {
  const value =
    typeof message === 'object' && message !== null
      ? (message as Record<string, unknown>)['DevEUI']
      : undefined;
  return typeof value === 'string' && /^[0-9a-fA-F]{16}$/.test(value)
    ? value.toLowerCase()
    : undefined;
}

/** `joinReqRequestHandler` on its own HTTP server (any path); `url` is where to POST. */
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
