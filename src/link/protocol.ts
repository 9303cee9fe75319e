/**
 * The frames of the provider link, one JSON object per WebSocket text message:
 *
 *   request  {"type":"request","id":"17","method":"JoinReq","body":{...}}      either direction
 *   answer   {"type":"answer","id":"17","ok":true,"body":{...}}                 either direction
 *            {"type":"answer","id":"17","ok":false,"error":{"code":"...","message":"..."}}
 *   deliver  {"type":"deliver","seq":42,"topic":"uplink","body":{...}}          network -> provider
 *   ack      {"type":"ack","seq":42}                                            provider -> network
 *   nack     {"type":"nack","seq":42}                                           provider -> network
 *
 * `ack` is cumulative: every delivery with a seq up to and including it was handled. `nack` says
 * the delivery `seq` (the oldest one in flight) failed and was not handled, nor were any after
 * it: the network sends them again from `seq`, after a delay. Liveness uses WebSocket ping/pong
 * control frames, not JSON frames.
 *
 * `decodeFrame` reads untrusted input: it returns a valid frame or throws a `LinkProtocolError`,
 * nothing else. Fields it does not know are ignored (a newer peer may add some).
 */
import { LinkProtocolError } from './errors.js';

export const LINK_PATH = '/api/v1/link';

/** 1 MiB: an uplink event is a few kilobytes; a JoinReq well under one. */
export const DEFAULT_MAX_FRAME_BYTES = 1024 * 1024;

export const MAX_ID_LENGTH = 64;
export const MAX_METHOD_LENGTH = 128;
export const MAX_TOPIC_LENGTH = 256;
export const MAX_ERROR_CODE_LENGTH = 64;

export interface LinkRequestFrame {
  type: 'request';
  id: string;
  method: string;
  /** Any JSON value. */
  body: unknown;
}

export type LinkAnswerFrame =
  | { type: 'answer'; id: string; ok: true; body: unknown }
  | { type: 'answer'; id: string; ok: false; error: { code: string; message: string } };

export interface LinkDeliveryFrame {
  type: 'deliver';
  /** Positive, increasing per link (not necessarily contiguous). */
  seq: number;
  topic: string;
  body: unknown;
}

export interface LinkAckFrame {
  type: 'ack';
  seq: number;
}

export interface LinkNackFrame {
  type: 'nack';
  seq: number;
}

export type LinkFrame =
  | LinkRequestFrame
  | LinkAnswerFrame
  | LinkDeliveryFrame
  | LinkAckFrame
  | LinkNackFrame;

export type LinkFrameType = LinkFrame['type'];
export const LINK_FRAME_TYPES: readonly LinkFrameType[] = Object.freeze([
  'request',
  'answer',
  'deliver',
  'ack',
  'nack',
]);

const PRINTABLE_ASCII = /^[\x21-\x7e]+$/;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Decodes one WebSocket message (its text, or its bytes as UTF-8). Throws `LinkProtocolError`
 * for anything that is not a valid frame of at most `maxFrameBytes` bytes.
 */
