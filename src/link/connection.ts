/**
 * One live WebSocket of the link, the part both ends share: frames in and out, requests and
 * their answers, answering the peer's requests, liveness, and counting and logging whatever the
 * peer gets wrong. Deliveries, acks and nacks are handed to the owner (server or client), which
 * knows what to do with them.
 */
import type { RawData, WebSocket } from 'ws';
import { LogThrottle } from '../log-throttle.js';
import {
  LINK_PROTOCOL_ERROR_CODES,
  LinkAnswerError,
  LinkError,
  LinkProtocolError,
  type LinkProtocolErrorCode,
} from './errors.js';
import { LINK_LOG_INTERVAL_MS, type LinkLogger } from './log.js';
import {
  decodeFrame,
  encodeFrame,
  isValidErrorCode,
  isValidMethod,
  type LinkAckFrame,
  type LinkAnswerFrame,
  type LinkDeliveryFrame,
  type LinkNackFrame,
  type LinkRequestFrame,
} from './protocol.js';

/** Counters every connection adds to (the server's are the sum over its connections). */
export interface LinkTrafficCounters {
  framesIn: number;
  framesOut: number;
  /** Frames or bytes of the peer refused, by reason. */
  protocolErrors: Record<LinkProtocolErrorCode, number>;
  requestsSent: number;
  requestsReceived: number;
  requestTimeouts: number;
  /** Requests the peer answered ok:false. */
  requestsFailedRemotely: number;
  /** Answers that came after their request had timed out. */
  lateAnswers: number;
  /** Local request handlers that threw something else than a LinkAnswerError (or returned no JSON). */
  requestHandlerErrors: number;
  /** The peer's requests answered BUSY: too many of them at once. */
  requestsRefusedBusy: number;
}

export function newTrafficCounters(): LinkTrafficCounters {
  return {
    framesIn: 0,
    framesOut: 0,
    protocolErrors: Object.fromEntries(
      LINK_PROTOCOL_ERROR_CODES.map((code) => [code, 0]),
    ) as Record<LinkProtocolErrorCode, number>,
    requestsSent: 0,
    requestsReceived: 0,
    requestTimeouts: 0,
    requestsFailedRemotely: 0,
    lateAnswers: 0,
    requestHandlerErrors: 0,
    requestsRefusedBusy: 0,
  };
}

export function copyTrafficCounters(counters: LinkTrafficCounters): LinkTrafficCounters {
  return { ...counters, protocolErrors: { ...counters.protocolErrors } };
}

export type RequestHandlerLookup = (
  method: string,
) => ((body: unknown) => Promise<unknown>) | undefined;

/** Registers the one handler of `method` (either end); INVALID_ARGUMENT for a bad or taken name. */
export function addRequestHandler<H>(handlers: Map<string, H>, method: string, handler: H): void {
  if (!isValidMethod(method)) {
    throw new LinkError('INVALID_ARGUMENT', 'method must be 1 to 128 printable ASCII characters');
  }
  if (handlers.has(method)) {
    throw new LinkError('INVALID_ARGUMENT', `a handler for ${method} is registered already`);
  }
  handlers.set(method, handler);
}

export type SessionFrame = LinkDeliveryFrame | LinkAckFrame | LinkNackFrame;

export interface LinkConnectionOptions {
  maxFrameBytes: number;
  /** Requests of the peer handled at once; more are answered BUSY. */
  maxConcurrentRequests: number;
  counters: LinkTrafficCounters;
  logger: LinkLogger;
  /** Added to every log line (`linkId`, `remoteAddress`, `url`). Never a token. */
  logFields: Record<string, unknown>;
  handlerFor: RequestHandlerLookup;
  /** Deliveries, acks and nacks. May throw a LinkProtocolError (counted and logged). */
  onSessionFrame(frame: SessionFrame): void;
  onClose(code: number, reason: string): void;
  /** Sends a ping this often and closes the connection when the previous one got no pong. */
  pingIntervalMs?: number;
  /** Closes the connection when nothing (frame or ping) came from the peer for this long. */
  idleTimeoutMs?: number;
}

interface PendingRequest {
  method: string;
  resolve(body: unknown): void;
  reject(error: LinkError): void;
  timer: NodeJS.Timeout;
}

/** Answer ids of timed-out requests remembered, so a late answer is not taken for a forged one. */
const TIMED_OUT_IDS_KEPT = 1024;
/** How long a closing handshake may take before the socket is destroyed. */
const CLOSE_GRACE_MS = 2000;
const MAX_ANSWER_MESSAGE_LENGTH = 1000;

export class LinkConnection {
  readonly #socket: WebSocket;
  readonly #options: LinkConnectionOptions;
  readonly #pending = new Map<string, PendingRequest>();
  readonly #timedOut = new Set<string>();
  readonly #protocolLog = new LogThrottle(LINK_LOG_INTERVAL_MS);
  readonly #closed: Promise<void>;
  #nextRequestId = 1;
  #handlingRequests = 0;
  #open = true;
  /** Why this side closed the connection; pending requests are rejected with it. */
  #closeError: LinkError | undefined;
  #pingTimer: NodeJS.Timeout | undefined;
  #idleTimer: NodeJS.Timeout | undefined;
  #awaitingPong = false;

