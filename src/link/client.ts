/**
 * The provider side of the link: connects out to the network's `/api/v1/link` with the link
 * token, keeps reconnecting (exponential backoff with jitter), answers the network's requests,
 * sends its own, and hands deliveries to their topic's handler (see delivery-receiver.ts).
 */
import { WebSocket } from 'ws';
import {
  addRequestHandler,
  copyTrafficCounters,
  LinkConnection,
  type LinkTrafficCounters,
  newTrafficCounters,
  type SessionFrame,
} from './connection.js';
import {
  type DeliveryChannel,
  DeliveryReceiver,
  type DeliveryReceiverCounters,
  type LinkDeliveryCursor,
  type LinkDeliveryHandler,
  newDeliveryReceiverCounters,
} from './delivery-receiver.js';
import { LinkError, LinkProtocolError, positiveOption as positive } from './errors.js';
import { type LinkLogger, SILENT_LINK_LOGGER } from './log.js';
import { DEFAULT_MAX_FRAME_BYTES, isValidTopic, LINK_PATH } from './protocol.js';

export type { LinkDeliveryCursor, LinkDeliveryHandler } from './delivery-receiver.js';

/**
 * `idle` before `start()`; `connecting`; `connected`; `waiting` to try again (after a failure or
 * a disconnection); `closed` after `close()`.
 */
export type LinkClientState = 'idle' | 'connecting' | 'connected' | 'waiting' | 'closed';

export interface LinkClientStateChange {
  state: LinkClientState;
  previous: LinkClientState;
  /** `waiting`: why the connection failed or ended (UNAUTHORIZED for a refused token). */
  error?: LinkError;
  /** `waiting`: when the next attempt is made. */
  retryInMs?: number;
}

export interface LinkReconnectOptions {
  /** First wait after a failure (default 500 ms). */
  initialDelayMs?: number;
  /** Longest wait (default 30 s). */
  maxDelayMs?: number;
  /** Growth per consecutive failure (default 2). */
  multiplier?: number;
}

export interface LinkClientOptions {
  /** The network's base URL, `http(s)://host:port[/prefix]` (or `ws(s)://`). */
  networkUrl: string;
  /** The link token; sent as `Authorization: Bearer`, never logged. */
  token: string;
  logger?: LinkLogger;
  /** Largest frame accepted and sent, in bytes (default 1 MiB). Use the same on both ends. */
  maxFrameBytes?: number;
  reconnect?: LinkReconnectOptions;
  /** Wait after the network refused the token (default 60 s): retried slowly, not hammered. */
  unauthorizedRetryDelayMs?: number;
  /** A connection open this long resets the backoff (default 10 s), so a flapping one does not. */
  stableConnectionMs?: number;
  /** Opening handshake timeout (default 10 s). */
  connectTimeoutMs?: number;
  /** Reconnect when nothing, not even a ping, came from the network for this long (default 75 s). */
  idleTimeoutMs?: number;
  /** Default timeout of `request` (default 10 s). */
  requestTimeoutMs?: number;
  /** The network's requests handled at once; more are answered BUSY (default 64). */
  maxConcurrentRequests?: number;
  /** Durable "last handled seq", so that deliveries stay idempotent across restarts. */
  deliveryCursor?: LinkDeliveryCursor;
  onStateChange?: (change: LinkClientStateChange) => void;
  /** Random numbers in [0, 1) for the jitter (default Math.random). */
  random?: () => number;
}

export interface LinkClientCounters extends LinkTrafficCounters, DeliveryReceiverCounters {
  connectAttempts: number;
  connects: number;
  disconnects: number;
  /** Connection attempts the network refused with 401. */
  unauthorized: number;
  /** Connection attempts that failed otherwise (network error, other HTTP status, timeout). */
  connectFailures: number;
}

/** Deliveries waiting to be handled per connection beyond which the network is misbehaving. */
const MAX_QUEUED_DELIVERIES = 10_000;

