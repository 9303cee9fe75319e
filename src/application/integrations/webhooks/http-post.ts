/** What came back from one POST: a status, or why there was none. */
export type PostResult =
  | { ok: true; status: number; retryAfterSeconds?: number }
  | { ok: false; error: string };

export type PostJson = (
  url: string,
  body: string,
  headers: Record<string, string>,
  options: { timeoutMs: number; signal?: AbortSignal },
) => Promise<PostResult>;

/**
 * POSTs `body` with Node's fetch: no redirects followed, the response body is not read (only its
 * status matters), the whole exchange up to the response headers bounded by `timeoutMs`.
 */
export const postJson: PostJson = async (url, body, headers, options) => {
  const timeout = AbortSignal.timeout(options.timeoutMs);
  const signal =
    options.signal === undefined ? timeout : AbortSignal.any([timeout, options.signal]);
  try {
    const response = await fetch(url, {
      method: 'POST',
      body,
      headers,
      redirect: 'manual',
      signal,
    });
    await response.body?.cancel().catch(() => undefined);
    const retryAfter = Number(response.headers.get('retry-after'));
    return {
      ok: true,
      status: response.status,
      ...(Number.isFinite(retryAfter) && retryAfter > 0 ? { retryAfterSeconds: retryAfter } : {}),
    };
  } catch (error) {
    return { ok: false, error: describeFailure(error, options.timeoutMs) };
  }
};

/** A short reason without the URL (which may carry a token in its query). */
function describeFailure(error: unknown, timeoutMs: number): string {
  if (error instanceof Error && error.name === 'TimeoutError') {
    return `no response within ${timeoutMs} ms`;
  }
  if (error instanceof Error && error.name === 'AbortError') return 'aborted (shutting down)';
  const cause = (error as { cause?: { code?: unknown; message?: unknown } } | null)?.cause;
  if (typeof cause?.code === 'string') return `connection failed: ${cause.code}`;
  if (typeof cause?.message === 'string') return `request failed: ${cause.message}`;
  return `request failed: ${error instanceof Error ? error.message : String(error)}`;
}
