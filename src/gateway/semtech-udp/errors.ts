/**
 * Why a Semtech UDP datagram (or one rxpk inside it) was refused. The server counts refusals by
 * this code, so adding a code is a metrics change too.
 */
export type SemtechUdpErrorCode =
  /** Byte 0 is not protocol version 1 or 2. */
  | 'BAD_VERSION'
  /** Fewer bytes than the header of this packet type (4, or 12 with a gateway EUI). */
  | 'SHORT_HEADER'
  /** Byte 3 is not a GWMP packet type. */
  | 'UNKNOWN_TYPE'
  /** Bytes after an ACK's 4-byte header. */
  | 'TRAILING_BYTES'
  /** The JSON part is missing, not UTF-8, or does not parse. */
  | 'BAD_JSON'
  | 'JSON_NOT_OBJECT'
  | 'RXPK_NOT_ARRAY'
  /** `data` is not base64. */
  | 'BAD_BASE64'
  /** `size` differs from the length of the base64-decoded `data`. */
  | 'SIZE_MISMATCH'
  | 'MISSING_FIELD'
  | 'INVALID_FIELD';

export const SEMTECH_UDP_ERROR_CODES: readonly SemtechUdpErrorCode[] = Object.freeze([
  'BAD_VERSION',
  'SHORT_HEADER',
  'UNKNOWN_TYPE',
  'TRAILING_BYTES',
  'BAD_JSON',
  'JSON_NOT_OBJECT',
  'RXPK_NOT_ARRAY',
  'BAD_BASE64',
  'SIZE_MISMATCH',
  'MISSING_FIELD',
  'INVALID_FIELD',
]);

/** The one error bad Semtech UDP input produces; the message names the field and the reason. */
export class SemtechUdpError extends Error {
  override readonly name = 'SemtechUdpError';
  constructor(
    readonly code: SemtechUdpErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export function isSemtechUdpError(error: unknown): error is SemtechUdpError {
  return error instanceof SemtechUdpError;
}
