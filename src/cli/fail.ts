import { isLorawanError } from '../lorawan/errors.js';

/** A bad input from the command line: reported in one line, without a stack trace. */
export class CliInputError extends Error {
  override readonly name = 'CliInputError';
}

/** The one-line message for an error a user caused; programming bugs are rethrown. */
export function userErrorMessage(error: unknown): string | undefined {
  if (isLorawanError(error)) return error.message;
  if (error instanceof CliInputError) return error.message;
  return undefined;
}
