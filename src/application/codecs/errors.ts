/**
 * What can go wrong with a payload codec. A call never throws for these: it returns a failed
 * outcome carrying one of these codes (see `types.ts`). Loading a codec that cannot run
 * throws a `CodecError` with the same codes, so that the API can refuse it with a clear message.
 */
export type CodecErrorCode =
  /** The source does not parse (a SyntaxError), with the line and column in the message. */
  | 'CODEC_COMPILE_ERROR'
  /** The source defines none of the functions the call needs (e.g. no `encodeDownlink`). */
  | 'CODEC_FUNCTION_MISSING'
  /** The codec threw (or its top-level code threw while loading). */
  | 'CODEC_THREW'
  /** The codec returned a non-empty `errors` array: a normal, typed outcome. */
  | 'CODEC_REPORTED_ERRORS'
  /** The codec ran longer than the time cap; its isolate was disposed and will be recreated. */
  | 'CODEC_TIMEOUT'
  /** The codec went over the memory cap; its isolate was disposed and will be recreated. */
  | 'CODEC_MEMORY_LIMIT'
  /** The result is not of the expected shape or not JSON-compatible (a function, NaN, a Map...). */
  | 'CODEC_INVALID_RESULT'
  /** The result, serialised as JSON, is larger than the output cap. */
  | 'CODEC_OUTPUT_TOO_LARGE'
  /** Galet gave the codec an input it refuses before running anything (e.g. FPort 0). */
  | 'CODEC_INVALID_INPUT'
  /** The sandbox itself failed in an unexpected way (reported, never a crash). */
  | 'CODEC_SANDBOX_ERROR';

export class CodecError extends Error {
  override readonly name = 'CodecError';
  constructor(
    readonly code: CodecErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export function isCodecError(error: unknown): error is CodecError {
  return error instanceof CodecError;
}