export function decodeFrame(
  input: string | Uint8Array,
  maxFrameBytes = DEFAULT_MAX_FRAME_BYTES,
): LinkFrame {
  let text: string;
  if (typeof input === 'string') {
    // A UTF-16 code unit takes at least one UTF-8 byte: a long string is too large uncounted.
    if (input.length > maxFrameBytes || Buffer.byteLength(input, 'utf8') > maxFrameBytes) {
      throw tooLarge(Buffer.byteLength(input, 'utf8'), maxFrameBytes);
    }
    text = input;
  } else {
    if (input.byteLength > maxFrameBytes) throw tooLarge(input.byteLength, maxFrameBytes);
    try {
      text = utf8.decode(input);
    } catch {
      throw new LinkProtocolError('BAD_JSON', 'frame is not UTF-8 text');
    }
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new LinkProtocolError('BAD_JSON', `frame is not JSON: ${(error as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new LinkProtocolError(
      'NOT_AN_OBJECT',
      `frame must be a JSON object, got ${jsonKind(value)}`,
    );
  }
  return frameOf(value as Record<string, unknown>);
}

function frameOf(object: Record<string, unknown>): LinkFrame {
  const type = object['type'];
  switch (type) {
    case 'request':
      return {
        type,
        id: idField(object, type),
        method: textField(object, 'method', type, MAX_METHOD_LENGTH, PRINTABLE_ASCII),
        body: bodyField(object, type),
      };
    case 'answer': {
      const id = idField(object, type);
      const ok = object['ok'];
      if (ok === true) return { type, id, ok, body: bodyField(object, type) };
      if (ok === false) return { type, id, ok, error: errorField(object) };
      if (ok === undefined) throw missing(type, 'ok');
      throw invalid(type, 'ok', `must be true or false, got ${jsonKind(ok)}`);
    }
    case 'deliver':
      return {
        type,
        seq: seqField(object, type),
        topic: textField(object, 'topic', type, MAX_TOPIC_LENGTH),
        body: bodyField(object, type),
      };
    case 'ack':
    case 'nack':
      return { type, seq: seqField(object, type) };
    case undefined:
      throw new LinkProtocolError('UNKNOWN_TYPE', 'frame has no type');
    default:
      throw new LinkProtocolError(
        'UNKNOWN_TYPE',
        typeof type === 'string'
          ? `unknown frame type ${quote(type)}`
          : `frame type must be a string, got ${jsonKind(type)}`,
      );
  }
}

function idField(object: Record<string, unknown>, type: string): string {
  return textField(object, 'id', type, MAX_ID_LENGTH, PRINTABLE_ASCII);
}

function textField(
  object: Record<string, unknown>,
  field: string,
  type: string,
  maxLength: number,
  pattern?: RegExp,
): string {
  const value = object[field];
  if (value === undefined) throw missing(type, field);
  if (typeof value !== 'string') {
    throw invalid(type, field, `must be a string, got ${jsonKind(value)}`);
  }
  if (value.length === 0 || value.length > maxLength) {
    throw invalid(type, field, `must have 1 to ${maxLength} characters, got ${value.length}`);
  }
  if (pattern !== undefined && !pattern.test(value)) {
    throw invalid(type, field, 'must be printable ASCII without spaces');
  }
  return value;
}

function seqField(object: Record<string, unknown>, type: string): number {
  const value = object['seq'];
  if (value === undefined) throw missing(type, 'seq');
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw invalid(type, 'seq', `must be a positive integer, got ${quote(value)}`);
  }
  return value;
}

function bodyField(object: Record<string, unknown>, type: string): unknown {
  if (!Object.hasOwn(object, 'body')) throw missing(type, 'body');
  return object['body'];
}

function errorField(object: Record<string, unknown>): { code: string; message: string } {
  const error = object['error'];
  if (error === undefined) throw missing('answer', 'error');
  if (typeof error !== 'object' || error === null || Array.isArray(error)) {
    throw invalid('answer', 'error', `must be an object, got ${jsonKind(error)}`);
  }
  const fields = error as Record<string, unknown>;
  const code = textField(fields, 'code', 'answer.error', MAX_ERROR_CODE_LENGTH, PRINTABLE_ASCII);
  const message = fields['message'];
  if (typeof message !== 'string') {
    throw invalid('answer.error', 'message', `must be a string, got ${jsonKind(message)}`);
  }
  return { code, message };
}

/**
 * The text of a frame. A body of `undefined` is sent as `null` (JSON has no undefined). Throws
 * `TypeError` when a body cannot be serialised (a BigInt, a cycle).
 */
export function encodeFrame(frame: LinkFrame): string {
  switch (frame.type) {
    case 'request':
      return JSON.stringify({
        type: frame.type,
        id: frame.id,
        method: frame.method,
        body: frame.body ?? null,
      });
    case 'answer':
      return frame.ok
        ? JSON.stringify({ type: frame.type, id: frame.id, ok: true, body: frame.body ?? null })
        : JSON.stringify({ type: frame.type, id: frame.id, ok: false, error: frame.error });
    case 'deliver':
      return encodeDelivery(frame.seq, frame.topic, toBodyJson(frame.body));
    case 'ack':
    case 'nack':
      return JSON.stringify({ type: frame.type, seq: frame.seq });
  }
}

/**
 * A delivery frame around a body that is JSON text already (as the outbox stores it), without
 * parsing it again. `bodyJson` must be the output of `JSON.stringify` (`toBodyJson`).
 */
export function encodeDelivery(seq: number, topic: string, bodyJson: string): string {
  return `{"type":"deliver","seq":${seq},"topic":${JSON.stringify(topic)},"body":${bodyJson}}`;
}

/** A body as JSON text; `undefined` becomes `null`. Throws `TypeError` when not serialisable. */
export function toBodyJson(body: unknown): string {
  const json = JSON.stringify(body ?? null) as string | undefined;
  // A function or a symbol serialises to undefined.
  if (json === undefined) throw new TypeError(`a ${typeof body} is not a JSON value`);
  return json;
}

/** The size in bytes of a delivery frame for this topic and body, with the longest possible seq. */
export function deliveryFrameBytes(topic: string, bodyJson: string): number {
  return Buffer.byteLength(encodeDelivery(Number.MAX_SAFE_INTEGER, topic, bodyJson), 'utf8');
}

export function isValidTopic(topic: unknown): topic is string {
  return typeof topic === 'string' && topic.length > 0 && topic.length <= MAX_TOPIC_LENGTH;
}

export function isValidMethod(method: unknown): method is string {
  return (
    typeof method === 'string' &&
    method.length > 0 &&
    method.length <= MAX_METHOD_LENGTH &&
    PRINTABLE_ASCII.test(method)
  );
}

/** An answer's error code: 1 to 64 printable ASCII characters, as `decodeFrame` accepts it. */
export function isValidErrorCode(code: unknown): code is string {
  return (
    typeof code === 'string' &&
    code.length > 0 &&
    code.length <= MAX_ERROR_CODE_LENGTH &&
    PRINTABLE_ASCII.test(code)
  );
}

function tooLarge(bytes: number, maxFrameBytes: number): LinkProtocolError {
  return new LinkProtocolError(
    'FRAME_TOO_LARGE',
    `frame of ${bytes} bytes exceeds the maximum of ${maxFrameBytes} bytes`,
  );
}

function missing(type: string, field: string): LinkProtocolError {
  return new LinkProtocolError('MISSING_FIELD', `${type} frame has no ${field}`);
}

function invalid(type: string, field: string, reason: string): LinkProtocolError {
  return new LinkProtocolError('INVALID_FIELD', `${type} frame: ${field} ${reason}`);
}

function jsonKind(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

function quote(value: unknown): string {
  const text = typeof value === 'string' ? JSON.stringify(value) : String(value);
  return text.length > 40 ? `${text.slice(0, 37)}...` : text;
}
