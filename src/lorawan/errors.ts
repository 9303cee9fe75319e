/**
 * The one error type the protocol core throws for bad input. Callers switch on `code`;
 * the message names the thing and the reason, and never contains key material.
 */
export type LorawanErrorCode =
  | 'INVALID_HEX'
  | 'INVALID_LENGTH'
  | 'FRAME_TOO_SHORT'
  | 'FRAME_TOO_LONG'
  | 'INVALID_FIELD'
  | 'UNKNOWN_MAC_COMMAND'
  | 'MAC_COMMAND_TRUNCATED'
  | 'UNSUPPORTED'
  | 'KEY_UNWRAP_FAILED';

export class LorawanError extends Error {
  override readonly name = 'LorawanError';
  constructor(
    readonly code: LorawanErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export function isLorawanError(error: unknown): error is LorawanError {
  return error instanceof LorawanError;
}
