/**
 * The two errors of the provider link. `LinkProtocolError`: a frame from the peer that this side
 * refuses (the decoder and the session logic throw it; the connection counts it by `code`).
 * `LinkError`: what a caller of the server or client API gets when a call cannot be done.
 */

export type LinkProtocolErrorCode =
  /** Not UTF-8, or not JSON. */
  | 'BAD_JSON'
  /** JSON, but not an object. */
  | 'NOT_AN_OBJECT'
  /** `type` missing, or not a frame type this version knows. */
  | 'UNKNOWN_TYPE'
  | 'MISSING_FIELD'
  /** A field of the wrong JSON type or out of its range. */
  | 'INVALID_FIELD'
  /** Beyond the configured maximum (the WebSocket layer closes the connection with 1009). */
  | 'FRAME_TOO_LARGE'
  /** A binary WebSocket message: the link speaks JSON text only. */
  | 'BINARY_FRAME'
  /** A well-formed frame this side never accepts (a delivery sent to the network, an ack to the provider). */
  | 'UNEXPECTED_FRAME'
  /** An ack or nack naming a seq that is not in flight. */
  | 'UNKNOWN_SEQ'
  /** An answer whose id matches no request of this connection (and no recently timed-out one). */
  | 'UNKNOWN_ID'
  /** The peer sent more deliveries than it may have in flight. */
  | 'WINDOW_EXCEEDED'
  /** The WebSocket layer refused the peer's bytes (bad UTF-8 in a text frame, bad framing). */
  | 'WEBSOCKET_ERROR';

export const LINK_PROTOCOL_ERROR_CODES: readonly LinkProtocolErrorCode[] = Object.freeze([
  'BAD_JSON',
  'NOT_AN_OBJECT',
  'UNKNOWN_TYPE',
  'MISSING_FIELD',
  'INVALID_FIELD',
  'FRAME_TOO_LARGE',
  'BINARY_FRAME',
  'UNEXPECTED_FRAME',
  'UNKNOWN_SEQ',
  'UNKNOWN_ID',
  'WINDOW_EXCEEDED',
  'WEBSOCKET_ERROR',
]);

export class LinkProtocolError extends Error {
  override readonly name = 'LinkProtocolError';
  constructor(
    readonly code: LinkProtocolErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export function isLinkProtocolError(error: unknown): error is LinkProtocolError {
  return error instanceof LinkProtocolError;
}

export type LinkErrorCode =
  /** The link has no live connection (server: for this linkId; client: not connected). */
  | 'NOT_CONNECTED'
  /** The connection dropped while the request waited for its answer. */
  | 'DISCONNECTED'
  /** No answer within the request's timeout. */
  | 'TIMEOUT'
  /** The peer answered ok:false; `remote` holds its code and message. */
  | 'REMOTE_ERROR'
  /** The link's durable outbox holds its maximum of pending deliveries; nothing was stored. */
  | 'OUTBOX_FULL'
  /** The frame this call would send exceeds the maximum frame size. */
  | 'FRAME_TOO_LARGE'
  /** A malformed argument (empty topic, a body that is not JSON-serialisable, ...). */
  | 'INVALID_ARGUMENT'
  /** The server refused the client's token (HTTP 401). */
  | 'UNAUTHORIZED'
  /** The connection attempt failed (network error, unexpected HTTP status, handshake timeout). */
  | 'CONNECT_FAILED'
  /** The server or client was closed. */
  | 'CLOSED';

export interface LinkRemoteError {
  code: string;
  message: string;
}

export class LinkError extends Error {
  override readonly name = 'LinkError';
  constructor(
    readonly code: LinkErrorCode,
    message: string,
    /** REMOTE_ERROR: what the peer answered. */
    readonly remote?: LinkRemoteError,
    /** CONNECT_FAILED / UNAUTHORIZED: the HTTP status of the refused upgrade, when there was one. */
    readonly httpStatus?: number,
  ) {
    super(message);
  }
}

export function isLinkError(error: unknown, code?: LinkErrorCode): error is LinkError {
  return error instanceof LinkError && (code === undefined || error.code === code);
}

/**
 * Thrown by a request handler to answer ok:false with this code and message. Any other error a
 * handler throws is answered with `INTERNAL_ERROR` and a fixed message, so that internal details
 * never cross the link; the error itself is logged locally.
 */
export class LinkAnswerError extends Error {
  override readonly name = 'LinkAnswerError';
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** An option that must be a positive number, or its default when not given. */
export function positiveOption(value: number | undefined, fallback: number, what: string): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value <= 0) {
    throw new LinkError('INVALID_ARGUMENT', `${what} must be a positive number, got ${value}`);
  }
  return value;
}
