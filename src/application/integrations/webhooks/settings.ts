import type { BackoffSettings } from './retry-policy.js';

/** Settings of the webhook deliveries (`ApplicationServiceSettings.webhooks`); all optional. */
export interface WebhookSettings {
  /** Per request, connection to last byte of the response headers (default 10 s). */
  timeoutMs?: number;
  /** Requests in flight at once, over every webhook (default 8). */
  concurrency?: number;
  /** First wait after a failed attempt (default 1 s); it doubles up to `retryMaxMs`. */
  retryInitialMs?: number;
  /** Longest wait between attempts (default 10 min). */
  retryMaxMs?: number;
  /** A delivery still failing this long after it was queued is dead-lettered (default 24 h). */
  deadLetterAfterMs?: number;
  /** Idle poll for due deliveries when nothing wakes the sender (default 500 ms). */
  pollIntervalMs?: number;
  /** Delivered rows are kept this long for the API, then purged (default 7 days). */
  keepDeliveredMs?: number;
  /**
   * How long beyond `timeoutMs` a delivery in flight stays claimed (default 5 s): after a crash
   * it is sent again once this lease ran out.
   */
  leaseMarginMs?: number;
  /** How often the outbox gauges (depth, oldest age) are read from the database (default 5 s). */
  statsIntervalMs?: number;
}

export type ResolvedWebhookSettings = Required<WebhookSettings> & BackoffSettings;

export function resolveWebhookSettings(settings: WebhookSettings = {}): ResolvedWebhookSettings {
  const resolved = {
    timeoutMs: 10_000,
    concurrency: 8,
    retryInitialMs: 1000,
    retryMaxMs: 600_000,
    deadLetterAfterMs: 86_400_000,
    pollIntervalMs: 500,
    keepDeliveredMs: 7 * 86_400_000,
    statsIntervalMs: 5000,
    leaseMarginMs: 5000,
    ...withoutUndefined(settings),
  };
  for (const [name, value] of Object.entries(resolved)) {
    if (!Number.isInteger(value) || value < 1) {
      throw new RangeError(`webhooks.${name} must be a positive integer, got ${value}`);
    }
  }
  if (resolved.retryMaxMs < resolved.retryInitialMs) {
    throw new RangeError('webhooks.retryMaxMs must be at least webhooks.retryInitialMs');
  }
  return resolved;
}

function withoutUndefined(settings: WebhookSettings): WebhookSettings {
  return Object.fromEntries(
    Object.entries(settings).filter(([, value]) => value !== undefined),
  ) as WebhookSettings;
}
