import { LogThrottle } from '../../../log-throttle.js';
import type { Logger } from '../../../logger.js';
import { silentLogger } from '../../../logger.js';
import type {
  DeliveryKey,
  DueWebhookDelivery,
  WebhookCredentials,
  WebhookRepository,
} from '../../../storage/index.js';
import { type PostJson, postJson } from './http-post.js';
import { retryDelayMs, verdictOf } from './retry-policy.js';
import type { ResolvedWebhookSettings } from './settings.js';
import { SIGNATURE_HEADER, signatureHeader } from './signature.js';

/** The outbox operations the sender uses (`storage.webhooks`). */
export type WebhookOutbox = Pick<
  WebhookRepository,
  | 'due'
  | 'claim'
  | 'credentials'
  | 'markDelivered'
  | 'markRetry'
  | 'markDead'
  | 'recordError'
  | 'pendingStats'
  | 'purgeDelivered'
  | 'unblockHeads'
>;

export interface WebhookSenderOptions {
  outbox: WebhookOutbox;
  settings: ResolvedWebhookSettings;
  logger?: Logger;
  post?: PostJson;
  now?: () => number;
  random?: () => number;
}

export interface WebhookSenderStats {
  /** Deliveries answered 2xx. */
  delivered: number;
  /** Attempts that failed (non-2xx, timeout, connection error). */
  failedAttempts: number;
  /** Deliveries given up (dead-lettered). */
  dead: number;
  /** Errors of the sender's own loop (database unavailable, ...). */
  loopErrors: number;
}

const PURGE_INTERVAL_MS = 3_600_000;
/** How often devices left without a due head (a crash between two statements) are repaired. */
const REPAIR_INTERVAL_MS = 60_000;
const LOG_INTERVAL_MS = 60_000;

/**
 * Sends the outbox: takes the due deliveries (each the oldest pending one of its device for its
 * webhook, so a device's events arrive in order while other devices go on), signs and POSTs them
 * with bounded concurrency, and records each outcome: delivered, a retry after an exponential
 * back-off with jitter, or dead-lettered (a permanent 4xx, or still failing `deadLetterAfterMs`
 * after it was queued). At-least-once: a crash between the receiver's 2xx and the record sends
 * the event again after the lease.
 */
export class WebhookSender {
  readonly #outbox: WebhookOutbox;
  readonly #settings: ResolvedWebhookSettings;
  readonly #logger: Logger;
  readonly #post: PostJson;
  readonly #now: () => number;
  readonly #random: () => number;
  readonly #inFlight = new Map<string, Promise<void>>();
  readonly #abort = new AbortController();
  readonly #credentials = new Map<string, { updatedAt: string; value: WebhookCredentials }>();
  readonly #throttle = new LogThrottle(LOG_INTERVAL_MS);
  readonly #stats: WebhookSenderStats = { delivered: 0, failedAttempts: 0, dead: 0, loopErrors: 0 };
  #outboxDepth = { pending: 0, oldestQueuedAtMs: undefined as number | undefined };
  #running = false;
  #loop: Promise<void> | undefined;
  #wakeUp: (() => void) | undefined;
  #woken = false;
  #statsReadAtMs = Number.NEGATIVE_INFINITY;
  #purgedAtMs = Number.NEGATIVE_INFINITY;
  #repairedAtMs = Number.NEGATIVE_INFINITY;

  constructor(options: WebhookSenderOptions) {
    this.#outbox = options.outbox;
    this.#settings = options.settings;
    this.#logger = options.logger ?? silentLogger;
    this.#post = options.post ?? postJson;
    this.#now = options.now ?? Date.now;
    this.#random = options.random ?? Math.random;
  }

