/** What one attempt's HTTP status means for the delivery. */
export type AttemptVerdict = 'delivered' | 'retry' | 'permanent';

/**
 * 2xx: delivered. 408 (timeout) and 429 (too many requests): retry, as for 5xx, 3xx (redirects
 * are not followed) and network errors. Any other 4xx: the receiver refuses this request and
 * would refuse it again, so the delivery is dead-lettered at once (replay it once fixed).
 */
export function verdictOf(httpStatus: number): AttemptVerdict {
  if (httpStatus >= 200 && httpStatus < 300) return 'delivered';
  if (httpStatus >= 400 && httpStatus < 500 && httpStatus !== 408 && httpStatus !== 429) {
    return 'permanent';
  }
  return 'retry';
}

export interface BackoffSettings {
  retryInitialMs: number;
  retryMaxMs: number;
}

/**
 * The wait before attempt `failedAttempts + 1`: exponential (initial x 2^(n-1), capped), with
 * "equal jitter" (half fixed, half random) so that deliveries failed together spread out. A
 * receiver's Retry-After (seconds) is honoured up to the cap.
 */
export function retryDelayMs(
  failedAttempts: number,
  settings: BackoffSettings,
  random: () => number = Math.random,
  retryAfterSeconds?: number,
): number {
  const exponent = Math.min(Math.max(failedAttempts - 1, 0), 40);
  const ceiling = Math.min(settings.retryMaxMs, settings.retryInitialMs * 2 ** exponent);
  const jittered = ceiling / 2 + random() * (ceiling / 2);
  const asked =
    retryAfterSeconds !== undefined && Number.isFinite(retryAfterSeconds) && retryAfterSeconds > 0
      ? Math.min(retryAfterSeconds * 1000, settings.retryMaxMs)
      : 0;
  return Math.round(Math.max(jittered, asked));
}