export class LinkClient {
  readonly #url: string;
  readonly #token: string;
  readonly #logger: LinkLogger;
  readonly #maxFrameBytes: number;
  readonly #initialDelayMs: number;
  readonly #maxDelayMs: number;
  readonly #multiplier: number;
  readonly #unauthorizedRetryDelayMs: number;
  readonly #stableConnectionMs: number;
  readonly #connectTimeoutMs: number;
  readonly #idleTimeoutMs: number;
  readonly #requestTimeoutMs: number;
  readonly #maxConcurrentRequests: number;
  readonly #onStateChange: ((change: LinkClientStateChange) => void) | undefined;
  readonly #random: () => number;
  readonly #requestHandlers = new Map<string, (body: unknown) => Promise<unknown>>();
  readonly #deliveryHandlers = new Map<string, LinkDeliveryHandler>();
  readonly #traffic = newTrafficCounters();
  readonly #deliveryCounters = newDeliveryReceiverCounters();
  readonly #counters = {
    connectAttempts: 0,
    connects: 0,
    disconnects: 0,
    unauthorized: 0,
    connectFailures: 0,
  };
  readonly #receiver: DeliveryReceiver;
  #state: LinkClientState = 'idle';
  #socket: WebSocket | undefined;
  #connection: LinkConnection | undefined;
  #failures = 0;
  #retryTimer: NodeJS.Timeout | undefined;
  #socketClosed: Promise<void> = Promise.resolve();

  constructor(options: LinkClientOptions) {
    this.#url = linkUrl(options.networkUrl);
    if (typeof options.token !== 'string' || !/^[\x21-\x7e]+$/.test(options.token)) {
      throw new LinkError('INVALID_ARGUMENT', 'the link token must be printable ASCII');
    }
    this.#token = options.token;
    this.#logger = options.logger ?? SILENT_LINK_LOGGER;
    this.#maxFrameBytes = positive(options.maxFrameBytes, DEFAULT_MAX_FRAME_BYTES, 'maxFrameBytes');
    this.#initialDelayMs = positive(options.reconnect?.initialDelayMs, 500, 'initialDelayMs');
    this.#maxDelayMs = positive(options.reconnect?.maxDelayMs, 30_000, 'maxDelayMs');
    this.#multiplier = positive(options.reconnect?.multiplier, 2, 'multiplier');
    this.#unauthorizedRetryDelayMs = positive(
      options.unauthorizedRetryDelayMs,
      60_000,
      'unauthorizedRetryDelayMs',
    );
    this.#stableConnectionMs = positive(options.stableConnectionMs, 10_000, 'stableConnectionMs');
    this.#connectTimeoutMs = positive(options.connectTimeoutMs, 10_000, 'connectTimeoutMs');
    this.#idleTimeoutMs = positive(options.idleTimeoutMs, 75_000, 'idleTimeoutMs');
    this.#requestTimeoutMs = positive(options.requestTimeoutMs, 10_000, 'requestTimeoutMs');
    this.#maxConcurrentRequests = positive(
      options.maxConcurrentRequests,
      64,
      'maxConcurrentRequests',
    );
    this.#onStateChange = options.onStateChange;
    this.#random = options.random ?? Math.random;
    this.#receiver = new DeliveryReceiver({
      handlerFor: (topic) => this.#deliveryHandlers.get(topic),
      cursor: options.deliveryCursor,
      counters: this.#deliveryCounters,
      logger: this.#logger,
      maxQueued: MAX_QUEUED_DELIVERIES,
    });
    const url = new URL(this.#url);
    if (url.protocol === 'ws:' && !isLoopback(url.hostname)) {
      this.#logger.warn(
        { url: this.#url },
        'the link token travels unencrypted: use https:// for a network beyond this machine',
      );
    }
  }

  get state(): LinkClientState {
    return this.#state;
  }

  isConnected(): boolean {
    return this.#state === 'connected';
  }

  /** Handles the network's requests of `method`. Register before `start()`. */
  onRequest(method: string, handler: (body: unknown) => Promise<unknown>): void {
    addRequestHandler(this.#requestHandlers, method, handler);
  }

  /**
   * Handles the deliveries of `topic`, one at a time in seq order. The delivery is acked once
   * the handler resolved; when it throws, the network sends it again later. Register before
   * `start()`: a delivery whose topic has no handler counts as a failed one.
   */
  onDelivery(topic: string, handler: LinkDeliveryHandler): void {
    if (!isValidTopic(topic)) {
      throw new LinkError('INVALID_ARGUMENT', 'topic must have 1 to 256 characters');
    }
    if (this.#deliveryHandlers.has(topic)) {
      throw new LinkError('INVALID_ARGUMENT', `a handler for ${topic} is registered already`);
    }
    this.#deliveryHandlers.set(topic, handler);
  }

  /** Starts connecting, and reconnecting whenever the connection ends, until `close()`. */
  start(): void {
    if (this.#state !== 'idle') return;
    this.#attempt();
  }

  /**
   * Sends a request to the network and resolves with its answer's body. Rejects with a
   * LinkError: NOT_CONNECTED, DISCONNECTED, TIMEOUT, REMOTE_ERROR (`error.remote`),
   * FRAME_TOO_LARGE, INVALID_ARGUMENT, CLOSED.
   */
  async request(method: string, body: unknown, options?: { timeoutMs?: number }): Promise<unknown> {
    if (this.#state === 'closed') throw new LinkError('CLOSED', 'the link client is closed');
    const connection = this.#connection;
    if (connection === undefined || !connection.isOpen) {
      throw new LinkError('NOT_CONNECTED', 'the link is not connected');
    }
    return connection.request(
      method,
      body,
      positive(options?.timeoutMs, this.#requestTimeoutMs, 'timeoutMs'),
    );
  }

  counters(): LinkClientCounters {
    return {
      ...copyTrafficCounters(this.#traffic),
      ...this.#deliveryCounters,
      ...this.#counters,
    };
  }

  /**
   * Stops reconnecting, closes the connection (requests waiting for an answer are rejected with
   * CLOSED) and waits for the delivery handler under way to finish.
   */
  async close(): Promise<void> {
    if (this.#state === 'closed') return;
    clearTimeout(this.#retryTimer);
    this.#setState('closed');
    const closedError = new LinkError('CLOSED', 'the link client is closed');
    if (this.#connection !== undefined) {
      await this.#connection.close(1000, 'client closing', closedError);
    } else {
      this.#socket?.terminate();
    }
    await this.#socketClosed;
    await this.#receiver.idle();
  }

  #attempt(): void {
    this.#connect().catch((error: unknown) => {
      this.#logger.error(
        { url: this.#url, error: String(error) },
        'link connection attempt failed',
      );
      this.#scheduleRetry(new LinkError('CONNECT_FAILED', `connecting failed: ${String(error)}`));
    });
  }

  async #connect(): Promise<void> {
    this.#setState('connecting');
    try {
      await this.#receiver.loadCursor();
    } catch (error) {
      this.#logger.error({ error: String(error) }, 'loading the link delivery cursor failed');
      this.#scheduleRetry(
        new LinkError('CONNECT_FAILED', `loading the delivery cursor failed: ${String(error)}`),
      );
      return;
    }
    if (this.#state !== 'connecting') return;
    this.#counters.connectAttempts++;
    const socket = new WebSocket(this.#url, {
      headers: { authorization: `Bearer ${this.#token}` },
      maxPayload: this.#maxFrameBytes,
      perMessageDeflate: false,
      handshakeTimeout: this.#connectTimeoutMs,
      followRedirects: false,
    });
    this.#socket = socket;
    let httpStatus: number | undefined;
    let failure: Error | undefined;
    let openedAtMs: number | undefined;
    socket.on('unexpected-response', (request, response) => {
      httpStatus = response.statusCode;
      response.resume();
      request.destroy();
      socket.terminate();
    });
    socket.on('error', (error) => {
      failure ??= error;
    });
    this.#socketClosed = new Promise((resolve) => {
      socket.on('close', (code, reason) => {
        resolve();
        if (openedAtMs === undefined) {
          this.#onConnectFailed(httpStatus, failure);
          return;
        }
        this.#onDisconnected(code, reason.toString('utf8'), Date.now() - openedAtMs);
      });
    });
    socket.on('open', () => {
      openedAtMs = Date.now();
      this.#onOpen(socket);
    });
  }

  #onOpen(socket: WebSocket): void {
    if (this.#state !== 'connecting') {
      socket.close(1000, 'client closing');
      return;
    }
    const logFields = { url: this.#url };
    const connection: LinkConnection = new LinkConnection(socket, {
      maxFrameBytes: this.#maxFrameBytes,
      maxConcurrentRequests: this.#maxConcurrentRequests,
      counters: this.#traffic,
      logger: this.#logger,
      logFields,
      idleTimeoutMs: this.#idleTimeoutMs,
      handlerFor: (method) => this.#requestHandlers.get(method),
      onSessionFrame: (frame: SessionFrame) => {
        if (frame.type !== 'deliver') {
          throw new LinkProtocolError(
            'UNEXPECTED_FRAME',
            `the network does not send ${frame.type}s`,
          );
        }
        this.#receiver.receive(channel, frame);
      },
      onClose: () => {},
    });
    const channel: DeliveryChannel = {
      get isOpen() {
        return connection.isOpen;
      },
      send: (text) => connection.send(text),
      logFields,
    };
    this.#connection = connection;
    this.#counters.connects++;
    this.#logger.info({ url: this.#url }, 'link connected');
    this.#setState('connected');
  }

  #onConnectFailed(httpStatus: number | undefined, failure: Error | undefined): void {
    this.#socket = undefined;
    if (this.#state === 'closed') return;
    let error: LinkError;
    if (httpStatus === 401) {
      this.#counters.unauthorized++;
      error = new LinkError(
        'UNAUTHORIZED',
        `the network refused the link token (HTTP 401) at ${this.#url}`,
        undefined,
        401,
      );
      this.#logger.error({ url: this.#url }, 'link token refused by the network (HTTP 401)');
    } else {
      this.#counters.connectFailures++;
      const reason =
        httpStatus !== undefined ? `HTTP ${httpStatus}` : (failure?.message ?? 'closed');
      error = new LinkError(
        'CONNECT_FAILED',
        `connecting to ${this.#url} failed: ${reason}`,
        undefined,
        httpStatus,
      );
      this.#logger.warn({ url: this.#url, reason }, 'link connection attempt failed');
    }
    this.#scheduleRetry(error);
  }

  #onDisconnected(code: number, reason: string, openForMs: number): void {
    this.#socket = undefined;
    this.#connection = undefined;
    this.#counters.disconnects++;
    if (this.#state === 'closed') return;
    this.#logger.info({ url: this.#url, code, reason }, 'link disconnected');
    if (openForMs >= this.#stableConnectionMs) this.#failures = 0;
    this.#scheduleRetry(
      new LinkError('DISCONNECTED', `the link closed (${code}${reason ? ` ${reason}` : ''})`),
    );
  }

  #scheduleRetry(error: LinkError): void {
    if (this.#state === 'closed') return;
    let delayMs: number;
    if (error.code === 'UNAUTHORIZED') {
      delayMs = this.#unauthorizedRetryDelayMs * (0.75 + 0.5 * this.#random());
    } else {
      const ceiling = Math.min(
        this.#maxDelayMs,
        this.#initialDelayMs * this.#multiplier ** Math.min(this.#failures, 64),
      );
      this.#failures++;
      // "Equal jitter": at least half the ceiling, so a fleet of providers spreads out without
      // any of them retrying at once.
      delayMs = ceiling / 2 + (ceiling / 2) * this.#random();
    }
    delayMs = Math.round(delayMs);
    this.#setState('waiting', error, delayMs);
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      if (this.#state === 'waiting') this.#attempt();
    }, delayMs);
  }

  #setState(state: LinkClientState, error?: LinkError, retryInMs?: number): void {
    const previous = this.#state;
    this.#state = state;
    if (this.#onStateChange === undefined) return;
    try {
      this.#onStateChange({
        state,
        previous,
        ...(error !== undefined && { error }),
        ...(retryInMs !== undefined && { retryInMs }),
      });
    } catch (listenerError) {
      this.#logger.error({ error: String(listenerError) }, 'link state listener failed');
    }
  }
}

