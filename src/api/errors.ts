/** An error the API answers with `{error, message}` and an HTTP status. */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly statusCode: number,
    readonly error: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
  }
}

export const notFound = (what: string): ApiError =>
  new ApiError(404, 'NOT_FOUND', `${what} not found`);
export const badRequest = (message: string, details?: unknown): ApiError =>
  new ApiError(400, 'BAD_REQUEST', message, details);
export const conflict = (message: string): ApiError => new ApiError(409, 'CONFLICT', message);
