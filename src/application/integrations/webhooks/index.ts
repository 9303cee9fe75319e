import type { MetricSource } from '../../../api/metrics.js';
import type { Logger } from '../../../logger.js';
import type { FeedEventHead, Storage } from '../../../storage/index.js';
import { EventFeed, storageCursor } from '../../event-feed.js';
import { WEBHOOK_CURSOR, webhookEnqueuer } from './dispatcher.js';
import { WebhookSender } from './sender.js';
import { resolveWebhookSettings, type WebhookSettings } from './settings.js';

export type { WebhookSettings } from './settings.js';
export { SIGNATURE_HEADER, signatureHeader, verifySignature } from './signature.js';

export interface StartWebhooksOptions {
  storage: Storage;
  logger: Logger;
  /** The id up to which events are final (`ApplicationServices.readyUpTo`). */
  readyUpTo: () => number;
  /** Subscribes to "events ready" wake-ups; returns the unsubscribe function. */
  onEventsReady: (listener: () => void) => () => void;
  settings?: WebhookSettings;
  /** Idle poll of the event feed (default 250 ms). */
  feedPollIntervalMs?: number;
}

export interface RunningWebhooks {
  feed: EventFeed<FeedEventHead>;
  sender: WebhookSender;
  metricSource: MetricSource;
  gauges: Record<string, { help: string; read: () => number }>;
  close(): Promise<void>;
}

/**
 * Starts the webhooks: the dispatcher (an event feed with the durable cursor `webhooks` that
 * queues one outbox row per matching webhook) and the sender that delivers the outbox.
 */
export async function startWebhooks(options: StartWebhooksOptions): Promise<RunningWebhooks> {
  const settings = resolveWebhookSettings(options.settings);
  const logger = options.logger.child({ integration: 'webhooks' });
  const sender = new WebhookSender({ outbox: options.storage.webhooks, settings, logger });
  const enqueue = webhookEnqueuer(options.storage.webhooks);
  // The dispatcher needs each event's application, device and type, never its body.
  const feed = new EventFeed<FeedEventHead>({
    name: WEBHOOK_CURSOR,
    events: {
      listAfter: (afterId, read) => options.storage.events.listHeadsAfter(afterId, read),
      lastId: () => options.storage.events.lastId(),
    },
    cursor: storageCursor(options.storage.consumerCursors, WEBHOOK_CURSOR),
    readyUpTo: options.readyUpTo,
    // Without an enabled webhook the dispatcher would queue nothing: move on without reading.
    idle: async () => !(await options.storage.webhooks.anyEnabled()),
    logger,
    ...(options.feedPollIntervalMs === undefined
      ? {}
      : { pollIntervalMs: options.feedPollIntervalMs }),
    handle: async (events) => {
      if ((await enqueue(events)) > 0) sender.wake();
    },
  });
  const unsubscribe = options.onEventsReady(() => feed.wake());
  sender.start();
  await feed.start();
  return {
    feed,
    sender,
    metricSource: () => ({
      ...sender.stats,
      dispatchedEvents: feed.stats.events,
      idleSkips: feed.stats.idleSkips,
    }),
    gauges: {
      webhooks_outbox_pending: {
        help: 'webhook deliveries waiting to be delivered (read every few seconds)',
        read: () => sender.pending,
      },
      webhooks_oldest_pending_age_seconds: {
        help: 'seconds since the oldest pending webhook delivery was queued (0: none)',
        read: () => sender.oldestPendingAgeSeconds,
      },
    },
    async close() {
      unsubscribe();
      await feed.close();
      await sender.close();
    },
  };
}