  constructor(socket: WebSocket, options: LinkConnectionOptions) {
    this.#socket = socket;
    this.#options = options;
    this.#closed = new Promise((resolve) => {
      socket.on('close', (code, reason) => {
        this.#onClose(code, reason.toString('utf8'));
        resolve();
      });
    });
    socket.on('message', (data, isBinary) => this.#onMessage(data, isBinary));
    socket.on('error', (error) => this.#onSocketError(error));
    socket.on('pong', () => {
      this.#awaitingPong = false;
    });
    socket.on('ping', () => this.#touch());
    if (options.pingIntervalMs !== undefined) {
      this.#pingTimer = setInterval(() => this.#ping(), options.pingIntervalMs);
      this.#pingTimer.unref();
    }
    this.#touch();
  }

  get isOpen(): boolean {
    return this.#open;
  }

  /** Sends a frame's text; false when the connection is no longer open. */
  send(text: string): boolean {
    if (!this.#open || this.#socket.readyState !== this.#socket.OPEN) return false;
    this.#socket.send(text);
    this.#options.counters.framesOut++;
    return true;
  }

  /**
   * Sends a request and resolves with the peer's answer body. Rejects with a LinkError:
   * NOT_CONNECTED, DISCONNECTED, TIMEOUT, REMOTE_ERROR, FRAME_TOO_LARGE, INVALID_ARGUMENT, CLOSED.
   */
  request(method: string, body: unknown, timeoutMs: number): Promise<unknown> {
    if (!isValidMethod(method)) {
      return Promise.reject(
        new LinkError('INVALID_ARGUMENT', 'method must be 1 to 128 printable ASCII characters'),
      );
    }
    if (!this.#open) return Promise.reject(this.#closeError ?? notConnected());
    const id = String(this.#nextRequestId++);
    let text: string;
    try {
      text = encodeFrame({ type: 'request', id, method, body });
    } catch (error) {
      return Promise.reject(
        new LinkError(
          'INVALID_ARGUMENT',
          `${method} request body is not JSON: ${(error as Error).message}`,
        ),
      );
    }
    const bytes = Buffer.byteLength(text, 'utf8');
    if (bytes > this.#options.maxFrameBytes) {
      return Promise.reject(
        new LinkError(
          'FRAME_TOO_LARGE',
          `${method} request of ${bytes} bytes exceeds the maximum frame of ${this.#options.maxFrameBytes} bytes`,
        ),
      );
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        this.#rememberTimedOut(id);
        this.#options.counters.requestTimeouts++;
        reject(new LinkError('TIMEOUT', `no answer to ${method} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(id, { method, resolve, reject, timer });
      this.#options.counters.requestsSent++;
      if (!this.send(text)) {
        clearTimeout(timer);
        this.#pending.delete(id);
        reject(this.#closeError ?? notConnected());
      }
    });
  }

  /**
   * Closes the connection (pending requests are rejected with `why`, default DISCONNECTED) and
   * resolves once it is closed. The socket is destroyed if the peer does not finish the closing
   * handshake in time.
   */
  close(code: number, reason: string, why?: LinkError): Promise<void> {
    this.#closeError ??= why;
    if (this.#socket.readyState === this.#socket.CLOSED) return this.#closed;
    this.#socket.close(code, reason);
    const grace = setTimeout(() => this.#socket.terminate(), CLOSE_GRACE_MS);
    grace.unref();
    return this.#closed.finally(() => clearTimeout(grace));
  }

  /** Counts and logs a refused frame of the peer (at most one line per 10 s per connection). */
  protocolError(error: LinkProtocolError): void {
    this.#options.counters.protocolErrors[error.code]++;
    const log = this.#protocolLog.take('protocol', Date.now());
    if (log !== undefined) {
      this.#options.logger.warn(
        {
          ...this.#options.logFields,
          code: error.code,
          reason: error.message,
          suppressed: log.suppressed,
        },
        'link peer sent a frame that was refused',
      );
    }
  }

  #onMessage(data: RawData, isBinary: boolean): void {
    this.#touch();
    this.#options.counters.framesIn++;
    try {
      if (isBinary) {
        throw new LinkProtocolError('BINARY_FRAME', 'binary frames are not part of the link');
      }
      const frame = decodeFrame(rawText(data), this.#options.maxFrameBytes);
      switch (frame.type) {
        case 'request':
          void this.#answer(frame);
          return;
        case 'answer':
          this.#onAnswer(frame);
          return;
        case 'deliver':
        case 'ack':
        case 'nack':
          this.#options.onSessionFrame(frame);
          return;
      }
    } catch (error) {
      if (error instanceof LinkProtocolError) this.protocolError(error);
      else {
        this.#options.logger.error(
          { ...this.#options.logFields, error: String(error) },
          'link frame handling failed',
        );
      }
    }
  }

  #onAnswer(frame: LinkAnswerFrame): void {
    const pending = this.#pending.get(frame.id);
    if (pending === undefined) {
      if (this.#timedOut.delete(frame.id)) {
        this.#options.counters.lateAnswers++;
        return;
      }
      throw new LinkProtocolError(
        'UNKNOWN_ID',
        `answer ${JSON.stringify(frame.id)} matches no request`,
      );
    }
    this.#pending.delete(frame.id);
    clearTimeout(pending.timer);
    if (frame.ok) {
      pending.resolve(frame.body);
      return;
    }
    this.#options.counters.requestsFailedRemotely++;
    pending.reject(
      new LinkError(
        'REMOTE_ERROR',
        `${pending.method} failed at the peer: ${frame.error.code}: ${frame.error.message}`,
        frame.error,
      ),
    );
  }

  async #answer(frame: LinkRequestFrame): Promise<void> {
    const counters = this.#options.counters;
    counters.requestsReceived++;
    if (this.#handlingRequests >= this.#options.maxConcurrentRequests) {
      counters.requestsRefusedBusy++;
      this.#sendFailure(frame.id, 'BUSY', 'too many requests at once; try again later');
      return;
    }
    const handler = this.#options.handlerFor(frame.method);
    if (handler === undefined) {
      this.#sendFailure(frame.id, 'UNKNOWN_METHOD', `no handler for method ${frame.method}`);
      return;
    }
    this.#handlingRequests++;
    try {
      const result = await handler(frame.body);
      if (!this.#open) return;
      const text = encodeFrame({ type: 'answer', id: frame.id, ok: true, body: result });
      if (Buffer.byteLength(text, 'utf8') > this.#options.maxFrameBytes) {
        counters.requestHandlerErrors++;
        this.#options.logger.error(
          { ...this.#options.logFields, method: frame.method },
          'link request answer exceeds the maximum frame size',
        );
        this.#sendFailure(
          frame.id,
          'ANSWER_TOO_LARGE',
          'the answer exceeds the maximum frame size',
        );
        return;
      }
      this.send(text);
    } catch (error) {
      if (error instanceof LinkAnswerError && isValidErrorCode(error.code)) {
        this.#sendFailure(frame.id, error.code, error.message);
        return;
      }
      counters.requestHandlerErrors++;
      this.#options.logger.error(
        {
          ...this.#options.logFields,
          method: frame.method,
          error: error instanceof Error ? error.message : String(error),
        },
        'link request handler failed',
      );
      // The peer is on the other side of a trust boundary: it gets no internal detail.
      this.#sendFailure(frame.id, 'INTERNAL_ERROR', 'the request handler failed');
    } finally {
      this.#handlingRequests--;
    }
  }

  #sendFailure(id: string, code: string, message: string): void {
    this.send(
      encodeFrame({
        type: 'answer',
        id,
        ok: false,
        error: { code, message: message.slice(0, MAX_ANSWER_MESSAGE_LENGTH) },
      }),
    );
  }

  #rememberTimedOut(id: string): void {
    this.#timedOut.add(id);
    if (this.#timedOut.size > TIMED_OUT_IDS_KEPT) {
      const oldest = this.#timedOut.values().next();
      if (oldest.done !== true) this.#timedOut.delete(oldest.value);
    }
  }

  #onSocketError(error: Error): void {
    const wsCode = (error as { code?: unknown }).code;
    const code: LinkProtocolErrorCode =
      wsCode === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH' ? 'FRAME_TOO_LARGE' : 'WEBSOCKET_ERROR';
    // The ws library closes the connection after such an error (1009 for a frame too large).
    this.protocolError(new LinkProtocolError(code, error.message));
  }

  #ping(): void {
    if (this.#awaitingPong) {
      this.#options.logger.warn(
        { ...this.#options.logFields },
        'link peer did not answer a ping; closing the connection',
      );
      this.#socket.terminate();
      return;
    }
    this.#awaitingPong = true;
    if (this.#socket.readyState === this.#socket.OPEN) this.#socket.ping();
  }

  #touch(): void {
    const idleTimeoutMs = this.#options.idleTimeoutMs;
    if (idleTimeoutMs === undefined || !this.#open) return;
    clearTimeout(this.#idleTimer);
    this.#idleTimer = setTimeout(() => {
      this.#options.logger.warn(
        { ...this.#options.logFields, idleTimeoutMs },
        'nothing from the link peer for too long; closing the connection',
      );
      this.#socket.terminate();
    }, idleTimeoutMs);
    this.#idleTimer.unref();
  }

  #onClose(code: number, reason: string): void {
    this.#open = false;
    clearInterval(this.#pingTimer);
    clearTimeout(this.#idleTimer);
    const error =
      this.#closeError ??
      new LinkError('DISCONNECTED', 'the link connection closed before the answer came');
    for (const pending of this.#pending.values()) {
      clearTimeout(pending.timer);
      pending.reject(error);
    }
    this.#pending.clear();
    this.#options.onClose(code, reason);
  }
}

function notConnected(): LinkError {
  return new LinkError('NOT_CONNECTED', 'the link is not connected');
}

function rawText(data: RawData): string | Uint8Array {
  if (Array.isArray(data)) return Buffer.concat(data);
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return data;
}
