/**
 * The network side of the provider link: a WebSocket endpoint on `/api/v1/link` of an existing
 * HTTP server, which providers connect to with a bearer token. Per link (one provider's
 * connection, named by the `linkId` that `authenticate` gives its token): requests in both
 * directions, and durable deliveries through the outbox.
 */
import { type IncomingMessage, type Server, STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { type WebSocket, WebSocketServer } from 'ws';
import { LogThrottle } from '../log-throttle.js';
import {
  addRequestHandler,
  copyTrafficCounters,
  LinkConnection,
  type LinkTrafficCounters,
  newTrafficCounters,
  type SessionFrame,
} from './connection.js';
import { type DeliveryCounters, DeliverySender } from './delivery-sender.js';
import { LinkError, LinkProtocolError, positiveOption as positive } from './errors.js';
import { LINK_LOG_INTERVAL_MS, type LinkLogger, SILENT_LINK_LOGGER } from './log.js';
import {
  DEFAULT_MAX_PENDING_PER_LINK,
  type LinkOutboxStore,
  MAX_LINK_ID_LENGTH,
} from './outbox.js';
import {
  DEFAULT_MAX_FRAME_BYTES,
  deliveryFrameBytes,
  isValidTopic,
  LINK_PATH,
  toBodyJson,
} from './protocol.js';

export type LinkAuthenticator = (token: string) => Promise<{ linkId: string } | undefined>;
export type LinkServerRequestHandler = (linkId: string, body: unknown) => Promise<unknown>;

export interface LinkServerOptions {
  /** The HTTP(S) server to take WebSocket upgrades of `/api/v1/link` from (Fastify: `app.server`). */
  server: Server;
  /** The link a bearer token belongs to, or undefined to refuse it (HTTP 401). */
  authenticate: LinkAuthenticator;
  outbox: LinkOutboxStore;
  logger?: LinkLogger;
  /** Largest frame accepted and sent, in bytes (default 1 MiB). Use the same on both ends. */
  maxFrameBytes?: number;
  /** Pending deliveries per link beyond which `deliver` refuses with OUTBOX_FULL (default 100 000). */
  maxPendingPerLink?: number;
  /** Deliveries sent and not yet acknowledged, per link (1 to 1000, default 64). */
  maxInFlightDeliveries?: number;
  /** Default timeout of `request` (default 10 s). */
  requestTimeoutMs?: number;
  /** Wait before sending a nacked delivery again (default 1 s), doubling up to the maximum. */
  redeliveryDelayMs?: number;
  /** Default 60 s. */
  maxRedeliveryDelayMs?: number;
  /** Ping interval; a connection that missed a pong by the next ping is closed (default 30 s). */
  pingIntervalMs?: number;
  /** How long `authenticate` may take before the upgrade is refused with 503 (default 10 s). */
  authTimeoutMs?: number;
  /** A provider's requests handled at once per link; more are answered BUSY (default 64). */
  maxConcurrentRequests?: number;
}

export interface LinkServerCounters extends LinkTrafficCounters, DeliveryCounters {
  /** Upgrades refused with 401 (no token, malformed header, or a token `authenticate` refused). */
  authFailures: number;
  /** `authenticate` threw or took too long (503). */
  authErrors: number;
  connects: number;
  disconnects: number;
  /** Connections closed because a newer one of the same link came. */
  connectionsReplaced: number;
  /** Deliveries stored in the outbox. */
  deliveriesStored: number;
  /** `deliver` calls refused because the link's outbox was full. */
  deliveriesRefused: number;
  /** Pending deliveries per link, for the links seen since the server started. */
  deliveriesPending: Record<string, number>;
}

export interface LinkDisconnectInfo {
  code: number;
  reason: string;
}

interface LinkSession {
  readonly linkId: string;
  readonly connection: LinkConnection;
  readonly sender: DeliverySender;
}

const MAX_TOKEN_LENGTH = 4096;
/** Close code for a connection replaced by a newer one of the same link (private range 4000-4999). */
export const CLOSE_REPLACED = 4000;
const OUTBOX_RETRY_DELAY_MS = 1000;

export class LinkServer {
  readonly #httpServer: Server;
  readonly #authenticate: LinkAuthenticator;
  readonly #outbox: LinkOutboxStore;
  readonly #logger: LinkLogger;
  readonly #maxFrameBytes: number;
  readonly #maxPendingPerLink: number;
  readonly #window: number;
  readonly #requestTimeoutMs: number;
  readonly #redeliveryDelayMs: number;
  readonly #maxRedeliveryDelayMs: number;
  readonly #pingIntervalMs: number;
  readonly #authTimeoutMs: number;
  readonly #maxConcurrentRequests: number;
  readonly #wss: WebSocketServer;
  readonly #sessions = new Map<string, LinkSession>();
  readonly #handlers = new Map<string, LinkServerRequestHandler>();
  readonly #connectListeners: Array<(linkId: string) => void> = [];
  readonly #disconnectListeners: Array<(linkId: string, info: LinkDisconnectInfo) => void> = [];
  readonly #traffic = newTrafficCounters();
  readonly #deliveryCounters: DeliveryCounters = {
    deliveriesSent: 0,
    deliveriesRetransmitted: 0,
    deliveriesAcked: 0,
    deliveriesNacked: 0,
    outboxErrors: 0,
  };
  readonly #counters = {
    authFailures: 0,
    authErrors: 0,
    connects: 0,
    disconnects: 0,
    connectionsReplaced: 0,
    deliveriesStored: 0,
    deliveriesRefused: 0,
  };
  readonly #pending = new Map<string, number>();
  readonly #highestSent = new Map<string, number>();
  /** Keys `auth` (refused upgrades) and `outbox-full`. */
  readonly #logThrottle = new LogThrottle(LINK_LOG_INTERVAL_MS);
  /** Senders of closed connections whose outbox acks may still run. */
  readonly #settling = new Set<Promise<void>>();
  #closed = false;

  constructor(options: LinkServerOptions) {
    this.#httpServer = options.server;
    this.#authenticate = options.authenticate;
    this.#outbox = options.outbox;
    this.#logger = options.logger ?? SILENT_LINK_LOGGER;
    this.#maxFrameBytes = positive(options.maxFrameBytes, DEFAULT_MAX_FRAME_BYTES, 'maxFrameBytes');
    this.#maxPendingPerLink = positive(
      options.maxPendingPerLink,
      DEFAULT_MAX_PENDING_PER_LINK,
      'maxPendingPerLink',
    );
    this.#window = positive(options.maxInFlightDeliveries, 64, 'maxInFlightDeliveries');
    if (this.#window > 1000) {
      throw new LinkError('INVALID_ARGUMENT', 'maxInFlightDeliveries must be at most 1000');
    }
    this.#requestTimeoutMs = positive(options.requestTimeoutMs, 10_000, 'requestTimeoutMs');
    this.#redeliveryDelayMs = positive(options.redeliveryDelayMs, 1000, 'redeliveryDelayMs');
    this.#maxRedeliveryDelayMs = positive(
      options.maxRedeliveryDelayMs,
      60_000,
      'maxRedeliveryDelayMs',
    );
    this.#pingIntervalMs = positive(options.pingIntervalMs, 30_000, 'pingIntervalMs');
    this.#authTimeoutMs = positive(options.authTimeoutMs, 10_000, 'authTimeoutMs');
    this.#maxConcurrentRequests = positive(
      options.maxConcurrentRequests,
      64,
      'maxConcurrentRequests',
    );
    this.#wss = new WebSocketServer({
      noServer: true,
      maxPayload: this.#maxFrameBytes,
      perMessageDeflate: false,
      clientTracking: false,
    });
    this.#httpServer.on('upgrade', this.#onUpgrade);
  }

  /** Handles the provider's requests of `method`. One handler per method. */
  onRequest(method: string, handler: LinkServerRequestHandler): void {
    addRequestHandler(this.#handlers, method, handler);
  }

  /** Called when a link connects (also when a newer connection replaces an older one). */
  onConnect(listener: (linkId: string) => void): void {
    this.#connectListeners.push(listener);
  }

  /** Called when a link has no connection any more (not when a newer one replaced it). */
  onDisconnect(listener: (linkId: string, info: LinkDisconnectInfo) => void): void {
    this.#disconnectListeners.push(listener);
  }

  isConnected(linkId: string): boolean {
    return this.#sessions.has(linkId);
  }

  /**
   * Closes the live connection of a link (its token was revoked, say); resolves once closed.
   * The provider reconnects unless `authenticate` now refuses its token.
   */
  async disconnect(linkId: string, reason = 'disconnected by the network'): Promise<void> {
    await this.#sessions.get(linkId)?.connection.close(1000, reason.slice(0, 120));
  }

  /** The links connected now. */
  connectedLinks(): string[] {
    return [...this.#sessions.keys()];
  }

  /**
   * Sends a request to the provider of `linkId` and resolves with its answer's body. Rejects
   * with a LinkError: NOT_CONNECTED, DISCONNECTED, TIMEOUT, REMOTE_ERROR (the provider answered
   * ok:false: `error.remote`), FRAME_TOO_LARGE, INVALID_ARGUMENT, CLOSED.
   */
  async request(
    linkId: string,
    method: string,
    body: unknown,
    options?: { timeoutMs?: number },
  ): Promise<unknown> {
    if (this.#closed) throw closedError();
    const session = this.#sessions.get(linkId);
    if (session === undefined) {
      throw new LinkError('NOT_CONNECTED', `link ${linkId} is not connected`);
    }
    return session.connection.request(
      method,
      body,
      positive(options?.timeoutMs, this.#requestTimeoutMs, 'timeoutMs'),
    );
  }

  /**
   * Stores a delivery for the provider of `linkId` in the durable outbox and returns its seq.
   * It is sent when the link is connected, in seq order, and again after each reconnection
   * until acknowledged. Rejects with a LinkError: OUTBOX_FULL (nothing stored; the caller
   * decides whether to drop, retry later or alert), FRAME_TOO_LARGE, INVALID_ARGUMENT, CLOSED;
   * or with the outbox's own error when it cannot store.
   */
  async deliver(linkId: string, topic: string, body: unknown): Promise<number> {
    if (this.#closed) throw closedError();
    if (!isValidLinkId(linkId)) {
      throw new LinkError(
        'INVALID_ARGUMENT',
        `linkId must have 1 to ${MAX_LINK_ID_LENGTH} characters`,
      );
    }
    if (!isValidTopic(topic)) {
      throw new LinkError('INVALID_ARGUMENT', 'topic must have 1 to 256 characters');
    }
    let bodyJson: string;
    try {
      bodyJson = toBodyJson(body);
    } catch (error) {
      throw new LinkError(
        'INVALID_ARGUMENT',
        `${topic} delivery body is not JSON: ${(error as Error).message}`,
      );
    }
    const bytes = deliveryFrameBytes(topic, bodyJson);
    if (bytes > this.#maxFrameBytes) {
      throw new LinkError(
        'FRAME_TOO_LARGE',
        `${topic} delivery of ${bytes} bytes exceeds the maximum frame of ${this.#maxFrameBytes} bytes`,
      );
    }
    const seq = await this.#outbox.append(linkId, topic, bodyJson, this.#maxPendingPerLink);
    if (seq === undefined) {
      this.#counters.deliveriesRefused++;
      const log = this.#logThrottle.take('outbox-full', Date.now());
      if (log !== undefined) {
        this.#logger.warn(
          { linkId, maxPendingPerLink: this.#maxPendingPerLink, suppressed: log.suppressed },
          'link outbox full; delivery refused',
        );
      }
      throw new LinkError(
        'OUTBOX_FULL',
        `the outbox of link ${linkId} holds ${this.#maxPendingPerLink} pending deliveries`,
      );
    }
    this.#counters.deliveriesStored++;
    if (this.#pending.has(linkId)) this.#pending.set(linkId, this.#pending.get(linkId)! + 1);
    else this.#refreshPending(linkId);
    this.#sessions.get(linkId)?.sender.wake();
    return seq;
  }

  /** Pending deliveries of a link, from the outbox. */
  pendingDeliveries(linkId: string): Promise<number> {
    return this.#outbox.pendingCount(linkId);
  }

  counters(): LinkServerCounters {
    return {
      ...copyTrafficCounters(this.#traffic),
      ...this.#deliveryCounters,
      ...this.#counters,
      deliveriesPending: Object.fromEntries(this.#pending),
    };
  }

  /**
   * Stops taking upgrades, closes every connection (1001; requests waiting for an answer are
   * rejected with CLOSED) and waits for outbox acks under way. The HTTP server stays open.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#httpServer.off('upgrade', this.#onUpgrade);
    const sessions = [...this.#sessions.values()];
    await Promise.all(
      sessions.map((session) => {
        session.sender.stop();
        return session.connection.close(1001, 'server shutting down', closedError());
      }),
    );
    await Promise.all([...sessions.map((session) => session.sender.settled()), ...this.#settling]);
    this.#wss.close();
  }

  readonly #onUpgrade = (request: IncomingMessage, socket: Duplex, head: Buffer): void => {
    let pathname: string;
    try {
      pathname = new URL(request.url ?? '/', 'http://link.invalid').pathname;
    } catch {
      pathname = '';
    }
    if (pathname !== LINK_PATH) {
      // Other paths belong to other upgrade listeners; with none, nobody would ever answer.
      if (this.#httpServer.listenerCount('upgrade') === 1) {
        refuseUpgrade(socket, 404, 'NOT_FOUND', 'no WebSocket endpoint on this path');
      }
      return;
    }
    this.#acceptUpgrade(request, socket, head).catch((error: unknown) => {
      this.#logger.error({ error: String(error) }, 'link upgrade failed');
      socket.destroy();
    });
  };

  async #acceptUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const remoteAddress = request.socket.remoteAddress;
    // After 'upgrade' Node leaves the socket to us: an error without a listener would be fatal.
    socket.on('error', (error) =>
      this.#logger.debug({ remoteAddress, error: error.message }, 'link upgrade socket error'),
    );
    const token = bearerToken(request.headers.authorization);
    if (token === undefined) {
      this.#refuseUnauthorized(socket, remoteAddress, 'no bearer token');
      return;
    }
    let identity: { linkId: string } | undefined;
    try {
      identity = await withTimeout(this.#authenticate(token), this.#authTimeoutMs);
    } catch (error) {
      this.#counters.authErrors++;
      this.#logger.error(
        { remoteAddress, error: error instanceof Error ? error.message : String(error) },
        'link authentication failed to answer; upgrade refused',
      );
      refuseUpgrade(socket, 503, 'UNAVAILABLE', 'authentication is unavailable; try again later');
      return;
    }
    const linkId = identity?.linkId;
    if (!isValidLinkId(linkId)) {
      this.#refuseUnauthorized(socket, remoteAddress, 'token refused');
      return;
    }
    if (this.#closed) {
      refuseUpgrade(socket, 503, 'UNAVAILABLE', 'the server is shutting down');
      return;
    }
    if (socket.destroyed) return;
    this.#wss.handleUpgrade(request, socket, head, (ws) => this.#onConnection(linkId, ws, request));
  }

  #refuseUnauthorized(socket: Duplex, remoteAddress: string | undefined, reason: string): void {
    this.#counters.authFailures++;
    const log = this.#logThrottle.take('auth', Date.now());
    if (log !== undefined) {
      this.#logger.warn(
        { remoteAddress, reason, suppressed: log.suppressed },
        'link connection refused: not authenticated',
      );
    }
    refuseUpgrade(socket, 401, 'UNAUTHORIZED', 'a valid link token is needed', {
      'WWW-Authenticate': 'Bearer',
    });
  }

  #onConnection(linkId: string, ws: WebSocket, request: IncomingMessage): void {
    const remoteAddress = request.socket.remoteAddress;
    if (this.#closed) {
      ws.close(1001, 'server shutting down');
      return;
    }
    const previous = this.#sessions.get(linkId);
    if (previous !== undefined) {
      this.#counters.connectionsReplaced++;
      this.#logger.info({ linkId, remoteAddress }, 'newer link connection replaces the older one');
      this.#retire(previous);
      void previous.connection.close(CLOSE_REPLACED, 'replaced by a newer connection');
    }
    const logFields = { linkId, remoteAddress };
    let sender: DeliverySender | undefined;
    const connection = new LinkConnection(ws, {
      maxFrameBytes: this.#maxFrameBytes,
      maxConcurrentRequests: this.#maxConcurrentRequests,
      counters: this.#traffic,
      logger: this.#logger,
      logFields,
      pingIntervalMs: this.#pingIntervalMs,
      handlerFor: (method) => {
        const handler = this.#handlers.get(method);
        return handler && ((body) => handler(linkId, body));
      },
      onSessionFrame: (frame: SessionFrame) => {
        switch (frame.type) {
          case 'ack':
            sender?.onAck(frame.seq);
            return;
          case 'nack':
            sender?.onNack(frame.seq);
            return;
          case 'deliver':
            throw new LinkProtocolError('UNEXPECTED_FRAME', 'a provider does not send deliveries');
        }
      },
      onClose: (code, reason) => {
        this.#counters.disconnects++;
        if (this.#sessions.get(linkId) !== session) return;
        this.#sessions.delete(linkId);
        this.#retire(session);
        this.#logger.info({ linkId, remoteAddress, code, reason }, 'link disconnected');
        for (const listener of this.#disconnectListeners) {
          this.#notify(() => listener(linkId, { code, reason }));
        }
      },
    });
    sender = new DeliverySender({
      linkId,
      outbox: this.#outbox,
      window: this.#window,
      redeliveryDelayMs: this.#redeliveryDelayMs,
      maxRedeliveryDelayMs: this.#maxRedeliveryDelayMs,
      outboxRetryDelayMs: OUTBOX_RETRY_DELAY_MS,
      counters: this.#deliveryCounters,
      logger: this.#logger,
      send: (text) => connection.send(text),
      highestSent: {
        get: () => this.#highestSent.get(linkId) ?? 0,
        set: (seq) => this.#highestSent.set(linkId, seq),
      },
      onAcked: (count) => {
        this.#pending.set(linkId, Math.max(0, (this.#pending.get(linkId) ?? count) - count));
      },
    });
    const session: LinkSession = { linkId, connection, sender };
    this.#sessions.set(linkId, session);
    this.#counters.connects++;
    this.#logger.info({ linkId, remoteAddress }, 'link connected');
    for (const listener of this.#connectListeners) this.#notify(() => listener(linkId));
    this.#refreshPending(linkId);
    sender.wake();
  }

  /** The pending count of a link from the outbox (at connect, and the first time it is seen). */
  #refreshPending(linkId: string): void {
    this.#outbox.pendingCount(linkId).then(
      (count) => this.#pending.set(linkId, count),
      (error: unknown) => {
        this.#deliveryCounters.outboxErrors++;
        this.#logger.error({ linkId, error: String(error) }, 'link outbox count failed');
      },
    );
  }

  #retire(session: LinkSession): void {
    session.sender.stop();
    const settled = session.sender.settled();
    this.#settling.add(settled);
    void settled.finally(() => this.#settling.delete(settled));
  }

  #notify(call: () => void): void {
    try {
      call();
    } catch (error) {
      this.#logger.error({ error: String(error) }, 'link event listener failed');
    }
  }
}

function isValidLinkId(linkId: unknown): linkId is string {
  return typeof linkId === 'string' && linkId !== '' && linkId.length <= MAX_LINK_ID_LENGTH;
}

/** The token of an `Authorization: Bearer <token>` header, or undefined. */
function bearerToken(header: string | undefined): string | undefined {
  if (typeof header !== 'string' || header.length > MAX_TOKEN_LENGTH + 7) return undefined;
  const match = /^Bearer +([\x21-\x7e]+) *$/i.exec(header);
  return match?.[1];
}

function refuseUpgrade(
  socket: Duplex,
  status: number,
  error: string,
  message: string,
  headers: Record<string, string> = {},
): void {
  if (socket.destroyed || !socket.writable) {
    socket.destroy();
    return;
  }
  const body = JSON.stringify({ error, message });
  const lines = [
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}`,
    'Connection: close',
    'Content-Type: application/json',
    `Content-Length: ${Buffer.byteLength(body)}`,
    ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
  ];
  socket.once('finish', () => socket.destroy());
  socket.end(`${lines.join('\r\n')}\r\n\r\n${body}`);
}

function withTimeout<T>(promise: Promise<T>, timeoutMs: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function closedError(): LinkError {
  return new LinkError('CLOSED', 'the link server is closed');
}