  get stats(): WebhookSenderStats {
    return { ...this.#stats };
  }

  /** Pending deliveries when the outbox was last read (every `statsIntervalMs`). */
  get pending(): number {
    return this.#outboxDepth.pending;
  }

  /** Seconds since the oldest pending delivery was queued (0: none). */
  get oldestPendingAgeSeconds(): number {
    const oldest = this.#outboxDepth.oldestQueuedAtMs;
    return oldest === undefined ? 0 : Math.max(0, (this.#now() - oldest) / 1000);
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#loop = this.#run();
  }

  /** Something may be due (new rows queued, a replay): look now instead of at the next poll. */
  wake(): void {
    this.#woken = true;
    this.#wakeUp?.();
  }

  /**
   * Stops: requests in flight are aborted and not recorded; their leases run out and they are
   * sent again after a restart.
   */
  async close(): Promise<void> {
    this.#running = false;
    this.#abort.abort();
    this.#wakeUp?.();
    await this.#loop;
    await Promise.allSettled([...this.#inFlight.values()]);
  }

  async #run(): Promise<void> {
    let failures = 0;
    while (this.#running) {
      try {
        await this.#housekeeping();
        await this.#startDue();
        failures = 0;
        await this.#sleep(this.#settings.pollIntervalMs);
      } catch (error) {
        this.#stats.loopErrors += 1;
        failures += 1;
        const waitMs = Math.min(this.#settings.pollIntervalMs * 2 ** failures, 30_000);
        this.#log('loop', 'error', { err: error, retryInMs: waitMs }, 'webhook sender failed');
        await this.#sleep(waitMs);
      }
    }
  }

  /** Starts as many due deliveries as there are free slots, one per device at a time. */
  async #startDue(): Promise<void> {
    const free = this.#settings.concurrency - this.#inFlight.size;
    if (free <= 0) return;
    // Read beyond the free slots: some heads may belong to devices with a request in flight.
    const due = await this.#outbox.due(Math.min(1000, free + this.#inFlight.size));
    let started = 0;
    for (const delivery of due) {
      if (started >= free || !this.#running) break;
      const deviceKey = `${delivery.webhookId}|${delivery.devEui}`;
      if (this.#inFlight.has(deviceKey)) continue;
      const leaseUntil = new Date(
        this.#now() + this.#settings.timeoutMs + this.#settings.leaseMarginMs,
      ).toISOString();
      if (!(await this.#outbox.claim(delivery, delivery.nextAttemptAt, leaseUntil))) continue;
      started += 1;
      const attempt = this.#attempt(delivery)
        .catch((error) => {
          this.#stats.loopErrors += 1;
          this.#log('record', 'error', { err: error }, 'webhook delivery could not be recorded');
        })
        .finally(() => {
          this.#inFlight.delete(deviceKey);
          this.wake();
        });
      this.#inFlight.set(deviceKey, attempt);
    }
  }

  async #attempt(delivery: DueWebhookDelivery): Promise<void> {
    const key: DeliveryKey = { webhookId: delivery.webhookId, eventId: delivery.eventId };
    if (delivery.eventBody === null) {
      await this.#outbox.markDead(
        key,
        { error: 'the event is no longer stored (purged by retention)' },
        false,
      );
      this.#stats.dead += 1;
      return;
    }
    const url = new URL(delivery.url);
    url.searchParams.set('event', delivery.eventType);
    let credentials: WebhookCredentials | undefined;
    try {
      credentials = await this.#credentialsOf(delivery);
    } catch (error) {
      // A secret that does not open (master key changed, row tampered with): nothing is sent.
      await this.#recordFailure(delivery, url.origin, {
        error: `cannot open the webhook's secret: ${(error as Error).message}`,
        httpStatus: null,
        permanent: false,
      });
      return;
    }
    if (credentials === undefined) return; // deleted meanwhile, with its deliveries
    const body = delivery.eventBody;
    const headers: Record<string, string> = {
      ...credentials.headers,
      'content-type': 'application/json',
      'user-agent': 'Galet-Webhooks/1',
      'x-galet-event-id': String(delivery.eventId),
      'x-galet-event-type': delivery.eventType,
      'x-galet-dev-eui': delivery.devEui,
      'x-galet-delivery-attempt': String(delivery.attempts + 1),
      [SIGNATURE_HEADER]: signatureHeader(credentials.secret, body, Math.floor(this.#now() / 1000)),
    };
    const result = await this.#post(url.toString(), body, headers, {
      timeoutMs: this.#settings.timeoutMs,
      signal: this.#abort.signal,
    });
    if (!this.#running) return; // shutting down: the lease brings it back after a restart
    const verdict = result.ok ? verdictOf(result.status) : 'retry';
    if (verdict === 'delivered' && result.ok) {
      await this.#outbox.markDelivered(key, result.status);
      this.#stats.delivered += 1;
      return;
    }
    await this.#recordFailure(delivery, url.origin, {
      error: result.ok ? `HTTP ${result.status}` : result.error,
      httpStatus: result.ok ? result.status : null,
      permanent: verdict === 'permanent',
      ...(result.ok && result.retryAfterSeconds !== undefined
        ? { retryAfterSeconds: result.retryAfterSeconds }
        : {}),
    });
  }

  /** A failed attempt: a retry after the back-off, or dead (permanent, or too old). */
  async #recordFailure(
    delivery: DueWebhookDelivery,
    receiver: string,
    failure: {
      error: string;
      httpStatus: number | null;
      permanent: boolean;
      retryAfterSeconds?: number;
    },
  ): Promise<void> {
    const key: DeliveryKey = { webhookId: delivery.webhookId, eventId: delivery.eventId };
    const attempt = delivery.attempts + 1;
    this.#stats.failedAttempts += 1;
    const outcome = { error: failure.error, httpStatus: failure.httpStatus };
    const ageMs = this.#now() - Date.parse(delivery.queuedAt);
    const dead = failure.permanent || ageMs >= this.#settings.deadLetterAfterMs;
    await this.#outbox.recordError(delivery.webhookId, outcome);
    if (dead) {
      await this.#outbox.markDead(key, outcome);
      this.#stats.dead += 1;
    } else {
      const delayMs = retryDelayMs(
        attempt,
        this.#settings,
        this.#random,
        failure.retryAfterSeconds,
      );
      await this.#outbox.markRetry(key, outcome, new Date(this.#now() + delayMs).toISOString());
    }
    this.#log(
      `webhook:${delivery.webhookId}`,
      'warn',
      {
        webhookId: delivery.webhookId,
        receiver,
        eventId: delivery.eventId,
        devEui: delivery.devEui,
        attempt,
        httpStatus: failure.httpStatus,
        error: failure.error,
        deadLettered: dead,
      },
      dead ? 'webhook delivery dead-lettered' : 'webhook delivery failed; will retry',
    );
  }

  async #credentialsOf(delivery: DueWebhookDelivery): Promise<WebhookCredentials | undefined> {
    const cached = this.#credentials.get(delivery.webhookId);
    if (cached?.updatedAt === delivery.webhookUpdatedAt) return cached.value;
    const value = await this.#outbox.credentials(delivery.webhookId);
    if (value === undefined) {
      this.#credentials.delete(delivery.webhookId);
      return undefined;
    }
    this.#credentials.set(delivery.webhookId, { updatedAt: delivery.webhookUpdatedAt, value });
    return value;
  }