/** `<networkUrl>/api/v1/link` as a ws:// or wss:// URL. */
export function linkUrl(networkUrl: string): string {
  let url: URL;
  try {
    url = new URL(networkUrl);
  } catch {
    throw new LinkError(
      'INVALID_ARGUMENT',
      `network URL ${JSON.stringify(networkUrl)} is not a URL`,
    );
  }
  const schemes: Record<string, string> = {
    'http:': 'ws:',
    'https:': 'wss:',
    'ws:': 'ws:',
    'wss:': 'wss:',
  };
  const protocol = schemes[url.protocol];
  if (protocol === undefined) {
    throw new LinkError(
      'INVALID_ARGUMENT',
      `network URL must be http://, https://, ws:// or wss://, got ${url.protocol}`,
    );
  }
  if (url.username !== '' || url.password !== '') {
    throw new LinkError('INVALID_ARGUMENT', 'network URL must not hold credentials');
  }
  url.protocol = protocol;
  url.pathname = `${url.pathname.replace(/\/+$/, '')}${LINK_PATH}`;
  url.search = '';
  url.hash = '';
  return url.toString();
}

function isLoopback(hostname: string): boolean {
  return (
    hostname === 'localhost' ||
    hostname.startsWith('127.') ||
    hostname === '[::1]' ||
    hostname === '::1'
  );
}