  /**
   * Repairs devices without a due head, reads the gauges' figures and purges old delivered rows,
   * each at its own interval (the repair first of all, at start).
   */
  async #housekeeping(): Promise<void> {
    const now = this.#now();
    if (now - this.#repairedAtMs >= REPAIR_INTERVAL_MS) {
      this.#repairedAtMs = now;
      const repaired = await this.#outbox.unblockHeads();
      if (repaired > 0) this.#logger.info({ repaired }, 'webhook deliveries unblocked');
    }
    if (now - this.#statsReadAtMs >= this.#settings.statsIntervalMs) {
      this.#statsReadAtMs = now;
      const stats = await this.#outbox.pendingStats();
      this.#outboxDepth = {
        pending: stats.pending,
        oldestQueuedAtMs:
          stats.oldestQueuedAt === null ? undefined : Date.parse(stats.oldestQueuedAt),
      };
    }
    if (now - this.#purgedAtMs >= PURGE_INTERVAL_MS) {
      this.#purgedAtMs = now;
      const removed = await this.#outbox.purgeDelivered(
        new Date(now - this.#settings.keepDeliveredMs).toISOString(),
      );
      if (removed > 0) this.#logger.info({ removed }, 'purged old delivered webhook deliveries');
    }
  }

  #log(key: string, level: 'warn' | 'error', fields: object, message: string): void {
    const taken = this.#throttle.take(key, this.#now());
    if (taken === undefined) return;
    this.#logger[level]({ ...fields, suppressedSinceLast: taken.suppressed }, message);
  }

  #sleep(ms: number): Promise<void> {
    if (this.#woken || !this.#running) {
      this.#woken = false;
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.#wakeUp = done;
    }).then(() => {
      this.#wakeUp = undefined;
      this.#woken = false;
    });
  }
}
